"""Task results cross processes and are persisted by Prefect: the outcomes come back equal.

The outcomes (frozen dataclasses holding enum statuses) come back equal, with enum members, through
both of Prefect's result serializers.
"""

from __future__ import annotations

import pytest
from prefect.serializers import JSONSerializer, PickleSerializer

from ssl_eval.pipeline.outcomes import EmbedOutcome, FamilyAnalysis, FamilyVerdict, MeasureOutcome, MonitorSummary, PooledAnalysis, Status

OUTCOMES = [
    MeasureOutcome(EmbedOutcome("simclr/run-0/epoch=01", Status.EMBEDDED, epoch=1, seconds=0.5),
                   {"probe": Status.COMPUTED, "metrics-spectral": Status.CACHED}, flags=("collapsed",), worker="tcp://127.0.0.1:1"),
    MeasureOutcome(EmbedOutcome("simclr/run-0/epoch=99", Status.FAILED, error="bad file", known_failure=True),
                   {"probe": Status.SKIPPED}, error="bad file"),
    FamilyAnalysis("simclr", n_checkpoints=3, n_metrics=12, alerts={"collapse": 1, "non_finite": 0}),
    MonitorSummary(
        checkpoints_new_or_stale=2, families=("simclr",), embedded=("simclr/run-0/epoch=01",), failed={"simclr/run-0/epoch=99": "bad file"},
        known_failed=(), analyses={"simclr": FamilyAnalysis("simclr", 3, 12, {"collapse": 0})}, pooled=PooledAnalysis(("simclr",), 3),
        verdicts={"simclr": FamilyVerdict("simclr", "improving", "Still improving.")}, tracking_uri=None, tracking_errors={},
        dask_workers=("tcp://127.0.0.1:1",),
    ),
]


@pytest.mark.parametrize("serializer", [PickleSerializer(), JSONSerializer()], ids=["pickle", "json"])
@pytest.mark.parametrize("outcome", OUTCOMES, ids=["measured", "failed", "analysis", "summary"])
def test_outcomes_roundtrip_through_prefect_serializers(serializer, outcome):
    back = serializer.loads(serializer.dumps(outcome))
    assert back == outcome and type(back) is type(outcome)
    if isinstance(outcome, MeasureOutcome):
        assert back.embedded.status is outcome.embedded.status
        assert all(type(s) is Status for s in back.parts.values())
