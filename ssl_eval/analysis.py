"""Per-family and pooled analysis: how well each label-free metric tracks the linear probe.

For every label-free metric of a family, over all the family's checkpoints (every run):

* Spearman, Kendall (tau-b) and Pearson correlation with the probe accuracy, with p-values
  (scipy) and bootstrap 95% percentile intervals (:func:`bootstrap_ci`);
* the same over the late window: epochs at or after ``late_fraction`` of the family's last
  epoch (the paper finds entropy unreliable early in training and stable later);
* ``<stat>_signed`` = the correlation times +1 if the registry says higher is better, else -1:
  positive means "the metric, read in its documented direction, rises with the probe";
* selection: the checkpoint the metric would pick among all the family's checkpoints (every
  run together) and its regret, the best probe accuracy minus the pick's.

:func:`analyze_pooled` does the same over all families' checkpoints at once (the paper's
question whether a metric compares different SSL methods/architectures), plus a variant on
within-family ranks. :func:`alerts` lists collapsed and non-finite checkpoints.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from ssl_eval.collapse import collapse_reasons
from ssl_eval.metrics import METRICS, label_free_metrics
from ssl_eval import strict_json
from ssl_eval.workspace import Workspace

PROBE_TARGET = "linear_acc"
STATS = ("spearman", "kendall", "pearson")
#: Bumped when the analysis record gains fields: an older stored record is recomputed.
#: 3: collapse alerts by ssl_eval.collapse (with reasons), the rule stored as ``collapse_rule``.
ANALYSIS_VERSION = 3
N_BOOTSTRAP = 1000
CONFIDENCE = 0.95
POOLED_KEY = "_pooled"
ALERT_KINDS = ("collapse", "non_finite")
#: Kendall's bootstrap costs n_boot * n^2 sign comparisons; above this many checkpoints its
#: interval is left NaN (Spearman's and Pearson's are still bootstrapped).
KENDALL_BOOTSTRAP_MAX_N = 300


def family_rows(workspace: Workspace, family: str, *, include_gone: bool = False) -> list[dict[str, Any]]:
    """One row per evaluated checkpoint of ``family``: epoch, metric values, probe accuracies.

    A checkpoint whose current file failed (a ``failure`` record) has no row: its older
    results no longer describe the file. One deleted from the store (a ``gone`` record)
    has none either unless ``include_gone`` (its history, for the MLflow mirror); such rows
    carry ``"gone": True``.

    Args:
        workspace: the work dir whose records to read.
        family: the family's name.
        include_gone: also give rows of checkpoints deleted from the store.

    Returns:
        Rows (``id``, ``run``, ``epoch``, ``method``, ``arch``, ``metrics``, ``probe``, ``flags``)
        sorted by run, then epoch; only results recorded for the file's current fingerprint.
    """
    rows = []
    records = workspace.records
    for checkpoint_id in records.checkpoint_ids(family):
        ckpt = records.get(checkpoint_id, "checkpoint")
        if ckpt is None or workspace.embeddings.provenance(checkpoint_id) is None:
            continue
        if records.get(checkpoint_id, "failure") is not None:
            continue
        gone = records.get(checkpoint_id, "gone") is not None
        if gone and not include_gone:
            continue
        metrics: dict[str, float] = {}
        flags: set[str] = set()
        for part in records.parts(checkpoint_id, "metrics-"):
            rec = records.get(checkpoint_id, part)
            if rec and rec.get("fingerprint") == ckpt["fingerprint"]:
                metrics.update(strict_json.nan_for_null(rec["values"]))  # null: undefined for this checkpoint
                flags.update(rec.get("flags", []))
        probe = records.get(checkpoint_id, "probe")
        rows.append(
            {
                "id": checkpoint_id,
                "run": ckpt["run"],
                "epoch": ckpt["epoch"],
                "method": ckpt.get("method"),
                "arch": ckpt.get("arch"),
                "metrics": metrics,
                "probe": strict_json.nan_for_null(probe["values"]) if probe and probe.get("fingerprint") == ckpt["fingerprint"] else {},
                "flags": sorted(flags),
                **({"gone": True} if gone else {}),
            }
        )
    rows.sort(key=lambda r: (r["run"], r["epoch"]))
    return rows


#: Entries of a metric's statistics that name a checkpoint (None: there is none), not numbers.
_CHECKPOINT_ENTRIES = ("pick", "best")
_STAT_TABLES = ("metrics", "raw", "within_family_rank")


def stored_analysis(workspace: Workspace, key: str) -> dict[str, Any] | None:
    """A stored correlations record (a family's, or the pooled one under ``POOLED_KEY``), with
    every statistic that is undefined (stored as null, :mod:`ssl_eval.strict_json`) back as NaN.

    Args:
        workspace: the work dir whose records to read.
        key: a family, or ``POOLED_KEY``.

    Returns:
        The record, or None when there is none.
    """
    found = workspace.records.get(key, "correlations")
    if found is None:
        return None
    for table in _STAT_TABLES:
        if isinstance(found.get(table), dict):
            found[table] = {name: strict_json.nan_for_null(entry, keep=_CHECKPOINT_ENTRIES) if isinstance(entry, dict) else entry
                            for name, entry in found[table].items()}
    return found


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """A short hash of a family's rows: tells whether its analysis or mirror is stale.

    Args:
        rows: checkpoint rows (:func:`family_rows`).

    Returns:
        16 hex digits.
    """
    return hashlib.sha256(strict_json.encode(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def families(workspace: Workspace) -> list[str]:
    """The families holding at least one checkpoint record in the work dir.

    Args:
        workspace: the work dir whose records to read.

    Returns:
        Their names, sorted.
    """
    return workspace.records.families()


def _finite_pairs(x: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def correlate(x: list[float], y: list[float]) -> dict[str, float]:
    """Spearman, Kendall (tau-b) and Pearson with p-values, over the pairs where both are finite.

    Args:
        x: metric values, one per checkpoint.
        y: probe accuracies of the same checkpoints.

    Returns:
        ``n`` and, per statistic, ``<stat>`` and ``<stat>_p``; NaN where undefined (n < 3 or constant).
    """
    a, b = _finite_pairs(x, y)
    out: dict[str, float] = {"n": float(len(a))}
    tests = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}
    for name, test in tests.items():
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            out[name], out[f"{name}_p"] = math.nan, math.nan
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = test(a, b)
        out[name], out[f"{name}_p"] = float(result.statistic), float(result.pvalue)
    return out


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b``; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denom
    return np.where(denom > 0, np.clip(r, -1.0, 1.0), np.nan)


def _kendall_rows(a: np.ndarray, b: np.ndarray, *, block_elements: int = 4_000_000) -> np.ndarray:
    """Kendall tau-b of each row pair (ties handled as scipy does), in blocks of rows so
    that no more than ``block_elements`` pair signs are held at once."""
    n_rows, n = a.shape
    out = np.empty(n_rows)
    step = max(1, block_elements // max(1, n * n))
    for start in range(0, n_rows, step):
        sa = np.sign(a[start:start + step, :, None] - a[start:start + step, None, :])
        sb = np.sign(b[start:start + step, :, None] - b[start:start + step, None, :])
        denom = np.sqrt(np.abs(sa).sum(axis=(1, 2)) * np.abs(sb).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + step] = np.where(denom > 0, (sa * sb).sum(axis=(1, 2)) / denom, np.nan)
    return out


def bootstrap_ci(x: list[float], y: list[float], *, n_boot: int = N_BOOTSTRAP, confidence: float = CONFIDENCE,
                 random_state: int | np.random.Generator | None = 0) -> dict[str, float]:
    """Percentile bootstrap intervals of Spearman, Kendall and Pearson.

    The finite (x, y) pairs (checkpoints) are resampled with replacement ``n_boot`` times;
    each draw's three statistics are computed (ties from repeated checkpoints handled as
    scipy does: average ranks, tau-b); draws where a statistic is undefined (a constant
    resample) are dropped; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence)
    / 2`` percentiles of the rest. NaN when n < 3 or fewer than half the draws are defined,
    and Kendall's when n > ``KENDALL_BOOTSTRAP_MAX_N`` (its cost grows with n^2).

    Args:
        x: metric values, one per checkpoint.
        y: probe accuracies of the same checkpoints.
        n_boot: number of resamples, >= 1.
        confidence: the interval's coverage, in (0, 1).
        random_state: seed or Generator of the resamples.

    Returns:
        ``<stat>_ci_low`` and ``<stat>_ci_high`` for each statistic.

    Raises:
        ValueError: ``n_boot`` < 1 or ``confidence`` outside (0, 1).
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}; 1000 draws is the usual choice.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}; use 0.95 for a 95% interval.")
    a, b = _finite_pairs(x, y)
    out = {f"{s}_ci_{side}": math.nan for s in STATS for side in ("low", "high")}
    if len(a) < 3:
        return out
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    index = rng.integers(0, len(a), size=(n_boot, len(a)))
    xa, yb = a[index], b[index]
    draws = {
        "pearson": _pearson_rows(xa, yb),
        "spearman": _pearson_rows(stats.rankdata(xa, axis=1), stats.rankdata(yb, axis=1)),
    }
    if len(a) <= KENDALL_BOOTSTRAP_MAX_N:
        draws["kendall"] = _kendall_rows(xa, yb)
    q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
    for name, values in draws.items():
        values = values[np.isfinite(values)]
        if len(values) >= n_boot / 2:
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (float(v) for v in np.percentile(values, q))
    return out


