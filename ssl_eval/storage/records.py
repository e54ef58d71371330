"""Records: small JSON documents beside the embeddings, the source of truth for results.

Layout (under the results root)::

    records/<family>/<run>/<checkpoint>/<part>.json     # metrics, probe, checkpoint, failure
    records/<family>/correlations.json                  # per-family analysis

A local record is written to a temporary file and moved into place with ``os.replace``;
on an fsspec URL each record is one object PUT. Either way a reader sees a whole record
or none.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ssl_eval.storage.urls import filesystem, is_url, join


def open_records(root: str | Path) -> "RecordStore":
    return UrlRecordStore(str(root)) if is_url(root) else RecordStore(root)


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
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=jsonable))
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


class UrlRecordStore(RecordStore):
    """Records on an fsspec URL: each record is one object PUT (whole or absent)."""

    def __init__(self, root: str) -> None:  # noqa: D107
        self.root = root.rstrip("/")  # type: ignore[assignment]
        self.fs, self._base = filesystem(self.root)

    def path(self, key: str, part: str) -> str:  # type: ignore[override]
        return join(self.root, key, f"{part}.json")

    def _key(self, key: str, part: str) -> str:
        return join(self._base, key, f"{part}.json")

    def get(self, key: str, part: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self._key(key, part)))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # never trust a damaged record: it is recomputed

    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        self.fs.pipe_file(self._key(key, part), json.dumps(record, indent=1, sort_keys=True, default=jsonable).encode())

    def delete(self, key: str, part: str) -> None:
        try:
            self.fs.rm(self._key(key, part))
        except FileNotFoundError:
            pass

    def parts(self, key: str, prefix: str = "") -> list[str]:
        found = self.fs.glob(join(self._base, key, f"{prefix}*.json"))
        return sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in found)

    def ids_with(self, part: str) -> list[str]:
        found = self.fs.glob(join(self._base, "*", "*", "*", f"{part}.json"))
        return sorted(p[len(self._base) + 1:].rsplit("/", 1)[0] for p in found)


def jsonable(value: Any) -> Any:
    """``json.dumps(default=...)``: numpy scalars and arrays as Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a record")
