"""How long a monitor scan takes when nothing is new, as a store grows.

    python benchmarks/rescan.py [--sizes 100 1000 10000]

A team's sweep holds thousands of checkpoints, and the monitor rescans the store every few
minutes. For each size N this builds a simulated store of N tiny checkpoint files
(``<family>/run-<r>/epoch=<e>.ckpt``, 50 epochs per run, at most 10 families) and a work
dir holding what a finished evaluation leaves behind (each checkpoint's committed
embedding provenance, its checkpoint, metric and probe records, each family's analysis),
written through the stores' own APIs; then it times one scan with nothing new: discovery
(listing and fingerprinting the files) and planning, twice -- the first scan of a process
and a later one. The plan must be empty. The goal (#15 item 8): under 5 s at 10,000
checkpoints, growing with what changed rather than with the store.

Not a timed test: it prints a table (and the machine's load average beside it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EPOCHS_PER_RUN = 50
MAX_FAMILIES = 10


def build(root: Path, n: int):
    """A store of ``n`` tiny checkpoint files and a work dir as a finished evaluation leaves it."""
    import json

    from ssl_eval.analysis import ANALYSIS_VERSION, families, family_rows, rows_digest
    from ssl_eval.config import Config
    from ssl_eval.metrics import GROUPS, unconditional_metrics
    from ssl_eval.results.answers import VERDICT_VERSION, answers_key
    from ssl_eval.results.embeddings import LocalEmbeddingArrays
    from ssl_eval.results.workspace import Workspace
    from ssl_eval.sources.checkpoints import discover

    config = Config()
    store = root / "store"
    n_families = min(MAX_FAMILIES, max(1, n // (2 * EPOCHS_PER_RUN)))
    settled = time.time() - 120
    for i in range(n):
        family, rest = f"fam{i % n_families}", i // n_families
        path = store / family / f"run-{rest // EPOCHS_PER_RUN}" / f"epoch={rest % EPOCHS_PER_RUN:02d}.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(256))  # the scan only lists and fingerprints files
        os.utime(path, (settled, settled))
    ws = Workspace.at(root / "work")
    embeddings, records = ws.embeddings, ws.records
    if not isinstance(embeddings, LocalEmbeddingArrays):  # a local work dir: its groups are folders
        raise TypeError(f"expected the local embedding store, got {type(embeddings).__name__}")
    for ref in discover(store, settle_seconds=0):
        provenance = {"fingerprint": ref.fingerprint, "embedding_key": config.embedding_key(ref.family),
                      "family": ref.family, "run": ref.run, "checkpoint": ref.name, "epoch": ref.epoch,
                      "source": ref.path, "method": ref.family, "arch": "democnn"}
        group = embeddings.path(ref.id)  # a committed group's metadata (its arrays are not read by a scan)
        group.mkdir(parents=True, exist_ok=True)
        (group / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": provenance}))
        records.put(ref.id, "checkpoint", provenance)
        stamp = {"fingerprint": ref.fingerprint, "metrics_key": config.metrics_key(ref.family)}
        for group_name in GROUPS:
            # every metric the registry computes unconditionally: a record without one is recomputed
            values = dict.fromkeys(unconditional_metrics(group_name), 0.5)
            records.put(ref.id, f"metrics-{group_name}", {**stamp, "values": values, "flags": []})
        records.put(ref.id, "probe", {**stamp, "values": {"linear_acc": 0.9}})
    for family in families(ws):  # the answers the flow stores, current for these records and this configuration
        digest = rows_digest(family_rows(ws, family))
        records.put(family, "correlations", {"version": ANALYSIS_VERSION, "inputs_digest": digest})
        records.put(family, "verdict", {"version": VERDICT_VERSION, "inputs_digest": digest,
                                        "answers_key": answers_key(config, family)})
    return store, ws, config


def timed_scan(store: Path, ws, config) -> tuple[float, float, int, bool]:
    """Time a rescan of ``store``: ``(scan seconds, plan seconds, checkpoints found, nothing to do)``."""
    from ssl_eval.pipeline.planning import plan, scan

    started = time.perf_counter()
    refs = scan(store, ws, settle_seconds=0)
    found = time.perf_counter()
    work = plan(refs, config, ws, tracking_uri=None)
    return found - started, time.perf_counter() - found, len(refs), work.empty


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t0 = time.perf_counter()
            store, ws, config = build(Path(tmp) / str(n), n)
            setup = time.perf_counter() - t0
            first = timed_scan(store, ws, config)
            later = timed_scan(store, ws, config)
            if not (first[3] and later[3]):
                raise SystemExit(f"N={n}: the scan planned work although nothing changed")
            rows.append((n, first[2], setup, first, later, os.getloadavg()[0]))
            print(f"N={n}: built in {setup:.1f} s", file=sys.stderr)
    print("first: the first scan after an evaluation (checks every record, notes families settled);")
    print("again: a later scan with nothing new (what a scheduled monitor pays every interval)")
    print(f"{'checkpoints':>11} {'first s':>8} {'again: discover s':>17} {'plan s':>7} {'total s':>8} {'goal <5 s':>9} {'load':>5}")
    for n, found, _setup, first, later, load in rows:
        total = later[0] + later[1]
        goal = "" if n < 10000 else ("met" if total < 5 else "not met")
        print(f"{found:>11} {first[0] + first[1]:>8.2f} {later[0]:>17.2f} {later[1]:>7.2f} {total:>8.2f} {goal:>9} {load:>5.1f}")


if __name__ == "__main__":
    main()
