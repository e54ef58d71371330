"""The memory one checkpoint's embedding asks for, estimated before anything is allocated.

Sizes from the store (``image_size``, ``batch_size``, ``n_views``, an architecture and its
``arch_args``) could ask for any amount of memory. :func:`estimate` adds up, for one
checkpoint: the model's weights (counted on the meta device: nothing is built for real),
a batch's float input at the model's input size, a batch's activations (the largest
tensor a module returns, three times over, plus attention matrices, measured by a forward
pass on the meta device), and the images and embeddings held. :func:`check_memory` refuses
an estimate over ``[limits] memory_gb``, with the estimate and how to raise the budget. When the
weights alone are over the budget the forward pass is skipped (on a deep model it costs seconds
of CPU, and a store's file chooses the depth): the refusal then gives what is at least needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssl_eval.config import Config
from ssl_eval.sources.splits import EvalSplits

if TYPE_CHECKING:  # torch is imported where a model is measured: the data-only check needs none
    from torch import nn

__all__ = ["Estimate", "check_memory", "estimate", "held_images", "memory_check", "warm_meta_kernels"]

_RAISE = "--memory-gb N (or SSL_EVAL_MEMORY_GB, or [limits] memory_gb in a file passed with --config)"
_ROUGH_ACTIVATION = 64  # per input value, when the model cannot run on the meta device


@dataclass(frozen=True)
class Estimate:
    """Bytes per part of one checkpoint's embedding."""

    parts: dict[str, int]
    complete: bool = True  # False: the activations were not estimated (the weights alone are over the budget)

    @property
    def total(self) -> int:
        """The sum of the parts."""
        return sum(self.parts.values())

    def describe(self) -> str:
        """The parts in words.

        Returns:
            ``"<part> X.XX GiB, ..."``, largest first.
        """
        return ", ".join(f"{name} {size / (1 << 30):.2f} GiB" for name, size in sorted(self.parts.items(), key=lambda p: -p[1]))


def held_images(splits: EvalSplits, n_views: int) -> int:
    """Images one process holds for a run: every split and the two augmented views.

    Args:
        splits: the evaluation splits.
        n_views: ``data.n_views``.

    Returns:
        The number of images.
    """
    return len(splits.eval) + len(splits.probe_train) + len(splits.probe_test) + 2 * min(n_views, len(splits.eval))


def _activations(model: nn.Module, shape: tuple[int, int, int]) -> tuple[int, int] | None:
    """Activation bytes per image and output width, from a forward pass on the meta device.

    None when the model does not run there (or not at this input size).

    Returns:
        ``(activation bytes per image, output width)``, or None.
    """
    import torch

    largest = attention = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest, attention
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                largest = max(largest, tensor.numel())
        heads, x = getattr(module, "num_heads", None), inputs[0] if inputs else None
        if isinstance(heads, int) and isinstance(x, torch.Tensor) and x.ndim == 3:
            attention = max(attention, heads * int(x.shape[1]) ** 2)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            out = model(torch.empty((1, *shape), device="meta"))
    except Exception:  # noqa: BLE001 - any model code, run on meta tensors at a size it may not take
        return None
    finally:
        for handle in handles:
            handle.remove()
    width = int(out.reshape(1, -1).shape[1]) if isinstance(out, torch.Tensor) else 0
    return 4 * (3 * largest + 2 * attention), width


def warm_meta_kernels() -> None:
    """Run the meta device's kernels once, so that their first use is not in a task.

    The first operation on meta tensors imports torch's shape functions and decompositions
    (about 900 modules: 1.5 to 2 s of CPU on this project's build machine). The memory estimate
    of every checkpoint runs its model there (:func:`_activations`); without this, the first
    embed tasks pay for those imports, each task thread waiting on the same import locks. A tiny
    model with the layers that pull them in (convolution, batch and layer norm, GELU, pooling)
    runs through the same function.
    """
    from torch import nn

    from ssl_eval.sources.models import on_meta_device

    with on_meta_device():
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.GELU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1),
                              nn.Flatten(), nn.LayerNorm(4))
    _activations(model.eval(), (1, 8, 8))


