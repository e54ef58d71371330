"""Run a checkpoint's backbone over the evaluation splits and commit the embeddings to zarr.

The splits and fixed augmented views are loaded once per process (:func:`cached_splits`,
:func:`cached_views`); the batched forward passes are :mod:`ssl_eval.pipeline.inference`'s
(:func:`embed_images`, importable from here too).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np
from torch import nn

from ssl_eval.common.errors import DataSetError, InfrastructureError, is_transient
from ssl_eval.common.safe_text import printable
from ssl_eval.common.urls import redact, redact_text
from ssl_eval.config import Config, DataConfig
from ssl_eval.pipeline.failures import known_failure
from ssl_eval.pipeline.inference import embed_images, preprocess_options
from ssl_eval.pipeline.outcomes import EmbedOutcome, Status
from ssl_eval.results.embeddings import SPLITS
from ssl_eval.results.parts import CheckpointRecord, FailureRecord, Part
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.augment import fixed_views
from ssl_eval.sources.checkpoint_names import MAX_EPOCH
from ssl_eval.sources.checkpoints import CheckpointRef
from ssl_eval.sources.data_files import DEFAULT_DATA_BYTES, Bounds
from ssl_eval.sources.loading import CheckpointError, load_checkpoint
from ssl_eval.sources.model_building import build_model, pool_of
from ssl_eval.sources.splits import EvalSplits, eval_splits


@functools.lru_cache(maxsize=4)
def cached_splits(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> EvalSplits:
    """The evaluation splits of ``data``, loaded once per process (the same for every checkpoint).

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to (``config.limits.data_bytes``).

    Returns:
        The :class:`~ssl_eval.sources.splits.EvalSplits`.

    Raises:
        ValueError: an unknown or malformed data set.
        FileNotFoundError: its files are missing.
    """
    return eval_splits(
        data.name,
        n_eval=data.n_eval,
        n_probe_train=data.n_probe_train,
        n_probe_test=data.n_probe_test,
        random_state=data.random_state,
        root=data.root,
        image_size=data.image_size,
        bounds=Bounds(data.confined_to, max_bytes),
    )


def data_splits(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> EvalSplits:
    """The evaluation splits; a data set that cannot be read is the data set's fault, reported once.

    It is never recorded against each checkpoint.

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to.

    Returns:
        The :class:`~ssl_eval.sources.splits.EvalSplits`.

    Raises:
        DataSetError: the data set cannot be read (naming it and why).
        InfrastructureError: passed on unchanged: a fault of the machine, not of the data set.
    """
    try:
        return cached_splits(data, max_bytes)
    except InfrastructureError:
        raise
    except Exception as exc:  # any reader error is the data set's (re-raised as one)
        raise DataSetError(f"evaluation data set {data.name!r} cannot be read: {redact_text(str(exc))}") from exc


@functools.lru_cache(maxsize=4)
def cached_views(data: DataConfig, max_bytes: int = DEFAULT_DATA_BYTES) -> tuple[np.ndarray, np.ndarray] | None:
    """Two augmented views (uint8) of the first ``data.n_views`` eval images, drawn from ``data.random_state``.

    The same images and the same random maps serve every checkpoint.

    Args:
        data: the data configuration (hashable: the cache key).
        max_bytes: what one data file may decode to.

    Returns:
        (view1, view2) uint8 arrays, or None when ``data.n_views`` is 0.

    Raises:
        DataSetError: the data set cannot be read.
    """
    if data.n_views == 0:
        return None
    return fixed_views(data_splits(data, max_bytes).eval.images, data.n_views, random_state=data.random_state)


def _memory_check(config: Config, splits: EvalSplits) -> Callable[[nn.Module, str], None]:
    """The embedding's memory estimate, the check that ``build_model`` runs before building the model.

    :func:`~ssl_eval.sources.model_building.build_model` runs it on the architecture, on the meta
    device.

    Returns:
        The check, called with the model built on the meta device and the checkpoint's path.
    """
    from ssl_eval.pipeline.budget import check_memory, held_images

    shape, n_images = tuple(splits.eval.images.shape[1:]), held_images(splits, config.data.n_views)

    def check(model: nn.Module, arch: str) -> None:
        check_memory(config, model, image_shape=shape, n_images=n_images, what=f"architecture {arch!r}")

    return check


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
    if ref.conflicts:
        raise CheckpointError(
            f"{len(ref.conflicts)} files map to one checkpoint id {ref.id!r}: "
            f"{', '.join(redact(p) or p for p in ref.conflicts)}; none of them is evaluated until all but one are renamed or moved."
        )
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
        allowed_modules=config.allow_modules, check=_memory_check(config, splits),
    )
    inputs = {split: getattr(splits, split).images for split in SPLITS}
    if views is not None:
        inputs["views_a"], inputs["views_b"] = views
    total, done = sum(len(x) for x in inputs.values()), 0
    arrays: dict[str, np.ndarray] = {}
    for name, images in inputs.items():
        report = None if progress is None else (lambda d, _n, base=done: progress(base + d, total))
        arrays[name] = embed_images(
            model, images, batch_size=config.data.batch_size, preprocess_options=preprocess_options(config.data), progress=report
        )
        done += len(images)
    for split in SPLITS:
        part = getattr(splits, split)
        if part.labels is not None:
            arrays[f"{split}_labels"] = part.labels
        arrays[f"{split}_index"] = splits.indices[split]
    provenance = {
        "fingerprint": ref.fingerprint,
        "embedding_key": key,
        "family": ref.family,
        "run": ref.run,
        "checkpoint": ref.name,
        "epoch": epoch,
        "source": redact(ref.path),
        "method": str(loaded.meta.get("method", family.method or ref.family)),
        "arch": str(family.arch or loaded.meta.get("arch", "")),
        "dataset": config.data.name,
        "num_classes": splits.eval.num_classes,
        "dim": int(arrays["eval"].shape[1]),
        "prefix": loaded.prefix,
        "prefix_source": loaded.prefix_source,  # "config" or "detected"
        "layer": family.layer,
        "pool": pool_of(model),  # "cls" or "mean" for a ViT, None for a CNN
        "format": loaded.format,
        "n_views": 0 if views is None else int(len(views[0])),
        # the sizes used, which the data set may have capped below what was asked
        **{f"n_{split}": int(len(getattr(splits, split).images)) for split in SPLITS},
    }
    store.write(ref.id, arrays, provenance)
    workspace.records.write(ref.id, Part.CHECKPOINT, CheckpointRecord.model_validate(provenance))
    workspace.records.delete(ref.id, Part.FAILURE)
    return EmbedOutcome(ref.id, Status.EMBEDDED, epoch=epoch, seconds=round(time.perf_counter() - started, 3))


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


def record_failure(workspace: Workspace, ref: CheckpointRef, exc: BaseException, *, embedding_key: str, stage: str) -> EmbedOutcome:
    """Record ``exc`` as the failure of checkpoint ``ref`` and return the FAILED outcome.

    The record holds the error's type and message (naming the file, redacted). A bad file
    stays bad until it changes; a transient error (I/O, memory, device) is retried on the
    next scan.

    Args:
        workspace: the work dir.
        ref: the checkpoint.
        exc: what went wrong.
        embedding_key: ``config.embedding_key(ref.family)``: the failure stands for this reading only.
        stage: ``"embed"`` or ``"measure"``.

    Returns:
        The FAILED :class:`EmbedOutcome` with the error.

    Raises:
        WorkdirError: the record cannot be written.
    """
    error = str(exc) if isinstance(exc, CheckpointError) else f"{redact(ref.path)}: {type(exc).__name__}: {exc}"
    error = redact_text(error)
    workspace.records.write(ref.id, Part.FAILURE, FailureRecord(
        fingerprint=ref.fingerprint, embedding_key=embedding_key, error=error, type=type(exc).__name__, stage=stage,
        path=redact(ref.path), time=time.time(), permanent=not is_transient(exc),
    ))
    return EmbedOutcome(ref.id, Status.FAILED, error=error)