def selection_regret(metric: list[float], probe: list[float], *, higher_is_better: bool) -> tuple[int | None, float]:
    """The checkpoint a metric would pick, and what that costs in probe accuracy.

    Args:
        metric: metric values, one per checkpoint.
        probe: probe accuracies of the same checkpoints.
        higher_is_better: the metric's good direction.

    Returns:
        (index of the pick, best probe accuracy minus the pick's), over checkpoints where
        both are finite; (None, NaN) when there are none.
    """
    m, p = np.asarray(metric, dtype=float), np.asarray(probe, dtype=float)
    valid = np.isfinite(m) & np.isfinite(p)
    if not valid.any():
        return None, math.nan
    scores = np.where(valid, m if higher_is_better else -m, -np.inf)
    pick = int(np.argmax(scores))
    return pick, float(np.nanmax(np.where(valid, p, np.nan)) - p[pick])


def _stats_block(values: list[float], probe: list[float], *, suffix: str, sign: float, random_state: int) -> dict[str, float]:
    """Correlations, p-values, CIs and signed correlations, each key ending in ``suffix``."""
    corr = {**correlate(values, probe), **bootstrap_ci(values, probe, random_state=random_state)}
    out = {}
    for key, value in corr.items():
        name, _, rest = key.partition("_")
        out[f"{name}{suffix}{'_' + rest if rest else ''}"] = value
    for name in STATS:
        out[f"{name}{suffix}_signed"] = sign * corr[name]
    return out


