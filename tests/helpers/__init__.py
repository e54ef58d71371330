"""Helpers shared by the tests. Tests import from here, never from each other.

Checkpoint stores on disk (re-exported from ``ssl_eval.demo.stores``), synthetic records, the
one tolerance for results that crossed processes, every MLflow series the mirror wrote, a
monitor run without Prefect; synthetic embeddings (:mod:`.arrays`), free ports, waiting on and
stopping served processes (:mod:`.processes`), ViT checkpoints as their trainers write them
and a lightly SimCLR module on a tiny ViT (:mod:`.vit`).

timm, Lightning and lightly are imported where they are used, not here: every test run
imports this module (through conftest.py) and most tests need none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ssl_eval.demo.stores import make_store, write_checkpoint
from ssl_eval.results.workspace import Workspace
from tests.helpers.arrays import Embeddings, blobs, embeddings
from tests.helpers.processes import free_port, stop_process_group, wait_for
from tests.helpers.vit import (
    DDP,
    DIGITS_VIT_ARGS,
    VIT_ARCH,
    VIT_ARGS,
    DINOHead,
    Evil,
    MaskedAutoencoderViT,
    MoCoViT,
    MultiCropWrapper,
    cls_features,
    dino_args,
    moco_mlp,
    tiny_vit,
    vit_simclr,
    write_dino_checkpoint,
)

__all__ = [
    "CROSS_PROCESS_RTOL", "DDP", "DIGITS_VIT_ARGS", "TINY_OVERRIDES", "VIT_ARCH", "VIT_ARGS", "DINOHead", "Embeddings", "Evil",
    "MaskedAutoencoderViT", "MoCoViT", "MultiCropWrapper", "assert_same_values", "blobs", "cls_features", "dino_args",
    "embeddings", "evaluate_without_prefect", "free_port", "make_store", "mlflow_series", "moco_mlp", "stop_process_group",
    "store_answers", "synthetic_workspace", "tiny_vit", "vit_simclr", "wait_for", "write_checkpoint", "write_dino_checkpoint",
]

# The monitor flow's ``overrides`` for the tiny store: digits at small sizes.
TINY_OVERRIDES: dict[str, Any] = {"data.name": "digits", "data.n_eval": 200, "data.n_probe_train": 300, "data.n_probe_test": 200}

# Values computed in different processes (other BLAS thread counts, other machines) agree
# to a few 1e-8 relative (4.1e-8 measured), not bitwise: a different summation order changes
# the last digits (docs/metrics.md, "Reproducibility"). 1e-6 leaves a margin and still
# catches real changes.
CROSS_PROCESS_RTOL = 1e-6


def assert_same_values(got: Mapping[str, Any], expected: Mapping[str, Any], *, rtol: float = CROSS_PROCESS_RTOL) -> None:
    """Assert that ``got`` and ``expected`` hold the same names and the same numbers to ``rtol``.

    Name by name; NaN equals NaN; anything that is not a number must be equal.
    """
    assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
    for name, value in expected.items():
        other = got[name]
        if isinstance(value, float) or isinstance(other, float):
            same = (math.isnan(value) and math.isnan(other)) or math.isclose(other, value, rel_tol=rtol, abs_tol=1e-12)
            assert same, f"{name}: {other!r} != {value!r} (rtol {rtol})"
        else:
            assert other == value, f"{name}: {other!r} != {value!r}"


def synthetic_workspace(root, *, epochs: int = 6, runs: int = 2, collapse_at: str | None = None, answers: bool = False) -> Workspace:
    """Records of two families as the embed and measure steps write them.

    In ``simclr`` the probe rises and entropy falls; in ``simsiam`` entropy rises with the probe (as
    in the paper) and the silhouette says nothing. The ``simsiam`` probe is lower overall.
    ``answers``: also the analyses and verdicts the flow stores (:func:`store_answers`).
    """
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
    if answers:
        store_answers(ws)
    return ws


def mlflow_series(client) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Every metric history of every active run of every ssl-eval experiment, by (run name, key): (step, value) in logging order.

    ``client``: an ``mlflow.tracking.MlflowClient``.
    """
    out = {}
    for exp in client.search_experiments():
        if exp.name.startswith("ssl-eval/"):
            for run in client.search_runs([exp.experiment_id]):
                for key in run.data.metrics:
                    out[(run.info.run_name, key)] = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
    return out


def evaluate_without_prefect(store, config, ws):
    """A monitor run without Prefect: plan, embed, compute every planned part, analyse the families the plan names; returns the plan."""
    from ssl_eval.pipeline.embedding import embed_or_record_failure
    from ssl_eval.pipeline.evaluation import compute_parts
    from ssl_eval.pipeline.planning import plan
    from ssl_eval.sources.checkpoints import discover

    work = plan(discover(store), config, ws, tracking_uri=None)
    for item in work.items:
        if embed_or_record_failure(item.ref, config, ws).ready:
            compute_parts(ws, item.ref.id, list(item.parts), config)
    store_answers(ws, config, work.families)
    return work


def store_answers(ws, config=None, families=None):
    """What the monitor flow's analyse and verdict steps store (the only writer of answers).

    Each family's analysis, the pooled one, then each family's verdict. ``config``: a
    ``ssl_eval.config.Config`` (None: the defaults); ``families``: None for all.
    """
    from ssl_eval.analysis import families as all_families
    from ssl_eval.analysis import store_family_analysis, store_pooled_analysis
    from ssl_eval.config import Config
    from ssl_eval.verdict.records import store_verdict

    config = config or Config()
    names = list(all_families(ws) if families is None else families)
    analyses = {f: store_family_analysis(ws, f, late_fraction=config.analysis.late_fraction, collapse_rule=config.verdict.collapse_rule())
                for f in names}
    if analyses:
        store_pooled_analysis(ws, late_fraction=config.analysis.late_fraction)
    return {f: store_verdict(ws, f, analysis, config) for f, analysis in analyses.items()}
