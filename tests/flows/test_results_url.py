"""The monitor flow with the checkpoint store and the shared results on fsspec URLs: same records as the local path.

The URLs are memory://, shared by the threaded LocalCluster.
"""

from __future__ import annotations

import os

import fsspec
import pytest

from flows.monitor import run_monitor
from ssl_eval.pipeline.embedding import embed_checkpoint
from ssl_eval.pipeline.evaluation import compute_part
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from tests.helpers import assert_same_values


@pytest.mark.slow
def test_url_stores_evaluate_like_local_ones(prefect_harness, tiny_store, tiny_overrides, tiny_config, tmp_path):
    fs = fsspec.filesystem("memory")
    for path in tiny_store.rglob("*.ckpt"):
        fs.pipe_file(f"/flow-ckpts/{path.relative_to(tiny_store).as_posix()}", path.read_bytes())
    summary = run_monitor(
        "memory://flow-ckpts", str(tmp_path / "work"), overrides=tiny_overrides, results_url="memory://flow-shared",
        settle_seconds=0, track_mlflow=False,
    )
    assert len(summary.embedded) == 6 and summary.failed == {}
    assert "SSL_EVAL_RESULTS_URL" not in os.environ  # the tasks were told, not the process environment
    shared = Workspace.at(tmp_path / "reader", results_url="memory://flow-shared")
    assert len(shared.records.checkpoint_ids()) == 6
    assert shared.records.get("simclr", "correlations")["n_checkpoints"] == 3
    assert not (tmp_path / "work" / "records").exists()  # nothing shared was written locally
    source = shared.embeddings.provenance("simclr/run-0/epoch=00")["source"]
    assert source.endswith("flow-ckpts/simclr/run-0/epoch=00.ckpt")  # the URL, not a local copy
    local = Workspace.at(tmp_path / "local", results_url="")
    ref = next(r for r in discover(tiny_store) if r.id == "simsiam/run-0/epoch=02")
    embed_checkpoint(ref, tiny_config, local)
    for part in ("metrics-clustering", "probe"):
        compute_part(local, ref.id, part, tiny_config)
        # computed on the flow's Dask workers and here: equal to the cross-process tolerance
        # (bitwise on a threaded cluster; a process cluster may use other BLAS thread counts)
        assert_same_values(local.records.get(ref.id, part)["values"], shared.records.get(ref.id, part)["values"])


def test_a_workspace_with_built_stores_is_the_same_task_parameter(tmp_path):
    """Prefect hashes task inputs into cache keys and serialises them; the stores a Workspace has built (open file systems) take no part in either."""
    from prefect.serializers import JSONSerializer
    from prefect.utilities.hashing import hash_objects

    used, fresh = (Workspace.at(tmp_path, results_url="memory://param-shared") for _ in range(2))
    before = hash_objects({"workspace": used})
    used.records.put("f/r/c", "checkpoint", {"epoch": 0})
    used.embeddings.provenance("f/r/c")
    assert hash_objects({"workspace": used}) == before == hash_objects({"workspace": fresh})
    assert hash_objects({"workspace": used}) != hash_objects({"workspace": Workspace.at(tmp_path)})
    assert JSONSerializer().loads(JSONSerializer().dumps(used)) == fresh
