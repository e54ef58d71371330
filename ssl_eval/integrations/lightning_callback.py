"""A PyTorch Lightning callback that feeds the checkpoint store as training goes.

At the end of every ``every_n_epochs``-th training epoch (on the global-zero process only)
it hands the LightningModule's backbone to :class:`ssl_eval.integrations.training_hook.TrainingMonitor`,
which writes it into the store atomically and asks the monitor deployment for an
evaluation run on a background thread. Neither can fail or hold up training; when training
ends, the last request gets up to ``close_timeout`` seconds to reach the server. Built on
``pytorch_lightning`` (the package lightly uses).
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from ssl_eval.integrations.training_hook import DEPLOYMENTS, TrainingMonitor


class MonitorCallback(pl.Callback):
    """``MonitorCallback("store", family="simclr-vit", run="seed0", arch="timm:vit_small_patch16_224")``.

    ``backbone`` names the LightningModule attribute holding the encoder (lightly's and
    solo-learn's modules call it ``backbone``). ``request=False`` only writes checkpoints;
    ``api_url`` defaults to ``PREFECT_API_URL`` (unset: no request, the scheduled scan finds
    the file). ``monitor`` is the :class:`TrainingMonitor` (``monitor.written``,
    ``monitor.requester``).
    """

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
        close_timeout: float = 30.0,
    ) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be an integer >= 1, got {every_n_epochs!r}.")
        self.monitor = TrainingMonitor(store, family=family, run=run, arch=arch, request=request,
                                       api_url=api_url, deployments=deployments)
        self.backbone, self.every_n_epochs, self.close_timeout = backbone, every_n_epochs, close_timeout

    @property
    def written(self) -> list[Path]:
        """The checkpoints written so far."""
        return self.monitor.written

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check, before training starts, that the module holds the named backbone attribute.

        Args:
            trainer: the Lightning trainer.
            pl_module: the LightningModule being trained.
            stage: Lightning's stage (``fit``, ...).

        Raises:
            ValueError: ``pl_module`` has no attribute named ``backbone``.
        """
        if not hasattr(pl_module, self.backbone):  # a configuration error: say so before training starts
            raise ValueError(
                f"MonitorCallback: {type(pl_module).__name__} has no attribute {self.backbone!r}; "
                "pass backbone='<the attribute holding the encoder>'."
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Every ``every_n_epochs``-th epoch, on global zero: write the backbone and ask for an evaluation.

        Args:
            trainer: the Lightning trainer.
            pl_module: the LightningModule being trained.
        """
        if not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self.monitor.checkpoint(getattr(pl_module, self.backbone), trainer.current_epoch, global_step=trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give the last evaluation request up to ``close_timeout`` seconds (global zero only).

        Args:
            trainer: the Lightning trainer.
            pl_module: the LightningModule being trained.
        """
        if trainer.is_global_zero:
            self.monitor.close(self.close_timeout)
