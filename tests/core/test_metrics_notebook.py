"""The notebook entry points: compute_all and one function per registry metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ssl_eval
import ssl_eval.metrics as M
from ssl_eval.metrics import GROUPS, METRICS, MetricOptions, compute_all, compute_group


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6))
    y = np.arange(240) % 4
    X[:, :2] += 3.0 * np.eye(4)[y][:, :2]
    views = (X[:60] + 0.1 * rng.normal(size=(60, 6)), X[:60] + 0.1 * rng.normal(size=(60, 6)))
    return X, y, views


def test_compute_all_is_every_group_once(data):
    X, y, views = data
    result = compute_all(X, labels=y, views=views, options=MetricOptions(k=4), random_state=3)
    expected = {}
    for group in GROUPS:
        expected.update(compute_group(group, X, labels=y, views=views, options=MetricOptions(k=4), random_state=3).values)
    assert list(result.values) == list(METRICS)  # every metric, in registry order
    assert result.values == pytest.approx(expected)


def test_compute_all_skips_what_needs_labels_or_views(data):
    X, _, _ = data
    names = set(compute_all(X).values)
    assert names == {n for n, s in METRICS.items() if not s.needs_labels and not s.needs_views}


@pytest.mark.parametrize("name", list(METRICS))
def test_one_function_per_metric(data, name):
    X, y, views = data
    function = getattr(M, name)
    assert function.__name__ == name and METRICS[name].definition in function.__doc__
    value = function(X, labels=y, views=views, random_state=1)
    group = compute_group(METRICS[name].group, X, labels=y, views=views, random_state=1).values[name]
    assert isinstance(value, float) and (value == pytest.approx(group) or (math.isnan(value) and math.isnan(group)))


def test_rankme_by_hand(data):
    X, _, _ = data
    s = np.linalg.svd(X, compute_uv=False)
    p = s / s.sum() + 1e-7
    assert M.rankme(X) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)


def test_missing_labels_or_views_say_how_to_call(data):
    X, _, _ = data
    with pytest.raises(ValueError, match=r"ami_ground_truth needs labels: call ami_ground_truth\(X, labels=y\)"):
        M.ami_ground_truth(X)
    with pytest.raises(ValueError, match=r"alignment needs augmented views"):
        M.alignment(X)
    with pytest.raises(ValueError, match="unknown metric 'rank_me'"):
        M.metric_function("rank_me")


def test_package_has_a_docstring_and_version():
    assert "compute_all" in ssl_eval.__doc__ and isinstance(ssl_eval.__version__, str) and ssl_eval.__version__
