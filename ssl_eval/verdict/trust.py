"""Which label-free signals can be trusted for a family, and trust borrowed from others.

The rule reads what :mod:`ssl_eval.analysis` already computed for each metric: the signed
Spearman correlation with the linear probe (positive = the metric, read in its registry
direction, agrees with the probe), its bootstrap 95% interval, and the same over the late
window (epochs at or after ``late_fraction`` of the last). With thresholds from
:class:`ssl_eval.config.VerdictConfig`:

* ``unknown``: fewer than ``trust_min_checkpoints`` checkpoints with a probe, or the metric
  is constant (no correlation);
* the late window decides when it has at least ``late_min_checkpoints`` checkpoints and is
  decisive (the paper: entropy is unreliable early and stable late): ``trusted`` when its
  interval lies above 0 and its estimate is at least ``trust_min_rho``, ``misleading`` when
  its interval lies below 0;
* otherwise the whole run: ``trusted`` under the same two conditions, ``misleading`` when its
  interval lies below 0, and ``weak`` in between. A metric trusted over the whole run whose
  late estimate is negative is only ``weak``: late in training is where keep and stop act.

Borrowing (a family without labels, or with too few): the trust of the calibrated families
of the same method (a metric is trusted only if every one of them trusts it, misleading if
any finds it misleading), else of the pooled analysis of all calibrated families on
within-family ranks, with the same rule. The source is named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssl_eval.common.numbers import value_with_interval
from ssl_eval.config import VerdictConfig

TRUSTED, WEAK, MISLEADING, UNKNOWN = "trusted", "weak", "misleading", "unknown"
TRUST_CLASSES = (TRUSTED, WEAK, MISLEADING, UNKNOWN)
OWN = "own labels"


@dataclass(frozen=True)
class Trust:
    """One metric's trust class with the numbers behind it (signed, NaN where undefined)."""

    metric: str
    klass: str
    n: int
    rho: float
    ci_low: float
    ci_high: float
    n_late: int
    rho_late: float
    late_ci_low: float
    late_ci_high: float
    reason: str
    source: str = OWN

    def as_dict(self) -> dict[str, Any]:
        """The trust as a JSON-ready dict.

        Returns:
            ``class``, ``n``, ``rho``, ``ci``, ``n_late``, ``rho_late``, ``ci_late``, ``reason`` and ``source``.
        """
        return {"class": self.klass, "n": self.n, "rho": self.rho, "ci": [self.ci_low, self.ci_high],
                "n_late": self.n_late, "rho_late": self.rho_late, "ci_late": [self.late_ci_low, self.late_ci_high],
                "reason": self.reason, "source": self.source}


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _count(value: Any) -> int:
    number = _num(value)
    return int(number) if math.isfinite(number) else 0


def _signed(c: Mapping[str, Any], window: str) -> tuple[float, float, float]:
    """Signed estimate and interval: the raw interval flipped for a lower-is-better metric."""
    sign = 1.0 if c.get("higher_is_better", True) else -1.0
    low, high = sign * _num(c.get(f"spearman{window}_ci_low")), sign * _num(c.get(f"spearman{window}_ci_high"))
    return _num(c.get(f"spearman{window}_signed")), min(low, high), max(low, high)


def _fmt(rho: float, low: float, high: float) -> str:
    return f"ρ {value_with_interval(rho, low, high)}"


