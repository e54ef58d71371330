"""The verdict: four answers per family, in words, computed from its records.

* **progress**: is it still improving? (no labels needed; :mod:`.progress`, :mod:`.trend`)
* **trust**: which label-free signals track the probe here? (:mod:`.trust`; borrowed from
  calibrated families when this one has no labels)
* **keep**: which checkpoint to keep (rank aggregate of the trusted signals)
* **stop**: when a label-free early stop fires, per run; with labels, a **retrospective**
  of what it would have cost.

:func:`family_verdicts` is pure: rows and analyses in (what :mod:`ssl_eval.analysis`
computes), JSON-ready dicts out. docs/verdicts.md explains the rules and their validation.

Layer: imports ``ssl_eval.analysis`` and what lies below it; never the reporting.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ssl_eval.config import VerdictConfig
from ssl_eval.metrics import METRICS
from ssl_eval.results.answers import VERDICT_VERSION
from ssl_eval.verdict import words
from ssl_eval.verdict.evidence import belief
from ssl_eval.verdict.progress import Progress, by_run, history, keep_index, probe_of, retrospective
from ssl_eval.verdict.stopping import decide
from ssl_eval.verdict.trend import COLLAPSED, DEGRADING, IMPROVING, INSUFFICIENT, PLATEAUED, STATES
from ssl_eval.verdict.trust import OWN, TRUST_CLASSES, TRUSTED, UNKNOWN, Trust, borrow, classify_all

__all__ = ["STATES", "TRUST_CLASSES", "VERDICT_VERSION", "family_verdict", "family_verdicts", "method_of"]

_TIE_ORDER = (DEGRADING, IMPROVING, PLATEAUED)


def method_of(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The family's SSL method: the most common ``method`` of its checkpoints, if any.

    Args:
        rows: the family's checkpoint rows (:func:`ssl_eval.analysis.family_rows`).

    Returns:
        The most common non-empty ``method`` value, or None when no row names one.
    """
    found = Counter(str(r["method"]) for r in rows if r.get("method"))
    return found.most_common(1)[0][0] if found else None


def _collapse(analysis: Mapping[str, Any]) -> dict[str, str]:
    alerts = analysis.get("alerts") or {}
    reasons = alerts.get("reasons") or {}
    return {cid: str(reasons.get(cid, "collapse alert")) for cid in alerts.get("collapse", [])}


def _family_state(latest: Mapping[str, Any]) -> str:
    states = [p.state for p in latest.values()]
    if COLLAPSED in states:
        return COLLAPSED
    informative = Counter(s for s in states if s != INSUFFICIENT)
    if not informative:
        return INSUFFICIENT
    return max(informative, key=lambda s: (informative[s], -_TIE_ORDER.index(s)))


def _signals(trust: Mapping[str, Trust], available: set[str], config: VerdictConfig) -> tuple[dict[str, bool], str]:
    trusted = [m for m, t in trust.items() if t.klass == TRUSTED and m in available]
    if trusted:
        source = next(iter(trust.values())).source
        return {m: METRICS[m].higher_is_better for m in trusted}, "trusted" if source == OWN else source
    defaults = [m for m in config.default_signals if m in available] or list(config.default_signals)
    return {m: METRICS[m].higher_is_better for m in defaults}, "the default signal" + ("s" if len(defaults) > 1 else "")


def _keep(rows: Sequence[Mapping[str, Any]], candidates: Sequence[Mapping[str, Any]], signals: Mapping[str, bool],
          collapse: Mapping[str, str]) -> dict[str, Any]:
    """The family's keep: each run's own pick, then the best of those by the signals' rank aggregate.

    Each run picks with :func:`decide`; the rank aggregate is comparable across the runs of one
    architecture.

    Returns:
        The keep: the kept checkpoint (``checkpoint``, ``run``, ``epoch``, ``probe``; None and NaN when
        none could be picked), the best checkpoint by the probe with the regret, and its sentence (``text``).
    """
    pick = keep_index(candidates, signals, collapse)
    index = next((i for i, r in enumerate(rows) if r["id"] == candidates[pick]["id"]), None) if pick is not None else None
    probes = [probe_of(r) for r in rows]
    best = max(range(len(rows)), key=lambda i: (probes[i] if math.isfinite(probes[i]) else -math.inf, rows[i]["epoch"]),
               default=None)
    out: dict[str, Any] = {"checkpoint": None, "run": None, "epoch": None, "signals": list(signals),
                           "probe": math.nan, "best": None, "best_probe": math.nan, "regret": math.nan}
    if best is not None and math.isfinite(probes[best]):
        out.update(best=rows[best]["id"], best_probe=probes[best])
    if index is not None:
        out.update(checkpoint=rows[index]["id"], run=str(rows[index]["run"]), epoch=int(rows[index]["epoch"]),
                   probe=probes[index])
        if math.isfinite(probes[index]) and math.isfinite(out["best_probe"]):
            out["regret"] = out["best_probe"] - probes[index]
    out["text"] = words.keep_sentence(out)
    return out


def _stop_reason(config: VerdictConfig) -> str:
    if config.stop_rule == "best":
        return f"no new best of the signals in {config.stop_patience} checkpoints"
    return f"no improvement in {config.patience} trend tests"


