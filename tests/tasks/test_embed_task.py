"""The embed task keeps its ``gpu`` tag exactly where a ``gpu`` concurrency limit can hold it."""

from __future__ import annotations

import pytest

import tasks.embed as embed_module
from tasks.embed import GPU_TAG, embed, embed_task


def test_embed_is_tagged_gpu_only_where_the_api_holds_a_gpu_limit(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    assert GPU_TAG in embed.tags
    assert GPU_TAG not in embed_task().tags  # no limit: no per-embed slot request
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=f"tag:{GPU_TAG}", limit=1))
        try:
            assert GPU_TAG in embed_task().tags  # a limit: every embed is held to it
        finally:
            client.delete_global_concurrency_limit_by_name(f"tag:{GPU_TAG}")
    assert GPU_TAG not in embed_task().tags


def test_a_failed_read_keeps_the_tag(monkeypatch: pytest.MonkeyPatch):
    import prefect.client.orchestration

    def unreachable(**_: object) -> None:
        raise ConnectionError("no API")

    monkeypatch.setattr(prefect.client.orchestration, "get_client", unreachable)
    assert embed_module.embed_task() is embed
