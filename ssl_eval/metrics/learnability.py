"""Cluster learnability (CL) as in CLID (Yu et al. 2022, arXiv 2206.01251).

How well a k-nearest-neighbour classifier learns the k-means partition of the embeddings:
the labels are the clustering group's k-means C1 (the same run that silhouette and the AMI
agreement use: computed once, in the same space), the classifier is scikit-learn's
``KNeighborsClassifier(n_neighbors=CL_NEIGHBOURS)`` (Euclidean), and the score is its mean
accuracy over ``CL_FOLDS``-fold cross-validation with shuffled folds
(``KFold(shuffle=True, random_state=random_state)``). Higher is better: a structure a simple
learner can pick up from nearby points. Our choices (the number of neighbours and folds) are
stated here and in docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

__all__ = ["CL_FOLDS", "CL_NEIGHBOURS", "cluster_learnability"]

CL_NEIGHBOURS = 5
CL_FOLDS = 5


def cluster_learnability(X: np.ndarray, cluster_ids: np.ndarray, *, random_state: int = 0) -> float:
    """Cross-validated kNN accuracy of predicting the k-means ids from the rows.

    Args:
        X: (N, D) finite float array, N >= CL_FOLDS (the space the clusters were found in).
        cluster_ids: (N,) k-means cluster ids of the rows.
        random_state: seed of the fold split.

    Returns:
        The mean held-out accuracy, in [0, 1].

    Raises:
        ValueError: fewer rows than folds.
    """
    n = X.shape[0]
    if n < CL_FOLDS:
        raise ValueError(f"cluster learnability needs at least {CL_FOLDS} rows for {CL_FOLDS}-fold "
                         f"cross-validation, got {n}; embed more samples.")
    folds = KFold(n_splits=CL_FOLDS, shuffle=True, random_state=random_state)
    # each training fold holds (n - n / CL_FOLDS) rows: cap the neighbours so that small sets work
    neighbours = min(CL_NEIGHBOURS, n - -(-n // CL_FOLDS))
    knn = KNeighborsClassifier(n_neighbors=neighbours)
    return float(np.mean(cross_val_score(knn, X, cluster_ids, cv=folds)))
