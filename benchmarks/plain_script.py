"""The plain sequential script that benchmarks/end_to_end.py runs beside ssl-eval, in its own process.

``python benchmarks/plain_script.py STORE OUT.json``.

It loads each checkpoint with ``torch.load``, embeds the same images (and augmented views) in
a bare torch loop, computes the same label-free metrics with scikit-learn, scipy and numpy,
fits the same probes, correlates every metric with the probe per family (scipy.stats) and
logs it all to MLflow (sqlite), one checkpoint after another; it writes each phase's seconds
to OUT.json. Runs on the runtime install; it never imports pytest.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = ("imports", "server start", "data set", "load", "embed", "metrics", "probe", "analysis", "MLflow")


def _metrics(X, labels, views, k: int | None, seed: int) -> dict[str, float]:
    """The label-free metrics of ssl-eval's registry, with scikit-learn, scipy and numpy."""
    import numpy as np
    from scipy.spatial.distance import pdist
    from scipy.special import digamma, gammaln
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_mutual_info_score, silhouette_score
    from sklearn.neighbors import NearestNeighbors

    X64 = X.astype(np.float64)
    out: dict[str, float] = {}
    c1 = KMeans(k, n_init=1, random_state=seed).fit_predict(X)
    c2 = KMeans(k, n_init=1, random_state=seed + 1).fit_predict(X)
    out["silhouette"] = float(silhouette_score(X, c1)) if len(set(c1)) > 1 else float("nan")
    out["ami_agreement"] = adjusted_mutual_info_score(c1, c2)
    out["ami_ground_truth"] = adjusted_mutual_info_score(c1, labels)

    n, d = X64.shape
    cov = np.cov(X64, rowvar=False)
    ridge = 1e-6 * np.trace(cov) / d + 1e-12
    out["entropy_gaussian"] = 0.5 * (d * np.log(2 * np.pi * math.e) + np.linalg.slogdet(cov + ridge * np.eye(d))[1])

    def kl_entropy(Z, kk=3):
        m, dim = Z.shape
        eps = NearestNeighbors(n_neighbors=kk + 1).fit(Z).kneighbors(Z)[0][:, kk]
        log_vd = dim / 2 * np.log(np.pi) - gammaln(dim / 2 + 1)
        return digamma(m) - digamma(kk) + log_vd + dim * np.mean(np.log(np.maximum(eps, 1e-300)))

    out["entropy_knn"] = kl_entropy(X64)
    out["entropy_z3"] = kl_entropy(PCA(3, random_state=seed).fit_transform(X64)) / np.log(2)

    s = np.linalg.svd(X64, compute_uv=False)
    sc = np.linalg.svd(X64 - X64.mean(axis=0), compute_uv=False)

    def rankme(sv):
        p = sv / sv.sum() + 1e-7
        return float(np.exp(-np.sum(p * np.log(p))))

    out["rankme"], out["rankme_centered"] = rankme(s), rankme(sc)
    lam = sc**2 / (n - 1)
    pos = lam[lam > lam[0] * 1e-12]
    i = np.arange(1, len(pos) + 1)
    slope, intercept = np.polyfit(np.log(i), np.log(pos), 1)
    fit = intercept + slope * np.log(i)
    out["alpha_req"] = -slope
    out["alpha_req_r2"] = 1 - np.sum((np.log(pos) - fit) ** 2) / np.sum((np.log(pos) - np.log(pos).mean()) ** 2)
    out["nesum"] = float(lam.sum() / lam[0])
    out["stable_rank"] = float((s**2).sum() / s[0] ** 2)

    Z = X64 / np.maximum(np.linalg.norm(X64, axis=1, keepdims=True), 1e-12)
    out["uniformity"] = float(np.log(np.mean(np.exp(-2 * pdist(Z, "sqeuclidean")))))
    out["norm_std"] = float(Z.std(axis=0).mean())
    if views is not None:
        a, b = (v.astype(np.float64) for v in views)
        a, b = (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for v in (a, b))
        out["alignment"] = float(np.mean(np.sum((a - b) ** 2, axis=1)))
        stack = np.stack([views[0], views[1]], axis=1).astype(np.float64)
        means = stack.mean(axis=1)
        centered = means - means.mean(axis=0)
        between = centered.T @ centered / (len(means) - 1)
        dev = (stack - means[:, None, :]).reshape(-1, stack.shape[2])
        within = dev.T @ dev / len(means) + 1e-4 * np.eye(stack.shape[2])
        w, vec = np.linalg.eigh(within)
        inv_sqrt = (vec / np.sqrt(w)) @ vec.T
        ev = np.clip(np.linalg.eigvalsh(inv_sqrt @ between @ inv_sqrt), 0, None)
        p = ev / ev.sum() + 1e-8
        out["lidar"] = float(np.exp(-np.sum(p * np.log(p))))
    return {name: float(value) for name, value in out.items()}


