"""How the MLflow mirror keeps one value per step in every series (ssl_eval/integrations/mlflow_mirror.py).

MLflow cannot delete or overwrite a point: logging a second value at a step adds a second
point there. So:

- A training run's points sit at ``step=epoch``, one checkpoint per epoch
  (:func:`run_points`). When a point it holds must change or go (a checkpoint rewritten or
  replaced by another epoch's content, one that failed, a configuration that changed the
  numbers), the run is rebuilt: the old run is retired (:func:`retire_run`) and a new one
  under the same name and key receives the whole current history.
- The analysis runs (a family's correlations run, its summary run) log at a step that counts
  the family's analyses (tag ``ssl_eval.analysis``, the last step used): a sync whose
  analysis differs from the latest values the run shows logs each changed value at the next
  step, and a statistic no longer defined as NaN there (:func:`log_analysis`). Their charts
  show how each correlation moved as checkpoints came, changed or went.
- A retired run is renamed ``<name> (replaced)``, loses its key tag (kept as
  ``ssl_eval.replaced_key``) and goes to MLflow's trash (``delete_run``): it leaves every
  list and search of active runs; ``mlflow gc`` empties the trash for good.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from mlflow.entities import Metric, Run, RunStatus, RunTag
from mlflow.tracking import MlflowClient

KEY_TAG = "ssl_eval.key"
REPLACED_KEY_TAG = "ssl_eval.replaced_key"  # a retired run's former key
ANALYSIS_TAG = "ssl_eval.analysis"  # an analysis run's last step (the count of analyses it logged)
Held = dict[str, dict[int, list[float]]]  # what a run holds: key -> step -> values, oldest first
_BATCH = 1000  # MLflow's limit of metrics per log_batch


def same(a: float, b: float) -> bool:
    """Equal, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def retire_run(client: MlflowClient, run: Run) -> None:
    """Move a run whose history must change out of the way of its successor.

    It is renamed ``<name> (replaced)``, its key moved to tag ``ssl_eval.replaced_key`` (a deleted
    run can no longer be changed: this comes first), then deleted (MLflow's trash).
    """
    run_id = run.info.run_id
    if KEY_TAG in run.data.tags:
        client.set_tag(run_id, REPLACED_KEY_TAG, run.data.tags[KEY_TAG])
        client.delete_tag(run_id, KEY_TAG)
    client.update_run(run_id, name=f"{run.info.run_name} (replaced)")
    client.delete_run(run_id)


def find_run(client: MlflowClient, experiment_id: str, key: str, name: str, tags: dict[str, str],
             *, stale: Callable[[Run], bool] | None = None) -> tuple[Run, bool]:
    """The run tagged ``key`` (renamed to ``name``, its changed tags set in one request), else a new one.

    A run for which ``stale`` is true (an older layout) is retired and replaced by a new one.
    The run is returned as searched (params, tags and latest metrics as they were): callers
    read it instead of asking again.

    Returns:
        ``(run, is new)``: a new run holds no point.
    """
    found = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
    if found and stale is not None and stale(found[0]):
        retire_run(client, found[0])
        found = []
    if found:
        run = found[0]
        if run.info.run_name != name:
            client.update_run(run.info.run_id, name=name)
        changed = [RunTag(tag, value) for tag, value in tags.items() if run.data.tags.get(tag) != value]
        if changed:
            client.log_batch(run.info.run_id, tags=changed, synchronous=True)
        return run, False
    return client.create_run(experiment_id, run_name=name, tags={KEY_TAG: key, **tags}), True


def finish(client: MlflowClient, run: Run) -> None:
    """Mark ``run`` finished unless it is already."""
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))


