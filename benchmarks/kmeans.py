r"""Is k-means a real share of the clustering group at the sizes of a real evaluation?

    python benchmarks/kmeans.py --checkpoint STORE/simclr/run-0/epoch=04.ckpt --arch resnet18 \
        [--dataset fashion-mnist] [--sizes 10000 25000 50000] [--synthetic-dims 2048] [--npy FILE ...]

The clustering group (``ssl_eval.metrics.clustering.clustering_metrics``: k-means C1 and C2,
AMI(C1, C2), AMI(C1, y), the exact silhouette of C1) is run phase by phase, as the product
runs it, on:

* real SSL embeddings: the ``--checkpoint`` encoder (``--arch``, e.g. a SimCLR ResNet-18,
  512-d) over the first N images of ``--dataset``'s training split;
* ``--npy`` files: any (N, D) float32 embeddings a user has (e.g. read from a work dir's
  zarr store), cut to each size;
* ``--synthetic-dims``: pooled-CNN-like features of that width (``benchmarks/probe.py``'s
  ``realistic_embeddings``: non-negative, low effective rank, overlapping classes), for
  widths no encoder here produces (a ResNet-50's 2,048).

For each case the table gives the seconds of each phase, k-means' share of the group,
scikit-learn's ``KMeans(n_clusters=10, n_init=1, random_state=0)`` timed in the same run
(issue 28's baseline), C1's speed-up over it and whether its labels are identical (else
C1's inertia relative to scikit-learn's), and the load average (the machine may be shared: absolute seconds then inflate, shares hold
better). k=10 (the data sets' class count), one init per clustering, as the product does.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score

from ssl_eval.metrics.clustering import kmeans_labels, silhouette_score

K = 10


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def encoder_embeddings(path: str, arch: str, dataset: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training images of ``dataset`` through the checkpoint's backbone."""
    from ssl_eval.config import FamilyConfig
    from ssl_eval.pipeline.inference import embed_images
    from ssl_eval.sources.datasets import load_split
    from ssl_eval.sources.loading import load_checkpoint
    from ssl_eval.sources.model_building import build_model

    data = load_split(dataset, "train")
    family = FamilyConfig(arch=arch)
    images = data.images[:n]
    model = build_model(load_checkpoint(path, family), family, in_channels=1 if images.ndim == 3 else images.shape[-1], path=path)
    if data.labels is None:
        raise ValueError(f"data set {dataset!r} has no labels; choose one with labels (digits, mnist, cifar10)")
    return embed_images(model, images), np.asarray(data.labels[:n])


def phases(X: np.ndarray, labels: np.ndarray | None) -> tuple[dict[str, float], np.ndarray]:
    """Seconds of each step of the clustering group, in the product's order, and C1."""
    seconds = {}
    started = time.perf_counter()
    c1 = kmeans_labels(X, K, random_state=0)
    seconds["kmeans_c1"] = time.perf_counter() - started
    started = time.perf_counter()
    c2 = kmeans_labels(X, K, random_state=1)
    seconds["kmeans_c2"] = time.perf_counter() - started
    started = time.perf_counter()
    adjusted_mutual_info_score(c1, c2)
    if labels is not None:
        adjusted_mutual_info_score(labels, c1)
    seconds["ami"] = time.perf_counter() - started
    started = time.perf_counter()
    silhouette_score(X, c1)
    seconds["silhouette"] = time.perf_counter() - started
    return seconds, c1


def against_scikit_learn(X: np.ndarray, c1: np.ndarray, seconds_c1: float) -> tuple[str, str, str]:
    """Time scikit-learn's ``KMeans(n_init=1, random_state=0)``; returns its seconds, C1's speed-up, labels/inertia vs it."""
    started = time.perf_counter()
    theirs = KMeans(n_clusters=K, n_init=1, random_state=0).fit(X)
    seconds = time.perf_counter() - started
    centers = np.stack([X[c1 == j].mean(0) for j in np.unique(c1)]).astype(np.float64)
    ours = float(((X[:, None, :].astype(np.float64) - centers[None]) ** 2).sum(-1).min(1).sum()) if len(X) * len(centers) * X.shape[1] < 2e8 else None
    relative = "labels identical" if np.array_equal(c1, theirs.labels_) else (
        f"{(ours - theirs.inertia_) / theirs.inertia_:+.1e}" if ours is not None else "labels differ")
    return f"{seconds:.2f}", f"{seconds / seconds_c1:.2f}x", relative


def row(label: str, X: np.ndarray, labels: np.ndarray | None) -> dict[str, str]:
    """One table row: the clustering group's phase times for ``X``, k-means' share, scikit-learn's KMeans beside C1."""
    load_before = _load()
    seconds, c1 = phases(X, labels)
    sklearn_s, speedup, inertia = against_scikit_learn(X, c1, seconds["kmeans_c1"])
    kmeans = seconds["kmeans_c1"] + seconds["kmeans_c2"]
    total = sum(seconds.values())
    return {
        "embeddings": label, "N": str(X.shape[0]), "D": str(X.shape[1]),
        **{name: f"{value:.2f}" for name, value in seconds.items()},
        "group_s": f"{total:.2f}", "kmeans_share": f"{100 * kmeans / total:.0f} %",
        "sklearn_kmeans_s": sklearn_s, "c1_speedup": speedup, "c1_vs_sklearn": inertia,
        "met (>=2x, same or lower inertia)": "yes" if float(speedup[:-1]) >= 2 and inertia[0] in "l-" else "no",
        "load": f"{load_before} -> {_load()}",
    }


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="an encoder checkpoint (real SSL embeddings)")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--npy", action="append", default=[], help="(N, D) embeddings saved with numpy.save")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 25_000, 50_000])
    parser.add_argument("--synthetic-dims", type=int, nargs="*", default=[2048])
    args = parser.parse_args()
    largest = max(args.sizes)
    sources: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    if args.checkpoint:
        started = time.perf_counter()
        X, y = encoder_embeddings(args.checkpoint, args.arch, args.dataset, largest)
        print(f"embedded {len(X)} images in {time.perf_counter() - started:.0f} s", flush=True)
        sources.append((f"{args.arch} {Path(args.checkpoint).name}, {args.dataset}", X, y))
    for path in args.npy:
        sources.append((Path(path).name, np.load(path).astype(np.float32, copy=False), None))
    if args.synthetic_dims:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from probe import realistic_embeddings  # benchmarks/probe.py

        for d in args.synthetic_dims:
            X, y = realistic_embeddings(largest, d)
            sources.append((f"synthetic ResNet-50-like, {d}-d", X, y))
    warm = np.random.default_rng(0).standard_normal((500, 16), dtype=np.float32)
    phases(warm, None)  # first-call library set-up (OpenMP, BLAS), not timed
    print(f"cpus {os.cpu_count()}, load {_load()}", flush=True)
    rows = []
    for label, embeddings, labels in sources:
        for n in sorted(args.sizes):
            if n <= len(embeddings):
                rows.append(row(label, np.ascontiguousarray(embeddings[:n]), None if labels is None else labels[:n]))
                print(rows[-1], flush=True)
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(r.values()) + " |")


if __name__ == "__main__":
    main()