def correlation_table(rows: list[dict[str, Any]], *, late_fraction: float = 0.5, random_state: int = 0) -> dict[str, Any]:
    """Every label-free metric's statistics against the probe over ``rows`` (see the module doc).

    Args:
        rows: checkpoint rows (:func:`family_rows`).
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        random_state: seed of the bootstrap.

    Returns:
        metric -> its whole-run and ``_late`` statistics, intervals, signed values, ``pick``,
        ``best`` and ``regret``; metrics without a finite value are left out.

    Raises:
        ValueError: ``late_fraction`` outside [0, 1].
    """
    if not 0.0 <= late_fraction <= 1.0:
        raise ValueError(f"late_fraction must be in [0, 1], got {late_fraction!r}; 0.5 keeps the second half of training.")
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    probe = [r["probe"][PROBE_TARGET] for r in labelled]
    last_epoch = max((r["epoch"] for r in labelled), default=0)
    late = [i for i, r in enumerate(labelled) if r["epoch"] >= late_fraction * last_epoch]
    best = int(np.nanargmax(probe)) if probe and np.isfinite(probe).any() else None
    table: dict[str, Any] = {}
    for name in label_free_metrics():
        values = [r["metrics"].get(name, math.nan) for r in labelled]
        if all(not np.isfinite(v) for v in values):
            continue
        hib = METRICS[name].higher_is_better
        sign = 1.0 if hib else -1.0
        pick, regret = selection_regret(values, probe, higher_is_better=hib)
        table[name] = {
            **_stats_block(values, probe, suffix="", sign=sign, random_state=random_state),
            **_stats_block([values[i] for i in late], [probe[i] for i in late], suffix="_late", sign=sign,
                           random_state=random_state),
            "higher_is_better": hib,
            "pick": labelled[pick]["id"] if pick is not None else None,
            "pick_probe": probe[pick] if pick is not None else math.nan,
            "best": labelled[best]["id"] if best is not None else None,
            "regret": regret,
        }
    return table


