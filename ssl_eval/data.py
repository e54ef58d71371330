"""Evaluation data: fixed, seeded splits of a data set and the tensors fed to a model.

Splits used by evaluation are fixed by a seed (:func:`eval_splits`) and recorded with the
embeddings, so every checkpoint is measured on exactly the same images. The data sets
themselves are read by :mod:`ssl_eval.datasets`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

_log = logging.getLogger(__name__)

from ssl_eval.datasets import DATASETS, ImageArrays, Split, load_split

__all__ = ["DATASETS", "EvalSplits", "ImageArrays", "Split", "eval_splits", "load_split", "preprocess", "to_float_tensor"]


@dataclass(frozen=True)
class EvalSplits:
    """The three image sets every checkpoint is embedded on, with their source indices."""

    eval: ImageArrays
    probe_train: ImageArrays
    probe_test: ImageArrays
    indices: dict[str, np.ndarray]


def eval_splits(
    name: str,
    *,
    n_eval: int,
    n_probe_train: int,
    n_probe_test: int,
    random_state: int,
    root: str | None = None,
    image_size: int | None = None,
) -> EvalSplits:
    """Fixed, seeded splits: ``eval`` and ``probe_test`` are disjoint parts of the test
    split; ``probe_train`` comes from the train split. Sizes are capped by what exists."""
    rng = np.random.default_rng(random_state)
    train = load_split(name, "train", root=root, image_size=image_size)
    test = load_split(name, "test", root=root, image_size=image_size)
    test_order = rng.permutation(len(test))
    asked = {"n_eval": n_eval, "n_probe_test": n_probe_test, "n_probe_train": n_probe_train}
    n_eval = min(n_eval, len(test) // 2)
    n_probe_test = min(n_probe_test, len(test) - n_eval)
    capped = {"n_eval": n_eval, "n_probe_test": n_probe_test, "n_probe_train": min(n_probe_train, len(train))}
    for key, size in capped.items():
        if size < asked[key]:  # once per process and data configuration: the splits are cached
            _log.warning("data.%s = %d is more than data set %r holds for it; using %d images "
                         "(recorded as %s in each checkpoint's provenance).", key, asked[key], name, size, key)
    index = {
        "eval": np.sort(test_order[:n_eval]),
        "probe_test": np.sort(test_order[n_eval : n_eval + n_probe_test]),
        "probe_train": np.sort(rng.permutation(len(train))[: min(n_probe_train, len(train))]),
    }
    return EvalSplits(
        eval=test.subset(index["eval"]),
        probe_train=train.subset(index["probe_train"]),
        probe_test=test.subset(index["probe_test"]),
        indices=index,
    )


def to_float_tensor(images: np.ndarray):
    """uint8 (N,H,W[,C]) -> float32 torch tensor (N,C,H,W) in [0, 1]."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    else:
        x = x.permute(0, 3, 1, 2)
    return x.float().div_(255.0)


def preprocess(x, *, image_size: int | None = None, mean=None, std=None, channels: int | None = None):
    """Float (N, C, H, W) in [0, 1] -> the model's input: grey repeated to ``channels``,
    resized to ``image_size`` (bilinear, antialiased), normalised by ``mean``/``std``.
    Each step only when asked: by default images are fed at native size in [0, 1]."""
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
