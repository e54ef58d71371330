"""Tasks run on threads of one process: 8 threads at once give exactly what one thread gives.

Loading and measuring checkpoints on 8 threads of the threaded Dask cluster gives what one thread
gives, and leaves the process-wide state (torch's safe globals and thread count, warnings filters,
numpy's error state) as it found it (scikit-learn saves and restores the warnings filters in every
``check_array``, on every thread: any filter added and removed at run time would leak).
docs/reliability.md, "Tasks on threads", lists what was audited.
"""

from __future__ import annotations

import argparse
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from numpy.exceptions import ComplexWarning, VisibleDeprecationWarning
from sklearn.datasets import load_digits

from ssl_eval.common.threads import one_thread_per_task
from ssl_eval.config import FamilyConfig
from ssl_eval.metrics import compute_all
from ssl_eval.pipeline.inference import embed_images
from ssl_eval.probe import linear_probe
from ssl_eval.sources.loading import load_checkpoint
from ssl_eval.sources.model_building import build_model
from tests.helpers import write_checkpoint, write_dino_checkpoint

THREADS, ROUNDS = 8, 3
FAMILY = FamilyConfig(arch="democnn")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("threads")
    paths = [(write_dino_checkpoint if i % 2 == 0 else write_checkpoint)(root / f"epoch={i:02d}.ckpt", epoch=i, seed=i) for i in range(15)]
    # a collapsed encoder: k-means on duplicate points warns, metrics take their NaN paths
    return [*paths, write_checkpoint(root / "epoch=15.ckpt", epoch=15, seed=15, scale=0.0)]


_digits = load_digits()
IMAGES, LABELS = (_digits.images[:120] * (255 / 16)).astype(np.uint8)[..., None], _digits.target[:120]


def measure(path) -> tuple:
    """Load, build, embed, then the metrics and the probe: what a task does to one checkpoint."""
    loaded = load_checkpoint(path, FAMILY)
    model = build_model(loaded, FAMILY, in_channels=1, path=str(path))
    X = embed_images(model, IMAGES, batch_size=40)
    values = compute_all(X, LABELS, random_state=0).values
    probe = linear_probe(X[:80], LABELS[:80], X[80:], LABELS[80:])
    return loaded.meta["epoch"], X.tobytes(), values, probe


# scikit-learn's own catch_warnings blocks (check_array: "error" for ComplexWarning;
# type_of_target: "error" for VisibleDeprecationWarning) save and restore the filter list on
# every thread and may leave one of their filters behind (scikit-learn#2755; Python 3.14's
# context-aware warnings end it). Not ours to fix; harmless here: no input is complex or ragged.
_SKLEARN_OWN = {("error", None, ComplexWarning, None, 0), ("error", None, VisibleDeprecationWarning, None, 0)}


def _state() -> tuple:
    """The process-wide state a task could change; each filter as what it means (a library may put a compiled pattern where an equal string was)."""
    filters = [tuple(getattr(part, "pattern", part) for part in f) for f in warnings.filters]
    return [f for f in filters if f not in _SKLEARN_OWN], np.geterr(), torch.get_num_threads()


def _on_threads(paths) -> list:
    """:func:`measure` of every path on :data:`THREADS` threads, their first loads started together."""
    start, started = threading.Barrier(THREADS), set()

    def at_once(path):
        if threading.current_thread().name not in started:
            started.add(threading.current_thread().name)
            start.wait(timeout=30)
        return measure(path)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(at_once, paths))


@pytest.mark.slow
def test_loading_and_measuring_on_8_threads_gives_the_sequential_results(checkpoints):
    with one_thread_per_task():  # as the threaded cluster runs them
        expected = [measure(path) for path in checkpoints]
        before = _state()  # after the first pass: imports (sympy, ...) add filters of their own once
        for _ in range(ROUNDS):
            got = _on_threads(checkpoints)
            assert [g[0] for g in got] == [e[0] for e in expected]
            for g, e in zip(got, expected, strict=True):
                assert g[1] == e[1]  # exactly: the same bytes,
                np.testing.assert_equal(g[2:], e[2:])  # the same numbers (NaN where the sequential run has NaN)
        after = _state()
        assert after == before
    assert argparse.Namespace in torch.serialization.get_safe_globals()


def test_numpy_error_state_is_per_thread():
    """np.errstate (numpy 2: a context variable) in one thread leaves another thread's alone."""
    entered, done = threading.Event(), threading.Event()
    inner: dict[str, str] = {}

    def hold():
        with np.errstate(divide="ignore"):
            inner["divide"] = np.geterr()["divide"]
            entered.set()
            done.wait(timeout=10)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(timeout=10)
    outside = np.geterr()["divide"]
    done.set()
    thread.join()
    assert inner == {"divide": "ignore"} and outside == "warn"
