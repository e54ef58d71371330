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

:func:`pooled_analysis` does the same over all families' checkpoints at once (the paper's
question whether a metric compares different SSL methods/architectures), plus a variant on
within-family ranks. :func:`alerts` lists collapsed and non-finite checkpoints.

The parts: :mod:`~ssl_eval.analysis.correlation` (one metric against the probe),
:mod:`~ssl_eval.analysis.tables` (every metric of a set of rows, pooled tables, alerts) and
:mod:`~ssl_eval.analysis.workdir` (rows read from a work dir's records, analyses stored there:
:func:`family_analysis` and :func:`pooled_analysis` only compute; :func:`store_family_analysis`
and :func:`store_pooled_analysis` also store the record, what the flow's tasks
``analyze_family`` and ``analyze_pooled`` call).
Every public name is importable from ``ssl_eval.analysis``.

Layer: imports ``ssl_eval.results`` (the stored records), ``config``, ``metrics`` and ``common``.
"""

from __future__ import annotations

from ssl_eval.analysis.correlation import (
    CONFIDENCE,
    KENDALL_BOOTSTRAP_MAX_N,
    N_BOOTSTRAP,
    STATS,
    bootstrap_ci,
    correlate,
    selection_regret,
)
from ssl_eval.analysis.currency import (
    STALE_HINT,
    StoredAnswers,
    current_config,
    lenders_digest,
    stale_reasons,
    stored_answers,
)
from ssl_eval.analysis.tables import (
    ALERT_KINDS,
    PROBE_TARGET,
    alert_tag,
    alerts,
    analyze_rows,
    correlation_table,
    pooled_tables,
)
from ssl_eval.analysis.workdir import (
    ANALYSIS_VERSION,
    POOLED_KEY,
    families,
    family_analysis,
    family_rows,
    pooled_analysis,
    pooled_rows,
    rows_digest,
    store_family_analysis,
    store_pooled_analysis,
    stored_analysis,
    stored_pooled,
)

__all__ = [
    "CONFIDENCE", "KENDALL_BOOTSTRAP_MAX_N", "N_BOOTSTRAP", "STATS", "bootstrap_ci", "correlate", "selection_regret",
    "ALERT_KINDS", "PROBE_TARGET", "alert_tag", "alerts", "analyze_rows", "correlation_table", "pooled_tables",
    "ANALYSIS_VERSION", "POOLED_KEY", "store_family_analysis", "store_pooled_analysis", "families", "family_analysis", "family_rows",
    "pooled_analysis", "pooled_rows", "rows_digest", "stored_analysis", "stored_pooled",
    "STALE_HINT", "StoredAnswers", "current_config", "lenders_digest", "stale_reasons", "stored_answers",
]