def estimate(config: Config, model: nn.Module | None, *, image_shape: tuple[int, ...], n_images: int,
             budget: int | None = None) -> Estimate:
    """The memory of one checkpoint's embedding under ``config``.

    Args:
        config: the run's configuration (its ``data``).
        model: the architecture on the meta device (:func:`ssl_eval.sources.models.build_on_meta`); None: not known yet (a checkpoint names it).
        image_shape: one stored image's shape, (H, W) or (H, W, C).
        n_images: images held (every split and the augmented views).
        budget: bytes; when the model's weights alone exceed it, the activations are not
            estimated (the estimate is then incomplete: a lower bound).

    Returns:
        The :class:`Estimate`.
    """
    data = config.data
    height, width = image_shape[:2]
    channels = data.channels or (image_shape[2] if len(image_shape) > 2 else 1)
    side = (data.image_size, data.image_size) if data.image_size else (height, width)
    input_values = channels * side[0] * side[1]
    parts = {
        "images held": n_images * math.prod(image_shape),
        "a batch's input": data.batch_size * input_values * 4 * 2,  # float input, and a resized or normalised copy
    }
    if model is not None:
        parts["model weights"] = 2 * sum(t.numel() * t.element_size() for t in model.state_dict().values())  # file + model
        if budget is not None and parts["model weights"] > budget:
            return Estimate(parts, complete=False)
        measured = _activations(model, (channels, *side))
        per_image, features = measured if measured else (4 * _ROUGH_ACTIVATION * input_values, 0)
        parts["a batch's activations" if measured else "a batch's activations (rough)"] = data.batch_size * per_image
        parts["embeddings"] = n_images * features * 4
    return Estimate(parts)


def check_memory(config: Config, model: nn.Module | None, *, image_shape: tuple[int, ...], n_images: int, what: str) -> Estimate:
    """Refuse a configuration whose :func:`estimate` exceeds ``config.limits.memory_gb``.

    Args:
        config: the run's configuration.
        model: the architecture on the meta device, or None.
        image_shape: one stored image's shape.
        n_images: images held.
        what: what is estimated, for the message (``families.vit.arch 'timm:vit_small_patch16_224'``).

    Returns:
        The estimate (within the budget).

    Raises:
        ValueError: over the budget: the estimate's parts, what to lower, and how to raise the budget.
    """
    budget = config.limits.memory_bytes
    found = estimate(config, model, image_shape=image_shape, n_images=n_images, budget=budget)
    if found.total > budget:
        needs = "about" if found.complete else "at least"
        raise ValueError(
            f"{what} with data.batch_size = {config.data.batch_size}, image_size = {config.data.image_size}: embedding one "
            f"checkpoint needs {needs} {found.total / (1 << 30):,.2f} GiB ({found.describe()}), more than the memory budget of "
            f"{config.limits.memory_gb:g} GiB. Lower data.batch_size, data.image_size or the model's arch_args, or raise the "
            f"budget with {_RAISE}."
        )
    return found


def memory_check(config: Config, splits: EvalSplits) -> Callable[[nn.Module, str], None]:
    """The embedding's memory estimate, the check that ``build_model`` runs before building the model.

    :func:`~ssl_eval.sources.model_building.build_model` runs it on the architecture, on the meta
    device.

    Returns:
        The check, called with the model built on the meta device and the checkpoint's path.
    """
    shape, n_images = tuple(splits.eval.images.shape[1:]), held_images(splits, config.data.n_views)

    def check(model: nn.Module, arch: str) -> None:
        check_memory(config, model, image_shape=shape, n_images=n_images, what=f"architecture {arch!r}")

    return check
