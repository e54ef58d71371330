"""What Prefect + Dask orchestration costs, measured in one run.

    python benchmarks/orchestration.py [--epochs 3]

1. A store of 12 checkpoints: SimCLR, MoCo-v2 and SimSiam trained on digits for
   ``--epochs`` epochs (epoch 0 included), as `make-demo-store` writes them.
2. Baseline: the same core computations called directly, one after the other, without
   Prefect (embed, every metric group, probes, analysis, MLflow sync) into work dir A.
3. The monitor flow on a real local Prefect server (started first, so its start-up is not
   counted) into work dir B, then a rerun with nothing new.

Goals (issue 4, tightened by issue 15): the flow adds under 15 % to the direct computations; a rerun with nothing
new takes under 5 s beyond Prefect start-up. Not a timed test: it prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def direct(store: Path, workdir: Path, config) -> float:
    """Every computation of a monitor run, called directly; returns the wall time."""
    from ssl_eval.analysis import store_family_analysis
    from ssl_eval.integrations.mlflow_mirror import sync_family
    from ssl_eval.pipeline.embedding import embed_or_record_failure
    from ssl_eval.pipeline.evaluation import compute_part
    from ssl_eval.pipeline.planning import PARTS
    from ssl_eval.results.workspace import Workspace
    from ssl_eval.sources.checkpoints import discover

    ws = Workspace.at(workdir)
    started = time.perf_counter()
    refs = discover(store, settle_seconds=0)
    for ref in refs:
        embed_or_record_failure(ref, config, ws)
        for part in PARTS:
            compute_part(ws, ref.id, part, config)
    for family in sorted({r.family for r in refs}):
        store_family_analysis(ws, family)
        sync_family(ws, family, tracking_uri=ws.mlflow_uri, store=str(store))
    return time.perf_counter() - started


OVERRIDES: dict[str, Any] = {"data.name": "digits", "data.n_eval": 400, "data.n_probe_train": 800, "data.n_probe_test": 400}


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per method (checkpoints = 3 x (epochs + 1))")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ssl-eval-orchestration-"))
    os.environ.update({
        "PREFECT_HOME": str(scratch / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DASK_TEMPORARY_DIRECTORY": str(scratch / "dask"), "MPLCONFIGDIR": str(scratch / "mpl"),
        "DASK_LOGGING__DISTRIBUTED": "warning", "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    from deployments.server import local_prefect_server
    from ssl_eval.config import load_config
    from ssl_eval.demo.train import make_demo_store

    store = scratch / "store"
    make_demo_store(store, dataset="digits", epochs=args.epochs, n_train=600, batch_size=64)
    for path in store.rglob("*.ckpt"):  # settled
        os.utime(path, (time.time() - 60,) * 2)
    n_checkpoints = len(list(store.rglob("*.ckpt")))
    config = load_config(**OVERRIDES)

    load_before = os.getloadavg()[0]
    baseline = direct(store, scratch / "work-direct", config)
    with local_prefect_server(scratch / "prefect-server") as api_url:
        os.environ["PREFECT_API_URL"] = api_url
        from flows.monitor import run_monitor

        started = time.perf_counter()
        first = run_monitor(str(store), str(scratch / "work-flow"), overrides=OVERRIDES, settle_seconds=0)
        flow_s = time.perf_counter() - started
        started = time.perf_counter()
        again = run_monitor(str(store), str(scratch / "work-flow"), overrides=OVERRIDES, settle_seconds=0)
        rerun_s = time.perf_counter() - started
    if len(first.embedded) != n_checkpoints or again.checkpoints_new_or_stale != 0:
        raise RuntimeError(f"unexpected flow results: {first} / {again}")

    overhead = flow_s / baseline - 1
    rows = [
        ("direct core calls (baseline)", f"{baseline:.1f}", "-", "-"),
        ("monitor flow, Prefect + Dask", f"{flow_s:.1f}", f"{overhead:+.0%}", "under +15%: " + ("met" if overhead < 0.15 else "not met")),
        ("rerun, nothing new", f"{rerun_s:.1f}", "-", "under 5 s: " + ("met" if rerun_s < 5 else "not met")),
    ]
    print(f"\n{n_checkpoints} checkpoints (digits), {os.cpu_count()} CPU cores; Prefect server started beforehand; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"| {'case':<32} | {'wall s':>7} | {'vs baseline':>11} | goal |")
    print(f"|{'-' * 34}|{'-' * 9}|{'-' * 13}|------|")
    for case, wall, ratio, goal in rows:
        print(f"| {case:<32} | {wall:>7} | {ratio:>11} | {goal} |")


if __name__ == "__main__":
    main()
