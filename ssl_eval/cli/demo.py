"""``ssl-eval make-demo-store``: train small SSL encoders and save a checkpoint per epoch."""

from __future__ import annotations

from pathlib import Path

import typer

from ssl_eval.cli.application import command, fail

__all__ = ["make_demo_store_cmd"]


@command("make-demo-store")
def make_demo_store_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write <method>/run-<r>/epoch=NN.ckpt into."),
    epochs: int = typer.Option(8, "--epochs", min=1, help="Training epochs per run; a checkpoint is saved before training and after each."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first run (run r uses seed + r)."),
    dataset: str = typer.Option("mnist", "--dataset", help="Training data set: mnist, fashion-mnist or digits (installed offline)."),
    arch: str = typer.Option("democnn", "--arch", help="Backbone: democnn (fast on a CPU), resnet18-cifar, resnet18, ..."),
    n_train: int = typer.Option(10000, "--n-train", min=16, help="Training images per method."),
    batch_size: int = typer.Option(128, "--batch-size", min=2, help="Images per optimiser step (the learning rate scales with it)."),
    runs: int = typer.Option(1, "--runs", min=1, help="Training runs (seeds) per method: <method>/run-0, run-1, ..."),
    methods: str | None = typer.Option(
        None, "--methods",
        help="Comma-separated SSL methods (simclr, mocov2, simsiam, byol, barlowtwins, vicreg, dino); default: the paper's three.",
    ),
    lr_scales: str | None = typer.Option(
        None, "--lr-scales",
        help="Comma-separated multipliers of each method's learning rate, e.g. 0.1,1,8: one set of runs each, "
             "named lr<scale>-run-<r>; default: 1 (runs named run-<r>).",
    ),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="cosine (decay to 0 by the last epoch) or constant."),
) -> None:
    """Train SimCLR, MoCo-v2 and SimSiam on a real data set and save a checkpoint per epoch.

    Example: ssl-eval make-demo-store --out demo_store --epochs 4
    """
    from ssl_eval.demo.methods import PAPER_METHODS
    from ssl_eval.demo.train import make_demo_store

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else PAPER_METHODS
    try:
        scales = tuple(float(x) for x in lr_scales.split(",") if x.strip()) if lr_scales else (1.0,)
    except ValueError:
        fail(f"--lr-scales {lr_scales!r}: expected comma-separated positive numbers such as 0.1,1,8.")

    try:
        paths = make_demo_store(
            out, dataset=dataset, epochs=epochs, seed=seed, arch=arch, n_train=n_train, batch_size=batch_size, runs=runs, methods=chosen,
            lr_scales=scales, lr_schedule=lr_schedule, progress=lambda line: typer.echo(line),
        )
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(paths)} checkpoints under {out}")
