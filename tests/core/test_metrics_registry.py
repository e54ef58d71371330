"""The registry drives everything: its shape, compute_group's contract, invariances."""


import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import ortho_group

from ssl_eval.metrics import (GROUPS, METRICS, MetricOptions, MetricResult, MetricSpec,
                              compute_group, label_free_metrics)

EXPECTED_ORDER = [
    "silhouette", "ami_agreement", "ami_ground_truth",
    "entropy_gaussian", "entropy_knn", "entropy_z3",
    "rankme", "rankme_centered", "alpha_req", "alpha_req_r2", "nesum", "stable_rank",
    "uniformity", "norm_std", "alignment", "lidar",
]
# Properties kept beside the registry, as scikit-learn's test_common does.
LABEL_PERMUTATION_INVARIANT = {"silhouette", "ami_agreement", "ami_ground_truth"}
ROTATION_INVARIANT = {"rankme", "rankme_centered", "nesum", "stable_rank", "alpha_req",
                      "alpha_req_r2", "entropy_gaussian", "entropy_knn", "entropy_z3", "uniformity",
                      "alignment"}


def _data(n=80, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3.0, 0.3, d)
    y = rng.integers(0, 4, n)
    views = (X + 0.2 * rng.normal(size=X.shape), X + 0.2 * rng.normal(size=X.shape))
    return X, y, views


def test_registry_names_order_and_groups():
    assert list(METRICS) == EXPECTED_ORDER
    assert GROUPS == ("clustering", "entropy", "spectral", "geometry")
    for name, spec in METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.group in GROUPS
        assert spec.definition and "\n" not in spec.definition and spec.reference


def test_label_free_metrics():
    assert label_free_metrics() == [n for n in EXPECTED_ORDER if n != "ami_ground_truth"]


def test_declared_directions_and_needs():
    needs_views = {n for n, s in METRICS.items() if s.needs_views}
    assert needs_views == {"alignment", "lidar"}
    lower = {n for n, s in METRICS.items() if not s.higher_is_better}
    assert lower == {"entropy_gaussian", "entropy_knn", "entropy_z3", "alpha_req", "uniformity",
                     "alignment"}


def test_options_frozen_hashable_and_validated():
    opts = MetricOptions()
    # options are cache keys: equal settings are one key, any changed setting another
    assert len({MetricOptions(), MetricOptions(k=3), MetricOptions(k=3), MetricOptions(max_points=100)}) == 3
    with pytest.raises(ValidationError, match="frozen"):
        opts.k = 3
    with pytest.raises(ValueError, match="reduce must be 'none', 'pca' or 'umap', got 'tsne'"):
        MetricOptions(reduce="tsne")
    with pytest.raises(ValueError, match="z3_reduction must be 'pca' or 'umap', got 'none'"):
        MetricOptions(z3_reduction="none")
    with pytest.raises(ValueError, match="umap_dims must be a positive int"):
        MetricOptions(umap_dims=0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        MetricOptions(k=0)
    with pytest.raises(ValueError, match="max_points must be an int >= 2"):
        MetricOptions(max_points=1)


@pytest.mark.parametrize("group", GROUPS)
def test_compute_group_returns_every_applicable_metric(group):
    X, y, views = _data()
    res = compute_group(group, X, labels=y, views=views)
    assert isinstance(res, MetricResult)
    expected = [n for n, s in METRICS.items() if s.group == group]
    assert list(res.values) == expected
    assert all(type(v) is float and np.isfinite(v) for v in res.values.values())
    bare = compute_group(group, X)
    assert list(bare.values) == [n for n in expected
                                 if not METRICS[n].needs_labels and not METRICS[n].needs_views]


@pytest.mark.parametrize("group", GROUPS)
def test_non_finite_gives_nan_and_flag(group):
    X, y, views = _data()
    X[0, 0] = np.nan
    res = compute_group(group, X, labels=y, views=views)
    assert res.flags == ("non_finite",)
    assert all(np.isnan(v) for v in res.values.values())


@pytest.mark.parametrize("group", GROUPS)
def test_collapsed_gives_defined_result_and_flag(group):
    X = np.full((40, 5), 0.7)
    res = compute_group(group, X, labels=np.arange(40) % 4, views=(X.copy(), X.copy()))
    assert "collapsed" in res.flags
    assert all(type(v) is float for v in res.values.values())


@pytest.mark.parametrize("group", GROUPS)
def test_one_dimensional_embedding_is_defined(group):
    X, y, views = _data(d=1)
    res = compute_group(group, X, labels=y, views=views)
    assert all(type(v) is float for v in res.values.values())


@pytest.mark.parametrize("name", sorted(LABEL_PERMUTATION_INVARIANT))
def test_label_permutation_invariance(name):
    X, y, _ = _data(seed=2)
    perm = np.array([3, 0, 2, 1])
    group = METRICS[name].group
    a = compute_group(group, X, labels=y, random_state=1).values[name]
    b = compute_group(group, X, labels=perm[y], random_state=1).values[name]
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("name", sorted(ROTATION_INVARIANT))
def test_rotation_invariance(name):
    X, _, views = _data(seed=3)
    Q = ortho_group.rvs(X.shape[1], random_state=4)
    group = METRICS[name].group
    a = compute_group(group, X, views=views).values[name]
    b = compute_group(group, X @ Q, views=(views[0] @ Q, views[1] @ Q)).values[name]
    assert a == pytest.approx(b, rel=1e-7, abs=1e-9)


def test_boundary_errors():
    X, y, views = _data()
    with pytest.raises(ValueError, match="group must be one of"):
        compute_group("nope", X)
    with pytest.raises(ValueError, match="X must be 2-D"):
        compute_group("spectral", X[:, 0])
    with pytest.raises(ValueError, match="at least one row"):
        compute_group("spectral", np.zeros((0, 3)))
    with pytest.raises(TypeError, match="real numeric array"):
        compute_group("spectral", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="one label per row of X"):
        compute_group("clustering", X, labels=y[:-1])
    with pytest.raises(ValueError, match="views must have equal shapes"):
        compute_group("geometry", X, views=(views[0], views[1][:-1]))
    with pytest.raises(ValueError, match="views must be a pair"):
        compute_group("geometry", X, views=views[0])
    with pytest.raises(TypeError, match="options must be a MetricOptions"):
        compute_group("geometry", X, options={"k": 3})


@pytest.mark.parametrize("group", GROUPS)
def test_integer_input_is_converted_and_random_state_reproducible(group):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(50, 3))
    views = (X + rng.integers(0, 2, size=X.shape), X - rng.integers(0, 2, size=X.shape))
    ints = compute_group(group, X, views=views, options=MetricOptions(k=3), random_state=7)
    floats = compute_group(group, X.astype(np.float64), views=(views[0] * 1.0, views[1] * 1.0),
                           options=MetricOptions(k=3), random_state=7)
    assert ints.values == pytest.approx(floats.values, nan_ok=True) and ints.flags == floats.flags
    assert all(np.isfinite(v) for v in ints.values.values())  # computed, not NaN for an integer dtype
    assert compute_group(group, X, views=views, options=MetricOptions(k=3), random_state=7) == ints


def test_docs_contain_generated_registry_table():
    from pathlib import Path

    from ssl_eval.metrics.registry import metrics_table_markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    if not docs.exists():
        pytest.skip("docs/metrics.md not present in this checkout")
    assert metrics_table_markdown() in docs.read_text(), (
        "docs/metrics.md is stale: regenerate the table with metrics_table_markdown()")
