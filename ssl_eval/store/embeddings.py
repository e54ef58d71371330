"""The embedding store: zarr arrays per checkpoint, committed atomically, plus JSON records.

Layout (under the work dir)::

    embeddings.zarr/<family>/<run>/<checkpoint>/{eval, probe_train, probe_test,
                                                 eval_labels, probe_train_labels, probe_test_labels}
    records/<family>/<run>/<checkpoint>/<part>.json     # metrics, probe, checkpoint, failure
    records/<family>/correlations.json                  # per-family analysis

A checkpoint's arrays are written into a staging group and moved into place with one
``os.replace``: a reader sees the whole group or none of it, and a process killed while
writing leaves only staging debris, never a group that looks complete. The group's
``attrs`` hold provenance (fingerprint, embedding key, epoch, source file).
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

SPLITS = ("eval", "probe_train", "probe_test")


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
        return bool(prov) and prov.get("fingerprint") == fingerprint and prov.get("embedding_key") == embedding_key

    def write(self, checkpoint_id: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
        """Write all arrays of one checkpoint, then commit them with one rename."""
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
        if name not in group:
            raise KeyError(f"{checkpoint_id}: no array {name!r} in the embedding store (have {sorted(group.array_keys())}).")
        return np.asarray(group[name][:])

    def read_optional(self, checkpoint_id: str, name: str) -> np.ndarray | None:
        group = zarr.open_group(str(self.path(checkpoint_id)), mode="r", use_consolidated=False)
        return np.asarray(group[name][:]) if name in group else None

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


class RecordStore:
    """Small JSON records beside the arrays: the source of truth for computed results."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str, part: str) -> Path:
        return self.root / key / f"{part}.json"

    def get(self, key: str, part: str) -> dict[str, Any] | None:
        file = self.path(key, part)
        if not file.is_file():
            return None
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError:
            return None  # never trust a damaged record: it is recomputed

    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        file = self.path(key, part)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=_jsonable))
        os.replace(tmp, file)

    def delete(self, key: str, part: str) -> None:
        self.path(key, part).unlink(missing_ok=True)

    def parts(self, key: str, prefix: str = "") -> list[str]:
        """Names of the records stored under ``key`` that start with ``prefix``."""
        return sorted(p.stem for p in (self.root / key).glob(f"{prefix}*.json"))

    def ids_with(self, part: str) -> list[str]:
        """Checkpoint ids (family/run/name) that hold a ``part`` record."""
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.glob(f"*/*/*/{part}.json"))

    def checkpoint_ids(self) -> list[str]:
        return self.ids_with("checkpoint")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a record")
