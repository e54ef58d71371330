"""Collapse alerts without false alarms, each with its reason.

An untrained encoder is not collapsed: a random ReLU CNN maps every image to nearly the
same direction (its outputs share a large positive mean), so its *normalised* std sits
below SimSiam's 0.1/sqrt(D) line and its uncentered RankMe is low, yet its linear probe is
good (0.89 on MNIST for the demo CNN) and its *centered* embeddings span dozens of
directions (centered RankMe about 45 on MNIST, 75 on digits). So a checkpoint is judged:

* against absolute floors that a healthy random encoder clears:
  - every image has the same embedding (flag ``collapsed`` from the metric groups with the
    centered RankMe undefined): "all embeddings are identical";
  - centered RankMe below ``rank_floor`` (2): the embeddings vary along about one direction
    (a rank-1 embedding gives 1.0);
  - norm_std below ``norm_std_floor`` (1e-4): the l2-normalised embeddings point in one
    direction up to rounding (a healthy random encoder gives about 0.1/sqrt(D), 0.008 for the
    demo CNN's 128 dimensions; 1e-4 stays far below that up to D = 10^5);
* against the run's own history: norm_std below ``history_fraction`` (0.2) of the best
  norm_std of the run's earlier checkpoints (SimSiam's collapse: the normalised std falls
  towards 0 after training had spread the embeddings).

The geometry group's own ``collapsed`` flag (norm_std < 0.1/sqrt(D)) stays a flag of the
metric record; alone it no longer raises an alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

RANK_FLOOR = 2.0
NORM_STD_FLOOR = 1e-4
HISTORY_FRACTION = 0.2


def _value(row: Mapping[str, Any], name: str) -> float:
    value = row.get("metrics", {}).get(name)
    return float(value) if isinstance(value, (int, float)) else math.nan


def collapse_reasons(rows: Sequence[Mapping[str, Any]], *, rank_floor: float = RANK_FLOOR,
                     norm_std_floor: float = NORM_STD_FLOOR,
                     history_fraction: float = HISTORY_FRACTION) -> dict[str, str]:
    """Checkpoint id -> why it is collapsed, for the collapsed ones among ``rows``.

    Args:
        rows: rows of one family (``id``, ``run``, ``epoch``, ``metrics``, ``flags``), any order.
        rank_floor: centered RankMe below this is collapsed (>= 1).
        norm_std_floor: norm_std below this is collapsed.
        history_fraction: norm_std below this fraction of the run's earlier best is collapsed, in (0, 1).

    Returns:
        Checkpoint id -> the reason in words, only for collapsed checkpoints.

    Raises:
        ValueError: ``rank_floor`` < 1 or ``history_fraction`` outside (0, 1).
    """
    if not rank_floor >= 1.0:
        raise ValueError(f"rank_floor must be >= 1, got {rank_floor!r}; 2.0 flags embeddings of about one direction.")
    if not 0.0 < history_fraction < 1.0:
        raise ValueError(f"history_fraction must be in (0, 1), got {history_fraction!r}; 0.2 flags a fall to a fifth.")
    reasons: dict[str, str] = {}
    best: dict[str, tuple[float, Any]] = {}  # run -> (best norm_std so far, its epoch)
    for row in sorted(rows, key=lambda r: (str(r.get("run")), r.get("epoch", 0))):
        flags = set(row.get("flags", ()))
        rank, spread = _value(row, "rankme_centered"), _value(row, "norm_std")
        run = str(row.get("run"))
        if "non_finite" in flags:
            pass  # a separate alert: nothing can be said about its geometry
        elif "collapsed" in flags and not math.isfinite(rank) and "rankme_centered" in row.get("metrics", {}):
            reasons[row["id"]] = "all embeddings are identical: every image gets the same output"
        elif math.isfinite(rank) and rank < rank_floor:
            reasons[row["id"]] = (f"centered RankMe {rank:.2f} < {rank_floor:g}: the embeddings vary along about "
                                  f"one direction")
        elif math.isfinite(spread) and spread < norm_std_floor:
            reasons[row["id"]] = (f"norm_std {spread:.2g} < {norm_std_floor:g}: the normalised embeddings all point "
                                  f"the same way")
        elif run in best and math.isfinite(spread) and spread < history_fraction * best[run][0]:
            top, epoch = best[run]
            reasons[row["id"]] = (f"norm_std fell to {spread:.3g}, {spread / top:.0%} of this run's earlier best "
                                  f"({top:.3g} at epoch {epoch})")
        if math.isfinite(spread) and (run not in best or spread > best[run][0]):
            best[run] = (spread, row.get("epoch"))
    return reasons
