"""The embedding store: zarr arrays per checkpoint, committed atomically.

Layout (under the work dir)::

    embeddings.zarr/<family>/<run>/<checkpoint>/{eval, probe_train, probe_test,
                                                 eval_labels, probe_train_labels, probe_test_labels}

A checkpoint's arrays are written into a staging group and moved into place with one
``os.replace``: a reader sees the whole group or none of it, and a process killed while
writing leaves only staging debris, never a group that looks complete. The group's
``attrs`` hold provenance (fingerprint, embedding key, epoch, source file).

On an fsspec URL (``s3://bucket/prefix/embeddings.zarr``) there is no atomic rename, so
the commit is a marker written last::

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
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import zarr

from ssl_eval.storage.errors import WorkdirError
from ssl_eval.storage.records import jsonable
from ssl_eval.storage.urls import filesystem, is_url, join, redact, storage_options

SPLITS = ("eval", "probe_train", "probe_test")
COMMIT = "commit.json"


def open_store(root: str | Path) -> "EmbeddingStore":
    """An embedding store at a local path or an fsspec URL."""
    return UrlEmbeddingStore(str(root)) if is_url(root) else EmbeddingStore(root)


class EmbeddingStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        _ensure_group(self.root)

    def path(self, checkpoint_id: str) -> Path:
        return self.root / checkpoint_id

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        """The committed group's attrs, or None when nothing is committed for this id."""
        meta = self.path(checkpoint_id) / "zarr.json"
        if not meta.is_file():
            return None
        return dict(json.loads(meta.read_text()).get("attributes", {}))

    def is_current(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> bool:
        prov = self.provenance(checkpoint_id)
        return prov is not None and prov.get("fingerprint") == fingerprint and prov.get("embedding_key") == embedding_key

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
        """Write all arrays of one checkpoint, then commit them with one rename. A write
        the file system refuses (full, read-only, no permission) raises WorkdirError."""
        try:
            return self._write(checkpoint_id, arrays, attrs)
        except OSError as exc:
            raise WorkdirError.writing(redact(str(self.root)), exc) from exc

    def _write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
        staging = self.root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            group = zarr.open_group(str(staging), mode="w")
            for name, array in arrays.items():
                rows = max(1, min(len(array), 4096))
                chunks = (rows,) + tuple(array.shape[1:])
                group.create_array(name, data=np.ascontiguousarray(array), chunks=chunks)
            group.attrs.update(dict(attrs))
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
            _ensure_group(self.root.joinpath(*parts[:depth]))

    def read(self, checkpoint_id: str, name: str) -> np.ndarray:
        group = zarr.open_group(str(self.path(checkpoint_id)), mode="r", use_consolidated=False)
        node = group.get(name)
        if not isinstance(node, zarr.Array):
            raise KeyError(f"{checkpoint_id}: no array {name!r} in the embedding store (have {sorted(group.array_keys())}).")
        return np.asarray(node[:])

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        group = zarr.open_group(str(self.path(checkpoint_id)), mode="r", use_consolidated=False)
        node = group.get(name)
        return np.asarray(node[:]) if isinstance(node, zarr.Array) else None

    def dask_array(self, checkpoint_id: str, name: str):
        import dask.array as da

        return da.from_zarr(str(self.path(checkpoint_id)), component=name)

    def clean_staging(self) -> int:
        """Remove debris of writes whose process is gone (killed mid-write); a live
        writer's staging group is left alone. Returns how many entries went."""
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


def _ensure_group(node: Path) -> None:
    if (node / "zarr.json").exists():
        return
    try:
        zarr.open_group(str(node), mode="a", use_consolidated=False)
    except zarr.errors.ContainsGroupError:
        pass  # another writer created it at the same moment


class UrlEmbeddingStore(EmbeddingStore):
    """The embedding store on an fsspec URL: version paths and a commit marker written
    last (see the module docstring). Same methods as :class:`EmbeddingStore`."""

    def __init__(self, root: str) -> None:  # noqa: D107 - no directories to create on an object store
        self.root = root.rstrip("/")
        self.fs, self._base = filesystem(self.root)
        self.options = storage_options(self.root)

    def _marker(self, checkpoint_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(join(self._base, checkpoint_id, COMMIT)))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def path(self, checkpoint_id: str) -> str:  # type: ignore[override]
        """URL of the committed version (of the checkpoint's folder when none is committed)."""
        marker = self._marker(checkpoint_id)
        return join(self.root, checkpoint_id, marker["version"]) if marker else join(self.root, checkpoint_id)

    def provenance(self, checkpoint_id: str) -> dict[str, Any] | None:
        marker = self._marker(checkpoint_id)
        return dict(marker["attributes"]) if marker else None

    def _write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:  # type: ignore[override]
        version = f"{attrs.get('fingerprint', 'nofp')}-{attrs.get('embedding_key', 'nokey')}"
        url = join(self.root, checkpoint_id, version)
        group = zarr.open_group(url, mode="w", storage_options=self.options)  # clears a killed writer's debris
        for name, array in arrays.items():
            rows = max(1, min(len(array), 4096))
            group.create_array(name, data=np.ascontiguousarray(array), chunks=(rows,) + tuple(array.shape[1:]))
        group.attrs.update(dict(attrs))
        marker = json.dumps({"version": version, "attributes": dict(attrs)}, default=jsonable).encode()
        self.fs.pipe_file(join(self._base, checkpoint_id, COMMIT), marker)  # the commit
        for entry in self.fs.ls(join(self._base, checkpoint_id), detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1] not in (version, COMMIT):
                self.fs.rm(entry, recursive=True)  # older versions, no longer named by the marker
        return url

    def _group(self, checkpoint_id: str):
        marker = self._marker(checkpoint_id)
        if marker is None:
            raise FileNotFoundError(f"{checkpoint_id}: no committed embeddings in {self.root}; embed the checkpoint first.")
        return zarr.open_group(join(self.root, checkpoint_id, marker["version"]), mode="r", use_consolidated=False, storage_options=self.options)

    def read(self, checkpoint_id: str, name: str) -> np.ndarray:
        group = self._group(checkpoint_id)
        if name not in group:
            raise KeyError(f"{checkpoint_id}: no array {name!r} in the embedding store (have {sorted(group.array_keys())}).")
        return np.asarray(group[name][:])

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        group = self._group(checkpoint_id)
        return np.asarray(group[name][:]) if name in group else None

    def dask_array(self, checkpoint_id: str, name: str):
        import dask.array as da

        return da.from_zarr(self.path(checkpoint_id), component=name, storage_options=self.options)

    def clean_staging(self) -> int:
        """Nothing to do: an uncommitted version is invisible and rewritten by the next attempt."""
        return 0
