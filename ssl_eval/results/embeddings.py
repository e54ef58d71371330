"""The embedding store: zarr arrays per checkpoint, committed atomically.

:class:`EmbeddingArrays` is the interface every caller uses; :func:`open_embedding_arrays`
picks one of its two implementations by the location it is given.

Layout (under the work dir)::

    embeddings.zarr/<family>/<run>/<checkpoint>/{eval, probe_train, probe_test,
                                                 eval_labels, probe_train_labels, probe_test_labels}

In a local folder (:class:`LocalEmbeddingStore`) a checkpoint's arrays are written into a
staging group and moved into place with one ``os.replace``: a reader sees the whole group
or none of it, and a process killed while writing leaves only staging debris, never a
group that looks complete. The group's ``attrs`` hold provenance (fingerprint, embedding
key, epoch, source file).

On an fsspec URL (:class:`UrlEmbeddingStore`, ``s3://bucket/prefix/embeddings.zarr``)
there is no atomic rename, so the commit is a marker written last::

    <root>/<checkpoint id>/<fingerprint>-<embedding key>/   # zarr group: arrays, then attrs
    <root>/<checkpoint id>/commit.json                      # {"version": ..., "attributes": ...}

The arrays go to a path named for exactly this file and data configuration; only when all
of them are written is ``commit.json`` put (one object PUT: whole or absent). Readers trust
only the version the marker names, so a half-written version is never read; a killed
writer's version is overwritten by the next attempt (same name) and older versions are
deleted after a new marker lands. Two writers of the same checkpoint write the same bytes
to the same keys (the embedding is deterministic for a file and configuration): duplicate
work wastes time but never mixes versions. Records are single-object PUTs too.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import zarr

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import filesystem, is_url, join, redact, storage_options
from ssl_eval.results.records import jsonable
from ssl_eval.results.zarr_groups import ensure_group, fill_group, optional_array, required_array

if TYPE_CHECKING:
    import dask.array

__all__ = ["SPLITS", "EmbeddingArrays", "LocalEmbeddingStore", "UrlEmbeddingStore", "open_embedding_arrays"]

SPLITS = ("eval", "probe_train", "probe_test")
COMMIT = "commit.json"


class EmbeddingArrays(Protocol):
    """Where each checkpoint's embeddings are committed whole and read back."""

    @property
    def root(self) -> str | Path:
        """The store's location (a local folder or a URL), for messages."""
        ...

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        """The committed group's attributes, or None when nothing is committed for this id.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).

        Returns:
            The provenance (fingerprint, embedding key, epoch, source file, ...), or None.
        """
        ...

    def is_current(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> bool:
        """Whether the committed group was made from this file (fingerprint) read this way (embedding key).

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            fingerprint: the file's fingerprint now.
            embedding_key: ``config.embedding_key(family)`` now.

        Returns:
            True when both match the committed provenance.
        """
        ...

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
        """Commit all ``arrays`` of one checkpoint with ``attrs`` as its provenance, whole or not at all.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            arrays: array name -> array (rows chunked by 4096).
            attrs: the provenance (JSON-ready; ``fingerprint`` and ``embedding_key`` name a URL version).

        Returns:
            Where the committed group lies (path or URL).

        Raises:
            WorkdirError: the storage refuses the write (full, read-only, no permission).
        """
        ...

    def read(self, checkpoint_id: str, name: str) -> np.ndarray:
        """The committed array ``name``.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            name: an array name (``eval``, ``probe_train_labels``, ...).

        Returns:
            The whole array in memory.

        Raises:
            FileNotFoundError: nothing is committed for this id.
            KeyError: no such array (the message names the arrays there are).
        """
        ...

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        """The committed array ``name``, or None when the checkpoint has none (e.g. no labels).

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            name: an array name (``eval``, ``probe_train_labels``, ...).

        Returns:
            The array, or None.

        Raises:
            FileNotFoundError: nothing is committed for this id.
        """
        ...

    def dask_array(self, checkpoint_id: str, name: str) -> dask.array.Array:
        """The committed array ``name`` as a lazy dask array, chunked as stored.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            name: an array name (``eval``, ``probe_train_labels``, ...).

        Returns:
            The dask array (nothing read yet).
        """
        ...

    def clean_staging(self) -> int:
        """Remove the debris of writes whose process is gone (a live writer's is left alone).

        Returns:
            How many entries went (always 0 on a URL: an uncommitted version is invisible).
        """
        ...


def open_embedding_arrays(root: str | Path) -> EmbeddingArrays:
    """The embedding store at a local path (or ``file://`` URL) or an fsspec URL.

    Args:
        root: the ``embeddings.zarr`` folder or URL (a local one is created).

    Returns:
        A :class:`LocalEmbeddingStore` or a :class:`UrlEmbeddingStore`.
    """
    return UrlEmbeddingStore(str(root)) if is_url(root) else LocalEmbeddingStore(str(root).removeprefix("file://"))


def _matches(provenance: dict[str, Any] | None, fingerprint: str, embedding_key: str) -> bool:
    return provenance is not None and provenance.get("fingerprint") == fingerprint and provenance.get("embedding_key") == embedding_key


class LocalEmbeddingStore:
    """The embedding store in a local folder: staging group, then one ``os.replace``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_group(self.root)

    def path(self, checkpoint_id: str) -> Path:
        """The folder of a checkpoint's group.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).

        Returns:
            ``<root>/<checkpoint_id>`` (it may not exist).
        """
        return self.root / checkpoint_id

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        """See :meth:`EmbeddingArrays.provenance`."""
        meta = self.path(checkpoint_id) / "zarr.json"
        if not meta.is_file():
            return None
        return dict(json.loads(meta.read_text()).get("attributes", {}))

    def is_current(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> bool:
        """See :meth:`EmbeddingArrays.is_current`."""
        return _matches(self.provenance(checkpoint_id), fingerprint, embedding_key)

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
        """See :meth:`EmbeddingArrays.write`."""
        try:
            return str(self._write(checkpoint_id, arrays, attrs))
        except OSError as exc:
            raise WorkdirError.writing(redact(str(self.root)), exc) from exc

    def _write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
        staging = self.root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            fill_group(zarr.open_group(str(staging), mode="w"), arrays, attrs)
            final = self.path(checkpoint_id)
            final.parent.mkdir(parents=True, exist_ok=True)
            self._ensure_parent_groups(checkpoint_id)
            if final.exists():  # a rewritten checkpoint: move the old group aside, then swap
                trash = self.root / ".staging" / f"{os.getpid()}-old-{uuid.uuid4().hex}"
                os.replace(final, trash)
                os.replace(staging, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(staging, final)
            return final
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _ensure_parent_groups(self, checkpoint_id: str) -> None:
        parts = checkpoint_id.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            ensure_group(self.root.joinpath(*parts[:depth]))

    def _group(self, checkpoint_id: str) -> zarr.Group:
        if not (self.path(checkpoint_id) / "zarr.json").is_file():
            raise FileNotFoundError(f"{checkpoint_id}: no committed embeddings in {self.root}; embed the checkpoint first.")
        return zarr.open_group(str(self.path(checkpoint_id)), mode="r", use_consolidated=False)

    def read(self, checkpoint_id: str, name: str) -> np.ndarray:
        """See :meth:`EmbeddingArrays.read`."""
        return required_array(self._group(checkpoint_id), checkpoint_id, name)

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        """See :meth:`EmbeddingArrays.read_optional`."""
        return optional_array(self._group(checkpoint_id), name)

    def dask_array(self, checkpoint_id: str, name: str) -> dask.array.Array:
        """See :meth:`EmbeddingArrays.dask_array`."""
        import dask.array as da

        return da.from_zarr(str(self.path(checkpoint_id)), component=name)

    def clean_staging(self) -> int:
        """Remove debris of writes whose process is gone (killed mid-write); a live writer's staging group is left alone.

        Returns how many entries went.

        Returns:
            How many entries were removed.
        """
        staging = self.root / ".staging"
        if not staging.exists():
            return 0
        removed = 0
        for entry in staging.iterdir():
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class UrlEmbeddingStore:
    """The embedding store on an fsspec URL: version paths and a commit marker written last (see the module docstring).

    Nothing is created until the first write.
    """

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._fs, self._base = filesystem(self.root)
        self._options = storage_options(self.root)

    def _marker(self, checkpoint_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._fs.cat_file(join(self._base, checkpoint_id, COMMIT)))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def path(self, checkpoint_id: str) -> str:
        """URL of the committed version (of the checkpoint's folder when none is committed).

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).

        Returns:
            The URL.
        """
        marker = self._marker(checkpoint_id)
        return join(self.root, checkpoint_id, marker["version"]) if marker else join(self.root, checkpoint_id)

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        """See :meth:`EmbeddingArrays.provenance`."""
        marker = self._marker(checkpoint_id)
        return dict(marker["attributes"]) if marker else None

    def is_current(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> bool:
        """See :meth:`EmbeddingArrays.is_current`."""
        return _matches(self.provenance(checkpoint_id), fingerprint, embedding_key)

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
        """See :meth:`EmbeddingArrays.write`."""
        try:
            return self._write(checkpoint_id, arrays, attrs)
        except OSError as exc:
            raise WorkdirError.writing(redact(self.root), exc) from exc

    def _write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
        version = f"{attrs.get('fingerprint', 'nofp')}-{attrs.get('embedding_key', 'nokey')}"
        url = join(self.root, checkpoint_id, version)
        fill_group(zarr.open_group(url, mode="w", storage_options=self._options), arrays, attrs)  # mode "w" clears a killed writer's debris
        marker = strict_json.encode({"version": version, "attributes": dict(attrs)}, default=jsonable).encode()
        self._fs.pipe_file(join(self._base, checkpoint_id, COMMIT), marker)  # the commit
        for entry in self._fs.ls(join(self._base, checkpoint_id), detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1] not in (version, COMMIT):
                self._fs.rm(entry, recursive=True)  # older versions, no longer named by the marker
        return url

    def _group(self, checkpoint_id: str) -> zarr.Group:
        marker = self._marker(checkpoint_id)
        if marker is None:
            raise FileNotFoundError(f"{checkpoint_id}: no committed embeddings in {redact(self.root)}; embed the checkpoint first.")
        return zarr.open_group(join(self.root, checkpoint_id, marker["version"]), mode="r", use_consolidated=False,
                               storage_options=self._options)

    def read(self, checkpoint_id: str, name: str) -> np.ndarray:
        """See :meth:`EmbeddingArrays.read`."""
        return required_array(self._group(checkpoint_id), checkpoint_id, name)

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        """See :meth:`EmbeddingArrays.read_optional`."""
        return optional_array(self._group(checkpoint_id), name)

    def dask_array(self, checkpoint_id: str, name: str) -> dask.array.Array:
        """See :meth:`EmbeddingArrays.dask_array`."""
        import dask.array as da

        return da.from_zarr(self.path(checkpoint_id), component=name, storage_options=self._options)

    def clean_staging(self) -> int:
        """Nothing to do: an uncommitted version is invisible and rewritten by the next attempt."""
        return 0
