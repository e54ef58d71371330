"""Architecture registry: a name -> a backbone ``nn.Module`` mapping images to (N, D) features.

Names: ``democnn`` (the demo store's small CNN), torchvision ResNets ``resnet18|34|50``
with a ``-cifar`` variant (3x3 stem, no max-pool, for 28-32 px images), and any import
path ``package.module:factory`` whose factory takes ``in_channels`` and returns a module.

:func:`mlp_from_state_dict` rebuilds a projection head (lightly's ``ProjectionHead``,
solo-learn's ``projector``, the MoCo-v2 reference repo's ``fc`` MLP) from its weights alone.
"""

from __future__ import annotations

import importlib
import re
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


def mlp_from_state_dict(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """A projection MLP rebuilt from its weights: ``Linear [BatchNorm1d] (ReLU Linear [BatchNorm1d])*``.

    Modules are the key groups (``layers.0.weight`` -> module ``layers.0``) in the order of
    their last index. A 2-d ``weight`` is a ``Linear`` (bias if the key exists); a group with
    ``running_mean`` is a ``BatchNorm1d`` (affine if it has ``weight``). The weights do not
    say which non-linearity sat between the blocks: a ReLU goes before every Linear but the
    first, as in SimCLR, MoCo-v2, SimSiam, BYOL and solo-learn heads. The weights are loaded.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        groups.setdefault(module, {})[param] = tensor

    def order(module: str) -> int:
        found = re.search(r"(\d+)$", module)
        if found is None:
            raise ValueError(f"cannot order projector module {module!r}: expected names ending in an index (layers.0, 0, ...).")
        return int(found.group(1))

    layers: list[nn.Module] = []
    for name in sorted(groups, key=order):
        params = groups[name]
        if "running_mean" in params:
            features = int(params["running_mean"].shape[0])
            layer: nn.Module = nn.BatchNorm1d(features, affine="weight" in params)
        elif "weight" in params and params["weight"].ndim == 2:
            if layers:
                layers.append(nn.ReLU(inplace=True))
            out_features, in_features = params["weight"].shape
            layer = nn.Linear(int(in_features), int(out_features), bias="bias" in params)
        else:
            raise ValueError(f"module {name!r} with {sorted(params)} is neither Linear nor BatchNorm1d.")
        layer.load_state_dict(params, strict=True)
        layers.append(layer)
    if not layers:
        raise ValueError("no projector weights.")
    return nn.Sequential(*layers)
