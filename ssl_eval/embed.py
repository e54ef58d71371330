"""Run a checkpoint's backbone over the evaluation splits and commit the embeddings to zarr."""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import torch

from ssl_eval.config import Config, DataConfig
from ssl_eval.data import EvalSplits, eval_splits, to_float_tensor
from ssl_eval.store.checkpoints import CheckpointRef
from ssl_eval.store.embeddings import SPLITS
from ssl_eval.store.loading import CheckpointError, build_model, load_checkpoint
from ssl_eval.workspace import Workspace


@functools.lru_cache(maxsize=4)
def cached_splits(data: DataConfig) -> EvalSplits:
    """Splits are the same for every checkpoint: load them once per process."""
    return eval_splits(
        data.name,
        n_eval=data.n_eval,
        n_probe_train=data.n_probe_train,
        n_probe_test=data.n_probe_test,
        random_state=data.seed,
        root=data.root,
    )


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def embed_images(model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 512, device: torch.device | None = None) -> np.ndarray:
    """Batched inference of uint8 images -> float32 (N, D) features."""
    device = device or default_device()
    model = model.to(device).eval()
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_float_tensor(images[start : start + batch_size]).to(device, non_blocking=True)
            features = model(batch)
            outputs.append(features.float().reshape(len(batch), -1).cpu().numpy())
    if not outputs:
        raise ValueError("no images to embed; the evaluation split is empty. Check data.n_eval and the data set.")
    return np.concatenate(outputs).astype(np.float32, copy=False)


def embed_checkpoint(ref: CheckpointRef, config: Config, workspace: Workspace) -> dict[str, Any]:
    """Embed ``ref`` on every split unless the store already holds this exact file's
    embeddings for this data configuration. Returns a small summary dict."""
    store, key = workspace.embeddings, config.embedding_key()
    if store.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=key):
        return {"id": ref.id, "status": "cached", "epoch": store.provenance(ref.id)["epoch"]}
    started = time.perf_counter()
    family = config.family(ref.family)
    splits = cached_splits(config.data)
    loaded = load_checkpoint(ref.path, family)
    model = build_model(loaded, family, in_channels=splits.eval.channels, path=ref.path)
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        part = getattr(splits, split)
        arrays[split] = embed_images(model, part.images, batch_size=config.data.batch_size)
        if part.labels is not None:
            arrays[f"{split}_labels"] = part.labels
        arrays[f"{split}_index"] = splits.indices[split]
    epoch = ref.epoch if ref.epoch is not None else int(loaded.meta.get("epoch", -1))
    provenance = {
        "fingerprint": ref.fingerprint,
        "embedding_key": key,
        "family": ref.family,
        "run": ref.run,
        "checkpoint": ref.name,
        "epoch": epoch,
        "source": ref.path,
        "method": str(loaded.meta.get("method", family.method or ref.family)),
        "arch": str(family.arch or loaded.meta.get("arch", "")),
        "dataset": config.data.name,
        "num_classes": splits.eval.num_classes,
        "dim": int(arrays["eval"].shape[1]),
        "prefix": loaded.prefix,
    }
    store.write(ref.id, arrays, provenance)
    workspace.records.put(ref.id, "checkpoint", provenance)
    workspace.records.delete(ref.id, "failure")
    return {"id": ref.id, "status": "embedded", "epoch": epoch, "seconds": round(time.perf_counter() - started, 3)}


def embed_or_record_failure(ref: CheckpointRef, config: Config, workspace: Workspace) -> dict[str, Any]:
    """Like :func:`embed_checkpoint`, but one bad checkpoint never stops the others: its
    error is recorded (and reported) and it is retried only once its file changes."""
    with workspace.lock(f"embed/{ref.id}"):
        return _embed_or_record_failure(ref, config, workspace)


def _embed_or_record_failure(ref: CheckpointRef, config: Config, workspace: Workspace) -> dict[str, Any]:
    records, key = workspace.records, config.embedding_key()
    failure = records.get(ref.id, "failure")
    if failure and failure.get("permanent") and failure.get("fingerprint") == ref.fingerprint and failure.get("embedding_key") == key:
        return {"id": ref.id, "status": "failed", "error": failure["error"], "cached": True}
    try:
        return embed_checkpoint(ref, config, workspace)
    except (CheckpointError, ValueError, OSError, RuntimeError) as exc:
        error = str(exc) if isinstance(exc, CheckpointError) else f"{ref.path}: {type(exc).__name__}: {exc}"
        records.put(
            ref.id,
            "failure",
            {
                "fingerprint": ref.fingerprint,
                "embedding_key": key,
                "error": error,
                "path": ref.path,
                "time": time.time(),
                # a bad file stays bad until it changes; anything else is retried next run
                "permanent": isinstance(exc, CheckpointError),
            },
        )
        return {"id": ref.id, "status": "failed", "error": error}
