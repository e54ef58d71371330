"""How much to believe a family's stop and keep: the validation shipped with the tool.

``evidence.json`` beside this module is written by ``python benchmarks/verdict.py ...
--evidence ssl_eval/verdict/evidence.json`` (docs/verdicts.md): per SSL method, the median
probe points the label-free stop and keep lost on held-out trajectories, the same for a
fixed stop epoch chosen on other data, and whether the bootstrap interval of their
difference lies below zero. A verdict names what that validation showed for its method, or
that its method was never validated, instead of sounding equally sure everywhere.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["EVIDENCE_FILE", "belief", "shipped"]

EVIDENCE_FILE = Path(__file__).with_name("evidence.json")


@functools.cache
def shipped() -> dict[str, dict[str, Any]]:
    """The shipped per-method evidence (method -> its numbers); empty when none is shipped.

    Returns:
        method -> ``verdict_median_lost``, ``fixed_median_lost``, ``difference``, ``ci_low``,
        ``ci_high``, ``beats_fixed``, ``runs``.
    """
    try:
        return dict(json.loads(EVIDENCE_FILE.read_text())["methods"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def belief(method: str | None) -> dict[str, Any]:
    """What the shipped validation says about the stop and keep for runs of ``method``.

    Args:
        method: the family's SSL method (None when unknown).

    Returns:
        ``validated`` (bool), ``beats_fixed`` (bool or None), the numbers where validated, and
        ``text``: one sentence for the summary.
    """
    found = shipped().get(method or "")
    if not found:
        what = f"{method} runs" if method else "runs of an unknown method"
        return {"validated": False, "beats_fixed": None,
                "text": f"This stop rule has not been validated on {what} (docs/verdicts.md): "
                        "treat its stop and keep as suggestions."}
    numbers = (f"{found['verdict_median_lost']:.1f} probe points lost against {found['fixed_median_lost']:.1f} "
               f"for a fixed stop epoch, median of {found['runs']} held-out runs")
    if found.get("beats_fixed"):
        text = f"On held-out {method} trajectories this stop beat a fixed schedule ({numbers})."
    else:
        text = (f"On held-out {method} trajectories this stop has not been shown to beat a fixed schedule ({numbers}): "
                "treat its stop and keep as suggestions.")
    return {"validated": True, "beats_fixed": bool(found.get("beats_fixed")), **found, "text": text}
