"""The report document: the JSON documented in the README, read from the work dir only.

It shows the analyses and verdicts the monitor flow stored, never computes them: a family
whose stored answers no longer answer for its records or for the configuration as the next
run would resolve it is marked ``stale`` ("stale, run `ssl-eval evaluate`", with the reasons),
so every surface shows what MLflow and the Prefect artifact show.
"""

from __future__ import annotations

from typing import Any

from ssl_eval.analysis import (
    ANALYSIS_VERSION,
    STALE_HINT,
    StoredAnswers,
    alerts,
    current_config,
    families,
    family_rows,
    rows_digest,
    stored_answers,
    stored_pooled,
)
from ssl_eval.common.names import display_name
from ssl_eval.common.strict_json import encode
from ssl_eval.config import Config
from ssl_eval.metrics import METRICS
from ssl_eval.results.answers import answers_key
from ssl_eval.results.parts import Part
from ssl_eval.results.workspace import Workspace

__all__ = ["SCHEMA_VERSION", "collect", "failures", "gone", "stale_entry", "stale_line", "to_json"]

#: 3: families.<family>.verdict, alerts.reasons, and strict JSON (null where undefined,
#: the rule of :mod:`ssl_eval.common.strict_json`).
#: 4: the stored answers only: families.<family>.stale and pooled.stale (null when current, else
#: ``text`` and ``reasons``); a family without a stored verdict has ``verdict`` null.
SCHEMA_VERSION = 4
_POOLED_FIELDS = ("families", "archs", "n_checkpoints", "late_fraction", "raw", "within_family_rank")


def _listed(workspace: Workspace, part: Part) -> list[dict[str, Any]]:
    records = workspace.records
    return [{"id": key, **rec} for key in records.ids_with(part) if (rec := records.get(key, part))]


def failures(workspace: Workspace) -> list[dict[str, Any]]:
    """Checkpoints whose embedding failed, with their failure records.

    Args:
        workspace: the work dir to read.

    Returns:
        One dict per failed checkpoint: ``id`` and the record (``error``, ``permanent``, ...).
    """
    return _listed(workspace, Part.FAILURE)


def gone(workspace: Workspace) -> list[dict[str, Any]]:
    """Checkpoints deleted from the store: left out of the analyses, their records kept.

    Args:
        workspace: the work dir to read.

    Returns:
        One dict per deleted checkpoint: ``id`` and the record (``source``, ``time``).
    """
    return _listed(workspace, Part.GONE)


def _registry_order(correlations: dict[str, Any]) -> dict[str, Any]:
    """Metrics in the registry's order (records store keys sorted alphabetically)."""
    return {name: correlations[name] for name in METRICS if name in correlations}


def stale_entry(reasons: tuple[str, ...] | list[str]) -> dict[str, Any] | None:
    """The ``stale`` entry of a family or of the pooled analysis in the report.

    Args:
        reasons: why the stored answers are stale; empty when they are current.

    Returns:
        None when current, else ``text`` ("stale, run `ssl-eval evaluate`") and ``reasons``.
    """
    return {"text": STALE_HINT, "reasons": list(reasons)} if reasons else None


def _family_entry(family: str, rows: list[dict[str, Any]], stored: StoredAnswers) -> dict[str, Any]:
    """A family's entry: its stored verdict first (the answer before the numbers), then whether it is stale."""
    analysis = stored.analysis
    return {
        "verdict": stored.verdict.answers() if stored.verdict is not None else None,
        "stale": stale_entry(stored.stale),
        "name": display_name(family),  # the folder's name; the key is the family's id
        "checkpoints": rows,
        "late_fraction": analysis.late_fraction if analysis is not None else None,
        "alerts": (analysis.alerts if analysis is not None else None) or alerts(rows),
        "correlations": _registry_order(analysis.metrics) if analysis is not None else {},
    }


def _pooled_entry(workspace: Workspace, doc: dict[str, Any]) -> dict[str, Any]:
    """The stored pooled analysis, and whether it is stale; empty without families."""
    if not doc["families"]:
        return {}
    pooled = stored_pooled(workspace)
    rows = [{**r, "family": f} for f, data in doc["families"].items() for r in data["checkpoints"]]
    if pooled is None:
        return {"stale": stale_entry(["no pooled analysis stored"])}
    stale = ["the pooled analysis was written by another version of ssl-eval"] if pooled.version != ANALYSIS_VERSION else []
    if not stale and pooled.inputs_digest != rows_digest(rows):
        stale.append("the records changed since the pooled analysis")
    found = pooled.model_dump(mode="python", include=set(_POOLED_FIELDS))
    entry = {k: _registry_order(found[k]) if k in ("raw", "within_family_rank") else found[k] for k in _POOLED_FIELDS}
    return {**entry, "stale": stale_entry(stale)}


def collect(workspace: Workspace, *, config: Config | None = None) -> dict[str, Any]:
    """The report document (the JSON documented in the README); only reads the work dir.

    Args:
        workspace: the work dir to read.
        config: the configuration to hold the stored answers to; None: as the next monitor run
            would resolve it (:func:`~ssl_eval.analysis.current_config`), not compared when it
            cannot be known.

    Returns:
        ``schema_version``, ``workdir``, ``configuration_unchecked`` (why the stored answers could
        not be held to the configuration, or None), ``families`` (each with its stored verdict first,
        ``stale``, checkpoints, alerts, correlations), ``pooled``, ``failures`` and ``gone``.
    """
    unchecked = None
    if config is None:
        config, unchecked = current_config(workspace)
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "workdir": str(workspace.root),
                           "configuration_unchecked": unchecked, "families": {}}
    for family in families(workspace):
        rows = family_rows(workspace, family)
        key = answers_key(config, family) if config is not None else None
        doc["families"][family] = _family_entry(family, rows, stored_answers(workspace, family, answers_key=key,
                                                                               digest=rows_digest(rows)))
    doc["pooled"] = _pooled_entry(workspace, doc)
    doc["failures"] = failures(workspace)
    doc["gone"] = gone(workspace)
    return doc


def to_json(doc: dict[str, Any]) -> str:
    """The report as strict JSON: null where a value is undefined, never NaN or Infinity.

    Args:
        doc: the report document (:func:`collect`).

    Returns:
        The JSON text (indent 1).
    """
    return encode(doc, indent=1)


def stale_line(stale: dict[str, Any]) -> str:
    """A ``stale`` entry as one line: the hint, then the reasons.

    Args:
        stale: the entry (:func:`stale_entry`).

    Returns:
        e.g. ``stale, run `ssl-eval evaluate` (the configuration changed since the verdict)``.
    """
    return f"{stale['text']} ({'; '.join(stale['reasons'])})"
