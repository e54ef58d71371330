"""Ratio benchmark of ssl-eval's metric kernels against what a user would otherwise call.

Run: ``python benchmarks/metrics.py [--quick] [--repeats 3]``. Prints ONE table: for each
case our time and the baseline's, measured in the same run on the same data, their ratio,
peak memory of each, the goal and the largest absolute difference of the results.

How it measures (not a timed test):

* every measurement runs in a fresh subprocess (``--worker``) that builds the data with a
  fixed seed, warms up BLAS/LAPACK/OpenMP on tiny inputs, then runs one side once;
  ours and the baseline alternate, ``--repeats`` times; time = best of the repeats;
* peak memory = the process's peak resident set size (VmHWM, reset through
  /proc/self/clear_refs just before the call) minus its RSS just before the call, so it
  counts every allocation of the call, LAPACK workspaces included, and not the input data.
  ``MALLOC_MMAP_THRESHOLD_`` is fixed at 64 KiB in the workers so that freed arrays leave
  the RSS (otherwise glibc may keep them and hide a later peak);
* the data are float32, as ``ssl_eval.pipeline.embedding`` writes embeddings; baselines get the same
  array, as a user would pass it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

FULL = {"silhouette": (20_000, 512), "spectral": (25_600, 2_048), "clustering": (20_000, 512)}
QUICK = {"silhouette": (4_000, 128), "spectral": (4_096, 256), "clustering": (4_000, 128)}
K = 10


# ---------------------------------------------------------------- data and the two sides

def _blobs(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """k=10 Gaussian clusters in float32 (centres scale 1, noise 1: overlapping, as real embeddings are) and their labels."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, n)
    centers = rng.standard_normal((K, d), dtype=np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += centers[labels]
    return X, labels


def _spectrum_data(n: int, d: int) -> np.ndarray:
    """float32 rows with a power-law covariance spectrum (lambda_i ~ i^-1) and a mean."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= (np.arange(1, d + 1, dtype=np.float32) ** -0.5)[None, :]
    X += np.float32(0.1)
    return X


def _ours(case, data):
    """Yield (stage, value) pairs; the worker times and measures memory at each yield."""
    if case == "silhouette":
        from ssl_eval.metrics.clustering import silhouette_score
        X, labels = data
        yield "total", {"silhouette": silhouette_score(X, labels)}
    elif case == "spectral":
        from ssl_eval.metrics.spectral import spectral_metrics
        values, _ = spectral_metrics(data)
        yield "total", {"rankme": values["rankme"], "alpha_req": values["alpha_req"]}
    else:
        from ssl_eval.metrics import MetricOptions, compute_group
        X, _ = data
        res = compute_group("clustering", X, options=MetricOptions(k=K), random_state=0)
        yield "total", {"silhouette": res.values["silhouette"],
                        "ami_agreement": res.values["ami_agreement"]}


def _baseline(case, data):
    if case == "silhouette":
        from sklearn.metrics import silhouette_score
        X, labels = data
        yield "total", {"silhouette": float(silhouette_score(X, labels))}
    elif case == "spectral":
        from ssl_eval.metrics.spectral import alpha_req_fit, rankme_from_singular_values
        X = data
        s = np.linalg.svd(X, compute_uv=False)
        yield "svd", {"rankme": rankme_from_singular_values(s.astype(np.float64))}
        sc = np.linalg.svd(X - X.mean(axis=0), compute_uv=False).astype(np.float64)
        alpha, _ = alpha_req_fit(sc ** 2 / (X.shape[0] - 1))
        yield "total", {"rankme": rankme_from_singular_values(s.astype(np.float64)),
                        "alpha_req": alpha}
    else:
        from sklearn.cluster import KMeans
        from sklearn.metrics import adjusted_mutual_info_score, silhouette_score
        X, _ = data
        c1 = KMeans(n_clusters=K, n_init=1, random_state=0).fit_predict(X)
        c2 = KMeans(n_clusters=K, n_init=1, random_state=1).fit_predict(X)
        yield "kmeans", {}
        yield "total", {"silhouette": float(silhouette_score(X, c1)),
                        "ami_agreement": float(adjusted_mutual_info_score(c1, c2))}


# ---------------------------------------------------------------- worker (one measurement)

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _warm_up() -> None:
    """Import both sides and touch BLAS/LAPACK/OpenMP buffers outside the measured call."""
    # F401: imported for their import cost and first-call set-up, not used by name
    import sklearn.metrics  # noqa: F401
    from sklearn.cluster import KMeans

    import ssl_eval.metrics.clustering  # noqa: F401
    import ssl_eval.metrics.spectral  # noqa: F401
    for dtype in (np.float32, np.float64):
        a: np.ndarray = np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype)
        _ = a @ a, a.T @ a, np.linalg.eigvalsh(a[:256, :256]), np.linalg.svd(a[:256, :256])
    KMeans(n_clusters=2, n_init=1, random_state=0).fit(a[:256])


def _worker(case: str, side: str, n: int, d: int) -> None:
    data = _blobs(n, d) if case in ("silhouette", "clustering") else _spectrum_data(n, d)
    _warm_up()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    base_kb = _status_kb("VmRSS")
    out = []
    start = time.perf_counter()
    for stage, value in (_ours if side == "ours" else _baseline)(case, data):
        out.append({"stage": stage, "s": time.perf_counter() - start,
                    "peak_mb": (_status_kb("VmHWM") - base_kb) / 1024, "value": value})
    print(json.dumps(out))


def _measure(case: str, side: str, n: int, d: int) -> dict[str, dict]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    proc = subprocess.run([sys.executable, __file__, "--worker", case, side, str(n), str(d)],  # noqa: S603 - this script, a fixed argv
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {case}/{side} failed:\n{proc.stderr}")
    return {row["stage"]: row for row in json.loads(proc.stdout.strip().splitlines()[-1])}


# ---------------------------------------------------------------- the table

# (row label, case, our stage, baseline stage, speed goal, memory goal)
ROWS = [
    ("silhouette vs sklearn.metrics.silhouette_score", "silhouette", "total", "total", 2.0, 0.25),
    ("RankMe+alpha-ReQ (Gram+eigh) vs np.linalg.svd(X)", "spectral", "total", "svd", 3.0, None),
    ("  same vs svd(X)+svd(X-mean) (both outputs)", "spectral", "total", "total", None, None),
    ("clustering group vs 2x KMeans+silhouette+AMI *", "clustering", "total", "total", None, None),
    ("  k-means C1+C2 alone: ours IS sklearn KMeans", "clustering", None, "kmeans", None, None),
]


def _max_abs_diff(ours: dict, base: dict) -> float:
    keys = set(ours) & set(base)
    return max((abs(ours[k] - base[k]) for k in keys), default=float("nan"))


def main() -> None:
    """Parse the command line, run each case in a worker process (or be that worker), print the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    runs: dict[tuple[str, str], list[dict]] = {}
    load_start = os.getloadavg()[0]
    for case, (n, d) in sizes.items():
        for _ in range(args.repeats):
            for side in ("ours", "baseline"):
                runs.setdefault((case, side), []).append(_measure(case, side, n, d))
                print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def best(case, side, stage):
        rows = [r[stage] for r in runs[(case, side)]]
        return (min(r["s"] for r in rows), max(r["peak_mb"] for r in rows), rows[0]["value"])

    head = ("case", "N", "D", "ours_s", "baseline_s", "speedup", "ours_peak_MB",
            "baseline_peak_MB", "mem_ratio", "goal", "met?", "max_abs_diff")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, case, our_stage, base_stage, speed_goal, mem_goal in ROWS:
        n, d = sizes[case]
        t_b, m_b, v_b = best(case, "baseline", base_stage)
        if our_stage is None:
            cells = [label, n, d, "(same code)", f"{t_b:.2f}", "1 (same)", "-", f"{m_b:.0f}",
                     "-", "-", "-", "-"]
        else:
            t_o, m_o, v_o = best(case, "ours", our_stage)
            speed, mem = t_b / t_o, m_o / m_b if m_b > 0 else float("nan")
            goals, met = [], []
            if speed_goal:
                goals.append(f">={speed_goal:g}x faster")
                met.append(speed >= speed_goal)
            if mem_goal:
                goals.append(f"<={mem_goal:g} memory")
                met.append(mem <= mem_goal)
            cells = [label, n, d, f"{t_o:.2f}", f"{t_b:.2f}", f"{speed:.2f}x", f"{m_o:.0f}",
                     f"{m_b:.0f}", f"{mem:.3f}", ", ".join(goals) or "report",
                     ("yes" if all(met) else "NO") if met else "-",
                     f"{_max_abs_diff(v_o, v_b):.1e}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    load = os.getloadavg()[0]
    print(f"best of {args.repeats}; float32 data; k={K}; peak = RSS high-water mark above the "
          f"input, fresh process per run; load average {load_start:.1f} at start, {load:.1f} "
          f"at end on {os.cpu_count()} CPUs")
    print("\n".join(lines))
    print("* k-means in ssl-eval is scikit-learn KMeans(n_init=1) seeded 0 and 1; the group adds"
          " our silhouette and AMI(C1, C2).")


if __name__ == "__main__":
    main()
