"""The four answers of a stored verdict as short labelled lines.

Plain text; each surface escapes them for its own markup: the terminal report, the HTML cards, the
Prefect artifact and the MLflow tags all show the same lines.
"""

from __future__ import annotations

import math
from typing import Any

from ssl_eval.results.answers import VerdictRecord
from ssl_eval.verdict.words import short


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def trust_line(verdict: VerdictRecord) -> str:
    """The trust answer as one line: trusted and misleading metrics, counts of the others, the source.

    Args:
        verdict: a stored verdict.

    Returns:
        e.g. ``trusted: rankme, lidar · weak: 3``.
    """
    groups: dict[str, list[str]] = {}
    for name, t in verdict.trust.items():
        groups.setdefault(t.klass, []).append(name)
    parts = [f"trusted: {', '.join(groups['trusted'])}" if groups.get("trusted") else "trusted: none"]
    if groups.get("misleading"):
        parts.append(f"misleading: {', '.join(groups['misleading'])}")
    for klass in ("weak", "unknown"):
        if groups.get(klass):
            parts.append(f"{klass}: {len(groups[klass])}")
    source = verdict.trust_source
    if source and source != "own labels":
        parts.append(source)
    if not groups.get("trusted") and verdict.signals.names:
        parts.append(f"reading {', '.join(verdict.signals.names)} ({verdict.signals.source})")
    return " · ".join(parts)


def keep_line(verdict: VerdictRecord) -> str:
    """The keep answer as one line: the checkpoint to keep, its probe and its regret against the best.

    Args:
        verdict: a stored verdict.

    Returns:
        e.g. ``run-0/epoch=17.ckpt · probe 0.912 · the best``.
    """
    keep = verdict.keep
    if not keep.checkpoint:
        return "none (no signal has a value on a healthy checkpoint)"
    text = short(keep.checkpoint)
    probe, regret = _num(keep.probe), _num(keep.regret)
    if math.isfinite(probe):
        text += f" · probe {probe:.3f}"
    if math.isfinite(regret):
        text += f" · {regret * 100:.1f} points below the best ({short(keep.best)})" if regret > 0 else " · the best"
    return text


def stop_line(verdict: VerdictRecord) -> str:
    """The stop answer as one line: per run, the epoch at which the label-free stop fired, or ``not yet``.

    Args:
        verdict: a stored verdict.

    Returns:
        e.g. ``patience 8: run-0 at epoch 12, run-1 not yet`` (the patience of the rule that ran:
        checkpoints without a new best for the "best" rule, trend tests for the "trend" rule).
    """
    parts = [(f"{run} at epoch {s.epoch}" + (" (collapsed)" if s.reason == "collapsed" else ""))
             if s.epoch is not None else f"{run} not yet" for run, s in verdict.stop.items()]
    config = verdict.config
    rule = config.get("stop_rule", "trend")  # verdicts stored before the "best" rule have no stop_rule
    patience = config.get("stop_patience") if rule == "best" else config.get("patience")
    return (f"patience {patience}: " if patience else "") + ", ".join(parts)


def progress_line(verdict: VerdictRecord) -> str:
    """The progress answer as one line: the family's state and each run's.

    Args:
        verdict: a stored verdict.

    Returns:
        e.g. ``plateaued (run-0 plateaued; window 6 checkpoints)``.
    """
    progress = verdict.progress
    detail = ", ".join(f"{run} {p.state}" for run, p in progress.runs.items())
    return progress.state + (f" ({detail}; window {progress.window} checkpoints)" if detail else "")


def retrospective_line(verdict: VerdictRecord) -> str | None:
    """The retrospective as one line: per run, where the stop fired and what it cost against the probe.

    Args:
        verdict: a stored verdict.

    Returns:
        The line, or None when the verdict has no retrospective (no probe accuracies).
    """
    retro = verdict.retrospective
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


def answers(verdict: VerdictRecord) -> list[tuple[str, str]]:
    """The verdict's answers as labelled lines.

    Args:
        verdict: a stored verdict.

    Returns:
        [(label, text)]: progress, trust, keep, stop and, where labels exist, retrospective;
        then collapse when a checkpoint has a collapse alert.
    """
    lines = [("progress", progress_line(verdict)), ("trust", trust_line(verdict)), ("keep", keep_line(verdict)),
             ("stop", stop_line(verdict))]
    retro = retrospective_line(verdict)
    if retro:
        lines.append(("retrospective", retro))
    collapse = verdict.collapse
    if collapse:
        first = next(iter(collapse))
        more = f" and {len(collapse) - 1} more" if len(collapse) > 1 else ""
        lines.append(("collapse", f"{short(first)}: {collapse[first]}{more}"))
    return lines


TAG_PREFIX = "ssl_eval.verdict."
_TAG_MAX = 5000  # MLflow keeps tag values up to 8000 characters; stay well below


def verdict_tags(verdict: VerdictRecord, run: str | None = None) -> dict[str, str]:
    """MLflow tags ``ssl_eval.verdict.*`` for a family or for one of its training runs.

    Args:
        verdict: a stored verdict.
        run: a training run of the family; None for the family's own tags.

    Returns:
        Tag name -> value (each at most 5000 characters): for the family, summary, progress,
        trusted, trust_source, keep and stop; for a run, its progress and stop_epoch.
    """
    if run is not None:
        progress, stop = verdict.progress.runs.get(run), verdict.stop.get(run)
        epoch = stop.epoch if stop is not None else None
        return {f"{TAG_PREFIX}progress": progress.state if progress is not None else "insufficient",
                f"{TAG_PREFIX}stop_epoch": "not yet" if epoch is None else str(epoch)}
    tags = {
        "summary": verdict.summary,
        "progress": verdict.state,
        "trusted": ",".join(verdict.trusted) or "none",
        "trust_source": verdict.trust_source or "none",
        "keep": verdict.keep.checkpoint or "none",
        "stop": stop_line(verdict),
    }
    return {TAG_PREFIX + key: value[:_TAG_MAX] for key, value in tags.items()}
