"""The metric registry: one table that drives flows, docs and parametrised tests.

``METRICS`` maps a metric name to its :class:`MetricSpec`. Metrics are computed by
*group* (:data:`GROUPS`): a group reads the embedding matrix once and derives all of its
metrics from that read (for example the clustering group runs k-means C1 once and derives
silhouette, AMI agreement and AMI ground truth from it). :func:`compute_group` is the one
entry point used by the rest of the project.

Edge cases never crash inside a library; they give NaN values and a flag:

* ``"non_finite"``   X (or the views) contain NaN/inf: every metric of the group is NaN.
* ``"collapsed"``    all embeddings equal (or, for geometry, normalised std < 0.1/sqrt(d)).
* ``"single_cluster"`` k-means found one cluster: silhouette and agreement are NaN.
* ``"n_lt_k"``       fewer points than clusters: every clustering metric is NaN.
* ``"duplicate_points"`` equal rows: kept once by the intrinsic-dimension estimators.
* further group-specific flags are documented in each module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ssl_eval.common.validation import check_labels, check_matrix
from ssl_eval.metrics import clustering, entropy, geometry, peers, spectral
from ssl_eval.metrics.options import MetricOptions

__all__ = [
    "GROUPS",
    "METRICS",
    "MetricOptions",
    "MetricResult",
    "MetricSpec",
    "compute_group",
    "label_free_metrics",
    "unconditional_metrics",
]

GROUPS: tuple[str, ...] = ("clustering", "entropy", "spectral", "geometry")


@dataclass(frozen=True)
class MetricSpec:
    """What one metric is. ``definition`` is one line: the formula in words."""

    name: str
    group: str
    higher_is_better: bool
    needs_labels: bool
    needs_views: bool
    definition: str
    reference: str


@dataclass(frozen=True)
class MetricResult:
    """One group's result: metric values, flags saying why, and details saying how a value was obtained.

    Values are Python floats by metric name (NaN where undefined); details are short strings
    (``entropy_z3_reduction``).
    """

    values: dict[str, float]
    flags: tuple[str, ...]
    details: dict[str, str] = field(default_factory=dict)


_PAPER = "Xu, Lowe & Trappenberg, Label-free Monitoring of SSL Progress, arXiv 2409.06612"

_SPECS = (
    MetricSpec("silhouette", "clustering", True, False, False,
               "mean over points of (b - a) / max(a, b), a = mean Euclidean distance to own "
               "k-means cluster (C1), b = smallest mean distance to another cluster",
               f"Rousseeuw 1987; {_PAPER}"),
    MetricSpec("ami_agreement", "clustering", True, False, False,
               "adjusted mutual information AMI(C1, C2) of two k-means runs (n_init=1) seeded "
               "random_state and random_state + 1",
               f"Vinh et al. 2010; {_PAPER}"),
    MetricSpec("ami_ground_truth", "clustering", True, True, False,
               "adjusted mutual information AMI(C1, labels) of k-means C1 with the true classes",
               f"Vinh et al. 2010; {_PAPER}"),
    MetricSpec("cluster_learnability", "clustering", True, False, False,
               "mean accuracy of KNeighborsClassifier(n_neighbors=5) predicting the k-means C1 "
               "ids from the rows (the space C1 was found in), 5-fold KFold shuffled with "
               "random_state",
               "Yu et al. 2022, CLID, arXiv 2206.01251"),
    MetricSpec("entropy_gaussian", "entropy", False, False, False,
               "0.5 * logdet(2 pi e (Cov + ridge I)), ridge = 1e-6 * trace(Cov)/D + 1e-12; "
               "lower is better because entropy falls as training goes for SimCLR/MoCo "
               "(it rises for SimSiam, so read its direction per family)",
               f"{_PAPER}; Cover & Thomas, Elements of Information Theory, 8.4"),
    MetricSpec("entropy_knn", "entropy", False, False, False,
               "Kozachenko-Leonenko: psi(N) - psi(k) + log V_D + (D/N) sum_i log eps_i, eps_i = "
               "Euclidean distance to the k-th neighbour, V_D = unit-ball volume; lower is "
               "better as for entropy_gaussian",
               f"Kozachenko & Leonenko 1987; {_PAPER}"),
    MetricSpec("entropy_z3", "entropy", False, False, False,
               "H(Z_3) in bits: Kozachenko-Leonenko entropy (entropy_knn_k neighbours) / ln 2 "
               "of the embeddings reduced to 3 dimensions, by UMAP (seeded random_state) or "
               "PCA as z3_reduction says (the record names the one used); the paper's "
               "estimator inferred, see docs/metrics.md",
               f"{_PAPER}, H(Z_3); McInnes et al. 2018, UMAP"),
    MetricSpec("id_twonn", "entropy", False, False, False,
               "TwoNN maximum likelihood N / sum_i log(r2_i / r1_i), r1, r2 = Euclidean distances "
               "to the two nearest other rows, over the distinct rows (duplicates kept once; "
               "at most max_points); lower is better as IdEst reports (Spearman about -0.8 "
               "with accuracy), see docs/metrics.md",
               "Facco et al. 2017, Sci. Rep. 7:12140; Mordacq et al. 2026, IdEst, arXiv 2606.03338"),
    MetricSpec("id_mle", "entropy", False, False, False,
               "Levina-Bickel MLE with k=20: 1 / mean_i [1/(k-1) sum_{j<k} log(T_k/T_j)], T_j = "
               "distance to the j-th nearest other distinct row (inverse estimates averaged, "
               "MacKay & Ghahramani); lower is better as for id_twonn",
               "Levina & Bickel 2004 (NIPS); MacKay & Ghahramani 2005; Mordacq et al. 2026, IdEst"),
    MetricSpec("rankme", "spectral", True, False, False,
               "exp(-sum p_k log p_k), p_k = s_k / sum(s) + 1e-7, s = singular values of the "
               "uncentered embedding matrix",
               "Garrido et al. 2023, RankMe (ICML)"),
    MetricSpec("rankme_centered", "spectral", True, False, False,
               "RankMe on the column-centered embedding matrix",
               "Garrido et al. 2023, RankMe (ICML), centered variant"),
    MetricSpec("alpha_req", "spectral", False, False, False,
               "alpha of the least-squares fit log lambda_i = c - alpha log i over the positive "
               "covariance eigenvalues; reported as alpha, higher_is_better=False (less decay "
               "= richer features) although the paper finds alpha near 1 best",
               "Agrawal et al. 2022, alpha-ReQ (NeurIPS)"),
    MetricSpec("alpha_req_r2", "spectral", True, False, False,
               "R^2 of the alpha-ReQ power-law fit in log-log space",
               "Agrawal et al. 2022, alpha-ReQ (NeurIPS)"),
    MetricSpec("nesum", "spectral", True, False, False,
               "sum_i lambda_i / lambda_1 over the covariance eigenvalues",
               "He & Ozay 2022, Exploring the gap between collapsed and whitened features"),
    MetricSpec("stable_rank", "spectral", True, False, False,
               "||X||_F^2 / ||X||_2^2 = sum / max of the uncentered Gram eigenvalues",
               "Rudelson & Vershynin 2007"),
    MetricSpec("uniformity", "geometry", False, False, False,
               "log mean_{i<j} exp(-2 ||z_i - z_j||^2) over l2-normalised embeddings",
               "Wang & Isola 2020 (ICML)"),
    MetricSpec("norm_std", "geometry", True, False, False,
               "mean over dimensions of the std (ddof=0) of l2-normalised embeddings; about "
               "1/sqrt(D) when healthy, flag 'collapsed' below 0.1/sqrt(D)",
               "Chen & He 2021, SimSiam (CVPR)"),
    MetricSpec("alignment", "geometry", False, False, True,
               "mean ||z - z'||^2 over l2-normalised view pairs (alpha = 2)",
               "Wang & Isola 2020 (ICML)"),
    MetricSpec("lidar", "geometry", True, False, True,
               "exp(-sum p log p), p = lambda/sum(lambda) + 1e-8, lambda = eigenvalues of "
               "Sw^-1/2 Sb Sw^-1/2 with each image a class and its views its samples, "
               "Sw ridge 1e-4",
               "Thilak et al. 2024, LiDAR (ICLR)"),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def label_free_metrics() -> list[str]:
    """Names of the metrics that need no labels, in registry order.

    Returns:
        The metric names.
    """
    return [name for name, spec in METRICS.items() if not spec.needs_labels]


def unconditional_metrics(group: str) -> tuple[str, ...]:
    """The metrics of ``group`` that need neither labels nor views: every record of the group holds them.

    A stored record that lacks one was written before that metric joined the registry.

    Args:
        group: one of :data:`GROUPS`.

    Returns:
        Their names, in registry order.
    """
    return tuple(name for name, spec in METRICS.items()
                 if spec.group == group and not spec.needs_labels and not spec.needs_views)


def _validate(X: np.ndarray, labels: np.ndarray | None, views: tuple[np.ndarray, np.ndarray] | None,
              ) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    # non-finite embeddings are a result (NaN values and the "non_finite" flag), not an error
    X = check_matrix(X, name="X", allow_non_finite=True)
    if labels is not None:
        labels = check_labels(labels, n_rows=X.shape[0])
    if views is not None:
        if not isinstance(views, (tuple, list)) or len(views) != 2:
            raise ValueError("views must be a pair (view1_embeddings, view2_embeddings), got "
                             f"{type(views).__name__}; pass views=(V1, V2).")
        v1, v2 = (check_matrix(v, name=f"views[{i}]", allow_non_finite=True) for i, v in enumerate(views))
        if v1.shape != v2.shape:
            raise ValueError(f"views must have equal shapes, got {v1.shape} and {v2.shape}; "
                             "row i of both must embed two augmentations of one image.")
        views = (v1, v2)
    return X, labels, views


def _dedupe(flags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(flags))


def compute_group(group: str, X: np.ndarray, *, labels: np.ndarray | None = None,
                  views: tuple[np.ndarray, np.ndarray] | None = None,
                  options: MetricOptions = MetricOptions(),
                  random_state: int = 0) -> MetricResult:
    """Compute every metric of ``group`` that applies.

    Metrics that need labels are skipped when ``labels`` is None; metrics that need views
    are skipped when ``views`` is None. Non-finite input gives NaN for every applicable
    metric and the flag ``"non_finite"``.

    Args:
        group: one of :data:`GROUPS`.
        X: (N, D) real array of embeddings (integers are converted to float64).
        labels: (N,) class labels, or None.
        views: (V1, V2), two equal-shape (n, D) arrays of view embeddings, or None.
        options: the metric options.
        random_state: seed of every random step.

    Returns:
        The :class:`MetricResult`: values of the group's applicable metrics, flags and details.

    Raises:
        TypeError: ``options`` is not a MetricOptions, or an array is not real numeric.
        ValueError: an unknown group, an array that is not 2-D or is empty, labels that do
            not match X's rows, or views that are not a pair of equal shapes.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}.")
    if not isinstance(options, MetricOptions):
        raise TypeError(f"options must be a MetricOptions, got {type(options).__name__}.")
    X, labels, views = _validate(X, labels, views)
    names = [name for name, spec in METRICS.items() if spec.group == group
             and (labels is not None or not spec.needs_labels)
             and (views is not None or not spec.needs_views)]
    finite = bool(np.isfinite(X).all())
    if views is not None:
        finite = finite and bool(np.isfinite(views[0]).all() and np.isfinite(views[1]).all())
    if not finite:
        return MetricResult({name: float("nan") for name in names}, ("non_finite",))
    details: dict[str, str] = {}
    values, flags = _group_values(group, X, labels, views, options, random_state, details)
    if options.convention != "ssl-eval" and group in ("spectral", "geometry"):
        details["convention"] = options.convention
    return MetricResult({name: float(values[name]) for name in names}, _dedupe(flags), details)


