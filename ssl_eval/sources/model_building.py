"""A loaded checkpoint built into its model.

The architecture chosen (the family's configuration, else the checkpoint's own ``arch`` entry within
``ssl_eval.config.arch_policy``'s rule), the weights loaded strictly (every key listed when they do
not fit), NaN or inf weights refused, and the projector appended for ``layer = "projector"``.

:mod:`ssl_eval.sources.loading` reads the file into the :class:`LoadedCheckpoint` used here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ssl_eval.config import FamilyConfig
from ssl_eval.config.arch_policy import refusal, store_may_name
from ssl_eval.sources.loading import CheckpointError, LoadedCheckpoint
from ssl_eval.sources.models import build_backbone, build_on_meta, mlp_from_state_dict
from ssl_eval.sources.tensor_checks import storage_bytes
from ssl_eval.sources.token_pooling import TokenPooled, pooled

__all__ = ["ProjectedBackbone", "resolve_arch", "build_model", "pool_of"]


# lightly's examples wrap a torchvision ResNet as nn.Sequential(*list(resnet.children())[:-1]):
# keys "0.weight" (conv1), "1.*" (bn1), "4.*".."7.*" (layer1..4). Map them to torchvision names.
_SEQUENTIAL_RESNET = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _adapt_sequential_resnet(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    if not (hasattr(model, "layer1") and state and all(k.split(".", 1)[0].isdigit() for k in state)):
        return state
    heads = {k.split(".", 1)[0] for k in state}
    if not heads <= set(_SEQUENTIAL_RESNET):
        return state
    return {f"{_SEQUENTIAL_RESNET[k.split('.', 1)[0]]}.{k.split('.', 1)[1]}": v for k, v in state.items()}


def _fit_report(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """Missing keys, unexpected keys and shape mismatches of ``state`` against ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, mismatched


def _first(items: list[str], n: int = 10) -> str:
    return f"{items[:n]}{f' ... ({len(items)} in all)' if len(items) > n else ''}"


class ProjectedBackbone(nn.Module):
    """Backbone followed by its projection head: embeds the projector's output."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The projector's output for a batch of images.

        Args:
            x: float (N, C, H, W) tensor.

        Returns:
            (N, projector output dimension) features.
        """
        return self.projector(self.backbone(x).flatten(1))


def resolve_arch(loaded: LoadedCheckpoint, family: FamilyConfig, allowed_modules: tuple[str, ...], path: str | Path) -> tuple[str, str]:
    """The architecture to build and who named it (``"config"`` or ``"checkpoint"``).

    A checkpoint's own ``arch`` entry is store content: only built-in names, ``timm:<name>``,
    and import paths of modules the operator allowed (``ssl_eval.config.arch_policy``).

    Args:
        loaded: the loaded checkpoint (its ``meta["arch"]``).
        family: the family's configuration (``arch`` wins when set).
        allowed_modules: modules the operator allowed import paths from.
        path: the file's (redacted) name for messages.

    Returns:
        (architecture name, ``"config"`` or ``"checkpoint"``).

    Raises:
        CheckpointError: no architecture is named, or the checkpoint names one it may not.
    """
    if family.arch:
        return family.arch, "config"
    arch = loaded.meta.get("arch")
    if not arch:
        raise CheckpointError(f"{path}: the checkpoint has no 'arch' key; set families.<family>.arch in ssl_eval.toml.")
    if not store_may_name(str(arch), allowed_modules):
        raise CheckpointError(f"{path}: {refusal(str(arch), 'its own arch entry')}")
    return str(arch), "checkpoint"


def _on_meta(arch: str, family: FamilyConfig, in_channels: int) -> nn.Module | None:
    """The architecture built on the meta device (shapes only, nothing allocated).

    None when it cannot be built there (an operator-allowed factory that needs real tensors).

    Returns:
        The shape-only model, or None.

    Raises:
        ValueError: the architecture is wrong whatever the device (an unknown name).
        TypeError: the same (arguments the factory does not take).
        ImportError: the same (a module that cannot be imported).
    """
    try:
        return build_on_meta(arch, in_channels=in_channels, arch_args=family.arch_args)
    except (ValueError, TypeError, ImportError):
        raise
    except Exception:  # noqa: BLE001 - a factory's own code, run on meta tensors
        return None


