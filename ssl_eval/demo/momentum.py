"""The demo's momentum-teacher methods: MoCo-v2, BYOL and DINO (lightly's heads and losses).

Each keeps an exponential moving average of its backbone and projection head
(``backbone_momentum``, ``projection_head_momentum``, the key prefixes of lightly's examples),
updated after every optimiser step by :func:`update_momentum_encoder`. The other methods and
the registry are :mod:`ssl_eval.demo.methods`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["BYOL", "DINO", "MoCoV2", "frozen_copy", "update_momentum_encoder"]


def frozen_copy(module: nn.Module) -> nn.Module:
    """A momentum copy of ``module``: a deep copy that no gradient reaches.

    Args:
        module: the online network.

    Returns:
        Its copy, ``requires_grad`` off (lightly's ``deactivate_requires_grad``).
    """
    from lightly.models.utils import deactivate_requires_grad

    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


def update_momentum_encoder(model: nn.Module, progress: float) -> None:
    """EMA of the online backbone and projection head into their momentum copies.

    The momentum rises from ``model.momentum`` to 1 on a cosine schedule over training.

    Args:
        model: a momentum-teacher method (``backbone``, ``projection_head`` and their momentum copies).
        progress: fraction of training done, in [0, 1].
    """
    from lightly.models.utils import update_momentum
    from lightly.utils.scheduler import cosine_schedule

    m = cosine_schedule(int(progress * 1000), 1000, model.momentum, 1.0)
    update_momentum(model.backbone, model.backbone_momentum, m=m)
    update_momentum(model.projection_head, model.projection_head_momentum, m=m)


class MoCoV2(nn.Module):
    """MoCo-v2: query encoder, momentum key encoder, a queue of negative keys.

    The queue is lightly's memory bank inside ``NTXentLoss(memory_bank_size=(K, dim))``,
    as lightly's MoCo example does; momentum rises from 0.99 to 1 on a cosine schedule.
    The queue must be much smaller than the training set: with 4,096 keys and 5,000
    images the queue held each image's own older key as a "negative", the loss rose
    and the probe barely moved (0.928 -> 0.939). 1,024 keys, temperature 0.1 and a
    learning rate of 0.1 gave 0.928 -> 0.957 on 5,000 MNIST digits in 8 epochs (a
    probe on other splits than the pipeline's; see LEARNING_RATES for those).
    """

    temperature = 0.1
    queue_size = 1024
    momentum = 0.99

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        from lightly.loss import NTXentLoss
        from lightly.models.modules import MoCoProjectionHead

        self.backbone = backbone
        self.projection_head = MoCoProjectionHead(feature_dim, 256, 64)
        self.backbone_momentum = frozen_copy(self.backbone)
        self.projection_head_momentum = frozen_copy(self.projection_head)
        self.criterion = NTXentLoss(temperature=self.temperature, memory_bank_size=(self.queue_size, 64))

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        q = self.projection_head(self.backbone(x0))
        with torch.no_grad():
            k = self.projection_head_momentum(self.backbone_momentum(x1))
        return self.criterion(q, k)

    def after_step(self, progress: float) -> None:
        """The momentum update after the optimiser step (momentum from its base to 1, cosine schedule).

        Args:
            progress: fraction of training done, in [0, 1].
        """
        update_momentum_encoder(self, progress)


class BYOL(nn.Module):
    """BYOL: online projection + prediction, momentum target encoder, symmetric negative cosine."""

    momentum = 0.99

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

        self.backbone = backbone
        self.projection_head = BYOLProjectionHead(feature_dim, 256, 128)
        self.prediction_head = BYOLPredictionHead(128, 256, 128)
        self.backbone_momentum = frozen_copy(self.backbone)
        self.projection_head_momentum = frozen_copy(self.projection_head)
        self.criterion = NegativeCosineSimilarity()

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        p0 = self.prediction_head(self.projection_head(self.backbone(x0)))
        p1 = self.prediction_head(self.projection_head(self.backbone(x1)))
        with torch.no_grad():
            z0 = self.projection_head_momentum(self.backbone_momentum(x0))
            z1 = self.projection_head_momentum(self.backbone_momentum(x1))
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def after_step(self, progress: float) -> None:
        """The momentum update after the optimiser step (momentum from its base to 1, cosine schedule).

        Args:
            progress: fraction of training done, in [0, 1].
        """
        update_momentum_encoder(self, progress)


class DINO(nn.Module):
    """DINO: a momentum teacher, a centred and sharpened softmax target, cross-entropy.

    Two global views only (no multi-crop: the demo's 28 x 28 digits leave little to crop).
    The teacher's temperature (0.04) is sharper than the student's (0.1) and its outputs are
    centred by a running mean (lightly's ``DINOLoss``); the head is lightly's
    ``DINOProjectionHead`` with a small output (1,024 prototypes). DINO's probe can peak
    early and fall later as the prototypes sharpen, which is why the trajectory set has it.
    """

    momentum = 0.99
    output_dim = 1024

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        from lightly.loss import DINOLoss
        from lightly.models.modules import DINOProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        self.backbone = backbone
        self.projection_head = DINOProjectionHead(feature_dim, 256, 64, self.output_dim)
        self.backbone_momentum = frozen_copy(self.backbone)
        # weight_norm's computed weight cannot be deep-copied: build a twin and copy the state
        self.projection_head_momentum = DINOProjectionHead(feature_dim, 256, 64, self.output_dim)
        self.projection_head_momentum.load_state_dict(self.projection_head.state_dict())
        deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = DINOLoss(output_dim=self.output_dim, warmup_teacher_temp=0.04, teacher_temp=0.04,
                                  warmup_teacher_temp_epochs=1)

    def training_loss(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of two views (a scalar tensor to minimise).

        Args:
            x0: float (N, C, H, W) first views.
            x1: float (N, C, H, W) second views, row i the same image as in ``x0``.

        Returns:
            The scalar loss.
        """
        student = [self.projection_head(self.backbone(x)) for x in (x0, x1)]
        with torch.no_grad():
            teacher = [self.projection_head_momentum(self.backbone_momentum(x)) for x in (x0, x1)]
        return self.criterion(teacher, student)

    def after_step(self, progress: float) -> None:
        """The teacher's momentum update after the optimiser step.

        Args:
            progress: fraction of training done, in [0, 1].
        """
        update_momentum_encoder(self, progress)