def _group_values(group: str, X: np.ndarray, labels: np.ndarray | None, views: tuple[np.ndarray, np.ndarray] | None,
                  options: MetricOptions, random_state: int, details: dict[str, str]) -> tuple[dict[str, float], list[str]]:
    """Compute ``group``'s family function on finite, validated input.

    LiDAR follows the peer convention ``options.convention`` names; ``details`` gets the
    estimators' notes.

    Returns:
        The values and the flags.
    """
    if group == "clustering":
        return clustering.clustering_metrics(
            X, labels=labels, k=options.k, reduce=options.reduce, pca_dims=options.pca_dims,
            umap_dims=options.umap_dims,
            silhouette_sample_size=options.silhouette_sample_size,
            max_points=options.max_points, random_state=random_state)
    if group == "entropy":
        return entropy.entropy_metrics(
            X, knn_k=options.entropy_knn_k, max_points=options.max_points,
            z3_reduction=options.z3_reduction, random_state=random_state, details=details)
    if group == "spectral":
        return spectral.spectral_metrics(X, convention=options.convention)
    values, flags = geometry.geometry_metrics(
        X, views=views, max_points=options.max_points, random_state=random_state)
    if views is not None and np.isfinite(values["lidar"]):
        if options.convention == "reptrix":
            values["lidar"] = peers.reptrix_lidar(views)
        elif options.convention == "stable-pretraining":
            values["lidar"] = peers.spt_lidar(np.linalg.eigvalsh(geometry.lidar_matrix(views)))
    return values, flags


def metrics_table_markdown() -> str:
    """The registry as a Markdown table (docs/metrics.md embeds it verbatim).

    Returns:
        The table, one line per metric, ending with a newline.
    """
    lines = ["| name | group | better | needs labels | needs views | definition | reference |",
             "|---|---|---|---|---|---|---|"]
    for spec in METRICS.values():
        cells = [f"`{spec.name}`", spec.group, "higher" if spec.higher_is_better else "lower",
                 "yes" if spec.needs_labels else "no", "yes" if spec.needs_views else "no",
                 spec.definition.replace("|", "\\|"), spec.reference.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
