"""Batched inference: uint8 images through a model into float32 (N, D) features.

On the default device (CUDA when there is one), with the data set's model-input options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ssl_eval.config import DataConfig
from ssl_eval.sources.preprocess import preprocess, to_float_tensor

__all__ = ["RowsReady", "default_device", "embed_images", "preprocess_options"]

RowsReady = Callable[[int, np.ndarray, Callable[[], None] | None], None]


def default_device() -> torch.device:
    """The device checkpoints are embedded on by default.

    Returns:
        CUDA when available, else the CPU.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to_input(chunk: np.ndarray, device: torch.device, options: dict[str, Any]) -> torch.Tensor:
    """uint8 (n, H, W[, C]) -> the model's float input on ``device``.

    On CUDA the uint8 batch goes through pinned memory with a non-blocking copy (4x fewer
    bytes than float), and the conversion, scaling and channels_last layout happen on the
    GPU. On either device the input is channels_last, as the model is (:func:`_placed`).

    Returns:
        The float input tensor on ``device``.
    """
    if device.type == "cuda":
        x = torch.from_numpy(chunk).pin_memory().to(device, non_blocking=True)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        x = preprocess(x.float().div_(255.0), **options)
    else:
        x = preprocess(to_float_tensor(chunk), **options)
    return x.contiguous(memory_format=torch.channels_last)


def embed_images(
    model: torch.nn.Module,
    images: np.ndarray,
    *,
    batch_size: int = 512,
    device: torch.device | None = None,
    preprocess_options: dict[str, Any] | None = None,
    amp: bool = True,
    progress: Callable[[int, int], None] | None = None,
    on_rows: RowsReady | None = None,
) -> np.ndarray:
    """Batched inference of uint8 images -> float32 (N, D) features.

    Under ``torch.inference_mode``, model and inputs channels_last on either device (docs/embedding.md,
    "Speed"). On CUDA: bfloat16 autocast when ``amp``, pinned non-blocking copies both ways, one
    synchronisation at the end. On the CPU the batches are slices of the in-memory uint8 arrays (a
    DataLoader would add worker start-up and IPC for no gain: nothing is decoded per batch).

    Args:
        model: maps a float (n, C, H, W) batch to (n, D) features (moved to ``device``, eval mode).
        images: uint8 (N, H, W) or (N, H, W, C) array, N >= 1.
        batch_size: images per forward pass.
        device: where to run; None: :func:`default_device`.
        preprocess_options: keyword arguments of :func:`ssl_eval.sources.preprocess.preprocess`.
        amp: autocast to bfloat16 on CUDA.
        progress: called as ``progress(done, total)`` after each batch.
        on_rows: ``on_rows(done, out, ready)`` after each batch, for a writer that overlaps the
            next batches: rows ``[0, done)`` of ``out`` (the (N, D) result) are final once
            ``ready()`` (a CUDA event's wait; None on the CPU) has returned.

    Returns:
        The (N, D) float32 features.

    Raises:
        ValueError: no images.
    """
    device = device or default_device()
    options = preprocess_options or {}
    n = len(images)
    if n == 0:
        raise ValueError("no images to embed; the evaluation split is empty. Check data.n_eval and the data set.")
    cuda = device.type == "cuda"
    model, autocast = _placed(model, device, amp)
    out: torch.Tensor | None = None
    with torch.inference_mode(), autocast:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            features = model(_to_input(images[start:stop], device, options)).reshape(stop - start, -1)
            if out is None:  # the output width is known after the first batch
                out = torch.empty((n, features.shape[1]), dtype=torch.float32, pin_memory=cuda)
            out[start:stop].copy_(features.float(), non_blocking=cuda)  # bf16 -> fp32 on the device
            if on_rows is not None:
                on_rows(stop, out.numpy(), _ready_event() if cuda else None)
            if progress is not None:
                progress(stop, n)
    if cuda:
        torch.cuda.synchronize(device)
    if out is None:  # unreachable (n > 0), for the type checker
        raise ValueError("no images were embedded; the evaluation split is empty.")
    return out.numpy()


def _placed(model: torch.nn.Module, device: torch.device, amp: bool) -> tuple[torch.nn.Module, Any]:
    """The model on ``device`` in eval mode, channels_last, and the autocast context (bfloat16 on CUDA when ``amp``).

    Returns:
        ``(model, autocast context)``.
    """
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    cuda_amp = device.type == "cuda" and amp
    return model, torch.autocast("cuda", dtype=torch.bfloat16) if cuda_amp else contextlib.nullcontext()


def _ready_event() -> Callable[[], None]:
    """A wait for the work queued so far on the current CUDA stream (the copies included).

    Returns:
        The event's ``synchronize``.
    """
    event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # torch leaves Event.__init__ untyped
    event.record()
    return event.synchronize


def preprocess_options(data: DataConfig) -> dict[str, Any]:
    """The model-input options of the data configuration.

    Args:
        data: the data configuration.

    Returns:
        Keyword arguments of :func:`ssl_eval.sources.preprocess.preprocess` (image_size, mean, std, channels).
    """
    return {"image_size": data.image_size, "mean": data.mean, "std": data.std, "channels": data.channels}
