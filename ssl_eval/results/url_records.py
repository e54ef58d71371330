"""Records on an fsspec URL: each record is one object PUT, whole or absent.

The interface is :class:`ssl_eval.results.records.RecordFiles`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import filesystem, join, redact
from ssl_eval.results.parts import Part, TypedRecords
from ssl_eval.results.records import SETTLED, encode_record, voided_settled_note


class UrlRecordFiles(TypedRecords):
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
        text = encode_record(record)
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
        family = voided_settled_note(key, part)
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
