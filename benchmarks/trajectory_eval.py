r"""Evaluate a trajectory store into the per-checkpoint CSV of docs/verdicts.md, in plain processes.

Every value comes from the functions ``ssl-eval evaluate`` runs (the checkpoint loader and model
builder, ``embed_images``, ``evaluation.group_record`` and ``evaluation.probe_record``) on the same
splits of the same configuration, without the orchestration around them: for 1,488 checkpoints
of a 64-d CNN on two shared CPU cores, a Prefect task run per step and the MLflow mirror cost
more than the computation itself. ``--check WORKDIR`` compares the CSV with the records of a work dir
that ``ssl-eval evaluate`` filled from the same store and configuration: the largest relative
difference per column over the checkpoints both hold (thread counts may change last digits).

    python benchmarks/trajectory_eval.py STORE --dataset mnist \
        --config benchmarks/data/trajectories.toml --out benchmarks/data/trajectories-mnist.csv [--workers 2]

The CSV has the columns of ``ssl-eval report --format csv`` plus each checkpoint's own
``train_loss`` (the epoch's mean training loss) and ``lr``, which the demo trainer stores.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS_HEAD = ["family", "run", "epoch", "checkpoint", "method", "arch"]
COLUMNS_TAIL = ["probe_knn_acc", "probe_linear_acc", "flags", "train_loss", "lr"]
_STATE: dict[str, Any] = {}


def _setup(config_path: str, dataset: str) -> None:
    import torch

    from ssl_eval.config import load_config
    from ssl_eval.pipeline.eval_data import cached_views, data_splits

    torch.set_num_threads(1)  # one process per core (called once per worker process, before any work)
    overrides: dict[str, Any] = {"data.name": dataset}
    config = load_config(Path(config_path), **overrides)
    _STATE.update(config=config, splits=data_splits(config.data), views=cached_views(config.data))


def _evaluate(path: str) -> dict[str, Any]:
    from ssl_eval.metrics import GROUPS
    from ssl_eval.pipeline.evaluation import group_record, probe_record
    from ssl_eval.pipeline.inference import embed_images, preprocess_options
    from ssl_eval.sources.loading import load_checkpoint
    from ssl_eval.sources.model_building import build_model

    config, splits, views = _STATE["config"], _STATE["splits"], _STATE["views"]
    p = Path(path)
    family_name, run = p.parent.parent.name, p.parent.name
    family = config.family(family_name)
    loaded = load_checkpoint(p, family)
    model = build_model(loaded, family, in_channels=splits.eval.channels, path=p)
    options = preprocess_options(config.data)

    def embed(images: np.ndarray) -> np.ndarray:
        return embed_images(model, images, batch_size=config.data.batch_size, preprocess_options=options)

    X = {split: embed(getattr(splits, split).images) for split in ("eval", "probe_train", "probe_test")}
    pair = (embed(views[0]), embed(views[1])) if views is not None else None
    values: dict[str, float] = {}
    flags: list[str] = []
    for group in GROUPS:
        record = group_record(group, X["eval"], labels=splits.eval.labels, views=pair, num_classes=splits.eval.num_classes,
                              config=config)
        values.update(record.values)
        flags += [f for f in record.flags if f not in flags]
    probes = probe_record(X["probe_train"], splits.probe_train.labels, X["probe_test"], splits.probe_test.labels, config)
    values.update({f"probe_{name}": value for name, value in probes.values.items()})
    meta = loaded.meta
    return {"family": family_name, "run": run, "epoch": int(meta.get("epoch", -1)), "checkpoint": p.stem,
            "method": str(meta.get("method", family_name)), "arch": str(meta.get("arch", "")), **values,
            "flags": ";".join(flags), "train_loss": float(meta.get("train_loss", math.nan)), "lr": meta.get("lr", "")}


def check(out: Path, workdir: Path) -> dict[str, float]:
    """Largest relative difference per column between the CSV ``out`` and the work dir's records."""
    import json

    worst: dict[str, float] = {}
    with out.open(newline="") as f:
        for row in csv.DictReader(f):
            folder = next(iter((workdir / "records" / row["family"]).glob(f"*/{row['checkpoint']}")), None)
            for record in [] if folder is None else [x for x in folder.glob("*.json")
                                                    if x.parent.parent.name.replace("~2E", ".") == row["run"]]:
                prefix = "probe_" if record.name == "probe.json" else ""
                for name, value in (json.loads(record.read_text()).get("values") or {}).items():
                    mine = row.get(prefix + name)
                    if mine and value is not None:
                        worst[prefix + name] = max(worst.get(prefix + name, 0.0),
                                                   abs(float(mine) - float(value)) / max(abs(float(value)), 1e-12))
    return worst


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, evaluate every checkpoint of the store, write the CSV (or check it against a work dir)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--check", type=Path, help="a work dir `ssl-eval evaluate` filled from the same store: compare")
    args = parser.parse_args(argv)
    if args.check:
        worst = check(args.out, args.check)
        print("largest relative difference per column:", {k: f"{v:.1e}" for k, v in sorted(worst.items())})
        return
    paths = sorted(str(p) for p in args.store.glob("*/*/*.ckpt"))
    started = time.perf_counter()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_setup, initargs=(str(args.config), args.dataset)) as pool:
        for i, row in enumerate(pool.imap_unordered(_evaluate, paths, chunksize=4), 1):
            rows.append(row)
            if i % 50 == 0 or i == len(paths):
                print(f"{i}/{len(paths)} checkpoints, {time.perf_counter() - started:.0f} s", flush=True)
    rows.sort(key=lambda r: (r["family"], r["run"], r["epoch"]))
    metrics = sorted({k for r in rows for k in r} - set(COLUMNS_HEAD) - set(COLUMNS_TAIL))
    from ssl_eval.metrics import METRICS

    metrics = [m for m in METRICS if m in metrics] + [m for m in metrics if m not in METRICS]
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS_HEAD + metrics + COLUMNS_TAIL)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (v if not isinstance(v, float) or np.isfinite(v) else "") for k, v in r.items()})
    print(f"wrote {len(rows)} rows to {args.out} in {time.perf_counter() - started:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
