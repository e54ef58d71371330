"""Records in a local folder: each a temporary file moved into place with ``os.replace``.

The interface is :class:`ssl_eval.results.records.RecordFiles`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssl_eval.common import strict_json
from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import redact
from ssl_eval.results.parts import Part, TypedRecords
from ssl_eval.results.records import SETTLED, encode_record, voided_settled_note


class LocalRecordFiles(TypedRecords):
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
        text = encode_record(record)
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
        family = voided_settled_note(key, part)
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
