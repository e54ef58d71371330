"""Embeddings on an fsspec URL, where there is no atomic rename: the commit is a marker written last.

The layout::

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
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import filesystem, join, redact, storage_options
from ssl_eval.results.records import jsonable
from ssl_eval.results.zarr_groups import GroupWriter, StagedStore, optional_array, required_array

if TYPE_CHECKING:
    import dask.array

__all__ = ["COMMIT", "UrlEmbeddingArrays"]

COMMIT = "commit.json"


class UrlEmbeddingArrays(StagedStore):
    """Embeddings on an fsspec URL: version paths and a commit marker written last (see the module docstring).

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

    @contextmanager
    def staged(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> Iterator[GroupWriter]:
        """See :meth:`EmbeddingArrays.staged`."""
        where = redact(self.root)
        try:
            version = f"{fingerprint or 'nofp'}-{embedding_key or 'nokey'}"
            url = join(self.root, checkpoint_id, version)
            writer = GroupWriter(zarr.open_group(url, mode="w", storage_options=self._options), where)
            with closing(writer):
                yield writer
            if writer.finished:
                self._commit(checkpoint_id, version, writer.attrs)
        except OSError as exc:
            raise WorkdirError.writing(where, exc) from exc

    def _commit(self, checkpoint_id: str, version: str, attrs: Mapping[str, Any]) -> None:
        marker = strict_json.encode({"version": version, "attributes": dict(attrs)}, default=jsonable).encode()
        self._fs.pipe_file(join(self._base, checkpoint_id, COMMIT), marker)  # the commit
        for entry in self._fs.ls(join(self._base, checkpoint_id), detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1] not in (version, COMMIT):
                self._fs.rm(entry, recursive=True)  # older versions and killed writers' debris

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
