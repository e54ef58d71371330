"""The verdict in plain sentences: one each for progress, trust, keep and stop."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ssl_eval.verdict.progress import Progress
from ssl_eval.verdict.trend import COLLAPSED, DEGRADING, IMPROVING, INSUFFICIENT, PLATEAUED, describe
from ssl_eval.verdict.trust import MISLEADING, OWN, TRUSTED, UNKNOWN, Trust

_OPENING = {
    IMPROVING: "Still improving",
    PLATEAUED: "No clear trend",
    DEGRADING: "Getting worse",
    COLLAPSED: "Collapsed",
    INSUFFICIENT: "Too early to tell",
}


def short(checkpoint_id: str | None) -> str:
    """``run-0/epoch=17.ckpt`` from ``family/run-0/epoch=17.ckpt``.

    Args:
        checkpoint_id: a checkpoint id, or None.

    Returns:
        The id without its family, or ``-`` when there is none.
    """
    return "-" if not checkpoint_id else checkpoint_id.split("/", 1)[-1]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def progress_sentence(state: str, latest: Mapping[str, Progress]) -> str:
    """The progress answer as a sentence, with the trend that made the call as evidence.

    Args:
        state: the family's state.
        latest: run -> its latest :class:`~ssl_eval.verdict.progress.Progress` (at least one).

    Returns:
        e.g. ``No clear trend: in run-0, rankme rose 1.2% over ...; slow gains are not ruled out.``
    """
    runs = list(latest.values())
    same = [p for p in runs if p.state == state]
    count = f" in {len(same)} of {len(runs)} runs" if len(runs) > 1 else ""
    example = same[0] if same else runs[0]
    if state in (IMPROVING, DEGRADING, PLATEAUED) and example.trends:
        # the evidence: the trend that made the call (or the first one, for a plateau)
        lead = next((t for t in example.trends if t.state == state), example.trends[0])
        evidence = f"in {example.run}, {describe(lead)}"
        if state == PLATEAUED:
            # the held-out benchmark (docs/verdicts.md) found probes still rising slowly where the
            # signals had flattened: a plateau of the signals is no promise that training is done
            evidence += "; the signals no longer move clearly, which does not rule out slow gains in the probe"
        return f"{_OPENING[state]}{count}: {evidence}."
    return f"{_OPENING[state]}{count}: {example.text}."


def trust_sentence(trust: Mapping[str, Trust], signals: Sequence[str], signal_source: str) -> str:
    """The trust answer as a sentence: the signals to trust, the misleading ones, what is read otherwise.

    Args:
        trust: metric -> its trust.
        signals: the signals the verdict reads.
        signal_source: where they come from (``trusted``, a borrowed source or the defaults).

    Returns:
        The sentence.
    """
    trusted = [m for m, t in trust.items() if t.klass == TRUSTED]
    misleading = [m for m, t in trust.items() if t.klass == MISLEADING]
    borrowed = next((t.source for t in trust.values() if t.source != OWN), None)
    if trusted:
        where = f" ({borrowed})" if borrowed else ""
        text = f"Signals to trust here{where}: {_join(trusted)}"
    elif trust and all(t.klass == UNKNOWN for t in trust.values()):
        first = next(iter(trust.values()))
        text = f"Trust cannot be judged yet ({first.reason})"
    elif trust:
        text = "No label-free signal tracks the probe reliably here" + (f" ({borrowed})" if borrowed else "")
    else:
        text = "No labels to judge trust and none to borrow"
    if misleading:
        text += f"; misleading (they move against the probe): {_join(misleading)}"
    if not trusted:
        text += f"; reading {_join(list(signals))} ({signal_source})"
    return text + "."


def keep_sentence(keep: Mapping[str, Any]) -> str:
    """The keep answer as a sentence.

    Args:
        keep: the verdict's ``keep`` entry (checkpoint, probe, best, best_probe, regret, signals).

    Returns:
        The sentence, naming the checkpoint and, with labels, its probe against the best.
    """
    if not keep.get("checkpoint"):
        return "No checkpoint can be recommended: no signal has a value on a healthy checkpoint."
    text = f"Keep {short(keep['checkpoint'])}"
    probe, best = keep.get("probe"), keep.get("best_probe")
    if isinstance(probe, float) and math.isfinite(probe) and isinstance(best, float) and math.isfinite(best):
        regret = keep["regret"] * 100
        if regret <= 0:
            text += f" (linear probe {probe:.3f}, the family's best)"
        else:
            text += (f" (linear probe {probe:.3f}; the best, {short(keep['best'])}, scores {best:.3f}: "
                     f"{regret:.1f} points more)")
    else:
        text += f" (best rank aggregate of {_join(keep['signals'])})"
    return text + "."


def stop_sentence(stop: Mapping[str, Mapping[str, Any]], retro: Mapping[str, Mapping[str, Any]] | None,
                  rule: str) -> str:
    """The stop answer as a sentence, with the retrospective's cost where labels exist.

    Args:
        stop: run -> its stop entry (``epoch`` or None, ``reason``).
        retro: run -> its retrospective, or None.
        rule: the stop rule in words ("no new best of the signals in 4 checkpoints").

    Returns:
        The sentence.
    """
    fired = [f"{run} at epoch {s['epoch']}" + (" (collapsed)" if s.get("reason") == "collapsed" else "")
             for run, s in stop.items() if s["epoch"] is not None]
    waiting = [run for run, s in stop.items() if s["epoch"] is None]
    if fired:
        text = f"A label-free stop ({rule}) would have stopped {_join(fired)}"
        if waiting:
            text += f"; not yet for {_join(waiting)}"
    else:
        text = f"A label-free stop ({rule}) has not fired yet"
    if retro and fired:
        lost = [r["points_lost"] for r in retro.values() if math.isfinite(r["points_lost"])]
        saved = [r["fraction_saved"] for r in retro.values()]
        if lost:
            text += (f"; checked against the probe, the checkpoint kept at the stop is at most {max(lost):.1f} "
                     f"points below its run's best, and {sum(saved) / len(saved):.0%} of the checkpoints are skipped")
    return text + "."


def summary(state: str, latest: Mapping[str, Progress], trust: Mapping[str, Trust], signals: Sequence[str],
            signal_source: str, keep: Mapping[str, Any], stop: Mapping[str, Mapping[str, Any]],
            retro: Mapping[str, Mapping[str, Any]] | None, rule: str, belief: str = "") -> str:
    """The verdict's summary: the progress, trust, keep and (once it can fire) stop sentences.

    Args:
        state: the family's progress state.
        latest: run -> its latest progress.
        trust: metric -> its trust.
        signals: the signals the verdict reads.
        signal_source: where they come from.
        keep: the verdict's ``keep`` entry.
        stop: run -> its stop entry.
        retro: run -> its retrospective, or None.
        rule: the stop rule in words.
        belief: how much the shipped validation supports the stop (:mod:`ssl_eval.verdict.evidence`).

    Returns:
        The sentences, joined by spaces.
    """
    sentences = [progress_sentence(state, latest), trust_sentence(trust, signals, signal_source), keep_sentence(keep)]
    if state != INSUFFICIENT or any(s["epoch"] is not None for s in stop.values()):
        sentences.append(stop_sentence(stop, retro, rule))
        if belief:
            sentences.append(belief)
    return " ".join(sentences)
