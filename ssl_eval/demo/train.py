"""Fill a demo checkpoint store: train small SSL models on CPU, one checkpoint per epoch.

Layout written: ``<out>/<method>/run-<r>/epoch=NN.ckpt`` for NN = 00 (before any
training) .. ``epochs``. Each file is ``torch.save`` of a dict with only tensors and plain
Python values (``torch.load(weights_only=True)`` reads it)::

    {"epoch": int, "global_step": int, "method": str, "arch": str, "dataset": str,
     "state_dict": {"backbone.features.0.weight": ..., "projection_head.layers.0.weight": ...}}

the key prefixes being those of Lightning checkpoints of lightly's examples. Files are
written atomically (a hidden temporary name in the same folder, then ``os.replace``), so a
watcher never reads half a file.

Defaults (MNIST, DemoCNN, 10,000 images, batch 128, 8 epochs). With 5,000 images (3 to 5 s
an epoch per method on 2 idle cores) the linear probe (pipeline splits) went epoch 0 -> 8:
SimCLR 0.925 -> 0.96, MoCo-v2 0.925 -> 0.95, SimSiam 0.925 -> 0.935: a random DemoCNN is
already a strong feature extractor for MNIST, so the margins are a few points, and MoCo-v2
stayed under +3. With 10,000 images MoCo-v2 went 0.9245 -> 0.9625 (+3.8), twice the steps
for twice the time, which is why 10,000 is the default. Batch 128 rather than 256
gives twice the optimiser steps for the same compute, which helped SimCLR
(0.953 -> 0.9625). See methods.py for the measured alternatives.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ssl_eval.demo.methods import LEARNING_RATES, METHODS, PAPER_METHODS, WEIGHT_DECAY, build_method
from ssl_eval.sources.augment import random_views
from ssl_eval.sources.datasets import load_split
from ssl_eval.sources.models import build_backbone
from ssl_eval.sources.preprocess import to_float_tensor

SCHEDULES = ("cosine", "constant")


def _check_positive(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def make_demo_store(
    out: str | Path,
    *,
    dataset: str = "mnist",
    epochs: int = 8,
    seed: int = 0,
    methods: Sequence[str] = PAPER_METHODS,
    arch: str = "democnn",
    n_train: int = 10000,
    batch_size: int = 128,
    runs: int = 1,
    lr_scales: Sequence[float] = (1.0,),
    lr_schedule: str = "cosine",
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Train each SSL method on seeded images of ``dataset``'s train split; write a checkpoint per epoch.

    Run ``r`` of every method starts from the same backbone initialisation (drawn from
    ``seed`` and ``r``), so epoch 0 is the same encoder in every family. The training images
    are one seeded subset shared by all methods and runs. Global RNG state is left as it was.

    Args:
        out: the store's root folder (``<out>/<method>/run-<r>/``).
        dataset: a data set name of :mod:`ssl_eval.sources.datasets`.
        epochs: training epochs (epoch 0, untrained, is written too), >= 0.
        seed: seed of the subset, the initialisations and the training.
        methods: SSL methods to train, a non-empty subset of :data:`METHODS`.
        arch: the backbone's architecture name.
        n_train: training images (fewer when the split holds fewer), >= 2.
        batch_size: images per step, >= 2.
        runs: training runs per method, >= 1.
        lr_scales: multipliers of each method's learning rate; every one trains its own
            runs, named ``lr<scale>-run-<r>`` (plain ``run-<r>`` for the single default 1.0).
            Run ``r`` starts from the same initialisation at every scale.
        lr_schedule: "cosine" (decay to 0 over ``epochs``, per step) or "constant": a run
            that does not know when it will end, so a too-high rate can degrade it late.
        progress: called with one line of progress text per epoch; None is silent.

    Returns:
        The checkpoint paths written.

    Raises:
        TypeError: ``methods`` is a string.
        ValueError: a size below its minimum, or an unknown method.
    """
    scales = _checked(epochs=epochs, n_train=n_train, batch_size=batch_size, runs=runs, methods=methods,
                      lr_schedule=lr_schedule, lr_scales=lr_scales)
    train = load_split(dataset, "train")
    index = np.sort(np.random.default_rng(seed).permutation(len(train))[: min(n_train, len(train))])
    images = to_float_tensor(train.images[index])
    written: list[Path] = []
    for r in range(runs):
        run_seed = int(np.random.SeedSequence([seed, r]).generate_state(1)[0])
        for method, scale in ((m, x) for m in methods for x in scales):
            run = f"run-{r}" if scales == [1.0] else f"lr{scale:g}-run-{r}"
            written += train_run(
                method, images, folder=Path(out) / method / run, arch=arch, dataset=dataset, epochs=epochs, batch_size=batch_size,
                seed=run_seed, lr=LEARNING_RATES[method] * scale, lr_schedule=lr_schedule, progress=_tagged(progress, f"{method} {run}"),
            )
    return written


def _checked(*, epochs: int, n_train: int, batch_size: int, runs: int, methods: Sequence[str], lr_schedule: str,
             lr_scales: Sequence[float]) -> list[float]:
    """Check :func:`make_demo_store`'s arguments (TypeError/ValueError naming the bad one); the scales as floats."""
    _check_positive("epochs", epochs, 0)
    _check_positive("n_train", n_train, 2)
    _check_positive("batch_size", batch_size, 2)
    _check_positive("runs", runs, 1)
    if isinstance(methods, str):
        raise TypeError(f"methods must be a sequence of names such as ['simclr']; got the string {methods!r}.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {list(METHODS)}; got {list(methods)}.")
    if lr_schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(SCHEDULES)}; got {lr_schedule!r}.")
    scales = [float(x) for x in lr_scales]
    if not scales or not all(math.isfinite(x) and x > 0 for x in scales):
        raise ValueError(f"lr_scales must be positive numbers such as [0.1, 1, 10]; got {list(lr_scales)}.")
    return scales


