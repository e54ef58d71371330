"""The spectral suite (RankMe + alpha-ReQ) against what a user would otherwise call.

    python benchmarks/spectral.py [--n 25600] [--d 2048] [--repeats 2]

One float32 embedding matrix (a low-rank signal plus noise with a decaying spectrum, like
an SSL encoder's), the same array for every contender, each timed best of ``--repeats``:

- ssl-eval ``spectral_metrics`` (one blocked float64 Gram pass gives the uncentered and the
  centered scatter; both spectra from one tridiagonal reduction, ``both_spectra``);
- the same Gram with one ``eigvalsh`` of each matrix (ssl-eval before issue 28);
- the float64 Gram alone (the floor of ssl-eval's time) and a float32 Gram, for scale;
- one ``np.linalg.svd(X, compute_uv=False)`` (what a user would write for RankMe alone);
- reptrix 0.1.0 ``get_rankme`` + ``get_alpha`` (a full-SVD PCA each), the peer package.

Goals (#15 item 5, #28 item 6, measured at load average < 1.5): at least 3x the SVD and
10x reptrix, values unchanged. Not a timed
test: it prints a table with the load average beside it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def embeddings(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Synthetic (n, d) float32 embeddings with a decaying spectrum and an offset."""
    rng = np.random.default_rng(seed)
    scales = (np.arange(1, d + 1, dtype=np.float64) ** -0.8).astype(np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32) * scales
    X += rng.standard_normal((n, 16), dtype=np.float32) @ rng.standard_normal((16, d), dtype=np.float32) * 0.5
    return X + 0.3  # an offset, as ReLU features have: centered and uncentered spectra differ


Result = TypeVar("Result")


def best(fn: Callable[[], Result], repeats: int) -> tuple[float, Result]:
    """The best time of ``repeats`` calls of ``fn``, and the last call's result."""
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), cast(Result, out)  # repeats >= 1: out is fn's


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25_600)
    parser.add_argument("--d", type=int, default=2_048)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    try:
        from reptrix import alpha as reptrix_alpha
        from reptrix import rankme as reptrix_rankme
    except ImportError:  # the peer is optional: measure the rest, say how to add it
        reptrix_alpha = reptrix_rankme = None
    from ssl_eval.metrics.spectral import gram_and_sums, rankme_from_singular_values, spectral_metrics

    def two_eigvalsh() -> None:  # the path before issue 28
        gram, sums = gram_and_sums(X)
        mean = sums / len(X)
        np.linalg.eigvalsh(gram), np.linalg.eigvalsh(gram - len(X) * np.outer(mean, mean))

    X = embeddings(args.n, args.d)
    warm = embeddings(512, 64, seed=1)  # thread pools and first-call costs, for every contender
    spectral_metrics(warm), np.linalg.svd(warm, compute_uv=False)
    load = [os.getloadavg()[0]]
    ours_t, (ours, _) = best(lambda: spectral_metrics(X), args.repeats)
    gram_t, _ = best(lambda: gram_and_sums(X), args.repeats)  # the floor: the float64 Gram alone
    gram32_t, _ = best(lambda: X.T @ X, args.repeats)  # what a float32 Gram would cost (not used: its rounding)
    before_t, _ = best(two_eigvalsh, args.repeats)
    svd_t, s = best(lambda: np.linalg.svd(X, compute_uv=False), args.repeats)
    tensor = torch.from_numpy(X)
    peer_t = math.nan
    if reptrix_rankme is not None and reptrix_alpha is not None:
        peer_t, _ = best(lambda: (reptrix_rankme.get_rankme(tensor), reptrix_alpha.get_alpha(tensor)), args.repeats)
    load.append(os.getloadavg()[0])

    svd_rankme = rankme_from_singular_values(np.asarray(s, dtype=np.float64))
    print(f"N={args.n}, D={args.d}, float32, best of {args.repeats}; load average {load[0]:.1f} at start, {load[1]:.1f} at end "
          f"on {os.cpu_count()} CPUs")
    print("| contender | s | ours faster by | goal | met? |")
    print("|---|---|---|---|---|")
    print(f"| ssl-eval spectral_metrics (float64 Gram + one tridiagonal reduction) | {ours_t:.2f} | - | - | - |")
    print(f"| of which the float64 Gram X^T X (the floor, BLAS dsyrk) | {gram_t:.2f} | - | - | - |")
    print(f"| a float32 Gram, for scale (not used: it rounds the small eigenvalues away) | {gram32_t:.2f} | - | - | - |")
    print(f"| Gram + 2 eigvalsh (ssl-eval before #28) | {before_t:.2f} | {before_t / ours_t:.2f}x | - | - |")
    print(f"| np.linalg.svd(X) | {svd_t:.2f} | {svd_t / ours_t:.2f}x | >= 3x | {'yes' if svd_t / ours_t >= 3 else 'no'} |")
    if math.isnan(peer_t):
        print("| reptrix get_rankme + get_alpha | - | - | >= 10x | not measured: reptrix is not installed "
              "(`pip install reptrix`) |")
    else:
        print(f"| reptrix get_rankme + get_alpha | {peer_t:.2f} | {peer_t / ours_t:.2f}x | >= 10x "
              f"| {'yes' if peer_t / ours_t >= 10 else 'no'} |")
    print(f"RankMe from the SVD {svd_rankme:.6f}, ours {ours['rankme']:.6f}")


if __name__ == "__main__":
    main()
