"""The demo's SSL methods as small ``nn.Module``s built from lightly's heads and losses.

Each module has a ``backbone`` and heads under the attribute names lightly's examples use
(``projection_head``, ``prediction_head``, ``backbone_momentum``, ...), so its
``state_dict()`` has the same key prefixes as a Lightning checkpoint of those examples:
``backbone.features.0.weight``, ``projection_head.layers.0.weight``, ...

``training_loss(x0, x1)`` returns the loss of one batch of two views; ``after_step(progress)``
runs after the optimiser step (the momentum update of MoCo), ``progress`` in [0, 1].
Hyper-parameters were tuned for the 128-d DemoCNN on 5,000 MNIST digits (see train.py). The
momentum-teacher methods (MoCo-v2, BYOL, DINO) are in :mod:`ssl_eval.demo.momentum`.
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_eval.demo.momentum import BYOL, DINO, MoCoV2

METHODS = ("simclr", "mocov2", "simsiam", "byol", "barlowtwins", "vicreg", "dino")
"""Every method the demo trains; the default store trains the first three (the paper's)."""
PAPER_METHODS = ("simclr", "mocov2", "simsiam")


class SimCLR(nn.Module):
    """SimCLR: projection head + NT-Xent over the other images of the batch."""

    temperature = 0.5

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = backbone
        self.projection_head = SimCLRProjectionHead(feature_dim, 256, 64)
        self.criterion = NTXentLoss(temperature=self.temperature)

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        z0 = self.projection_head(self.backbone(x0))
        z1 = self.projection_head(self.backbone(x1))
        return self.criterion(z0, z1)

    def after_step(self, progress: float) -> None:
        """Nothing to update after the optimiser step (no momentum encoder).

        Args:
            progress: fraction of training done, in [0, 1].
        """
        pass


class SimSiam(nn.Module):
    """SimSiam: projection + prediction head, symmetric negative cosine, stop-gradient."""

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead

        self.backbone = backbone
        self.projection_head = SimSiamProjectionHead(feature_dim, 256, 128)
        self.prediction_head = SimSiamPredictionHead(128, 64, 128)
        self.criterion = NegativeCosineSimilarity()

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        z0 = self.projection_head(self.backbone(x0))
        z1 = self.projection_head(self.backbone(x1))
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        return 0.5 * (self.criterion(p0, z1.detach()) + self.criterion(p1, z0.detach()))

    def after_step(self, progress: float) -> None:
        """Nothing to update after the optimiser step (no momentum encoder).

        Args:
            progress: fraction of training done, in [0, 1].
        """
        pass


class _TwoViewRedundancy(nn.Module):
    """A projection head and a loss over the two views' projections, without momentum encoder or predictor.

    Barlow Twins and VICReg differ only in the head and the loss they name.
    """

    def __init__(self, backbone: nn.Module, projection_head: nn.Module, criterion: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = projection_head
        self.criterion = criterion

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        return self.criterion(self.projection_head(self.backbone(x0)), self.projection_head(self.backbone(x1)))

    def after_step(self, progress: float) -> None:
        """Nothing to update after the optimiser step (no momentum encoder).

        Args:
            progress: fraction of training done, in [0, 1].
        """


class BarlowTwins(_TwoViewRedundancy):
    """Barlow Twins: projection head, cross-correlation of the two views pushed to identity."""

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        from lightly.loss import BarlowTwinsLoss
        from lightly.models.modules import BarlowTwinsProjectionHead

        super().__init__(backbone, BarlowTwinsProjectionHead(feature_dim, 512, 512), BarlowTwinsLoss())


class VICReg(_TwoViewRedundancy):
    """VICReg: projection head, invariance + variance + covariance terms."""

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        from lightly.loss import VICRegLoss
        from lightly.models.modules.heads import VICRegProjectionHead

        super().__init__(backbone, VICRegProjectionHead(feature_dim, 512, 512), VICRegLoss())


def build_method(method: str, backbone: nn.Module, feature_dim: int) -> nn.Module:
    """The SSL module for ``method`` around ``backbone``.

    Args:
        method: one of :data:`METHODS`.
        backbone: the encoder to train.
        feature_dim: the backbone's output dimension (the heads' input).

    Returns:
        The method's ``nn.Module`` (``training_loss``, ``after_step``).

    Raises:
        ValueError: ``method`` is not one of :data:`METHODS`.
    """
    classes = {
        "simclr": SimCLR, "mocov2": MoCoV2, "simsiam": SimSiam,
        "byol": BYOL, "barlowtwins": BarlowTwins, "vicreg": VICReg, "dino": DINO,
    }
    if method not in classes:
        raise ValueError(f"unknown SSL method {method!r}; choose from {list(METHODS)}.")
    return classes[method](backbone, feature_dim)


# Optimiser settings per method: SGD with momentum 0.9 and a cosine learning-rate decay,
# learning rate for batch 256 (scaled linearly with the batch size).
# Measured on 2 cores, 5,000 MNIST digits, 8 epochs, probe as the pipeline does it
# (eval_splits seed 0; epoch 0 = 0.925):
#   SimCLR batch 256 lr 0.3 -> 0.953; batch 128 lr 0.15 -> 0.9625, lr 0.3 -> 0.9605
#   (temperature 0.2 / 0.3 and AdamW were no better);
#   MoCo-v2 batch 256 lr 0.1 -> 0.951; batch 128 lr 0.05 -> 0.9525, lr 0.2 -> 0.951
#   (lr 0.3 with a 4,096 queue: 0.93-0.94). SimSiam batch 256 lr 0.05 -> 0.9345.
LEARNING_RATES = {
    "simclr": 0.15, "mocov2": 0.1, "simsiam": 0.05,
    "byol": 0.1, "barlowtwins": 0.02, "vicreg": 0.02, "dino": 0.05,
}
WEIGHT_DECAY = 5e-4