def _probes(train_X, train_y, test_X, test_y, knn_k: int) -> dict[str, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_X)
    clf = LogisticRegression(max_iter=1000).fit(scaler.transform(train_X), train_y)
    linear = float(clf.score(scaler.transform(test_X), test_y))
    a = train_X / np.maximum(np.linalg.norm(train_X, axis=1, keepdims=True), 1e-12)
    b = test_X / np.maximum(np.linalg.norm(test_X, axis=1, keepdims=True), 1e-12)
    sims = b @ a.T
    top = np.argpartition(-sims, knn_k - 1, axis=1)[:, :knn_k]
    weights = np.exp((np.take_along_axis(sims, top, axis=1) - 1) / 0.07)
    classes = np.unique(train_y)
    votes = np.zeros((len(b), len(classes)))
    np.add.at(votes, (np.arange(len(b))[:, None], np.searchsorted(classes, train_y[top])), weights)
    return {"linear_acc": linear, "knn_acc": float(np.mean(classes[votes.argmax(axis=1)] == test_y))}


def plain(store: Path, out: Path) -> None:
    """The plain sequential script; writes its phase times to ``out`` (JSON)."""
    times = dict.fromkeys(PHASES, 0.0)
    import mlflow
    import numpy as np
    import sklearn.cluster  # noqa: F401 - imported here so that the imports phase counts them
    import sklearn.linear_model  # noqa: F401 - the same
    import torch
    from scipy import stats

    from ssl_eval.config import load_config
    from ssl_eval.sources.augment import fixed_views
    from ssl_eval.sources.models import DemoCNN
    from ssl_eval.sources.splits import eval_splits

    imported = time.time()
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[phase] += now - clock
        clock = now

    data = load_config(store=str(store)).data
    splits = eval_splits(data.name, n_eval=data.n_eval, n_probe_train=data.n_probe_train, n_probe_test=data.n_probe_test,
                         random_state=data.random_state, root=data.root)
    views = fixed_views(splits.eval.images, data.n_views, random_state=data.random_state) if data.n_views else None
    lap("data set")

    def embed(model, images):
        feats = []
        with torch.inference_mode():
            for start in range(0, len(images), data.batch_size):
                x = torch.from_numpy(images[start:start + data.batch_size]).float().div_(255.0)
                feats.append(model(x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)).reshape(len(x), -1))
        return torch.cat(feats).numpy()

    rows: dict[str, list[tuple[str, int, dict[str, float]]]] = {}
    for path in sorted(store.glob("*/*/*.ckpt")):
        family, run = path.parent.parent.name, path.parent.name
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = DemoCNN(in_channels=1)
        model.load_state_dict({k.removeprefix("backbone."): v for k, v in checkpoint["state_dict"].items()})
        model.eval()
        lap("load")
        X = embed(model, splits.eval.images)
        train_X, test_X = embed(model, splits.probe_train.images), embed(model, splits.probe_test.images)
        pair = (embed(model, views[0]), embed(model, views[1])) if views is not None else None
        lap("embed")
        values = _metrics(X, splits.eval.labels, pair, splits.eval.num_classes, seed=0)
        lap("metrics")
        values.update(_probes(train_X, splits.probe_train.labels, test_X, splits.probe_test.labels, knn_k=20))
        lap("probe")
        rows.setdefault(family, []).append((run, int(checkpoint["epoch"]), values))

    correlations = {}
    for family, found in rows.items():
        probe = np.array([v["linear_acc"] for _, _, v in found])
        for name in found[0][2]:
            series = np.array([v[name] for _, _, v in found])
            if np.all(np.isfinite(series)) and np.ptp(series) > 0 and np.ptp(probe) > 0:
                correlations[f"{family}/{name}"] = (stats.spearmanr(series, probe)[0], stats.kendalltau(series, probe)[0],
                                                    stats.pearsonr(series, probe)[0])
    lap("analysis")

    mlflow.set_tracking_uri(f"sqlite:///{out.parent / 'plain-mlflow.db'}")
    for family, found in rows.items():
        experiment = mlflow.set_experiment(f"plain/{family}")
        for run in sorted({r for r, _, _ in found}):
            with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=run):
                for _, epoch, values in (row for row in found if row[0] == run):
                    mlflow.log_metrics({k: v for k, v in values.items() if np.isfinite(v)}, step=epoch)
        with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="correlations"):
            mlflow.log_metrics({f"{key.split('/', 1)[1]}/{stat}": float(value)
                                for key, triple in correlations.items() if key.startswith(family + "/")
                                for stat, value in zip(("spearman", "kendall", "pearson"), triple, strict=True) if np.isfinite(value)})
    lap("MLflow")
    out.write_text(json.dumps({"imported": imported, "finished": time.time(), "times": times,
                               "linear_acc": {f: [v["linear_acc"] for _, _, v in r] for f, r in rows.items()}}))


if __name__ == "__main__":
    plain(Path(sys.argv[1]), Path(sys.argv[2]))