def analyze_rows(rows: list[dict[str, Any]], *, late_fraction: float = 0.5, random_state: int = 0,
                 collapse_rule: dict[str, float] | None = None) -> dict[str, Any]:
    """The analysis of one family's rows: correlations, alerts and what they were computed with.

    Args:
        rows: checkpoint rows (:func:`family_rows`).
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        random_state: seed of the bootstrap.
        collapse_rule: keyword arguments of :func:`ssl_eval.collapse.collapse_reasons`; None: its defaults.

    Returns:
        ``n_checkpoints``, ``n_with_probe``, ``late_fraction``, ``late_from_epoch``, ``n_bootstrap``,
        ``confidence``, ``collapse_rule``, ``alerts`` and ``metrics`` (:func:`correlation_table`).

    Raises:
        ValueError: ``late_fraction`` outside [0, 1], or an invalid collapse rule.
    """
    labelled = [r for r in rows if PROBE_TARGET in r["probe"]]
    return {
        "n_checkpoints": len(rows),
        "n_with_probe": len(labelled),
        "late_fraction": late_fraction,
        "late_from_epoch": late_fraction * max((r["epoch"] for r in labelled), default=0),
        "n_bootstrap": N_BOOTSTRAP,
        "confidence": CONFIDENCE,
        "collapse_rule": dict(collapse_rule or {}),
        "alerts": alerts(rows, **(collapse_rule or {})),
        "metrics": correlation_table(rows, late_fraction=late_fraction, random_state=random_state),
    }


def family_analysis(workspace: Workspace, family: str, *, late_fraction: float = 0.5,
                    collapse_rule: dict[str, float] | None = None) -> dict[str, Any]:
    """One family's analysis from its records, without storing it (``ssl-eval report``).

    Args:
        workspace: where the family's records are.
        family: the family's name.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        collapse_rule: thresholds of the collapse alert (``VerdictConfig.collapse_rule()``).

    Returns:
        The correlations record: version, inputs digest, alerts and per-metric statistics.
    """
    rows = family_rows(workspace, family)
    return {"family": family, "version": ANALYSIS_VERSION, "inputs_digest": rows_digest(rows),
            **analyze_rows(rows, late_fraction=late_fraction, collapse_rule=collapse_rule)}


def analyze_family(workspace: Workspace, family: str, *, late_fraction: float = 0.5,
                   collapse_rule: dict[str, float] | None = None) -> dict[str, Any]:
    """:func:`family_analysis`, stored as the family's correlations record (the flow).

    Args:
        workspace: the work dir whose records to read.
        family: the family's name.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].
        collapse_rule: thresholds of the collapse alert; None: the defaults.

    Returns:
        The stored record.
    """
    analysis = family_analysis(workspace, family, late_fraction=late_fraction, collapse_rule=collapse_rule)
    workspace.records.put(family, "correlations", analysis)
    return analysis


