"""Run a checkpoint's backbone over the evaluation splits and commit the embeddings to zarr.

The splits and fixed augmented views are loaded once per process (:func:`cached_splits`,
:func:`cached_views`, in :mod:`ssl_eval.pipeline.eval_data`); the batched forward passes are
:func:`ssl_eval.pipeline.inference.embed_images`; :func:`embed_streamed` hands each split's
rows to the staged zarr write as they are done, so that writing overlaps inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from ssl_eval.common.errors import InfrastructureError
from ssl_eval.common.safe_text import printable
from ssl_eval.common.urls import redact
from ssl_eval.config import Config, DataConfig
from ssl_eval.pipeline.budget import memory_check
from ssl_eval.pipeline.eval_data import cached_views, data_splits
from ssl_eval.pipeline.failures import known_failure, record_failure
from ssl_eval.pipeline.inference import embed_images, preprocess_options
from ssl_eval.pipeline.outcomes import EmbedOutcome, Status
from ssl_eval.results.embeddings import SPLITS
from ssl_eval.results.parts import CheckpointRecord, FailureRecord, Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.results.zarr_groups import GroupWriter
from ssl_eval.sources.checkpoint_names import MAX_EPOCH
from ssl_eval.sources.checkpoints import CheckpointRef
from ssl_eval.sources.folding import fold_batch_norms
from ssl_eval.sources.loading import CheckpointError, LoadedCheckpoint, load_checkpoint
from ssl_eval.sources.model_building import build_model, pool_of
from ssl_eval.sources.splits import EvalSplits

__all__ = ["checkpoint_epoch", "embed_checkpoint", "embed_or_record_failure", "embed_streamed"]


def embed_checkpoint(
    ref: CheckpointRef, config: Config, workspace: Workspace, *, progress: Callable[[int, int], None] | None = None
) -> EmbedOutcome:
    """Embed ``ref`` on every split, unless the store already holds this exact file's embeddings for this data configuration.

    The fixed augmented views are embedded too (as ``views_a`` and ``views_b``); the arrays,
    the labels and the split indices are committed with their provenance, the ``checkpoint``
    record is written and a recorded failure is cleared.

    Args:
        ref: the checkpoint as discovered now.
        config: the run's configuration (data, the family's reading options, allowed modules).
        workspace: the work dir (embedding and record stores, locks).
        progress: called as ``progress(done, total)`` with images embedded over all splits; None is silent.

    Returns:
        An :class:`EmbedOutcome`: EMBEDDED (with the seconds it took) or CACHED.

    Raises:
        CheckpointError: the file cannot be read as the family's model (or its id is shared).
        FileNotFoundError: the file is gone since discovery.
        DataSetError: the data set cannot be read.
        WorkdirError: the results cannot be written.
    """
    _refuse_shared_id(ref)
    store, key = workspace.embeddings, config.embedding_key(ref.family)
    if store.is_current(ref.id, fingerprint=ref.fingerprint, embedding_key=key) and (held := store.provenance(ref.id)):
        return EmbedOutcome(ref.id, Status.CACHED, epoch=held["epoch"])
    started = time.perf_counter()
    family = config.family(ref.family)
    splits = data_splits(config.data, config.limits.data_bytes)
    views = cached_views(config.data, config.limits.data_bytes)
    loaded = load_checkpoint(ref.path, family)
    epoch = checkpoint_epoch(ref, loaded.meta.get("epoch"))
    model = build_model(
        loaded, family, in_channels=config.data.channels or splits.eval.channels, path=ref.path,
        allowed_modules=config.allow_modules, check=memory_check(config, splits),
    )
    fold_batch_norms(model)  # the model is this call's own: inference only from here on
    # each split's rows are compressed and written on the writer's thread while the next
    # batches run; the group is committed only after the provenance, whole or not at all
    with store.staged(ref.id, fingerprint=ref.fingerprint, embedding_key=key) as writer:
        dim = _embed_into(writer, model, _inputs(splits, views), config.data, progress)
        for split in SPLITS:
            part = getattr(splits, split)
            if part.labels is not None:
                writer.put(f"{split}_labels", part.labels)
            writer.put(f"{split}_index", splits.indices[split])
        provenance = {
            "fingerprint": ref.fingerprint, "embedding_key": key, "epoch": epoch, "dim": dim,
            **_provenance(ref, config, loaded, model), "n_views": 0 if views is None else int(len(views[0])),
            "num_classes": splits.eval.num_classes,
            # the sizes used, which the data set may have capped below what was asked
            **{f"n_{split}": int(len(getattr(splits, split).images)) for split in SPLITS},
        }
        writer.finish(provenance)
    workspace.records.write(ref.id, Part.CHECKPOINT, CheckpointRecord.model_validate(provenance))
    workspace.records.delete(ref.id, Part.FAILURE)
    return EmbedOutcome(ref.id, Status.EMBEDDED, epoch=epoch, seconds=round(time.perf_counter() - started, 3))


def _refuse_shared_id(ref: CheckpointRef) -> None:
    if ref.conflicts:
        raise CheckpointError(
            f"{len(ref.conflicts)} files map to one checkpoint id {ref.id!r}: "
            f"{', '.join(redact(p) or p for p in ref.conflicts)}; none of them is evaluated until all but one are renamed or moved."
        )


def _inputs(splits: EvalSplits, views: tuple[np.ndarray, np.ndarray] | None) -> dict[str, np.ndarray]:
    inputs = {split: getattr(splits, split).images for split in SPLITS}
    if views is not None:
        inputs["views_a"], inputs["views_b"] = views
    return inputs


def _embed_into(writer: GroupWriter, model: nn.Module, inputs: dict[str, np.ndarray], data: DataConfig,
                progress: Callable[[int, int], None] | None) -> int:
    """Embed every input into the writer's array of its name; returns the embedding width."""
    total, done, dim = sum(len(x) for x in inputs.values()), 0, 0
    for name, images in inputs.items():
        report = None if progress is None else (lambda d, _n, base=done: progress(base + d, total))
        features = embed_streamed(writer, name, model, images, batch_size=data.batch_size,
                                  preprocess_options=preprocess_options(data), progress=report)
        dim = dim or int(features.shape[1])
        done += len(images)
    return dim


