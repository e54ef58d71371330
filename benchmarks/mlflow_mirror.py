"""The MLflow mirror alone, on the records of a finished evaluation.

Seconds and MLflow requests of a first sync into an empty sqlite store (answers only, as
``ssl-eval evaluate`` does it), of the figures (as ``ssl-eval ui`` draws them), and of a rerun
with nothing new.

    python benchmarks/mlflow_mirror.py WORKDIR     # e.g. .ssl_eval after `make demo`

WORKDIR is read only: its records and embeddings are copied to a temporary folder. Prints one line per step
with the load average. Not a timed test.
"""

from __future__ import annotations

import collections
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from ssl_eval.integrations import mlflow_figures, mlflow_mirror
from ssl_eval.results.workspace import Workspace


def _count_requests(calls: collections.Counter) -> None:
    """Count every public MlflowClient method call (each is one or more requests)."""
    for name in [n for n in dir(MlflowClient) if not n.startswith("_") and callable(getattr(MlflowClient, n))]:
        def counted(*args, _real=getattr(MlflowClient, name), _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        setattr(MlflowClient, name, counted)


def main() -> None:
    """Copy the work dir's records, time each step, print one line per step."""
    source = Path(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="ssl-eval-mirror-") as tmp:
        for part in ("records", "embeddings.zarr"):  # the rows read the embeddings' provenance
            shutil.copytree(source / part, Path(tmp) / part)
        ws = Workspace.at(tmp)
        uri = ws.mlflow_uri
        MlflowClient(uri).search_experiments()  # the database's tables: not the mirror's time
        families = [f for f in ws.records.families() if ws.records.get(f, "correlations")]
        calls: collections.Counter = collections.Counter()
        _count_requests(calls)
        steps = {
            "first sync, answers only (evaluate)": lambda: [mlflow_mirror.sync_family(ws, f, tracking_uri=uri, figures=False)
                                                          for f in families],
            "figures (ssl-eval ui)": lambda: mlflow_figures.draw_figures(ws, uri),
            "rerun, nothing new": lambda: [mlflow_mirror.sync_family(ws, f, tracking_uri=uri) for f in families],
        }
        print(f"{len(families)} families, {sum(len(ws.records.checkpoint_ids(f)) for f in families)} checkpoints")
        for step, run in steps.items():
            calls.clear()
            started = time.perf_counter()
            run()
            print(f"{step}: {time.perf_counter() - started:.2f} s, {sum(calls.values())} client calls "
                  f"({dict(calls.most_common(4))}), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
