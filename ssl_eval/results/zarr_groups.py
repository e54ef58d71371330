"""One checkpoint's zarr group, as both embedding implementations (local folder, URL) write and read it.

Arrays are written in row chunks, then the provenance attributes (:class:`GroupWriter`, on a background thread, so
that compressing and writing overlap the forward passes that produce the rows; both stores'
shared part is :class:`StagedStore`), arrays read whole (:func:`optional_array`,
:func:`required_array`), and parent groups created without racing another writer
(:func:`ensure_group`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ssl_eval.common.errors import WorkdirError

__all__ = ["CHUNK_ROWS", "GroupWriter", "chunk_rows", "ensure_group", "optional_array", "required_array", "StagedStore"]

# zstd at level 1 rather than zarr's default (level 0, which zstd reads as 3): on real
# 512-d ResNet-18 embeddings it keeps 96 % of the saving (1.50x against 1.56x) and writes
# 2.4x faster. On an H200 the default level's write was 44 % of ResNet-50's embed step, level
# 1's is 37 % (docs/benchmarks.md, goal 9). Any zstd level reads back the same way.
_COMPRESSORS = (ZstdCodec(level=1),)
CHUNK_ROWS = 4096  # rows of a chunk at most
_CHUNK_BYTES = 4 << 20  # wide rows get smaller chunks (not under 256 rows): a streamed write's tail is one chunk


def chunk_rows(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows per chunk of an array: :data:`CHUNK_ROWS`, fewer for rows wider than 1 KiB.

    About 4 MiB a chunk: 512 rows of 2,048 float32), so that a write that follows a
    producer row by row leaves little to write after the last row.

    Args:
        shape: the array's shape (rows first).
        dtype: its dtype.

    Returns:
        Rows per chunk, at least 1.
    """
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    return max(1, min(shape[0], CHUNK_ROWS, max(256, _CHUNK_BYTES // max(1, row_bytes))))


class GroupWriter:
    """Fills a new group from one background thread, then writes the provenance last.

    Whole arrays (:meth:`put`) or arrays that arrive row by row (:meth:`create` then :meth:`rows`: each chunk of
    :data:`CHUNK_ROWS` rows is compressed and written as soon as its rows exist), then the
    provenance last (:meth:`finish`). The caller only hands work over; the first error of
    the thread is raised by the next call (an ``OSError`` as :class:`WorkdirError` naming
    ``where``), and :meth:`close` without :meth:`finish` drops what is pending. Not shared
    between threads: one writer per checkpoint.
    """

    def __init__(self, group: zarr.Group, where: str) -> None:
        self._group, self._where = group, where
        self.finished = False
        self.attrs: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ssl-eval-zarr-writer")
        self._pending: list[Future[None]] = []
        self._arrays: dict[str, zarr.Array[Any]] = {}
        self._written: dict[str, int] = {}
        self._chunk_rows: dict[str, int] = {}

    def _submit(self, job: Callable[[], None]) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            self._result(future)  # a failed write stops the producer now, not after all inference
        self._pending.append(self._pool.submit(job))

    def put(self, name: str, array: np.ndarray) -> None:
        """Write a whole array (in chunks of :func:`chunk_rows` rows).

        Args:
            name: the array's name.
            array: the array (at least 1-D).
        """
        self._submit(lambda: _create(self._group, name, np.ascontiguousarray(array)))

    def create(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Create an array whose rows :meth:`rows` will fill.

        Args:
            name: the array's name.
            shape: its shape (rows first).
            dtype: its dtype.
        """
        self._written[name], self._chunk_rows[name] = 0, chunk_rows(shape, dtype)

        def job() -> None:
            chunks = (self._chunk_rows[name],) + tuple(shape[1:])
            self._arrays[name] = self._group.create_array(name, shape=shape, dtype=dtype, chunks=chunks,
                                                          compressors=_COMPRESSORS)
        self._submit(job)

    def rows(self, name: str, done: int, source: np.ndarray, ready: Callable[[], None] | None = None) -> None:
        """Rows ``[0, done)`` of ``source`` (the whole array, filled in order) are final.

        Write every chunk they complete, and the last one when ``done == len(source)``.
        ``ready`` (e.g. a CUDA event's ``synchronize``) is called on the writer thread
        before the rows are read.

        Args:
            name: an array made by :meth:`create`.
            done: how many leading rows of ``source`` are final.
            source: the whole array being filled.
            ready: waits until those rows may be read; None: they may be read now.
        """
        start, total = self._written[name], len(source)
        stop = total if done >= total else done - done % self._chunk_rows[name]
        if stop <= start:
            return
        self._written[name] = stop

        def job() -> None:
            if ready is not None:
                ready()
            self._arrays[name][start:stop] = source[start:stop]
        self._submit(job)

    def finish(self, attrs: Mapping[str, Any]) -> None:
        """Wait for every write, raising the first error, then write the provenance.

        Args:
            attrs: the provenance, written last.

        Raises:
            WorkdirError: a write failed with an ``OSError`` (naming the store).
        """
        pending, self._pending = self._pending, []
        for future in pending:
            self._result(future)
        try:
            self._group.attrs.update(dict(attrs))
        except OSError as exc:
            error = WorkdirError.writing(self._where, exc)
            raise error from exc
        self.attrs, self.finished = dict(attrs), True

    def _result(self, future: Future[None]) -> None:
        try:
            future.result()
        except OSError as exc:
            raise WorkdirError.writing(self._where, exc) from exc

    def close(self) -> None:
        """Stop the thread; writes not yet started are dropped (after :meth:`finish` there are none)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _create(group: zarr.Group, name: str, array: np.ndarray) -> None:
    rows = chunk_rows(array.shape, array.dtype)
    group.create_array(name, data=array, chunks=(rows,) + tuple(array.shape[1:]), compressors=_COMPRESSORS)


def optional_array(group: zarr.Group, name: str) -> np.ndarray | None:
    """An array of the group, read whole.

    Args:
        group: a checkpoint's group.
        name: the array's name.

    Returns:
        The array, or None when the group has none of that name.
    """
    node = group.get(name)
    return np.asarray(node[:]) if isinstance(node, zarr.Array) else None


def required_array(group: zarr.Group, checkpoint_id: str, name: str) -> np.ndarray:
    """An array the caller needs, read whole.

    Args:
        group: the checkpoint's group.
        checkpoint_id: the checkpoint's id, for the message.
        name: the array's name.

    Returns:
        The array.

    Raises:
        KeyError: the group has no such array (the message lists the ones it has).
    """
    array = optional_array(group, name)
    if array is None:
        raise KeyError(f"{checkpoint_id}: no array {name!r} in its committed embeddings (have {sorted(group.array_keys())}).")
    return array


def ensure_group(node: Path) -> None:
    """Make ``node`` a zarr group unless it is one; another writer creating it at the same moment is no error.

    Args:
        node: a local folder.
    """
    if (node / "zarr.json").exists():
        return
    try:
        zarr.open_group(str(node), mode="a", use_consolidated=False)
    except zarr.errors.ContainsGroupError:
        pass  # another writer created it at the same moment


class StagedStore:
    """What both embedding implementations share.

    They supply ``provenance``, ``staged`` and ``path``; the whole-array write and the currency check are theirs through this base.
    """

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        """Supplied by the store (see ``EmbeddingArrays.provenance``).

        Args:
            checkpoint_id: the checkpoint's id.

        Returns:
            The committed provenance, or None.
        """
        raise NotImplementedError

    def staged(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> AbstractContextManager[GroupWriter]:
        """Supplied by the store (see ``EmbeddingArrays.staged``).

        Args:
            checkpoint_id: the checkpoint's id.
            fingerprint: the file's fingerprint.
            embedding_key: the reading's key.

        Returns:
            The staged write's context manager.
        """
        raise NotImplementedError

    def path(self, checkpoint_id: str) -> Any:
        """Supplied by the store (see ``EmbeddingArrays.path``).

        Args:
            checkpoint_id: the checkpoint's id.

        Returns:
            Where the committed group lies.
        """
        raise NotImplementedError

    def is_current(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> bool:
        """Whether the committed provenance names this fingerprint and embedding key.

        Args:
            checkpoint_id: the checkpoint's id.
            fingerprint: the file's fingerprint now.
            embedding_key: the reading's key now.

        Returns:
            True when both match.
        """
        held = self.provenance(checkpoint_id)
        return held is not None and held.get("fingerprint") == fingerprint and held.get("embedding_key") == embedding_key

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
        """Every array through the staged write, committed with ``attrs``.

        Args:
            checkpoint_id: the checkpoint's id.
            arrays: name -> array.
            attrs: the provenance (``fingerprint`` and ``embedding_key`` name a URL version).

        Returns:
            Where the committed group lies.
        """
        with self.staged(checkpoint_id, fingerprint=str(attrs.get("fingerprint", "")),
                         embedding_key=str(attrs.get("embedding_key", ""))) as writer:
            for name, array in arrays.items():
                writer.put(name, array)
            writer.finish(attrs)
        return str(self.path(checkpoint_id))