def embed_streamed(writer: GroupWriter, name: str, model: nn.Module, images: np.ndarray, **options: Any) -> np.ndarray:
    """:func:`embed_images` whose rows go to the writer's array ``name`` as they are done.

    Compressing and writing run on the writer's thread while the next batches run.

    Args:
        writer: the staged write of the checkpoint's group.
        name: the array's name.
        model: the backbone.
        images: uint8 images.
        **options: :func:`embed_images`'s keyword arguments (batch_size, device, preprocess_options, progress).

    Returns:
        The (N, D) float32 features (also handed to the writer).
    """
    created = False

    def hand_over(rows: int, out: np.ndarray, ready: Callable[[], None] | None) -> None:
        nonlocal created
        if not created:  # the first batch: the width is known now
            writer.create(name, out.shape, out.dtype)
            created = True
        writer.rows(name, rows, out, ready)

    return embed_images(model, images, on_rows=hand_over, **options)


def _provenance(ref: CheckpointRef, config: Config, loaded: LoadedCheckpoint, model: nn.Module) -> dict[str, object]:
    """Where the embeddings come from and how the checkpoint was read."""
    family = config.family(ref.family)
    return {
        "family": ref.family,
        "run": ref.run,
        "checkpoint": ref.name,
        "source": redact(ref.path),
        "method": str(loaded.meta.get("method", family.method or ref.family)),
        "arch": str(family.arch or loaded.meta.get("arch", "")),
        "dataset": config.data.name,
        "prefix": loaded.prefix,
        "prefix_source": loaded.prefix_source,  # "config" or "detected"
        "layer": family.layer,
        "pool": pool_of(model),  # "cls" or "mean" for a ViT, None for a CNN
        "format": loaded.format,
    }


def checkpoint_epoch(ref: CheckpointRef, entry: object) -> int:
    """The checkpoint's epoch: from its file name, else its ``epoch`` entry, else -1 (unknown).

    Args:
        ref: the checkpoint (``ref.epoch`` is the epoch in its file name, or None).
        entry: the file's ``epoch`` entry, or None.

    Returns:
        The epoch, in ``0..MAX_EPOCH``, or -1 when neither names one.

    Raises:
        CheckpointError: an epoch outside ``0..MAX_EPOCH`` or not a whole number: that
            checkpoint's failure (it would stop the family's MLflow mirror, a 64-bit step).
    """
    source = "its file name" if ref.epoch is not None else "its 'epoch' entry"
    value = ref.epoch if ref.epoch is not None else entry
    if value is None:
        return -1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_EPOCH:
        shown = printable(repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "...")
        raise CheckpointError(
            f"{redact(ref.path)}: epoch {shown} (from {source}) is not a whole number in 0..{MAX_EPOCH:,}; "
            "rename the file or re-save it with its real epoch."
        )
    return value


def embed_or_record_failure(
    ref: CheckpointRef, config: Config, workspace: Workspace, *, progress: Callable[[int, int], None] | None = None
) -> EmbedOutcome:
    """Like :func:`embed_checkpoint`, but one bad checkpoint never stops the others.

    Its error is recorded (and reported) and it is retried only once its file changes
    (a transient error: on the next scan). Runs under the checkpoint's lock.

    Args:
        ref: the checkpoint as discovered now.
        config: the run's configuration (data, the family's reading options, allowed modules).
        workspace: the work dir (embedding and record stores, locks).
        progress: called as ``progress(done, total)`` with images embedded over all splits; None is silent.

    Returns:
        EMBEDDED, CACHED, or FAILED with the error (``known_failure`` when a failure
        recorded earlier still stands and the file was not read again).

    Raises:
        InfrastructureError: the work dir or the data set failed, no checkpoint's fault.
    """
    with workspace.lock(f"embed/{ref.id}"):
        return _embed_or_record_failure(ref, config, workspace, progress)


def _embed_or_record_failure(
    ref: CheckpointRef, config: Config, workspace: Workspace, progress: Callable[[int, int], None] | None
) -> EmbedOutcome:
    records, key = workspace.records, config.embedding_key(ref.family)
    failure = known_failure(records, ref, key, config.metrics_key(ref.family))
    if failure:
        return EmbedOutcome(ref.id, Status.FAILED, error=failure.error, known_failure=True)
    stale = records.read(ref.id, Part.FAILURE, FailureRecord)  # one that no longer stands: transient, or another file or reading
    data_splits(config.data, config.limits.data_bytes)  # a data set that cannot be read stops the run once, blamed on the data set
    try:
        result = embed_checkpoint(ref, config, workspace, progress=progress)
    except InfrastructureError:
        raise  # the work dir or the data set: no checkpoint's fault, the run stops with its message
    except Exception as exc:  # noqa: BLE001 - whatever one checkpoint does is that checkpoint's failure
        return record_failure(workspace, ref, exc, embedding_key=key, stage="embed")
    if stale is not None and stale.stage != "measure":  # e.g. a good file restored over a bad one: no longer failed
        records.delete(ref.id, Part.FAILURE)
    return result