def train_run(
    method: str,
    images: torch.Tensor,
    *,
    folder: Path,
    arch: str,
    dataset: str,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: Callable[[str], None],
    lr: float | None = None,
    lr_schedule: str = "cosine",
) -> list[Path]:
    """Train one run of ``method`` on float images (N, C, H, W); checkpoint every epoch.

    Args:
        method: one of :data:`METHODS`.
        images: float (N, C, H, W) training images in [0, 1].
        folder: the run's folder (created).
        arch: the backbone's architecture name.
        dataset: the data set's name, stored in each checkpoint.
        epochs: training epochs after epoch 0.
        batch_size: images per step.
        seed: seed of the initialisation, augmentations and batches.
        progress: called with one line of progress text per epoch.
        lr: learning rate for batch 256 (scaled with the batch); None: the method's default.
        lr_schedule: "cosine" or "constant" (see :func:`make_demo_store`).

    Returns:
        The checkpoint paths written, epoch 0 first. Each checkpoint holds ``train_loss``,
        the mean training loss of its epoch (NaN at epoch 0), and ``lr``. A run whose loss
        is no longer finite has diverged: it stops there, as a real training job would.
    """
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    model = _initialised(method, arch, images, seed)
    base_lr = (LEARNING_RATES[method] if lr is None else lr) * batch_size / 256
    meta: dict[str, str | float] = {"method": method, "arch": arch, "dataset": dataset, "lr": base_lr}
    paths = [_save(folder, epoch=0, global_step=0, model=model, meta={**meta, "train_loss": math.nan})]
    progress(f"epoch 0/{epochs} written (untrained)")
    return paths + _train(model, images, folder=folder, meta=meta, epochs=epochs, batch_size=batch_size, generator=generator,
                          lr_schedule=lr_schedule, progress=progress)


def _train(model: nn.Module, images: torch.Tensor, *, folder: Path, meta: dict[str, str | float], epochs: int, batch_size: int,
           generator: torch.Generator, lr_schedule: str, progress: Callable[[str], None]) -> list[Path]:
    """Train the epochs of :func:`train_run` at the learning rate ``meta["lr"]``.

    Returns:
        The checkpoints written, one per epoch, until the loss is no longer finite.
    """
    n, base_lr, paths = int(images.shape[0]), float(meta["lr"]), []
    # Full batches only (a tiny last batch would upset BatchNorm); fewer images than a
    # batch make one batch of all of them.
    batch = min(batch_size, n)
    steps_per_epoch = n // batch
    total_steps = max(1, epochs * steps_per_epoch)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=base_lr, momentum=0.9, weight_decay=WEIGHT_DECAY)
    step = 0
    model.train()
    for epoch in range(1, epochs + 1):
        start, losses = time.perf_counter(), []
        order = torch.randperm(n, generator=generator)
        for b in range(steps_per_epoch):
            rate = base_lr * (0.5 * (1 + math.cos(math.pi * step / total_steps)) if lr_schedule == "cosine" else 1.0)
            losses.append(_step(model, optimizer, images[order[b * batch : (b + 1) * batch]], generator, rate))
            step += 1
            model.after_step(step / total_steps)  # type: ignore[operator]
        train_loss = float(np.mean(losses))
        if not math.isfinite(train_loss):
            progress(f"epoch {epoch}/{epochs}: the loss is {train_loss}: the run diverged and stops here")
            break
        paths.append(_save(folder, epoch=epoch, global_step=step, model=model, meta={**meta, "train_loss": train_loss}))
        progress(f"epoch {epoch}/{epochs} loss {train_loss:.4f} ({time.perf_counter() - start:.1f} s)")
    return paths


def _initialised(method: str, arch: str, images: torch.Tensor, seed: int) -> nn.Module:
    """Build ``method`` around a new ``arch`` backbone, initialised from ``seed``.

    Module initialisation (and lightly's queue) draw from torch's global generator: it is
    seeded only inside a forked RNG state, so the caller's state is untouched.

    Returns:
        The model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(arch, in_channels=int(images.shape[1]))
        return build_method(method, backbone, _feature_dim(backbone, images[:2]))


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, generator: torch.Generator, lr: float) -> float:
    """One optimiser step at learning rate ``lr`` on two random views of the batch ``x``; the batch's loss."""
    for group in optimizer.param_groups:  # cosine decay per step, or constant
        group["lr"] = lr
    x0 = random_views(x, generator)
    x1 = random_views(x, generator)
    # nn.Module types attributes as Tensor | Module: every demo method has these two (the ignores)
    loss = model.training_loss(x0, x1)  # type: ignore[operator]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _feature_dim(backbone: nn.Module, sample: torch.Tensor) -> int:
    dim = getattr(backbone, "feature_dim", None)
    if isinstance(dim, int):
        return dim
    backbone.eval()
    with torch.no_grad():
        dim = int(backbone(sample).flatten(1).shape[1])
    backbone.train()
    return dim


def _save(folder: Path, *, epoch: int, global_step: int, model: nn.Module, meta: dict[str, str | float]) -> Path:
    """Write ``epoch=NN.ckpt`` atomically; the loss's queue is training state, not saved."""
    state = {
        k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("criterion.")
    }
    checkpoint = {"epoch": epoch, "global_step": global_step, **meta, "state_dict": state}
    path = folder / f"epoch={epoch:02d}.ckpt"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _tagged(report: Callable[[str], None] | None, tag: str) -> Callable[[str], None]:
    """``report`` with every message prefixed by ``tag`` (None: silent)."""
    return (lambda message: report(f"{tag}: {message}")) if report is not None else (lambda message: None)