def classify(metric: str, c: Mapping[str, Any], config: VerdictConfig = VerdictConfig(), *, source: str = OWN) -> Trust:
    """The trust class of ``metric`` from its correlation entry ``c`` of the analysis.

    Args:
        metric: the metric's name.
        c: its entry in the analysis's ``metrics`` (n, spearman, intervals, late window).
        config: the thresholds.
        source: where the correlations come from (own labels, or a borrowed source).

    Returns:
        Its :class:`Trust`: trusted, weak, misleading or unknown, with the reason.
    """
    n, n_late = _count(c.get("n")), _count(c.get("n_late"))
    rho, low, high = _signed(c, "")
    rho_late, late_low, late_high = _signed(c, "_late")

    def make(klass: str, reason: str) -> Trust:
        return Trust(metric, klass, n, rho, low, high, n_late, rho_late, late_low, late_high, reason, source)

    need = config.trust_min_checkpoints
    if n < need:
        return make(UNKNOWN, f"{n} checkpoint{'s' if n != 1 else ''} with a probe; {need} needed to judge")
    if not math.isfinite(rho):
        return make(UNKNOWN, "constant over the checkpoints: no correlation to judge")

    def strong(r: float, lo: float) -> bool:
        return math.isfinite(lo) and lo > 0 and r >= config.trust_min_rho

    runs = _count(c.get("within_run_n_runs"))
    if config.trust_basis == "within_run" and runs >= 2:
        rho_w, low_w, high_w = (_num(c.get(k)) for k in ("within_run_spearman_signed", "within_run_ci_low",
                                                          "within_run_ci_high"))
        within = f"ρ inside a run {value_with_interval(rho_w, low_w, high_w)} over {runs} runs"
        if strong(rho_w, low_w):
            return make(TRUSTED, f"orders each run's checkpoints as the probe does ({within})")
        if math.isfinite(high_w) and high_w < 0:
            return make(MISLEADING, f"orders each run's checkpoints against the probe ({within})")
        return make(WEAK, f"no reliable agreement with the probe inside a run ({within})")
    whole, late = _fmt(rho, low, high), _fmt(rho_late, late_low, late_high)
    if config.late_priority and n_late >= config.late_min_checkpoints and math.isfinite(rho_late):
        if strong(rho_late, late_low):
            return make(TRUSTED, f"tracks the probe late in training ({late}, {n_late} checkpoints)")
        if math.isfinite(late_high) and late_high < 0:
            return make(MISLEADING, f"moves against the probe late in training ({late}, {n_late} checkpoints)")
    if strong(rho, low):
        if (config.late_priority and math.isfinite(rho_late) and rho_late < 0
                and n_late >= config.late_min_checkpoints):
            return make(WEAK, f"tracks the probe over all epochs ({whole}) but not late in training ({late})")
        return make(TRUSTED, f"tracks the probe ({whole}, {n} checkpoints)")
    if math.isfinite(high) and high < 0:
        return make(MISLEADING, f"moves against the probe when read as documented ({whole}, {n} checkpoints)")
    if math.isfinite(low) and low > 0:
        return make(WEAK, f"agrees with the probe but weakly ({whole}; trusted needs ρ >= {config.trust_min_rho:.2f})")
    return make(WEAK, f"no reliable relation to the probe ({whole}: the interval includes 0)")


def classify_all(correlations: Mapping[str, Mapping[str, Any]], config: VerdictConfig = VerdictConfig(), *,
                 source: str = OWN) -> dict[str, Trust]:
    """The trust class of every metric of an analysis.

    Args:
        correlations: metric -> its correlation entry (the analysis's ``metrics``).
        config: the thresholds.
        source: where the correlations come from.

    Returns:
        metric -> its :class:`Trust` (:func:`classify`).
    """
    return {name: classify(name, c, config, source=source) for name, c in correlations.items()}


def borrow(method: str | None, calibrated: Mapping[str, tuple[str | None, Mapping[str, Trust]]],
           pooled_ranks: Mapping[str, Mapping[str, Any]] | None, config: VerdictConfig = VerdictConfig(),
           ) -> tuple[dict[str, Trust], str | None]:
    """Trust for a family that cannot calibrate itself, and a sentence naming its source.

    Args:
        method: the family's SSL method, or None when unknown.
        calibrated: family -> (method, its own trust), only families with a probe.
        pooled_ranks: the pooled analysis on within-family ranks, or None.
        config: the thresholds.

    Returns:
        (metric -> borrowed trust, the source sentence); ({}, None) when there is nothing to borrow from.
    """
    usable = {f: trust for f, (m, trust) in calibrated.items()
              if any(t.klass != UNKNOWN for t in trust.values())}
    same = sorted(f for f, (m, _) in calibrated.items() if f in usable and method is not None and m == method)
    if same:
        source = f"borrowed from {', '.join(same)} (same method, {method})"
        out: dict[str, Trust] = {}
        for name in sorted({n for f in same for n in usable[f]}):
            found = [usable[f][name] for f in same if name in usable[f]]
            classes = {t.klass for t in found}
            klass = (MISLEADING if MISLEADING in classes else TRUSTED if classes == {TRUSTED}
                     else UNKNOWN if classes == {UNKNOWN} else WEAK)
            first = found[0]
            reason = "; ".join(f"{f}: {usable[f][name].klass}" for f in same if name in usable[f])
            out[name] = Trust(name, klass, first.n, first.rho, first.ci_low, first.ci_high, first.n_late,
                              first.rho_late, first.late_ci_low, first.late_ci_high, reason, source)
        return out, source
    if usable and pooled_ranks:
        source = (f"borrowed from the pooled analysis of {', '.join(sorted(usable))} "
                  f"(within-family ranks; no calibrated family of method {method or 'unknown'})")
        return classify_all(pooled_ranks, config, source=source), source
    return {}, None
