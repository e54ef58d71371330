"""Records: small JSON documents beside the embeddings, the source of truth for results.

:class:`RecordFiles` is the interface every caller uses; :func:`open_record_files` picks
one of its two implementations (:class:`LocalRecordStore`, :class:`UrlRecordStore`) by
the location it is given.

Layout (under the results root)::

    records/<family>/<run>/<checkpoint>/<part>.json     # metrics, probe, checkpoint, failure
    records/<family>/correlations.json                  # per-family analysis
    records/<family>/settled.json                       # the planner found nothing to do

``settled`` is the planner's note that it checked every record of the family against the
store and found nothing to do (``ssl_eval/pipeline/planning.py``). Any other write or deletion
under the family removes it, so it never outlives the records it vouches for.

Records are strict JSON (:mod:`ssl_eval.common.strict_json`): an undefined number (NaN, inf) is
written as null and read back as NaN by the readers that need a float; records written
before that rule, with bare NaN, still load.

A local record is written to a temporary file and moved into place with ``os.replace``;
on an fsspec URL each record is one object PUT. Either way a reader sees a whole record
or none.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import filesystem, is_url, join, redact
from ssl_eval.results.parts import Part, R, Record, TypedRecords

__all__ = ["SETTLED", "RecordFiles", "LocalRecordStore", "UrlRecordStore", "open_record_files", "jsonable"]

SETTLED = Part.SETTLED


class RecordFiles(Protocol):
    """Small JSON records beside the arrays: the source of truth for computed results.

    ``key`` is a checkpoint id (``family/run/checkpoint``) or a family; ``part`` names the record.
    """

    @property
    def root(self) -> str | Path:
        """The store's location (a local folder or a URL), for messages."""
        ...

    def get(self, key: str, part: str) -> dict[str, Any] | None:
        """The record, or None when there is none or it is damaged (it is then recomputed).

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: the record's name (``probe``, ``metrics-spectral``, ``correlations``, ...).

        Returns:
            The record, or None.
        """
        ...

    def read(self, key: str, part: str, model: type[R]) -> R | None:
        """The record as its model (:mod:`ssl_eval.results.parts`).

        Args:
            key: a checkpoint id or a family.
            part: a ``Part`` or ``metrics-<group>``.
            model: the record's model.

        Returns:
            The record; None when it is missing, damaged or of another shape (it is then recomputed).
        """
        ...

    def write(self, key: str, part: str, record: Record) -> None:
        """Write a record model as JSON (:meth:`put`), with the fields it was given.

        Args:
            key: a checkpoint id or a family.
            part: a ``Part`` or ``metrics-<group>``.
            record: the record.
        """
        ...

    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        """Write one record whole (or not at all); voids the family's settled note.

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: the record's name (``probe``, ``metrics-spectral``, ``correlations``, ...).
            record: JSON-ready values (numpy scalars and arrays allowed, see :func:`jsonable`);
                NaN and inf are stored as null (:mod:`ssl_eval.common.strict_json`).

        Raises:
            WorkdirError: the storage refuses the write: results that cannot be kept stop the run.
        """
        ...

    def delete(self, key: str, part: str) -> None:
        """Remove one record (nothing to do when it is gone); voids the family's settled note.

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: the record's name (``probe``, ``metrics-spectral``, ``correlations``, ...).
        """
        ...

    def parts(self, key: str, prefix: str = "") -> list[str]:
        """Names of the records stored under ``key`` that start with ``prefix``.

        Args:
            key: a checkpoint id or a family.
            prefix: e.g. ``metrics-``; "" for all.

        Returns:
            The part names, sorted.
        """
        ...

    def ids_with(self, part: str, family: str = "*") -> list[str]:
        """Checkpoint ids (family/run/name) that hold a ``part`` record, of one family or all.

        Args:
            part: the record's name.
            family: a family, or ``"*"`` for all.

        Returns:
            The ids, sorted.
        """
        ...

    def checkpoint_ids(self, family: str = "*") -> list[str]:
        """Checkpoint ids that hold a ``checkpoint`` record (embedded at least once).

        Args:
            family: a family, or ``"*"`` for all.

        Returns:
            The ids, sorted.
        """
        ...

    def families(self) -> list[str]:
        """Families holding at least one checkpoint record.

        Returns:
            Their names, sorted.
        """
        ...


def open_record_files(root: str | Path) -> RecordFiles:
    """The record store at a local path (or ``file://`` URL) or an fsspec URL.

    Args:
        root: the ``records`` folder or URL.

    Returns:
        A :class:`LocalRecordStore` or a :class:`UrlRecordStore`.
    """
    return UrlRecordStore(str(root)) if is_url(root) else LocalRecordStore(str(root).removeprefix("file://"))


def _encode(record: Mapping[str, Any]) -> str:
    return strict_json.encode(record, indent=1, sort_keys=True, default=jsonable)


def _settled_note(key: str, part: str) -> str | None:
    """The family whose settled note a change of (key, part) voids; None for the note itself."""
    return None if part == SETTLED else key.split("/", 1)[0]


