"""The registry drives everything: its shape, compute_group's contract, invariances."""


import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist
from scipy.special import digamma, gammaln
from scipy.stats import ortho_group
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score, silhouette_score

from ssl_eval.metrics import GROUPS, METRICS, MetricOptions, MetricResult, MetricSpec, compute_group, label_free_metrics
from tests.core.test_metrics_dimension import reference_ids
from tests.core.test_metrics_learnability import reference_learnability
from tests.helpers import embeddings

EXPECTED_ORDER = [
    "silhouette", "ami_agreement", "ami_ground_truth", "cluster_learnability",
    "entropy_gaussian", "entropy_knn", "entropy_z3", "id_twonn", "id_mle",
    "rankme", "rankme_centered", "alpha_req", "alpha_req_r2", "nesum", "stable_rank",
    "uniformity", "norm_std", "alignment", "lidar",
]
# Properties kept beside the registry, as scikit-learn's test_common does.
LABEL_PERMUTATION_INVARIANT = {"silhouette", "ami_agreement", "ami_ground_truth"}
ROTATION_INVARIANT = {"rankme", "rankme_centered", "nesum", "stable_rank", "alpha_req",
                      "alpha_req_r2", "entropy_gaussian", "entropy_knn", "entropy_z3", "uniformity",
                      "alignment", "id_twonn", "id_mle"}


def _data(n=80, d=6, seed=0):
    return embeddings(n, d, scales=np.linspace(3.0, 0.3, d), classes=4, view_noise=0.2, seed=seed)


def test_registry_names_order_and_groups():
    assert list(METRICS) == EXPECTED_ORDER
    assert GROUPS == ("clustering", "entropy", "spectral", "geometry")
    for name, spec in METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.group in GROUPS
        assert spec.definition and "\n" not in spec.definition and spec.reference


def test_the_package_exports_the_registry_and_the_notebook_functions():
    import ssl_eval.metrics
    from ssl_eval.metrics import notebook, registry

    # ssl_eval/metrics/__init__.py writes registry.__all__ out for the type checker
    assert ssl_eval.metrics.__all__ == registry.__all__ + notebook.__all__


def _in_fresh_interpreter(code: str) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=120)


def test_the_configuration_imports_no_registry_and_the_package_loads_it_on_first_use():
    # ssl-eval evaluate checks its configuration (which reads ssl_eval.metrics.options) before it
    # launches the Prefect server: the registry's scikit-learn must not delay that launch
    _in_fresh_interpreter("""
        import sys
        import ssl_eval.config, ssl_eval.metrics
        from ssl_eval.metrics import options
        assert "sklearn" not in sys.modules and "ssl_eval.metrics.registry" not in sys.modules
        from ssl_eval.metrics import rankme, compute_group, geometry
        from ssl_eval.metrics import registry
        assert compute_group is registry.compute_group and geometry.__name__ == "ssl_eval.metrics.geometry"
        assert rankme.__name__ == "rankme" and "sklearn" in sys.modules
        try:
            ssl_eval.metrics.no_such_metric
        except AttributeError as exc:
            assert "no_such_metric" in str(exc)
        else:
            raise AssertionError("an unknown name was found")
    """)


def test_first_use_from_many_threads_at_once_finds_every_name():
    _in_fresh_interpreter("""
        import threading
        import ssl_eval.metrics
        barrier, found, errors = threading.Barrier(8), [], []

        def first_use():
            barrier.wait()
            try:
                from ssl_eval.metrics import METRICS, compute_all, compute_group, silhouette
                found.append((METRICS, compute_all, compute_group, silhouette))
            except Exception as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(found) == 8 and len({tuple(map(id, f)) for f in found}) == 1
    """)


def test_label_free_metrics():
    assert label_free_metrics() == [n for n in EXPECTED_ORDER if n != "ami_ground_truth"]


def test_declared_directions_and_needs():
    needs_views = {n for n, s in METRICS.items() if s.needs_views}
    assert needs_views == {"alignment", "lidar"}
    lower = {n for n, s in METRICS.items() if not s.higher_is_better}
    assert lower == {"entropy_gaussian", "entropy_knn", "entropy_z3", "alpha_req", "uniformity",
                     "alignment", "id_twonn", "id_mle"}


def test_options_frozen_hashable_and_validated():
    opts = MetricOptions()
    # options are cache keys: equal settings are one key, any changed setting another
    assert len({MetricOptions(), MetricOptions(k=3), MetricOptions(k=3), MetricOptions(max_points=100)}) == 3
    with pytest.raises(ValidationError, match="frozen"):
        opts.k = 3  # type: ignore[misc]  # the test: a frozen option refuses assignment
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


