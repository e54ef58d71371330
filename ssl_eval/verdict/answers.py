"""The four answers of a stored verdict as short labelled lines (plain text; each surface
escapes them for its own markup): the terminal report, the HTML cards, the Prefect
artifact and the MLflow tags all show the same lines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ssl_eval.verdict.words import short


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def trust_line(verdict: Mapping[str, Any]) -> str:
    """The trust answer as one line: trusted and misleading metrics, counts of the others, the source.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        e.g. ``trusted: rankme, lidar · weak: 3``.
    """
    trust = verdict.get("trust") or {}
    groups: dict[str, list[str]] = {}
    for name, t in trust.items():
        groups.setdefault(t["class"], []).append(name)
    parts = [f"trusted: {', '.join(groups['trusted'])}" if groups.get("trusted") else "trusted: none"]
    if groups.get("misleading"):
        parts.append(f"misleading: {', '.join(groups['misleading'])}")
    for klass in ("weak", "unknown"):
        if groups.get(klass):
            parts.append(f"{klass}: {len(groups[klass])}")
    source = verdict.get("trust_source")
    if source and source != "own labels":
        parts.append(source)
    signals = verdict.get("signals") or {}
    if not groups.get("trusted") and signals.get("names"):
        parts.append(f"reading {', '.join(signals['names'])} ({signals.get('source')})")
    return " · ".join(parts)


def keep_line(verdict: Mapping[str, Any]) -> str:
    """The keep answer as one line: the checkpoint to keep, its probe and its regret against the best.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        e.g. ``run-0/epoch=17.ckpt · probe 0.912 · the best``.
    """
    keep = verdict.get("keep") or {}
    if not keep.get("checkpoint"):
        return "none (no signal has a value on a healthy checkpoint)"
    text = short(keep["checkpoint"])
    probe, regret = _num(keep.get("probe")), _num(keep.get("regret"))
    if math.isfinite(probe):
        text += f" · probe {probe:.3f}"
    if math.isfinite(regret):
        text += f" · {regret * 100:.1f} points below the best ({short(keep.get('best'))})" if regret > 0 else " · the best"
    return text


def stop_line(verdict: Mapping[str, Any]) -> str:
    """The stop answer as one line: per run, the epoch at which the label-free stop fired, or ``not yet``.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        e.g. ``patience 8: run-0 at epoch 12, run-1 not yet`` (the patience of the rule that ran:
        checkpoints without a new best for the "best" rule, trend tests for the "trend" rule).
    """
    stop = verdict.get("stop") or {}
    parts = [(f"{run} at epoch {s['epoch']}" + (" (collapsed)" if s.get("reason") == "collapsed" else ""))
             if s.get("epoch") is not None else f"{run} not yet" for run, s in stop.items()]
    config = verdict.get("config") or {}
    rule = config.get("stop_rule", "trend")  # verdicts stored before the "best" rule have no stop_rule
    patience = config.get("stop_patience") if rule == "best" else config.get("patience")
    return (f"patience {patience}: " if patience else "") + ", ".join(parts)


def progress_line(verdict: Mapping[str, Any]) -> str:
    """The progress answer as one line: the family's state and each run's.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        e.g. ``plateaued (run-0 plateaued; window 6 checkpoints)``.
    """
    progress = verdict.get("progress") or {}
    runs = progress.get("runs") or {}
    detail = ", ".join(f"{run} {p['state']}" for run, p in runs.items())
    return f"{progress.get('state')}" + (f" ({detail}; window {progress.get('window')} checkpoints)" if detail else "")


def retrospective_line(verdict: Mapping[str, Any]) -> str | None:
    """The retrospective as one line: per run, where the stop fired and what it cost against the probe.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        The line, or None when the verdict has no retrospective (no probe accuracies).
    """
    retro = verdict.get("retrospective")
    if not retro:
        return None
    parts = []
    for run, r in retro.items():
        stop = r.get("stop_epoch")
        lost, saved, agree = _num(r.get("points_lost")), _num(r.get("fraction_saved")), _num(r.get("agreement"))
        text = (f"{run}: stopped at {stop}" if stop is not None else f"{run}: no stop") + \
            f" (best probe at epoch {r.get('best_probe_epoch')})"
        if math.isfinite(lost):
            text += f", {lost:.1f} points lost"
        if math.isfinite(saved):
            text += f", {saved:.0%} of checkpoints skipped"
        if math.isfinite(agree):
            text += f", progress agreed with the probe's trend in {agree:.0%} of windows"
        parts.append(text)
    return "; ".join(parts)


def answers(verdict: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The verdict's answers as labelled lines.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).

    Returns:
        [(label, text)]: progress, trust, keep, stop and, where labels exist, retrospective;
        then collapse when a checkpoint has a collapse alert.
    """
    lines = [("progress", progress_line(verdict)), ("trust", trust_line(verdict)), ("keep", keep_line(verdict)),
             ("stop", stop_line(verdict))]
    retro = retrospective_line(verdict)
    if retro:
        lines.append(("retrospective", retro))
    collapse = verdict.get("collapse") or {}
    if collapse:
        first = next(iter(collapse))
        more = f" and {len(collapse) - 1} more" if len(collapse) > 1 else ""
        lines.append(("collapse", f"{short(first)}: {collapse[first]}{more}"))
    return lines


TAG_PREFIX = "ssl_eval.verdict."
_TAG_MAX = 5000  # MLflow keeps tag values up to 8000 characters; stay well below


def verdict_tags(verdict: Mapping[str, Any], run: str | None = None) -> dict[str, str]:
    """MLflow tags ``ssl_eval.verdict.*`` for a family or for one of its training runs.

    Args:
        verdict: a stored verdict (:func:`ssl_eval.verdict.family_verdict`).
        run: a training run of the family; None for the family's own tags.

    Returns:
        Tag name -> value (each at most 5000 characters): for the family, summary, progress,
        trusted, trust_source, keep and stop; for a run, its progress and stop_epoch.
    """
    if run is not None:
        state = ((verdict.get("progress") or {}).get("runs") or {}).get(run, {}).get("state", "insufficient")
        epoch = ((verdict.get("stop") or {}).get(run) or {}).get("epoch")
        return {f"{TAG_PREFIX}progress": str(state), f"{TAG_PREFIX}stop_epoch": "not yet" if epoch is None else str(epoch)}
    trusted = [m for m, t in (verdict.get("trust") or {}).items() if t.get("class") == "trusted"]
    tags = {
        "summary": str(verdict.get("summary", "")),
        "progress": str((verdict.get("progress") or {}).get("state", "insufficient")),
        "trusted": ",".join(trusted) or "none",
        "trust_source": str(verdict.get("trust_source") or "none"),
        "keep": str((verdict.get("keep") or {}).get("checkpoint") or "none"),
        "stop": stop_line(verdict),
    }
    return {TAG_PREFIX + key: value[:_TAG_MAX] for key, value in tags.items()}
