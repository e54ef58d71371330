"""Linear probe: ssl-eval's torch solver against scikit-learn's LogisticRegression(max_iter=1000).

    python benchmarks/probe.py [--checkpoint FILE ...] [--dataset mnist] [--large/--no-large] [--repeats 3]

Both sides are ``ssl_eval.probe.linear_probe`` (same validation, same standardisation, same
L2 objective with C=1), ``solver="torch"`` against ``solver="sklearn"``, alternating in one
process after a warm-up, best of ``--repeats``. Cases:

* demo scale: real SSL embeddings, N_train=5,000, N_test=2,000, of each ``--checkpoint``
  (a demo store's checkpoint file, e.g. ``.ssl_eval/demo_store/simclr/run-0/epoch=07.ckpt``)
  on ``--dataset``; with no checkpoint, an untrained demo CNN's embeddings (said so in the table);
* large: N_train=50,000, N_test=10,000, D=2,048, 10 classes of synthetic embeddings shaped
  like a ResNet-50's pooled features (non-negative, low effective rank with a decaying
  spectrum, overlapping classes); see :func:`realistic_embeddings`.

``--threads N`` caps both sides at N CPU threads (torch's and the BLAS/OpenMP pools through
threadpoolctl): on a shared machine one-thread ratios vary far less than two-thread ones,
since oversubscribed thread pools slow both sides by large and different factors.

The table gives the seconds, the speed-up, both accuracies and the load average before
and after each case (the machine may be shared: say so when quoting a ratio).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ssl_eval.probe import linear_probe


def realistic_embeddings(n: int, d: int, *, k: int = 10, rank: int = 96, separation: float = 0.35,
                         random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic pooled-CNN-like float32 features with their labels.

    A ``rank``-dimensional latent with a 1/sqrt(j) spectrum and class means ``separation`` apart
    (relative), mapped to ``d`` dimensions, rectified, plus a little isotropic noise.

    Returns:
        ``(X, y)``: (n, d) float32 features and their class labels.
    """
    rng = np.random.default_rng(random_state)
    scales = 1.0 / np.sqrt(1.0 + np.arange(rank))
    means = rng.normal(size=(k, rank)) * scales * separation
    mixing = (rng.normal(size=(rank, d)) / np.sqrt(rank)).astype(np.float32)
    bias = rng.normal(scale=0.5, size=d).astype(np.float32)
    y = rng.integers(0, k, n)
    z = (means[y] + rng.normal(size=(n, rank)) * scales).astype(np.float32)
    X = np.maximum(z @ mixing + bias, 0.0)
    X += 0.05 * rng.standard_normal((n, d), dtype=np.float32)
    return X, y


def checkpoint_embeddings(path: str | None, dataset: str) -> tuple[str, tuple[np.ndarray, ...]]:
    """The probe splits of ``dataset`` embedded by the checkpoint at ``path``, with a label for the table."""
    from ssl_eval.config import FamilyConfig
    from ssl_eval.pipeline.inference import embed_images
    from ssl_eval.sources.loading import load_checkpoint
    from ssl_eval.sources.model_building import build_model
    from ssl_eval.sources.models import build_backbone
    from ssl_eval.sources.splits import eval_splits

    splits = eval_splits(dataset, n_eval=2, n_probe_train=5000, n_probe_test=2000, random_state=0)
    channels = splits.probe_train.channels
    if path is None:
        torch.manual_seed(0)
        model, label = build_backbone("democnn", in_channels=channels), f"untrained demo CNN, {dataset}"
    else:
        family = FamilyConfig()
        model = build_model(load_checkpoint(path, family), family, in_channels=channels, path=path)
        label = f"{os.sep.join(path.split(os.sep)[-3:])}, {dataset}"
    train, test = (embed_images(model, s.images) for s in (splits.probe_train, splits.probe_test))
    train_y, test_y = splits.probe_train.labels, splits.probe_test.labels
    if train_y is None or test_y is None:
        raise ValueError(f"data set {dataset!r} has no labels; the probe needs one with labels (mnist, cifar10, ...)")
    return label, (train, train_y, test, test_y)


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def compare(label: str, data: tuple[np.ndarray, ...], repeats: int) -> dict:
    """One table row: both solvers' best time and accuracy on ``data``."""
    load_before = _load()
    best = {"torch": float("inf"), "sklearn": float("inf")}
    accuracy = {}
    for _ in range(repeats):
        for solver in ("torch", "sklearn"):
            started = time.perf_counter()
            accuracy[solver] = linear_probe(*data, solver=solver)
            best[solver] = min(best[solver], time.perf_counter() - started)
    n, d = data[0].shape
    gap = 100 * abs(accuracy["torch"] - accuracy["sklearn"])
    speedup = best["sklearn"] / best["torch"]
    return {
        "case": label, "N_train": n, "D": d, "torch_s": f"{best['torch']:.2f}", "sklearn_s": f"{best['sklearn']:.2f}",
        "speedup": f"{speedup:.1f}x", "acc_torch": f"{accuracy['torch']:.4f}", "acc_sklearn": f"{accuracy['sklearn']:.4f}",
        "gap_points": f"{gap:.2f}", "met (>=5x, <=0.5 pt)": "yes" if speedup >= 5 and gap <= 0.5 else "no",
        "load": f"{load_before} -> {_load()}",
    }


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--large", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="cap both sides at this many CPU threads")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load {_load()}", flush=True)
    warm = realistic_embeddings(600, 32, random_state=1)  # first-call library set-up, not timed
    linear_probe(warm[0][:400], warm[1][:400], warm[0][400:], warm[1][400:])
    rows = []
    for path in args.checkpoint or [None]:
        label, data = checkpoint_embeddings(path, args.dataset)
        rows.append(compare(label, data, args.repeats))
        print(rows[-1], flush=True)
    if args.large:
        X, y = realistic_embeddings(60_000, 2048)
        rows.append(compare("synthetic ResNet-50-like", (X[:50_000], y[:50_000], X[50_000:], y[50_000:]), args.large_repeats))
        print(rows[-1], flush=True)
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