def _kl_entropy(Z, k=3):
    """Kozachenko-Leonenko in nats, written out (scipy's KD-tree for the k-th neighbour)."""
    n, d = Z.shape
    eps = cKDTree(Z).query(Z, k=k + 1)[0][:, k]
    return digamma(n) - digamma(k) + 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1) + d * np.mean(np.log(eps))


def _rankme(M):
    s = np.linalg.svd(M, compute_uv=False)
    p = s / s.sum() + 1e-7
    return np.exp(-np.sum(p * np.log(p)))


def _unit(M):
    return M / np.linalg.norm(M, axis=1, keepdims=True)


def _published(X, y, views):
    """Every metric of the registry computed from its definition (MetricSpec.definition).

    With the default options and random_state=0; k = the 4 label classes.
    """
    n, d = X.shape
    c1 = KMeans(n_clusters=4, n_init=1, random_state=0).fit_predict(X)
    c2 = KMeans(n_clusters=4, n_init=1, random_state=1).fit_predict(X)
    cov = np.cov(X, rowvar=False)
    ridge = 1e-6 * np.trace(cov) / d + 1e-12
    lam = np.sort(np.linalg.eigvalsh(cov))[::-1]
    slope, intercept = np.polyfit(np.log(np.arange(1, d + 1)), np.log(lam), 1)
    fitted = intercept + slope * np.log(np.arange(1, d + 1))
    r2 = 1 - np.sum((np.log(lam) - fitted) ** 2) / np.sum((np.log(lam) - np.log(lam).mean()) ** 2)
    Z = _unit(X)
    stack = np.stack(views, axis=1)  # LiDAR: each image a class, its two views its samples
    means = stack.mean(axis=1)
    between = np.cov(means, rowvar=False)
    within = sum(np.outer(e - m, e - m) for pair, m in zip(stack, means, strict=True) for e in pair) / n + 1e-4 * np.eye(d)
    w_eig, w_vec = np.linalg.eigh(within)
    inv_sqrt = w_vec @ np.diag(w_eig ** -0.5) @ w_vec.T
    p = np.clip(np.linalg.eigvalsh(inv_sqrt @ between @ inv_sqrt), 0, None)
    p = p / p.sum() + 1e-8
    return {
        "silhouette": silhouette_score(X, c1),
        "ami_agreement": adjusted_mutual_info_score(c1, c2),
        "ami_ground_truth": adjusted_mutual_info_score(y, c1),
        "cluster_learnability": reference_learnability(X, 4),
        "entropy_gaussian": 0.5 * np.linalg.slogdet(2 * np.pi * math.e * (cov + ridge * np.eye(d)))[1],
        "entropy_knn": _kl_entropy(X),
        "entropy_z3": _kl_entropy(PCA(n_components=3).fit_transform(X)) / np.log(2),
        **reference_ids(X),
        "rankme": _rankme(X),
        "rankme_centered": _rankme(X - X.mean(axis=0)),
        "alpha_req": -slope,
        "alpha_req_r2": r2,
        "nesum": lam.sum() / lam[0],
        "stable_rank": np.linalg.norm(X, "fro") ** 2 / np.linalg.norm(X, 2) ** 2,
        "uniformity": np.log(np.mean(np.exp(-2 * pdist(Z, "sqeuclidean")))),
        "norm_std": Z.std(axis=0).mean(),
        "alignment": np.mean(np.sum((_unit(views[0]) - _unit(views[1])) ** 2, axis=1)),
        "lidar": np.exp(-np.sum(p * np.log(p))),
    }


