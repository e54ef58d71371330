"""The report as CSV: one row per checkpoint, for pandas or a spreadsheet.

Columns: ``family, run, epoch, checkpoint, method, arch``, every metric present (registry
order; ``ami_ground_truth`` is the k-means agreement with the labels), ``probe_<name>`` for
each probe accuracy, and ``flags`` (``;``-joined). An undefined value is an empty cell,
which pandas reads as NaN. Store-derived text is written as data, never as a formula: a
cell that a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@`` first) gets a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from ssl_eval.common.safe_text import printable
from ssl_eval.metrics import METRICS

ID_COLUMNS = ("family", "run", "epoch", "checkpoint", "method", "arch")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> str:
    text = "" if value is None else printable(value)  # a control code from the store never reaches a terminal raw
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(float(value))


def to_csv(doc: dict[str, Any]) -> str:
    """The report document from :func:`ssl_eval.reporting.report.collect` as CSV text, one row per checkpoint.

    Args:
        doc: the report document.

    Returns:
        The CSV text (header first, Unix line ends, store text never a formula).
    """
    rows = [(family, r) for family, data in doc["families"].items() for r in data["checkpoints"]]
    present = {name for _, r in rows for name in r["metrics"]}
    metric_columns = [name for name in METRICS if name in present] + sorted(present - set(METRICS))
    probe_columns = sorted({name for _, r in rows for name in r["probe"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*ID_COLUMNS, *metric_columns, *(f"probe_{p}" for p in probe_columns), "flags"])
    for family, r in rows:
        writer.writerow([
            _text(family), _text(r["run"]), "" if r.get("epoch") is None else int(r["epoch"]),
            _text(r["id"].split("/", 2)[-1]), _text(r.get("method")), _text(r.get("arch")),
            *(_number(r["metrics"].get(name)) for name in metric_columns),
            *(_number(r["probe"].get(name)) for name in probe_columns),
            _text(";".join(r.get("flags", []))),
        ])
    return out.getvalue()
