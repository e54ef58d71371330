"""Model input: uint8 images -> float tensors, resized, repeated to RGB and normalised."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["preprocess", "to_float_tensor"]


def to_float_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W[,C]) -> float32 torch tensor (N,C,H,W) in [0, 1].

    Args:
        images: uint8 array (N, H, W) (one channel) or (N, H, W, C).

    Returns:
        The float32 (N, C, H, W) tensor, divided by 255.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    else:
        x = x.permute(0, 3, 1, 2)
    return x.float().div_(255.0)


def preprocess(x: torch.Tensor, *, image_size: int | None = None, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, channels: int | None = None) -> torch.Tensor:
    """Float (N, C, H, W) in [0, 1] -> the model's input.

    Grey repeated to ``channels``, resized to ``image_size`` (bilinear, antialiased),
    normalised by ``mean``/``std``. Each step only when asked: by default images are fed at
    native size in [0, 1].

    Args:
        x: float (N, C, H, W) tensor in [0, 1].
        image_size: side of the square input the model expects; None keeps the size.
        mean: per-channel (or one) mean to subtract; None with ``std`` None skips normalising.
        std: per-channel (or one) std to divide by.
        channels: channels the model expects (1 -> N repeats grey); None keeps them.

    Returns:
        The float (N, channels, image_size, image_size) tensor.

    Raises:
        ValueError: ``channels`` asks to convert images that are not grey, or ``mean``/``std``
            have neither 1 nor C values.
    """
    import torch
    import torch.nn.functional as F

    if channels is not None and x.shape[1] != channels:
        if x.shape[1] != 1:
            raise ValueError(f"data.channels={channels} but the images have {x.shape[1]} channels; only 1 -> N is supported.")
        x = x.expand(-1, channels, -1, -1)
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    if mean is not None or std is not None:
        m = torch.as_tensor(mean if mean is not None else (0.0,), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        s = torch.as_tensor(std if std is not None else (1.0,), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        if m.shape[1] not in (1, x.shape[1]) or s.shape[1] not in (1, x.shape[1]):
            raise ValueError(f"data.mean/std need 1 or {x.shape[1]} values; got {mean} and {std}.")
        x = (x - m) / s
    return x
