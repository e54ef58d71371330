"""How reproducible are the stored values?

The same checkpoint's record parts computed in separate processes with 1, 2 and 4
BLAS/OpenMP threads, compared with the 1-thread run.

    python benchmarks/reproducibility.py [--dataset digits]

Prints, per record part, the largest relative difference of any value against the 1-thread
run. Within one process configuration the values are bitwise equal run to run; across
thread counts a different summation order moves the last digits. docs/metrics.md quotes
the table; tests/helpers.py's CROSS_PROCESS_RTOL is chosen from it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CHILD = """
import json, sys
from ssl_eval.config import load_config
from ssl_eval.pipeline.evaluation import compute_part
from ssl_eval.pipeline.planning import PARTS
from ssl_eval.results.workspace import Workspace
work, cid, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ws, config = Workspace.at(work), load_config(**overrides)
out = {}
for part in PARTS:
    compute_part(ws, cid, part, config)
    out[part] = ws.records.get(cid, part)["values"]
print(json.dumps(out))
"""


def _relative(a: float, b: float) -> float:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300) if a != b else 0.0


def main() -> None:
    """Parse the command line, compute one checkpoint's metrics at several thread counts, print the differences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args()
    from ssl_eval.config import load_config
    from ssl_eval.demo.stores import make_store
    from ssl_eval.pipeline.embedding import embed_checkpoint
    from ssl_eval.results.workspace import Workspace
    from ssl_eval.sources.checkpoints import discover

    overrides = {"data.name": args.dataset, "data.n_eval": 500, "data.n_probe_train": 800, "data.n_probe_test": 400}
    with tempfile.TemporaryDirectory(prefix="ssl-eval-repro-") as tmp:
        store = make_store(Path(tmp) / "store", {"simclr": 1})
        ref = discover(store)[0]
        embed_checkpoint(ref, load_config(**overrides), Workspace.at(Path(tmp) / "work-embed"))
        runs: dict[int, list[dict[str, dict[str, float]]]] = {}
        for threads in (1, 1, 2, 4):
            work = Path(tmp) / f"work-{threads}-{time.monotonic_ns()}"
            # every process reads the same embeddings: copy the committed arrays
            shutil.copytree(Path(tmp) / "work-embed", work)
            env = {**os.environ, **{var: str(threads) for var in THREAD_VARS}, "PYTHONPATH": str(REPO)}
            out = subprocess.run([sys.executable, "-c", CHILD, str(work), ref.id, json.dumps(overrides)],  # noqa: S603 - our interpreter and our CHILD script
                                 env=env, capture_output=True, text=True, check=True)
            runs.setdefault(threads, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = runs[1][0]
    print("\n| record part | 1 vs 1 thread (other process) | 1 vs 2 threads | 1 vs 4 threads |")
    print("|---|---|---|---|")
    for part, values in base.items():
        cells = []
        for other in (runs[1][1], runs[2][0], runs[4][0]):
            worst = max((_relative(v, other[part][name]) for name, v in values.items()), default=0.0)
            cells.append("bitwise equal" if worst == 0 else f"{worst:.1e}")
        print(f"| {part} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