@pytest.mark.parametrize("group", GROUPS)
def test_compute_group_returns_every_applicable_metric(group):
    X, y, views = _data()
    res = compute_group(group, X, labels=y, views=views)
    assert isinstance(res, MetricResult)
    expected = [n for n, s in METRICS.items() if s.group == group]
    assert list(res.values) == expected
    # each value sits under its own name: it is that metric's published definition
    published = _published(X, y, views)
    for name in expected:  # silhouette: a float32 kernel (test_metrics_clustering)
        assert res.values[name] == pytest.approx(published[name], rel=1e-6, abs=1e-4 if name == "silhouette" else 1e-9), name
    bare = compute_group(group, X)
    assert list(bare.values) == [n for n in expected
                                 if not METRICS[n].needs_labels and not METRICS[n].needs_views]
    k_dependent = ("silhouette", "ami_agreement", "cluster_learnability")  # k = 10 without labels
    assert {n: bare.values[n] for n in bare.values if n not in k_dependent} == pytest.approx(
        {n: published[n] for n in bare.values if n not in k_dependent}, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("group", GROUPS)
def test_non_finite_gives_nan_and_flag(group):
    X, y, views = _data()
    X[0, 0] = np.nan
    res = compute_group(group, X, labels=y, views=views)
    assert res.flags == ("non_finite",)
    assert all(np.isnan(v) for v in res.values.values())


NAN = float("nan")
# All rows equal: what each metric is defined to be (NaN where it divides by a zero spread)
COLLAPSED = {
    "clustering": ({"silhouette": NAN, "ami_agreement": NAN, "ami_ground_truth": NAN, "cluster_learnability": NAN},
                   ("collapsed", "single_cluster")),
    # rank one: the uncentered spectrum is one singular value (RankMe's eps adds ~7e-6)
    "spectral": ({"rankme": 1.0, "rankme_centered": NAN, "alpha_req": NAN, "alpha_req_r2": NAN, "nesum": NAN,
                  "stable_rank": 1.0}, ("collapsed",)),
    # one point on the sphere: every pair at distance 0, every view pair aligned
    "geometry": ({"uniformity": 0.0, "norm_std": 0.0, "alignment": 0.0, "lidar": 1.0}, ("collapsed",)),
}


@pytest.mark.parametrize("group", GROUPS)
def test_collapsed_gives_defined_result_and_flag(group):
    X = np.full((40, 5), 0.7)
    res = compute_group(group, X, labels=np.arange(40) % 4, views=(X.copy(), X.copy()))
    assert "collapsed" in res.flags
    if group == "entropy":
        # finite (the ridge keeps the log-det defined) and far below any real embedding's
        healthy = compute_group(group, _data(n=40, d=5)[0]).values
        ids = ("id_twonn", "id_mle")  # one distinct row: no neighbour distance to take a ratio of
        assert all(np.isnan(res.values[name]) for name in ids) and {"duplicate_points", "id_n_lt_3"} <= set(res.flags)
        assert all(np.isfinite(v) and v < healthy[name] - 20 for name, v in res.values.items() if name not in ids), res.values
        return
    values, flags = COLLAPSED[group]
    assert res.flags == flags
    assert res.values == pytest.approx(values, nan_ok=True, abs=1e-5)


@pytest.mark.parametrize("group", GROUPS)
def test_one_dimensional_embedding_is_defined(group):
    X, y, views = _data(d=1)
    res = compute_group(group, X, labels=y, views=views)
    x = X[:, 0]
    c1 = KMeans(n_clusters=4, n_init=1, random_state=0).fit_predict(X)
    sign, signs = np.sign(x), (np.sign(views[0][:, 0]), np.sign(views[1][:, 0]))  # the unit sphere of R^1: +-1
    expected = {
        "clustering": {"silhouette": silhouette_score(X, c1),
                       "ami_agreement": adjusted_mutual_info_score(c1, KMeans(4, n_init=1, random_state=1).fit_predict(X)),
                       "ami_ground_truth": adjusted_mutual_info_score(y, c1),
                       "cluster_learnability": reference_learnability(X, 4)},
        "entropy": {"entropy_gaussian": 0.5 * np.log(2 * np.pi * math.e * x.var(ddof=1) * (1 + 1e-6)),
                    "entropy_knn": _kl_entropy(X), "entropy_z3": _kl_entropy(X) / np.log(2),  # Z_3 of 1-d data: itself
                    **reference_ids(X)},
        # one eigenvalue: rank 1, no power law to fit
        "spectral": {"rankme": 1.0, "rankme_centered": 1.0, "alpha_req": NAN, "alpha_req_r2": NAN, "nesum": 1.0, "stable_rank": 1.0},
        "geometry": {"uniformity": np.log(np.mean(np.exp(-2 * pdist(sign[:, None], "sqeuclidean")))),
                     "norm_std": sign.std(), "alignment": np.mean((signs[0] - signs[1]) ** 2), "lidar": 1.0},
    }[group]
    assert res.values == pytest.approx(expected, nan_ok=True, rel=1e-6, abs=1e-4)
    assert res.flags == (("too_few_eigenvalues",) if group == "spectral" else ())


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
        compute_group("geometry", X, options={"k": 3})  # type: ignore[arg-type]  # the test: a dict is refused


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
