"""The evaluation flow: discover -> embed -> metric groups + probes -> analyse -> MLflow.

Flows only compose. Every checkpoint's metric tasks start as soon as that checkpoint is
embedded; a family is analysed once all its checkpoints are measured.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from prefect import flow, unmapped
from prefect_dask import DaskTaskRunner

from ssl_eval.config import Config
from ssl_eval.metrics import GROUPS
from tasks.analyze import analyze
from tasks.embed import discover_checkpoints, embed
from tasks.metrics import metric_group, probe
from tasks.track import track


def dask_runner(address: str | None = None) -> DaskTaskRunner:
    """An existing Dask cluster when ``address`` is given, else a threaded LocalCluster
    (threads: worker processes would each start their own Prefect server)."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "processes": False,
            "n_workers": 1,
            "threads_per_worker": os.cpu_count() or 2,
            "dashboard_address": "127.0.0.1:0",
        },
    )


@flow(name="evaluate-store", flow_run_name="evaluate {store}", task_runner=dask_runner())
def evaluate_store(store: str, workdir: str, config: Config, tracking_uri: str | None = None) -> dict[str, Any]:
    refs = discover_checkpoints(store)
    embedded = embed.map(refs, unmapped(workdir), unmapped(config))
    measured: dict[str, list] = defaultdict(list)
    for ref, emb in zip(refs, embedded):
        measured[ref.family] += [metric_group.submit(emb, group, workdir, config) for group in GROUPS]
        measured[ref.family].append(probe.submit(emb, workdir, config))
    analyses = {family: analyze.submit(family, workdir, config, wait_for=futures) for family, futures in measured.items()}
    tracked = [
        track.submit(family, workdir, tracking_uri, store, wait_for=[analysis])
        for family, analysis in analyses.items()
        if tracking_uri
    ]
    outcomes = [future.result() for future in embedded]
    for future in [f for futures in measured.values() for f in futures] + tracked:
        future.result()
    return {
        "checkpoints": len(refs),
        "families": sorted(analyses),
        "embedded": [o["id"] for o in outcomes if o["status"] == "embedded"],
        "cached": [o["id"] for o in outcomes if o["status"] == "cached"],
        "failed": {o["id"]: o["error"] for o in outcomes if o["status"] == "failed"},
        "analyses": {family: a.result() for family, a in analyses.items()},
    }


def run_evaluation(
    store: str, workdir: str, config: Config, *, dask_address: str | None = None, tracking_uri: str | None = None
) -> dict[str, Any]:
    return evaluate_store.with_options(task_runner=dask_runner(dask_address))(
        store=store, workdir=workdir, config=config, tracking_uri=tracking_uri
    )
