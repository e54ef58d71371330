"""A PyTorch Lightning callback that feeds the checkpoint store as training goes.

At the end of every ``every_n_epochs``-th training epoch (on the global-zero process only)
it writes the LightningModule's backbone with :func:`ssl_eval.training_hook.save_backbone`
and asks the monitor deployment for an evaluation run (:class:`EvaluationRequester`).
Neither can fail or hold up training: a write error is logged and training goes on; the
request runs on a background thread. Built on ``pytorch_lightning`` (what lightly uses).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl

from ssl_eval.training_hook import DEPLOYMENTS, EvaluationRequester, save_backbone

log = logging.getLogger(__name__)


class MonitorCallback(pl.Callback):
    """``MonitorCallback("store", family="simclr-vit", run="seed0", arch="timm:vit_small_patch16_224")``.

    ``backbone`` names the LightningModule attribute holding the encoder (lightly's and
    solo-learn's modules call it ``backbone``). ``request=False`` only writes checkpoints;
    ``api_url`` defaults to ``PREFECT_API_URL`` (unset: no request, the scheduled scan finds
    the file)."""

    def __init__(
        self,
        store: str | Path,
        *,
        family: str,
        run: str,
        arch: str | None = None,
        backbone: str = "backbone",
        every_n_epochs: int = 1,
        request: bool = True,
        api_url: str | None = None,
        deployments: tuple[str, ...] = DEPLOYMENTS,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.store, self.family, self.run, self.arch = Path(store), family, run, arch
        self.backbone, self.every_n_epochs = backbone, every_n_epochs
        self.requester = EvaluationRequester(api_url, deployments) if request else None
        self.written: list[Path] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, self.backbone):  # a configuration error: say so before training starts
            raise ValueError(
                f"MonitorCallback: {type(pl_module).__name__} has no attribute {self.backbone!r}; "
                "pass backbone='<the attribute holding the encoder>'."
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        try:
            path = save_backbone(
                getattr(pl_module, self.backbone), self.store, family=self.family, run=self.run,
                epoch=trainer.current_epoch, global_step=trainer.global_step, arch=self.arch,
            )
        except (OSError, RuntimeError) as exc:  # a full disk must not stop training
            log.warning("ssl-eval: could not write the epoch %d checkpoint (%s); training goes on.", trainer.current_epoch, exc)
            return
        self.written.append(path)
        if self.requester is not None:
            self.requester.request()
