"""Simulated checkpoint stores: randomly initialised demo CNNs saved the way training loops save them.

For tests and benchmarks (no training, no data set needed).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ssl_eval.sources.models import DemoCNN

__all__ = ["make_store", "write_checkpoint"]


def write_checkpoint(path: Path, *, epoch: int, seed: int, arch: str = "democnn", prefix: str = "backbone.", scale: float = 1.0) -> Path:
    """A Lightning-style checkpoint of a randomly initialised DemoCNN (1 input channel).

    Its mtime is set a minute back so discovery takes it as settled; its ``method`` entry is the
    family folder's name (``path.parent.parent``).

    Args:
        path: where to write it (parent folders are created).
        epoch: the epoch stored in it.
        seed: seed of the random weights.
        arch: the ``arch`` entry stored in it.
        prefix: prefix of the state dict keys.
        scale: factor on the weights' standard deviation (0 gives a collapsed encoder).

    Returns:
        ``path``.
    """
    generator = torch.Generator().manual_seed(seed)
    model = DemoCNN(in_channels=1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.ndim > 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale / tensor[0].numel() ** 0.5)
    state = {f"{prefix}{k}": v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "global_step": 10 * epoch, "method": path.parent.parent.name, "arch": arch, "state_dict": state}, path)
    old = path.stat().st_mtime - 60  # settled: discovery skips files younger than a few seconds
    os.utime(path, (old, old))
    return path


def make_store(root: Path, families: dict[str, int], runs: int = 1) -> Path:
    """``<root>/<family>/run-<r>/epoch=<e>.ckpt`` for ``epochs`` epochs of each family.

    Args:
        root: the store's root folder.
        families: family -> number of epochs (checkpoints per run).
        runs: training runs per family.

    Returns:
        ``root``.
    """
    for f_index, (family, epochs) in enumerate(families.items()):
        for run in range(runs):
            for epoch in range(epochs):
                write_checkpoint(root / family / f"run-{run}" / f"epoch={epoch:02d}.ckpt", epoch=epoch, seed=100 * f_index + 10 * run + epoch)
    return root
