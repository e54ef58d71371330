"""Shared fixtures: a tiny checkpoint store on digits, and a per-test work dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from ssl_eval.models import DemoCNN

# Prefect reads its settings at import: keep its home, and Dask's scratch, out of the
# user's folders for the whole test session.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="ssl-eval-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_TEST_HOME / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(_TEST_HOME / "dask"))
os.environ.setdefault("MPLCONFIGDIR", str(_TEST_HOME / "matplotlib"))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


def write_checkpoint(path: Path, *, epoch: int, seed: int, arch: str = "democnn", prefix: str = "backbone.", scale: float = 1.0) -> Path:
    """A Lightning-style checkpoint of a randomly initialised DemoCNN (1 input channel)."""
    generator = torch.Generator().manual_seed(seed)
    model = DemoCNN(in_channels=1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.ndim > 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale / tensor[0].numel() ** 0.5)
    state = {f"{prefix}{k}": v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "global_step": 10 * epoch, "method": path.parent.parent.name, "arch": arch, "state_dict": state}, path)
    old = path.stat().st_mtime - 60  # settled: discovery skips files younger than a few seconds
    os.utime(path, (old, old))
    return path


def make_store(root: Path, families: dict[str, int], runs: int = 1) -> Path:
    for f_index, (family, epochs) in enumerate(families.items()):
        for run in range(runs):
            for epoch in range(epochs):
                write_checkpoint(root / family / f"run-{run}" / f"epoch={epoch:02d}.ckpt", epoch=epoch, seed=100 * f_index + 10 * run + epoch)
    return root


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store", {"simclr": 3, "simsiam": 3})


@pytest.fixture
def tiny_config():
    from ssl_eval.config import Config, DataConfig

    return Config(data=DataConfig(name="digits", n_eval=200, n_probe_train=300, n_probe_test=200))


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield
