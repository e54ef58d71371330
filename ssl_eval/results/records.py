"""Records: small JSON documents beside the embeddings, the source of truth for results.

:class:`RecordFiles` is the interface every caller uses; :func:`open_record_files` picks
one of its two implementations (:class:`~ssl_eval.results.local_records.LocalRecordFiles`,
:class:`~ssl_eval.results.url_records.UrlRecordFiles`) by the location it is given.

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

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ssl_eval.common import strict_json
from ssl_eval.common.urls import is_url
from ssl_eval.results.parts import Part, R, Record

__all__ = ["SETTLED", "RecordFiles", "encode_record", "jsonable", "open_record_files", "voided_settled_note"]

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
        A :class:`~ssl_eval.results.local_records.LocalRecordFiles` or a :class:`~ssl_eval.results.url_records.UrlRecordFiles`.
    """
    # imported here: each implementation imports this module's encoder and settled-note rule
    from ssl_eval.results.local_records import LocalRecordFiles
    from ssl_eval.results.url_records import UrlRecordFiles

    return UrlRecordFiles(str(root)) if is_url(root) else LocalRecordFiles(str(root).removeprefix("file://"))


def encode_record(record: Mapping[str, Any]) -> str:
    """A record as the text both implementations write.

    Args:
        record: the record's fields.

    Returns:
        Strict JSON, one space of indent, keys sorted.
    """
    return strict_json.encode(record, indent=1, sort_keys=True, default=jsonable)


def voided_settled_note(key: str, part: str) -> str | None:
    """The family whose settled note a change of (key, part) voids.

    Args:
        key: a checkpoint id or a family.
        part: the record's name.

    Returns:
        The family, or None for the settled note itself.
    """
    return None if part == SETTLED else key.split("/", 1)[0]


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
