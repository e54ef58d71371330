"""Architecture registry: a name -> a backbone ``nn.Module`` mapping images to (N, D) features.

Names: ``democnn`` (the demo store's small CNN), torchvision ResNets ``resnet18|34|50``
with a ``-cifar`` variant (3x3 stem, no max-pool, for 28-32 px images), and any import
path ``package.module:factory`` whose factory takes ``in_channels`` and returns a module.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch
from torch import nn


class DemoCNN(nn.Module):
    """Three conv blocks (32/64/128 channels), global average pool -> 128-d features.

    Small enough to train with SSL on 2 CPU cores in seconds an epoch on 28x28 images.
    """

    feature_dim = 128

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


def _resnet(depth: int, cifar: bool) -> Callable[..., nn.Module]:
    def build(in_channels: int = 3) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        if cifar:
            model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        elif in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        model.feature_dim = model.fc.in_features
        model.fc = nn.Identity()
        return model

    return build


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"democnn": DemoCNN}
for _depth in (18, 34, 50):
    ARCHITECTURES[f"resnet{_depth}"] = _resnet(_depth, cifar=False)
    ARCHITECTURES[f"resnet{_depth}-cifar"] = _resnet(_depth, cifar=True)


def build_backbone(arch: str, *, in_channels: int) -> nn.Module:
    """Build an untrained backbone by registry name or ``package.module:factory``."""
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch](in_channels=in_channels)
    if ":" in arch:
        module_name, _, attr = arch.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"architecture {arch!r}: cannot import {attr!r} from {module_name!r} ({exc}).") from exc
        return factory(in_channels=in_channels)
    raise ValueError(
        f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)} "
        "or give an import path 'package.module:factory'."
    )
