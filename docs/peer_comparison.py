"""docs/metrics.md, "Compared with peer implementations": peers' values on stored embeddings, and ours.

The same values are reproduced from ssl-eval's own spectra (``convention=...``).

    .venv/bin/python docs/peer_comparison.py WORKDIR CHECKPOINT_ID [...] [--spt DIR]

reptrix must be installed (``pip install reptrix==0.1.0``). ``--spt DIR``: a folder holding
the ``stable_pretraining`` package unpacked from its wheel (``pip download
stable-pretraining==0.1.8 --no-deps`` and unzip); its RankMe and LiDAR callback modules
are run as they are, with the Lightning, loguru and queue imports replaced by stand-ins
(installing the package brings about 30 more, wandb, transformers and lightning among them).
Peers get float64 tensors; the float32 column shows what a user passing the stored float32
arrays gets.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssl_eval.metrics import MetricOptions, compute_group
from ssl_eval.results.workspace import Workspace


def ours(X, views, convention):
    """Our spectral and geometry values of ``X`` under ``convention``."""
    opts = MetricOptions(convention=convention)
    return {**compute_group("spectral", X, options=opts).values,
            **compute_group("geometry", X, views=views, options=opts).values}


def reptrix_values(X, views, dtype):
    """RankMe, alpha-ReQ and LiDAR of ``X`` and ``views`` in ``dtype``, as reptrix computes them."""
    from reptrix import alpha, lidar, rankme

    x = torch.from_numpy(X.astype(dtype))
    a, _, r2, _ = alpha.get_alpha(x)
    stacked = torch.from_numpy(np.stack(views, axis=1).astype(dtype))
    return {"rankme_centered": float(rankme.get_rankme(x)), "alpha_req": float(a),
            "alpha_req_r2": float(r2), "lidar": float(lidar.get_lidar(stacked, len(views[0]), 2))}


def load_spt(root: Path):
    """stable-pretraining's callbacks/rankme.py and lidar.py with stand-in imports."""
    stub = types.ModuleType
    lightning, pytorch = stub("lightning"), stub("lightning.pytorch")
    pytorch.Callback, pytorch.LightningModule, pytorch.Trainer = object, object, object
    lightning.pytorch = pytorch
    loguru = stub("loguru")
    loguru.logger = types.SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None)
    pkg = stub("spt_callbacks")
    pkg.__path__ = []
    registry, queue, utils = stub("spt_callbacks.registry"), stub("spt_callbacks.queue"), stub("spt_callbacks.utils")
    registry.log = lambda *a, **k: None
    queue.find_or_create_queue_callback = None
    utils.log_header, utils.resolve_verbose = (lambda *a, **k: None), (lambda v: bool(v))
    sys.modules.update({"lightning": lightning, "lightning.pytorch": pytorch, "loguru": loguru,
                        "spt_callbacks": pkg, "spt_callbacks.registry": registry,
                        "spt_callbacks.queue": queue, "spt_callbacks.utils": utils})
    modules = {}
    for name in ("rankme", "lidar"):
        path = root / "stable_pretraining" / "callbacks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"spt_callbacks.{name}", path)
        modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[name])
    return modules


def spt_values(modules, X, views, dtype):
    """stable-pretraining's RankMe and LiDAR callbacks' values of ``X`` and ``views`` in ``dtype``."""
    logged = {}
    module = types.SimpleNamespace(log=lambda name, value, **k: logged.__setitem__(name, value))
    cb = modules["rankme"].RankMe("rankme", "x", len(X), X.shape[1])
    cb._target_queue = types.SimpleNamespace(data=torch.from_numpy(X.astype(dtype)))
    cb.on_validation_batch_end(types.SimpleNamespace(global_rank=0), module, {}, {}, 0)
    lidar = modules["lidar"].LiDAR("lidar", "x", 2 * len(views[0]), X.shape[1], n_classes=len(views[0]), samples_per_class=2)
    grouped = torch.from_numpy(np.stack(views, axis=1).reshape(2 * len(views[0]), -1).astype(dtype))
    return {"rankme": float(logged["rankme"]), "lidar": float(lidar._compute_lidar(grouped)["lidar"])}


def main() -> None:
    """Parse the command line, compare the values of every checkpoint id, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("ids", nargs="+")
    parser.add_argument("--spt", type=Path)
    args = parser.parse_args()
    store = Workspace.at(args.workdir).embeddings
    spt = load_spt(args.spt) if args.spt else None
    print("| checkpoint | metric | peer | ssl-eval (default) | peer, float64 input | ours with `convention` "
          "| abs. difference | peer, float32 input |")
    print("|---|---|---|---|---|---|---|---|")
    for cid in args.ids:
        X = np.asarray(store.read(cid, "eval"), dtype=np.float64)
        views = (np.asarray(store.read(cid, "views_a"), dtype=np.float64),
                 np.asarray(store.read(cid, "views_b"), dtype=np.float64))
        default = ours(X, views, "ssl-eval")
        peers = [("reptrix", reptrix_values)] + ([("stable-pretraining", lambda X, v, d: spt_values(spt, X, v, d))] if spt else [])
        for peer, fn in peers:
            exact, single = fn(X, views, np.float64), fn(X, views, np.float32)
            mine = ours(X, views, peer)
            for metric, value in exact.items():
                diff = abs(mine[metric] - value)
                print(f"| {cid} (N={len(X)}, D={X.shape[1]}, {len(views[0])} view pairs) | `{metric}` | {peer} | "
                      f"{default[metric]:.6f} | {value:.6f} | {mine[metric]:.6f} | {diff:.1e} | {single[metric]:.6f} |")


if __name__ == "__main__":
    main()