class LocalRecordStore(TypedRecords):
    """Records in a local folder: a temporary file moved into place with ``os.replace``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str, part: str) -> Path:
        """The file of one record.

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: the record's name (``probe``, ``metrics-spectral``, ``correlations``, ...).

        Returns:
            ``<root>/<key>/<part>.json`` (it may not exist).
        """
        return self.root / key / f"{part}.json"

    def get(self, key: str, part: str) -> dict[str, Any] | None:
        """See :meth:`RecordFiles.get`."""
        file = self.path(key, part)
        if not file.is_file():
            return None
        try:
            return strict_json.decode(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # never trust a damaged record: it is recomputed

    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        """See :meth:`RecordFiles.put`."""
        text = _encode(record)
        try:
            self._unsettle(key, part)
            self._replace(self.path(key, part), text)
        except OSError as exc:
            raise WorkdirError.writing(redact(str(self.root)), exc) from exc

    @staticmethod
    def _replace(file: Path, text: str) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, file)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, key: str, part: str) -> None:
        """See :meth:`RecordFiles.delete`."""
        self._unsettle(key, part)
        self.path(key, part).unlink(missing_ok=True)

    def _unsettle(self, key: str, part: str) -> None:
        """Any change under a family voids the planner's note that it is settled (first, so the note never outlives the change)."""
        family = _settled_note(key, part)
        if family is not None:
            self.path(family, SETTLED).unlink(missing_ok=True)

    def parts(self, key: str, prefix: str = "") -> list[str]:
        """See :meth:`RecordFiles.parts`."""
        return sorted(p.stem for p in (self.root / key).glob(f"{prefix}*.json"))

    def ids_with(self, part: str, family: str = "*") -> list[str]:
        """See :meth:`RecordFiles.ids_with`."""
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.glob(f"{family}/*/*/{part}.json"))

    def checkpoint_ids(self, family: str = "*") -> list[str]:
        """See :meth:`RecordFiles.checkpoint_ids`."""
        return self.ids_with(Part.CHECKPOINT, family)

    def families(self) -> list[str]:
        """Families holding at least one checkpoint record.

        Each family is listed only until its first one, so this costs the number of families, not of
        checkpoints.

        Returns:
            The family names, sorted.
        """
        if not self.root.is_dir():
            return []
        with os.scandir(self.root) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith((".", "_")))
        return [name for name in names if next(iter(self.root.glob(f"{name}/*/*/{Part.CHECKPOINT}.json")), None) is not None]


class UrlRecordStore(TypedRecords):
    """Records on an fsspec URL: each record is one object PUT (whole or absent)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._fs, self._base = filesystem(self.root)

    def path(self, key: str, part: str) -> str:
        """The URL of one record.

        Args:
            key: a checkpoint id (``family/run/checkpoint``) or a family.
            part: the record's name (``probe``, ``metrics-spectral``, ``correlations``, ...).

        Returns:
            ``<root>/<key>/<part>.json`` (it may not exist).
        """
        return join(self.root, key, f"{part}.json")

    def _key(self, key: str, part: str) -> str:
        return join(self._base, key, f"{part}.json")

    def get(self, key: str, part: str) -> dict[str, Any] | None:
        """See :meth:`RecordFiles.get`."""
        try:
            return strict_json.decode(self._fs.cat_file(self._key(key, part)))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # never trust a damaged record: it is recomputed

    def put(self, key: str, part: str, record: Mapping[str, Any]) -> None:
        """See :meth:`RecordFiles.put`."""
        text = _encode(record)
        try:
            self._unsettle(key, part)
            self._fs.pipe_file(self._key(key, part), text.encode())
        except OSError as exc:
            raise WorkdirError.writing(redact(self.root), exc) from exc

    def delete(self, key: str, part: str) -> None:
        """See :meth:`RecordFiles.delete`."""
        self._unsettle(key, part)
        self._remove(key, part)

    def _unsettle(self, key: str, part: str) -> None:
        family = _settled_note(key, part)
        if family is not None:
            self._remove(family, SETTLED)

    def _remove(self, key: str, part: str) -> None:
        try:
            self._fs.rm(self._key(key, part))
        except FileNotFoundError:
            pass

    def parts(self, key: str, prefix: str = "") -> list[str]:
        """See :meth:`RecordFiles.parts`."""
        found = self._fs.glob(join(self._base, key, f"{prefix}*.json"))
        return sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in found)

    def ids_with(self, part: str, family: str = "*") -> list[str]:
        """See :meth:`RecordFiles.ids_with`."""
        found = self._fs.glob(join(self._base, family, "*", "*", f"{part}.json"))
        return sorted(p[len(self._base) + 1:].rsplit("/", 1)[0] for p in found)

    def checkpoint_ids(self, family: str = "*") -> list[str]:
        """See :meth:`RecordFiles.checkpoint_ids`."""
        return self.ids_with(Part.CHECKPOINT, family)

    def families(self) -> list[str]:
        """See :meth:`RecordFiles.families`."""
        return sorted({cid.split("/", 1)[0] for cid in self.checkpoint_ids()})


def jsonable(value: Any) -> Any:
    """The JSON encoder's ``default`` hook: numpy scalars and arrays as Python values.

    It converts what :func:`ssl_eval.common.strict_json.strict` has not converted already.

    Args:
        value: a value ``json`` cannot encode itself.

    Returns:
        The Python scalar or (nested) list.

    Raises:
        TypeError: any other type (naming it).
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a record")
