"""Each checkpoint's embeddings: zarr arrays per checkpoint, committed atomically.

:class:`EmbeddingArrays` is the interface every caller uses; :func:`open_embedding_arrays`
picks one of its two implementations by the location it is given.

Layout (under the work dir)::

    embeddings.zarr/<family>/<run>/<checkpoint>/{eval, probe_train, probe_test,
                                                 eval_labels, probe_train_labels, probe_test_labels}

In a local folder (:class:`~ssl_eval.results.local_embeddings.LocalEmbeddingArrays`) the
commit is one ``os.replace`` of a staging group; on an fsspec URL
(:class:`~ssl_eval.results.url_embeddings.UrlEmbeddingArrays`, ``s3://bucket/prefix/embeddings.zarr``),
where there is no atomic rename, it is a marker written last. Either way a reader sees a
checkpoint's whole group or none of it, and the group's attributes hold its provenance
(fingerprint, embedding key, epoch, source file).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ssl_eval.common.urls import is_url
from ssl_eval.results.local_embeddings import LocalEmbeddingArrays
from ssl_eval.results.url_embeddings import UrlEmbeddingArrays
from ssl_eval.results.zarr_groups import GroupWriter

if TYPE_CHECKING:
    import dask.array

__all__ = ["SPLITS", "EmbeddingArrays", "LocalEmbeddingArrays", "UrlEmbeddingArrays", "open_embedding_arrays"]

SPLITS = ("eval", "probe_train", "probe_test")


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

    def staged(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> AbstractContextManager[GroupWriter]:
        """A writer whose arrays are committed whole when the block ends after ``writer.finish(attrs)``.

        The :class:`~ssl_eval.results.zarr_groups.GroupWriter` writes while the block runs (on
        its thread); an error in the block, or no ``finish``, commits nothing.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).
            fingerprint: the file's fingerprint (names a URL version).
            embedding_key: ``config.embedding_key(family)`` (names a URL version).

        Returns:
            The context manager.

        Raises:
            WorkdirError: the storage refuses the write (full, read-only, no permission).
        """
        ...

    def path(self, checkpoint_id: str) -> str | Path:
        """Where the checkpoint's committed group lies.

        Args:
            checkpoint_id: the checkpoint's id (``family/run/checkpoint``).

        Returns:
            A path or URL.
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
        A :class:`LocalEmbeddingArrays` or a :class:`UrlEmbeddingArrays`.
    """
    return UrlEmbeddingArrays(str(root)) if is_url(root) else LocalEmbeddingArrays(str(root).removeprefix("file://"))
