"""Batched, per-sample random augmentations for small images, as tensor ops.

Used twice: by the demo trainers (two views per training batch) and by the embedding step,
which embeds two fixed, seeded views of the first ``data.n_views`` evaluation images for
the view-based metrics (alignment, LiDAR). The same views serve every checkpoint.

Choices, for 28x28 digits (MNIST) and 8x8 digits (scikit-learn) on a CPU:

* One random affine map per sample, applied to the whole batch at once with
  ``F.affine_grid`` + ``F.grid_sample`` (bilinear, zero padding = black background, as the
  digits have). torchvision's transforms would draw one set of parameters per call, so a
  batch would share the same crop; a per-sample matrix is honest and one fast kernel.
  The map combines
  - a random resized crop: crop area a fraction ``scale`` of the image (0.35..1), aspect
    ratio 3/4..4/3, crop centre anywhere the crop stays inside the image; the crop is the
    main SSL augmentation (SimCLR paper) and on digits it teaches invariance to position,
    size and stroke thickness;
  - a rotation of up to +-15 degrees and a small extra shift: digits are upright, larger
    rotations would turn a 6 into a 9.
* No colour jitter or grayscale conversion: one channel has no colour. Instead a random
  intensity scale (0.6..1) plays the part of brightness jitter.
* Light random erasing (probability 0.25, 2-12 % of the area): occlusion makes the model
  use the whole digit, not one stroke.
* No horizontal flip: mirrored digits are other shapes (or no digit at all).

Every random number comes from the ``torch.Generator`` passed in. The same maps apply to
colour images (every channel alike); the defaults were chosen for digits and are kept for
natural images too, so that view-based metrics mean the same across data sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of :func:`random_views`; the defaults suit digits."""

    crop_scale: tuple[float, float] = (0.35, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    max_rotation_deg: float = 15.0
    max_extra_shift: float = 0.1  # in normalised coordinates ([-1, 1] spans the image)
    intensity: tuple[float, float] = (0.6, 1.0)
    erase_prob: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.12)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_views(
    x: torch.Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """One random view of each image in ``x``: crop, rotation, shift, intensity and light erasing.

    Args:
        x: float (N, C, H, W) tensor in [0, 1].
        generator: the source of every random number.
        config: the augmentations' strength.

    Returns:
        A float (N, C, H, W) tensor in [0, 1] (a new tensor; ``x`` is not changed).

    Raises:
        ValueError: ``x`` is not a 4-D float tensor.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float tensor (N, C, H, W); got {x.dtype} with shape {tuple(x.shape)}.")
    n, _, h, w = x.shape
    theta = _crop_rotate_shift(n, config, generator).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Intensity scale per sample (brightness jitter for one channel).
    out = out * _uniform(n, *config.intensity, generator).to(x.dtype).view(n, 1, 1, 1)
    if config.erase_prob > 0:
        out = out.masked_fill(_erased(n, h, w, config, generator).unsqueeze(1), 0.0)
    return out.clamp_(0.0, 1.0)


def _crop_rotate_shift(n: int, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Draw the affine sampling matrices of a random resized crop (as a zoom), rotation and shift.

    A crop of area fraction ``area`` and aspect ratio ``r`` covers sx x sy of the normalised
    image; the sampling grid is the output grid scaled by (sx, sy), rotated, and moved to the
    crop centre.

    Returns:
        The (n, 2, 3) matrices.
    """
    area = _uniform(n, *config.crop_scale, g)
    log_ratio = _uniform(n, math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]), g)
    ratio = torch.exp(log_ratio)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (1.0 - sx) * (2 * torch.rand(n, generator=g) - 1)
    ty = (1.0 - sy) * (2 * torch.rand(n, generator=g) - 1)
    tx = tx + config.max_extra_shift * (2 * torch.rand(n, generator=g) - 1)
    ty = ty + config.max_extra_shift * (2 * torch.rand(n, generator=g) - 1)
    angle = torch.deg2rad(_uniform(n, -config.max_rotation_deg, config.max_rotation_deg, g))
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack(
        [
            torch.stack([cos * sx, -sin * sy, tx], dim=1),
            torch.stack([sin * sx, cos * sy, ty], dim=1),
        ],
        dim=1,
    )


def _erased(n: int, h: int, w: int, config: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Light random erasing: a (n, h, w) mask, a random rectangle in a random subset of the images."""
    erase = torch.rand(n, generator=g) < config.erase_prob
    e_area = _uniform(n, *config.erase_area, g) * h * w
    e_ratio = torch.exp(_uniform(n, math.log(0.5), math.log(2.0), g))
    eh = torch.sqrt(e_area * e_ratio).clamp(1, h)
    ew = torch.sqrt(e_area / e_ratio).clamp(1, w)
    top = torch.rand(n, generator=g) * (h - eh)
    left = torch.rand(n, generator=g) * (w - ew)
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    inside = (
        (rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1))
    )
    return inside & erase.view(n, 1, 1)


def fixed_views(images: np.ndarray, n_views: int, *, random_state: int,
                config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Two augmented views of the first ``n_views`` images, drawn from ``random_state`` alone.

    The same seed gives the same views, so every checkpoint is measured on the same ones.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C) array.
        n_views: number of images to take from the start (fewer when ``images`` holds fewer).
        random_state: seed of the augmentations.
        config: the augmentations' strength.

    Returns:
        (view1, view2): uint8 arrays laid out as ``images``, min(n_views, N) images each.
    """
    import numpy as np

    from ssl_eval.sources.preprocess import to_float_tensor

    part = images[: min(n_views, len(images))]
    x = to_float_tensor(part)
    generator = torch.Generator().manual_seed(random_state)
    views = []
    for _ in range(2):
        v = random_views(x, generator, config).mul_(255.0).round_().to(torch.uint8)
        v = v[:, 0] if part.ndim == 3 else v.permute(0, 2, 3, 1)
        views.append(np.ascontiguousarray(v.numpy()))
    return views[0], views[1]
