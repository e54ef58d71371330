"""Embeddings in a local folder: a staging group, then one ``os.replace``.

A reader sees the whole group or none of it, and a process killed while writing leaves only
staging debris (removed by ``clean_staging`` once its writer is gone), never a group that looks
complete.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import redact
from ssl_eval.results.zarr_groups import GroupWriter, StagedStore, ensure_group, optional_array, required_array

if TYPE_CHECKING:
    import dask.array

__all__ = ["LocalEmbeddingArrays"]


class LocalEmbeddingArrays(StagedStore):
    """Embeddings in a local folder: staging group, then one ``os.replace``."""

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

    @contextmanager
    def staged(self, checkpoint_id: str, *, fingerprint: str, embedding_key: str) -> Iterator[GroupWriter]:
        """See :meth:`EmbeddingArrays.staged`."""
        del fingerprint, embedding_key  # the staging folder is this write's own
        staging = self.root / ".staging" / f"{os.getpid()}-{uuid.uuid4().hex}"
        where = redact(str(self.root))
        try:
            staging.parent.mkdir(parents=True, exist_ok=True)
            writer = GroupWriter(zarr.open_group(str(staging), mode="w"), where)
        except OSError as exc:
            raise WorkdirError.writing(where, exc) from exc
        try:
            with closing(writer):
                yield writer
            if writer.finished:
                self._commit(checkpoint_id, staging)
        except OSError as exc:
            raise WorkdirError.writing(where, exc) from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, checkpoint_id: str, staging: Path) -> None:
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
