"""A trend test over a window of checkpoints, and how to say its result in words.

The test (one signal, one window of a run's most recent checkpoints):

* slope: the Theil-Sen estimator (median of pairwise slopes, ``scipy.stats.theilslopes``)
  of the value against the epoch, robust to one bad checkpoint;
* significance: the Mann-Kendall test, i.e. Kendall's tau of the value against the epoch
  with its two-sided p-value (``scipy.stats.kendalltau``: exact for small windows without
  ties);
* practical size: the fitted change over the window (slope x epochs spanned) as a fraction
  of the range the signal has covered in the run so far (first checkpoint to the window's
  end). A drift that is monotone but tiny next to what the signal did earlier is a plateau.

A signal *improves* when p <= alpha, the fraction is at least ``min_change`` and the change
goes the signal's good way (registry direction); it *degrades* under the same conditions the
other way; otherwise it has *plateaued*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from ssl_eval.common.threads import quiet_known_warnings

IMPROVING, PLATEAUED, DEGRADING, COLLAPSED, INSUFFICIENT = (
    "improving", "plateaued", "degrading", "collapsed", "insufficient")
STATES = (IMPROVING, PLATEAUED, DEGRADING, COLLAPSED, INSUFFICIENT)
PROBE = "linear_acc"


@dataclass(frozen=True)
class Trend:
    """One signal's trend over one window.

    ``change`` is the fitted change (raw units) from the window's first to its last epoch;
    ``range_fraction`` its size against the range the signal covered in the run so far (NaN
    when that range is 0).
    """

    name: str
    n: int
    first_epoch: int
    last_epoch: int
    slope: float
    change: float
    start_level: float
    range_fraction: float
    tau: float
    p: float
    higher_is_better: bool
    significant: bool
    state: str

    def as_dict(self) -> dict[str, object]:
        """The trend as a JSON-ready dict.

        Returns:
            ``metric``, ``n``, ``first_epoch``, ``last_epoch``, ``slope``, ``change``,
            ``range_fraction``, ``tau``, ``p`` and ``state``.
        """
        return {"metric": self.name, "n": self.n, "first_epoch": self.first_epoch, "last_epoch": self.last_epoch,
                "slope": self.slope, "change": self.change, "range_fraction": self.range_fraction,
                "tau": self.tau, "p": self.p, "state": self.state}


def trend(name: str, epochs: ArrayLike, values: ArrayLike, *, history: ArrayLike,
          higher_is_better: bool, alpha: float, min_change: float) -> Trend | None:
    """The trend of ``values`` against ``epochs`` over one window.

    Args:
        name: the signal's name.
        epochs: the window's epochs.
        values: the signal's values at those epochs (NaN allowed, dropped).
        history: the signal's values in the run up to the window's end (the range it covered).
        higher_is_better: the signal's good direction.
        alpha: significance level of the Mann-Kendall test.
        min_change: least change, as a fraction of the covered range, that counts.

    Returns:
        The :class:`Trend`, or None when fewer than 3 values are finite.

    Raises:
        ValueError: ``epochs`` and ``values`` differ in length.
    """
    e, v = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    if e.shape != v.shape:
        raise ValueError(f"epochs and values must have the same length, got {len(e)} and {len(v)}.")
    keep = np.isfinite(v) & np.isfinite(e)
    e, v = e[keep], v[keep]
    if len(v) < 3:
        return None
    hist = np.asarray(history, dtype=float)
    hist = hist[np.isfinite(hist)]
    if np.ptp(v) == 0.0:
        slope, intercept, tau, p = 0.0, float(v[0]), math.nan, math.nan
    else:
        quiet_known_warnings()  # scipy's constant-input warnings; numpy's error state is per thread
        with np.errstate(all="ignore"):
            fit = stats.theilslopes(v, e)
            test = stats.kendalltau(e, v)
        slope, intercept, tau, p = float(fit.slope), float(fit.intercept), float(test.statistic), float(test.pvalue)
    change = slope * float(e[-1] - e[0])
    span = float(np.ptp(hist)) if len(hist) else 0.0
    fraction = abs(change) / span if span > 0 else math.nan
    good = change > 0 if higher_is_better else change < 0
    significant = math.isfinite(p) and p <= alpha
    moved = significant and math.isfinite(fraction) and fraction >= min_change and change != 0
    state = (IMPROVING if good else DEGRADING) if moved else PLATEAUED
    return Trend(name, int(len(v)), int(e[0]), int(e[-1]), slope, change, intercept + slope * float(e[0]),
                 fraction, tau, p, higher_is_better, significant, state)


def format_p(p: float) -> str:
    """A p-value as text: ``p < 0.001``, ``p = 0.004``, ``p = 0.12`` or ``p undefined``.

    Args:
        p: the p-value (NaN when the test was undefined).

    Returns:
        The text.
    """
    if not math.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _amount(t: Trend) -> str:
    if t.name == PROBE:
        return f"{abs(t.change) * 100:.1f} points"
    if t.start_level > 0 and abs(t.change) < 10 * t.start_level:
        share = abs(t.change) / t.start_level
        return f"{share:.1%}" if share < 0.1 else f"{share:.0%}"
    return f"by {abs(t.change):.3g}"


def describe(t: Trend) -> str:
    """A trend in words: ``rankme rose 12% over the last 6 checkpoints (epochs 15-20, p = 0.03)``.

    Args:
        t: the trend.

    Returns:
        The sentence (without a final period).
    """
    label = "the linear probe" if t.name == PROBE else t.name
    epochs = f"epochs {t.first_epoch}-{t.last_epoch}"
    if t.change == 0 or not math.isfinite(t.p):
        return f"{label} did not move over the last {t.n} checkpoints ({epochs})"
    where = f"over the last {t.n} checkpoints ({epochs}, {format_p(t.p)})"
    verb = "rose" if t.change > 0 else "fell"
    note = "" if t.higher_is_better or t.name == PROBE else " (lower is better)"
    size = ""
    if t.state == PLATEAUED:
        size = ", too little to count" if t.significant else ", not significantly"
    return f"{label} {verb} {_amount(t)}{note} {where}{size}"
