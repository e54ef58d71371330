"""The embedding flow, deployed on its own work pool (GPU machines).

It embeds the given checkpoints into the shared results one at a time (one model on the accelerator
at once).

The monitor flow calls it through ``run_deployment("embed-checkpoints/gpu", ...)`` when
``embed_deployment`` is set; it can also be run by hand for a list of checkpoint refs.
"""

from __future__ import annotations

from prefect import flow

from ssl_eval.config import Config
from ssl_eval.pipeline.outcomes import EmbedOutcome
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import CheckpointRef
from tasks.embed import embed


@flow(name="embed-checkpoints", flow_run_name="embed {workdir}")
def embed_checkpoints(
    refs: list[CheckpointRef], workdir: str | None = None, config: Config | None = None, results_url: str | None = None
) -> list[EmbedOutcome]:
    """Embed ``refs`` one at a time into the work dir (or the results URL)."""
    workspace = Workspace.at(workdir or None, results_url=results_url or None)
    config = config or Config()
    return [embed(ref, workspace, config) for ref in refs]