def _within_family_ranks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` whose metric values and probe accuracy are replaced by their rank
    within the row's family, scaled to [0, 1] (average ranks for ties; NaN stays NaN)."""
    out = [{**r, "metrics": dict(r["metrics"]), "probe": dict(r["probe"])} for r in rows]
    for family in {r["family"] for r in rows}:
        mine = [r for r in out if r["family"] == family]
        for part, names in (("metrics", label_free_metrics()), ("probe", [PROBE_TARGET])):
            for name in names:
                values = np.array([r[part].get(name, math.nan) for r in mine], dtype=float)
                finite = np.isfinite(values)
                if not finite.any():
                    continue
                ranks = np.full(len(values), math.nan)
                ranks[finite] = (stats.rankdata(values[finite]) - 1) / max(1, finite.sum() - 1)
                for r, v in zip(mine, ranks, strict=True):
                    if name in r[part]:
                        r[part][name] = float(v)
    return out


def pooled_tables(rows: list[dict[str, Any]], *, late_fraction: float = 0.5) -> dict[str, Any]:
    """``raw`` and ``within_family_rank`` correlation tables of rows from several families.

    Args:
        rows: checkpoint rows, each with its ``family``; see :func:`analyze_pooled`.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        ``raw`` (:func:`correlation_table` of the rows as they are) and ``within_family_rank``
        (of within-family ranks, without pick or regret).

    Raises:
        ValueError: a row without ``family``.
    """
    missing = [r.get("id") for r in rows if "family" not in r]
    if missing:
        raise ValueError(f"pooled rows need a 'family' key; rows {missing[:3]} have none: add the family each came from.")
    return {
        "raw": correlation_table(rows, late_fraction=late_fraction),
        "within_family_rank": {
            name: {k: v for k, v in c.items() if k not in ("pick", "pick_probe", "best", "regret")}
            for name, c in correlation_table(_within_family_ranks(rows), late_fraction=late_fraction).items()
        },
    }


def analyze_pooled(workspace: Workspace, *, late_fraction: float = 0.5) -> dict[str, Any]:
    """:func:`pooled_analysis`, stored as the ``_pooled`` correlations record (the flow).

    Args:
        workspace: the work dir whose records to read.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        The stored record.
    """
    pooled = pooled_analysis(workspace, late_fraction=late_fraction)
    workspace.records.put(POOLED_KEY, "correlations", pooled)
    return pooled


def pooled_analysis(workspace: Workspace, *, late_fraction: float = 0.5) -> dict[str, Any]:
    """All families' checkpoints together, without storing the result (``ssl-eval report``).

    ``raw``: every statistic of :func:`correlation_table` over the pooled checkpoints as they
    are; a metric that compares different methods/architectures correlates here and its pick
    (the checkpoint of any family) has a small regret. ``within_family_rank``: metric and
    probe replaced by their within-family ranks first, which removes the differences between
    families and leaves how consistently the metric tracks the probe inside each one (no
    pick or regret there: ranks of different families are not comparable accuracies).

    Args:
        workspace: the work dir whose records to read.
        late_fraction: the late window holds epochs at or after this fraction of the last epoch, in [0, 1].

    Returns:
        ``version``, ``inputs_digest``, ``families``, ``archs``, ``n_checkpoints``,
        ``late_fraction``, ``raw`` and ``within_family_rank``.
    """
    rows = [{**r, "family": family} for family in families(workspace) for r in family_rows(workspace, family)]
    return {
        "version": ANALYSIS_VERSION,
        "inputs_digest": rows_digest(rows),
        "families": families(workspace),
        "archs": sorted({str(r.get("arch")) for r in rows}),
        "n_checkpoints": len(rows),
        "late_fraction": late_fraction,
        **pooled_tables(rows, late_fraction=late_fraction),
    }


def alerts(rows: list[dict[str, Any]], **collapse_rule: float) -> dict[str, Any]:
    """Checkpoints that need a look: collapsed ones (with reasons) and non-finite ones.

    Args:
        rows: checkpoint rows (:func:`family_rows`).
        **collapse_rule: keyword arguments of :func:`ssl_eval.collapse.collapse_reasons`.

    Returns:
        ``collapse`` (sorted ids judged collapsed), ``reasons`` (id -> why) and ``non_finite``
        (ids flagged "non_finite": the embeddings hold NaN or inf).

    Raises:
        ValueError: an invalid collapse rule.
    """
    reasons = collapse_reasons(rows, **collapse_rule)
    non_finite = [r["id"] for r in rows if "non_finite" in r.get("flags", ())]
    return {"collapse": sorted(reasons), "non_finite": non_finite, "reasons": reasons}


def alert_tag(found: dict[str, list[str]]) -> str:
    """The MLflow tag value for :func:`alerts`' result.

    Args:
        found: the result of :func:`alerts`.

    Returns:
        "collapse", "non_finite", both joined by a comma, or "none".
    """
    return ",".join(kind for kind in ALERT_KINDS if found.get(kind)) or "none"
