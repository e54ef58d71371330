"""Ratio benchmarks of the blocked metric kernels against their direct baselines.

Run: ``python benchmarks/metrics.py [--n 4000] [--d 128]``. Each line reports our time,
the baseline's time measured in the same run, their ratio, and the largest absolute
difference of the results. Not a timed test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.metrics import silhouette_score as sk_silhouette

from ssl_eval.metrics.clustering import silhouette_score
from ssl_eval.metrics.geometry import l2_normalize, uniformity
from ssl_eval.metrics.spectral import rankme_from_singular_values, spectral_metrics


def _best_of(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.d)).astype(np.float32)
    labels = rng.integers(0, args.k, args.n)
    Z, _ = l2_normalize(X)

    cases = [
        ("silhouette (blocked) vs sklearn",
         lambda: silhouette_score(X, labels),
         lambda: float(sk_silhouette(X.astype(np.float64), labels))),
        ("rankme (Gram + eigh) vs numpy svd",
         lambda: spectral_metrics(X)[0]["rankme"],
         lambda: rankme_from_singular_values(
             np.linalg.svd(X.astype(np.float64), compute_uv=False))),
        ("uniformity (blocked) vs pdist",
         lambda: uniformity(Z),
         lambda: float(np.log(np.mean(np.exp(-2 * pdist(Z, "sqeuclidean")))))),
    ]
    print(f"n={args.n} d={args.d} k={args.k} (best of {args.repeats})")
    for name, ours, baseline in cases:
        t_ours, v_ours = _best_of(ours, args.repeats)
        t_base, v_base = _best_of(baseline, args.repeats)
        print(f"{name:40s} ours {t_ours:8.3f}s  baseline {t_base:8.3f}s  "
              f"ratio {t_ours / t_base:6.2f}  |diff| {abs(v_ours - v_base):.2e}")


if __name__ == "__main__":
    main()
