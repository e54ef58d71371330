"""The torch linear probe on the GPU against the same probe on the CPU (and scikit-learn).

    python benchmarks/probe_devices.py [--n 50000] [--d 2048]

Synthetic ResNet-50-like embeddings (see benchmarks/probe.py), N_train=--n, N_test=--n/5,
10 classes. Prints seconds, accuracies and the GPU/CPU ratio; the first call on each
device (library set-up) is not timed. Needs CUDA.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Literal

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from probe import realistic_embeddings

from ssl_eval.probe import linear_probe


def main() -> None:
    """Parse the command line, time the probe on the GPU and the CPU, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--sklearn", action="store_true", help="also time scikit-learn (slow)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark compares the GPU with the CPU.")
    X, y = realistic_embeddings(args.n + args.n // 5, args.d)
    split = (X[: args.n], y[: args.n], X[args.n:], y[args.n:])
    rows = []
    runs: list[tuple[Literal["torch", "sklearn"], str | None]] = [("torch", "cuda"), ("torch", "cpu")]
    runs += [("sklearn", None)] if args.sklearn else []
    for solver, device in runs:
        if solver == "torch":
            linear_probe(X[:500], y[:500], X[500:700], y[500:700], device=device)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        accuracy = linear_probe(*split, solver=solver, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        rows.append((f"{solver} ({device or 'cpu, float64'})", time.perf_counter() - started, accuracy))
    gpu = rows[0][1]
    print(f"N_train={args.n}, D={args.d}, {torch.cuda.get_device_name()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, load {os.getloadavg()[0]:.1f}")
    print("| probe | seconds | accuracy | time / GPU time |")
    print("|---|---|---|---|")
    for name, seconds, accuracy in rows:
        print(f"| {name} | {seconds:.2f} | {accuracy:.4f} | {seconds / gpu:.1f}x |")


if __name__ == "__main__":
    main()
