"""Helpers shared by the tests: checkpoint stores on disk (re-exported from
``ssl_eval.demo.stores``), synthetic records, and the one
tolerance for results that crossed processes. Tests import from here, never from each other."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ssl_eval.demo.stores import make_store, write_checkpoint
from ssl_eval.workspace import Workspace

__all__ = [
    "CROSS_PROCESS_RTOL", "TINY_OVERRIDES", "assert_same_values", "make_store", "synthetic_workspace", "write_checkpoint",
]

# The monitor flow's ``overrides`` for the tiny store: digits at small sizes.
TINY_OVERRIDES = {"data.name": "digits", "data.n_eval": 200, "data.n_probe_train": 300, "data.n_probe_test": 200}

# Values computed in different processes (other BLAS thread counts, other machines) agree
# to a few 1e-8 relative (4.1e-8 measured), not bitwise: a different summation order changes
# the last digits (docs/metrics.md, "Reproducibility"). 1e-6 leaves a margin and still
# catches real changes.
CROSS_PROCESS_RTOL = 1e-6


def assert_same_values(got: Mapping[str, Any], expected: Mapping[str, Any], *, rtol: float = CROSS_PROCESS_RTOL) -> None:
    """``got`` and ``expected`` hold the same names and, name by name, the same numbers to
    ``rtol`` (NaN equals NaN); anything that is not a number must be equal."""
    assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
    for name, value in expected.items():
        other = got[name]
        if isinstance(value, float) or isinstance(other, float):
            same = (math.isnan(value) and math.isnan(other)) or math.isclose(other, value, rel_tol=rtol, abs_tol=1e-12)
            assert same, f"{name}: {other!r} != {value!r} (rtol {rtol})"
        else:
            assert other == value, f"{name}: {other!r} != {value!r}"


def synthetic_workspace(root, *, epochs: int = 6, runs: int = 2, collapse_at: str | None = None) -> Workspace:
    """Records of two families as the embed and measure steps write them: in ``simclr`` the
    probe rises and entropy falls; in ``simsiam`` entropy rises with the probe (as in the
    paper) and the silhouette says nothing. The ``simsiam`` probe is lower overall."""
    ws = Workspace.at(root)
    rng = np.random.default_rng(0)
    for family, base in (("simclr", 0.80), ("simsiam", 0.60)):
        for run in range(runs):
            for epoch in range(epochs + 1):
                cid = f"{family}/run-{run}/epoch={epoch:02d}"
                fp = f"fp-{cid}"
                probe = base + 0.02 * epoch + 0.005 * rng.normal()
                entropy = (-1.0 if family == "simclr" else 1.0) * epoch + 0.1 * rng.normal()
                silhouette = 0.1 + 0.02 * epoch if family == "simclr" else 0.2 + 0.05 * rng.normal()
                flags = ["collapsed"] if cid == collapse_at else []
                ws.embeddings.write(cid, {"eval": np.zeros((2, 2), np.float32)}, {"fingerprint": fp, "epoch": epoch})
                ws.records.put(cid, "checkpoint", {"fingerprint": fp, "run": f"run-{run}", "epoch": epoch,
                                                   "method": family, "arch": "democnn"})
                ws.records.put(cid, "metrics-entropy", {"fingerprint": fp, "values": {"entropy_gaussian": entropy}, "flags": []})
                ws.records.put(cid, "metrics-clustering", {"fingerprint": fp, "values": {"silhouette": silhouette}, "flags": flags})
                spectral = {"rankme": 1.5 if flags else 20.0 + epoch, "rankme_centered": 1.0 if flags else 30.0 + epoch}
                ws.records.put(cid, "metrics-spectral", {"fingerprint": fp, "values": spectral, "flags": []})
                ws.records.put(cid, "probe", {"fingerprint": fp, "values": {"linear_acc": probe, "knn_acc": probe}})
    return ws


def stop_process_group(proc) -> int:
    """Ctrl-C to ``proc``'s process group, as a terminal sends it (SIGKILL after 60 s);
    returns its exit code. For the integration tests that start ``ssl-eval serve``/``ui``."""
    import os
    import signal
    import subprocess

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