def _stops(runs: Mapping[str, Sequence[Mapping[str, Any]]], histories: Mapping[str, Sequence[Progress]],
           signals: Mapping[str, bool], config: VerdictConfig, collapse: Mapping[str, str],
           ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[Mapping[str, Any]]]:
    """Per run: its stop entry, its retrospective (runs with a probe) and its kept row."""
    stop: dict[str, dict[str, Any]] = {}
    retro: dict[str, dict[str, Any]] = {}
    candidates = []
    for run, states in histories.items():
        index, kept = decide(runs[run], states, signals, config, collapse)
        if kept is not None:
            candidates.append(runs[run][kept])
        epoch = None if index is None else int(states[index].epoch)
        why = ("collapsed" if states[index].state == COLLAPSED else _stop_reason(config)) if index is not None else None
        stop[run] = {"epoch": epoch, "reason": why,
                     "text": f"{run}: stop at epoch {epoch} ({why})" if epoch is not None else f"{run}: not yet"}
        found = retrospective(runs[run], states, (index, kept), config)
        if found is not None:
            retro[run] = found
    return stop, retro, candidates


def family_verdict(family: str, rows: Sequence[Mapping[str, Any]], analysis: Mapping[str, Any], *,
                   config: VerdictConfig = VerdictConfig(), borrowed: Mapping[str, Trust] | None = None,
                   ) -> dict[str, Any]:
    """The verdict of one family.

    Args:
        family: the family's name, copied into the verdict.
        rows: its checkpoint rows (:func:`ssl_eval.analysis.family_rows`).
        analysis: its record from :func:`ssl_eval.analysis.analyze_rows` (correlations and alerts).
        config: the verdict's rules and thresholds.
        borrowed: trust to use when the family cannot judge its own (every metric ``unknown``).

    Returns:
        The JSON-ready verdict: ``version``, ``family``, ``summary``, ``progress``, ``signals``,
        ``trust``, ``trust_source``, ``keep``, ``stop``, ``retrospective``, ``belief`` (what the shipped
        validation says of this method's stop, :mod:`.evidence`), ``collapse``, ``config``.
    """
    trust: Mapping[str, Trust] = classify_all(analysis.get("metrics") or {}, config)
    if borrowed and all(t.klass == UNKNOWN for t in trust.values()):
        trust = borrowed
    available = {m for r in rows for m, v in r.get("metrics", {}).items() if isinstance(v, float) and math.isfinite(v)}
    signals, signal_source = _signals(trust, available, config)
    collapse = _collapse(analysis)
    runs = by_run(rows)
    histories = {run: history(run, mine, signals, config, collapse) for run, mine in runs.items()}
    latest = {run: states[-1] for run, states in histories.items()}
    state = _family_state(latest) if latest else INSUFFICIENT
    stop, retro, candidates = _stops(runs, histories, signals, config, collapse)
    keep = _keep(rows, candidates, signals, collapse)
    progress_text = words.progress_sentence(state, latest) if latest else "Too early to tell (no checkpoints)."
    believe = belief(method_of(rows))
    return {
        "version": VERDICT_VERSION,
        "family": family,
        "summary": words.summary(state, latest, trust, list(signals), signal_source, keep, stop, retro or None,
                                 _stop_reason(config), believe["text"]) if latest else progress_text,
        "progress": {"state": state, "text": progress_text, "window": config.window,
                     "runs": {run: p.as_dict() for run, p in latest.items()}},
        "signals": {"names": list(signals), "source": signal_source},
        "trust": {m: t.as_dict() for m, t in trust.items()},
        "trust_source": next((t.source for t in trust.values()), None),
        "keep": keep,
        "stop": stop,
        "retrospective": retro or None,
        "belief": believe,
        "collapse": collapse,
        "config": config.model_dump(mode="json"),
    }


def family_verdicts(inputs: Mapping[str, tuple[Sequence[Mapping[str, Any]], Mapping[str, Any]]],
                    pooled_ranks: Mapping[str, Mapping[str, Any]] | None = None, *,
                    config: VerdictConfig = VerdictConfig(), only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Verdicts of the families in ``inputs``, or of ``only`` those.

    A family without enough labels borrows trust from the others (same method first, then
    ``pooled_ranks``: the pooled analysis on within-family ranks).

    Args:
        inputs: family -> (its rows, its analysis record); every calibrated family can lend trust.
        pooled_ranks: the pooled analysis's ``within_family_rank`` correlations, or None.
        config: the verdict's rules and thresholds.
        only: the families to judge (each a key of ``inputs``); None judges all.

    Returns:
        family -> its verdict (:func:`family_verdict`).
    """
    calibrated = {f: (method_of(rows), classify_all(a.get("metrics") or {}, config))
                  for f, (rows, a) in inputs.items() if a.get("n_with_probe")}
    out = {}
    for family in only if only is not None else inputs:
        rows, analysis = inputs[family]
        others = {f: c for f, c in calibrated.items() if f != family}
        borrowed, _ = borrow(method_of(rows), others, pooled_ranks if others else None, config)
        out[family] = family_verdict(family, rows, analysis, config=config, borrowed=borrowed or None)
    return out
