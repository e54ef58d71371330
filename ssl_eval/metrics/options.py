"""The metric options: one definition for the core and for the ``[metrics]`` table.

:class:`MetricOptions` is what the metric functions take; the configuration's
``MetricsConfig`` (``ssl_eval/config/schema.py``) is this class plus ``random_state``, so every
option is a ``[metrics]`` key of ``ssl_eval.toml`` with the same name, default and check.
This module imports pydantic only: the configuration reads it without loading the metrics.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["CONVENTIONS", "REDUCTIONS", "MetricOptions"]

#: How ``reduce="umap"``/``"pca"`` and entropy_z3 reduce the rows (:mod:`ssl_eval.metrics.reduction`).
REDUCTIONS = ("pca", "umap")
#: Whose definitions the metrics follow where peer packages differ (:mod:`ssl_eval.metrics.peers`).
CONVENTIONS = ("ssl-eval", "reptrix", "stable-pretraining")


class MetricOptions(BaseModel):
    """Options shared by all groups (frozen, hashable; used in cache keys).

    k: clusters for k-means; None -> number of distinct labels if labels are given, else 10.
    reduce: "none", "pca" (PCA to ``pca_dims``) or "umap" (UMAP to ``umap_dims``, seeded
        random_state; PCA to ``umap_dims`` where umap-learn is not installed), before
        clustering only.
    umap_dims: dimensions of the UMAP reduction used by ``reduce="umap"``; 3 = the space
        Z_3 of entropy_z3, so that both read one UMAP fit.
    z3_reduction: "pca" or "umap": how entropy_z3 reduces to 3 dimensions. "umap" falls
        back to PCA where umap-learn is not installed; the record says which ran.
    silhouette_sample_size: None = exact silhouette; else silhouette on a random sample.
    entropy_knn_k: neighbours of the Kozachenko-Leonenko estimator.
    convention: "ssl-eval" (our definitions, the table in docs/metrics.md), "reptrix" or
        "stable-pretraining": compute the metrics those packages define differently their
        way, for numbers comparable with theirs (docs/metrics.md, "Compared with peer
        implementations"); the record's details name the convention.
    max_points: optional subsample cap for the expensive metrics (clustering, entropy_knn,
        uniformity); None = use every point.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int | None = None
    reduce: str = "none"
    pca_dims: int = 32
    umap_dims: int = 3
    z3_reduction: str = "pca"
    convention: str = "ssl-eval"
    silhouette_sample_size: int | None = None
    entropy_knn_k: int = 3
    max_points: int | None = None

    @model_validator(mode="after")
    def _check(self) -> MetricOptions:
        name = type(self).__name__
        if self.k is not None and self.k < 1:
            raise ValueError(f"{name}.k must be a positive int or None, got {self.k!r}; "
                             "pass e.g. k=10 or leave it None to use the label count.")
        if self.reduce not in ("none", *REDUCTIONS):
            raise ValueError(f"{name}.reduce must be 'none', 'pca' or 'umap', got {self.reduce!r}.")
        if self.z3_reduction not in REDUCTIONS:
            raise ValueError(f"{name}.z3_reduction must be 'pca' or 'umap', got {self.z3_reduction!r}.")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"{name}.convention must be one of {CONVENTIONS}, got {self.convention!r}.")
        for field in ("pca_dims", "umap_dims", "entropy_knn_k"):
            if getattr(self, field) < 1:
                raise ValueError(f"{name}.{field} must be a positive int, got {getattr(self, field)!r}.")
        for field in ("silhouette_sample_size", "max_points"):
            value = getattr(self, field)
            if value is not None and value < 2:
                raise ValueError(f"{name}.{field} must be an int >= 2 or None, got {value!r}; use None to use every point.")
        return self
