"""Embedding throughput: ssl-eval's embed step (zarr write included) vs a bare torch loop.

Same model (resnet18-cifar, random weights, 3 channels), same data (N random uint8 32x32
RGB images), same batch size, measured in one run, alternating the two so that load from
other processes hits both alike. On a machine with CUDA the same comparison runs on the
GPU too; there the bare loop is timed both as plain fp32 and with ssl-eval's settings
(bf16 autocast, channels_last), and the ratio is taken against the faster of the two.

    .venv/bin/python benchmarks/embedding.py                 # N = 10,000
    .venv/bin/python benchmarks/embedding.py --n 2000 --rounds 3
    .venv/bin/python benchmarks/embedding.py --arch timm:vit_small_patch16_224 --size 224 --n 256 --batch-size 64

A ``timm:`` architecture is built as ssl-eval builds it (random weights, nothing
downloaded) and embedded through the same pooling ssl-eval uses (the CLS token of a ViT).
The load average is printed before and after: on a shared machine it says how far the
figures are from the idle speed.

Goal (issue 28): ssl-eval / bare >= 0.95 for ResNet-50 at 224 px on a GPU, where the zarr
write now overlaps inference (rows go to a writer thread as batches finish; the commit stays
atomic); on the CPU no slower than the path before it (embed, then write), which is timed too.
Both ssl-eval paths run the model as ``embed_checkpoint`` does: batch norms folded into the
convolutions (``ssl_eval.sources.folding``) and channels_last tensors, where the bare loop runs
the model as built, on the tensors a plain loop makes (an RGB batch, permuted from NHWC, is
already channels_last in memory; a grey one is NCHW). ``--arch democnn --size 28 --channels 1
--threads 1`` is the demo store's CNN on MNIST-sized images, one thread as in an embed task.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import tempfile
import time

import numpy as np
import torch

from ssl_eval.pipeline.embedding import embed_streamed
from ssl_eval.pipeline.inference import embed_images
from ssl_eval.results.embeddings import LocalEmbeddingArrays
from ssl_eval.sources.folding import fold_batch_norms
from ssl_eval.sources.models import build_backbone
from ssl_eval.sources.token_pooling import pooled

EMBED_THEN_WRITE = "ssl-eval before #28: embed, then write"
OVERLAPPED = "ssl-eval: write overlapped (staged)"


def bare_loop(model, images: np.ndarray, batch_size: int, device: torch.device, *, bf16: bool = False, channels_last: bool = False) -> np.ndarray:
    """The loop a user would write: uint8 -> float in [0, 1] -> model, outputs to numpy."""
    outputs = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start : start + batch_size]).to(device)
            x = (x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)).float().div(255.0)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            outputs.append(model(x).float().cpu().numpy())
    return np.concatenate(outputs)


def ssl_eval_embed(model, images: np.ndarray, batch_size: int, device: torch.device, store: LocalEmbeddingArrays, key: str) -> float:
    """Time ssl-eval's path (embed_checkpoint's): rows stream to the staged zarr write, then the commit; returns seconds."""
    started = time.perf_counter()
    with store.staged(key, fingerprint=key, embedding_key="bench") as writer:
        embed_streamed(writer, "eval", model, images, batch_size=batch_size, device=device)
        writer.finish({"fingerprint": key, "embedding_key": "bench"})
    return time.perf_counter() - started


def embed_then_write(model, images: np.ndarray, batch_size: int, device: torch.device, store: LocalEmbeddingArrays, key: str) -> tuple[float, float]:
    """Time the path before issue 28 (embed_images, then the atomic zarr commit); returns (total s, write s)."""
    started = time.perf_counter()
    features = embed_images(model, images, batch_size=batch_size, device=device)
    written = time.perf_counter()
    store.write(key, {"eval": features}, {"fingerprint": key, "embedding_key": "bench"})
    done = time.perf_counter()
    return done - started, done - written


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, images: np.ndarray, batch_size: int, rounds: int, arch: str = "resnet18-cifar") -> list[tuple[str, float, float]]:
    """Time a bare torch loop against ssl-eval's embed step (before and after issue 28) on ``device``; the best of ``rounds``."""
    torch.manual_seed(0)
    channels = 1 if images.ndim == 3 else images.shape[3]
    model = pooled(build_backbone(arch, in_channels=channels), None, arch).eval().to(device)
    # ssl-eval's embed step folds the batch norms into the convolutions (a copy: the bare loop keeps its own)
    folded = copy.deepcopy(model)
    fold_batch_norms(folded)
    warm = images[: min(len(images), 2 * batch_size)]
    variants: dict[str, dict[str, bool]] = {"bare torch loop (fp32)": dict()}
    if device.type == "cuda":
        variants["bare torch loop (bf16, channels_last)"] = dict(bf16=True, channels_last=True)
    times: dict[str, list[float]] = {name: [] for name in [*variants, EMBED_THEN_WRITE, OVERLAPPED]}
    writes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ssl-eval-bench-") as tmp:
        store = LocalEmbeddingArrays(f"{tmp}/e.zarr")
        # warm-up: kernels, allocator, cudnn autotuning, zarr import
        for kwargs in variants.values():
            bare_loop(model.to(memory_format=torch.channels_last) if kwargs.get("channels_last") else model, warm, batch_size, device, **kwargs)
        ssl_eval_embed(folded, warm, batch_size, device, store, "warm/up/0")
        embed_then_write(folded, warm, batch_size, device, store, "warm/up/1")
        for r in range(rounds):
            for name, kwargs in variants.items():
                m = model.to(memory_format=torch.channels_last) if kwargs.get("channels_last") else model.to(memory_format=torch.contiguous_format)
                _sync(device)
                t0 = time.perf_counter()
                bare_loop(m, images, batch_size, device, **kwargs)
                _sync(device)
                times[name].append(time.perf_counter() - t0)
            total, write = embed_then_write(folded, images, batch_size, device, store, f"bench/before/{r}")
            times[EMBED_THEN_WRITE].append(total)
            writes.append(write)
            times[OVERLAPPED].append(ssl_eval_embed(folded, images, batch_size, device, store, f"bench/run/{r}"))
    n = len(images)
    return [(name, n / min(ts), float(np.median(writes)) if name == EMBED_THEN_WRITE else 0.0) for name, ts in times.items()]


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images (uint8, random)")
    parser.add_argument("--arch", default="resnet18-cifar", help="e.g. resnet50 (with --size 224)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=1, help="repeats; the best of each is reported")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1: grey images as MNIST's (N, H, W)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (ssl-eval's embed tasks run one each, two at a time); 0: torch's default")
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU (slow for ResNet-50 at 224 px)")
    args = parser.parse_args()

    shape = (args.n, args.size, args.size) + ((3,) if args.channels == 3 else ())
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [] if args.gpu_only else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    if not devices:
        raise SystemExit("--gpu-only: no CUDA device here.")
    print(f"{args.arch}, {args.n} images {args.size}x{args.size}x{args.channels}, batch {args.batch_size}, best of {args.rounds}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; load average {_load()}")
    for device in devices:
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        rows = measure(device, images, args.batch_size, args.rounds, args.arch)
        baseline = max(r[1] for r in rows[:-2])
        print(f"\n{label}")
        print(f"| {'path':<40} | {'images/s':>9} | {'ratio':>6} |")
        print(f"|{'-' * 42}|{'-' * 11}|{'-' * 8}|")
        for name, rate, _ in rows:
            print(f"| {name:<40} | {rate:>9.{0 if rate >= 100 else 1}f} | {rate / baseline:>6.3f} |")
        print(f"zarr write of the ({args.n}, D) float32 result, not overlapped: {rows[-2][2] * 1000:.0f} ms "
              f"({rows[-2][2] * rows[-2][1] / args.n * 100:.1f} % of that path's time); overlapped / before: "
              f"{rows[-1][1] / rows[-2][1]:.3f} (goal on the CPU: >= 1, no slower)")
    print(f"load average at the end {_load()}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1, 5, 15 min)"


if __name__ == "__main__":
    main()