def _check_size_before_building(arch: str, shape_only: nn.Module, loaded: LoadedCheckpoint, path: str | Path) -> None:
    """Refuse a model (and projector) far bigger than the storage bytes the file holds.

    Shapes can claim what storage does not hold (shared or expanded storages), so the file's
    distinct storages are what count.

    Raises:
        CheckpointError: the architecture holds far more parameters than the file's storages.
    """
    wanted = sum(t.numel() * t.element_size() for t in shape_only.state_dict().values())
    wanted += sum(t.numel() * t.element_size() for t in loaded.projector.values())
    held = storage_bytes([*loaded.state_dict.values(), *loaded.projector.values()])
    if wanted > 2 * held + (4 << 20):
        parameters = sum(p.numel() for p in shape_only.parameters())
        raise CheckpointError(
            f"{path}: architecture {arch!r} has {parameters:,} parameters but the file holds {held:,} bytes of weights "
            f"(the model needs {wanted:,}); refused before building it. Check families.<family>.arch (and arch_args) in "
            "ssl_eval.toml, or re-save the checkpoint from the model's own state_dict()."
        )


def build_model(
    loaded: LoadedCheckpoint, family: FamilyConfig, *, in_channels: int, path: str | Path, allowed_modules: tuple[str, ...] = (),
    check: Callable[[nn.Module, str], None] | None = None,
) -> nn.Module:
    """Build the family's architecture and load the backbone weights strictly.

    The architecture is ``families.<family>.arch``, else the checkpoint's ``arch`` entry within
    :func:`resolve_arch`'s rule, built with its ``arch_args``; the projector is loaded too for
    ``layer = "projector"``. A Vision Transformer is read at ``family.pool`` (``TokenPooled``).

    Args:
        loaded: the loaded checkpoint.
        family: the family's configuration.
        in_channels: image channels of the data set.
        path: the file's (redacted) name for messages.
        allowed_modules: modules the operator allowed import paths from.
        check: called with the architecture built on the meta device and its name before it is
            built for real (``ssl_eval.pipeline.budget``'s memory estimate); a ValueError it raises refuses it.

    Returns:
        The model in eval mode, mapping images to (N, D) features.

    Raises:
        CheckpointError: missing, unexpected or wrongly shaped keys (listed), NaN or inf
            weights, a refused or oversized architecture, or a projector that cannot be rebuilt.
        ValueError: the architecture cannot be built (see :func:`ssl_eval.sources.models.build_backbone`).
    """
    arch, named_by = resolve_arch(loaded, family, allowed_modules, path)
    shape_only = _on_meta(arch, family, in_channels)
    if shape_only is not None and named_by == "checkpoint":  # the size first: the file chose the model
        _check_size_before_building(arch, shape_only, loaded, path)
    model = shape_only if shape_only is not None else build_backbone(arch, in_channels=in_channels, arch_args=family.arch_args)
    state = _adapt_sequential_resnet(loaded.state_dict, model)
    missing, unexpected, mismatched = _fit_report(model, state)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: weights do not fit architecture {arch!r} (prefix {loaded.prefix!r}, {loaded.prefix_source}, "
            f"{in_channels} input channel(s)). missing keys: {_first(missing)}; unexpected keys: {_first(unexpected)}"
            f"{f'; shape mismatches: {_first(mismatched, 5)}' if mismatched else ''}. "
            "Check families.<family>.arch and prefix in ssl_eval.toml."
        )
    if shape_only is not None:
        _check_size_before_building(arch, shape_only, loaded, path)
        try:
            if check is not None:
                check(shape_only, arch)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        model = build_backbone(arch, in_channels=in_channels, arch_args=family.arch_args)
    _check_values({**loaded.state_dict, **loaded.projector}, path)
    model.load_state_dict(state, strict=True)
    model = pooled(model, family.pool, arch)
    if family.layer == "projector":
        try:
            projector = mlp_from_state_dict(loaded.projector)
        except ValueError as exc:
            raise CheckpointError(f"{path}: projector under {loaded.projector_prefix!r}: {exc}") from None
        model = ProjectedBackbone(model, projector)
    return model.eval()


def _check_values(weights: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse complex weights and NaN or inf ones.

    Every architecture's weights are real: loading would drop the imaginary part, and a complex NaN
    would pass the NaN check.

    Raises:
        CheckpointError: a weight is complex, or holds NaN or inf.
    """
    for name, tensor in weights.items():
        if tensor.is_complex():
            raise CheckpointError(
                f"{path}: weight {name!r} is complex ({str(tensor.dtype).removeprefix('torch.')}) where the architecture "
                "expects real numbers; re-save the checkpoint with real-valued weights."
            )
        # A NaN or inf makes the sum non-finite; only then run the exact (slower) check,
        # which also clears a sum that merely overflowed.
        if tensor.is_floating_point() and not torch.isfinite(tensor.sum()) and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weight {name!r} holds NaN or inf; the training run diverged at this checkpoint.")


def pool_of(model: nn.Module) -> str | None:
    """The token a built model is read at.

    Args:
        model: a model of :func:`build_model`.

    Returns:
        ``"cls"`` or ``"mean"``, None for a model without tokens (a CNN).
    """
    return next((m.pool for m in model.modules() if isinstance(m, TokenPooled)), None)