def _log(client: MlflowClient, run_id: str, metrics: list[Metric], *, claim: dict[str, str] | None = None,
         done: dict[str, str] | None = None) -> int:
    """Log ``metrics`` in batches of MLflow's limit, the tags ``claim`` with the first and ``done`` with the last.

    A sync cut short between batches has claimed, not done.

    Returns:
        How many metrics were logged.
    """
    chunks = [metrics[start : start + _BATCH] for start in range(0, len(metrics), _BATCH)] or [[]]
    for i, chunk in enumerate(chunks):
        tags = {**((claim or {}) if i == 0 else {}), **((done or {}) if i == len(chunks) - 1 else {})}
        if chunk or tags:
            client.log_batch(run_id, metrics=chunk, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
    return len(metrics)


def log_new(client: MlflowClient, run_id: str, points: Iterable[tuple[str, float, int]], held: Held,
            *, done: dict[str, str] | None = None) -> int:
    """Log the (key, value, step) points that ``held`` (what the run holds: :func:`history`, or ``{}`` for a new run) lacks.

    The tags ``done`` go in the last request. Call it only where no held point differs from
    ``points`` (:func:`stale_points`): a step is never logged twice.

    Returns:
        How many points were logged.
    """
    now = int(time.time() * 1000)
    new = [Metric(key, float(value), now, int(step)) for key, value, step in points
           if not (values := held.get(key, {}).get(int(step))) or not same(values[-1], float(value))]
    return _log(client, run_id, new, done=done)


def history(client: MlflowClient, run: Run) -> Held:
    """Every point ``run`` holds (its keys as :func:`find_run` returned it): one request per key."""
    held: Held = {}
    for key in run.data.metrics:
        for m in client.get_metric_history(run.info.run_id, key):
            held.setdefault(key, {}).setdefault(m.step, []).append(m.value)
    return held


def points_digest(points: list[tuple[str, float, int]]) -> str:
    """A digest of a run's points (``repr`` keeps NaN apart from every number)."""
    return hashlib.sha256(repr(sorted((k, float(v), int(s)) for k, v, s in points)).encode()).hexdigest()


def stale_points(held: Held, points: list[tuple[str, float, int]]) -> bool:
    """Whether a run holding ``held`` holds a point that is not among ``points``.

    Such a point is another value at a step, a second point at a step, or a step (or key) that no
    longer has a value.

    Returns:
        True when the run's history must be rebuilt.
    """
    wanted = {(key, int(step)): float(value) for key, value, step in points}
    return any(len(values) > 1 or (key, step) not in wanted or not same(values[-1], wanted[(key, step)])
               for key, steps in held.items() for step, values in steps.items())


def run_points(rows: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    """The (key, value, epoch) points of one training run's rows, one per key and epoch.

    Where two checkpoints have one epoch (``last.ckpt`` beside ``epoch=05.ckpt``, a deleted file and
    its successor), a checkpoint still in the store wins over a deleted one, then the one whose id
    sorts last.

    Returns:
        The points, sorted by key and epoch.
    """
    chosen: dict[tuple[str, int], float] = {}
    for row in sorted(rows, key=lambda r: (not r.get("gone"), r["id"])):
        for name, value in row["metrics"].items():
            chosen[("reference" if name == "ami_ground_truth" else "label_free") + f"/{name}", int(row["epoch"])] = value
        for name, value in row["probe"].items():
            chosen[(f"probe/{name}", int(row["epoch"]))] = value
    return [(key, float(value), step) for (key, step), value in sorted(chosen.items())]


def analysis_layout_is_older(run: Run) -> bool:
    """Whether a run is an analysis run logged before analysis steps, to be retired.

    Its points are at step 0, a re-analysis's second point beside the first; its successor starts at
    step 1.

    Returns:
        True when the run must be retired.
    """
    return bool(run.data.metrics) and ANALYSIS_TAG not in run.data.tags


def log_analysis(client: MlflowClient, run: Run, values: dict[str, float]) -> int:
    """Log an analysis run's current ``values`` at the next analysis step, unless ``run`` shows them already.

    ``values`` maps key to number; ``run`` is as :func:`find_run` returned it. A key the run
    shows that is no longer among ``values`` is logged as NaN (undefined now).

    The step is claimed (tag ``ssl_eval.analysis``) in the request that carries the first
    points: a sync cut short mid-way never logs at that step again, the next one uses the
    step after it.

    Returns:
        How many points were logged (0 when the run shows these values already).
    """
    shown = run.data.metrics  # the latest value of each key
    current = {**{key: math.nan for key in shown}, **{key: float(v) for key, v in values.items()}}
    changed = {key: value for key, value in current.items() if key not in shown or not same(shown[key], value)}
    if not changed:
        return 0
    step = int(run.data.tags.get(ANALYSIS_TAG, "0")) + 1
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value in sorted(changed.items())]
    return _log(client, run.info.run_id, metrics, claim={ANALYSIS_TAG: str(step)})
