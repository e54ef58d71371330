"""The training hook against a real served deployment: each checkpoint is evaluated because the callback asked.

`ssl-eval serve` runs on a one-day schedule (so no scheduled scan can help), a lightly SimCLR loop
on a tiny timm ViT writes a checkpoint an epoch (two epochs) through the Lightning callback, and
each checkpoint is evaluated because the callback asked for a run: epoch 0 while training is still
going, the last one after it.

The deployment is served on the session's Prefect server (``prefect_harness``, given to serve as
PREFECT_API_URL, as an operator points serve at their own server): a server of its own cost a
start of seconds of CPU, and serve's own server is what tests/integration/test_serve.py checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits

from ssl_eval.config import DataConfig
from ssl_eval.integrations.lightning_callback import MonitorCallback
from ssl_eval.pipeline.eval_data import cached_splits
from ssl_eval.pipeline.inference import preprocess_options
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.preprocess import preprocess, to_float_tensor
from tests.helpers import VIT_ARCH, stop_process_group, vit_simclr, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = DataConfig(name="digits", n_eval=120, n_probe_train=150, n_probe_test=100, n_views=0)
TOML = """[data]
name = "digits"
n_eval = 120
n_probe_train = 150
n_probe_test = 100
n_views = 0

[families.simclr-vit]
arch_args = { img_size = 8, patch_size = 4, embed_dim = 24, depth = 1, num_heads = 2 }
"""


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _deployment_exists(api_url: str) -> bool:
    try:
        _get(f"{api_url}/deployments/name/monitor/monitor")
        return True
    except OSError:
        return False


class WaitForEpoch0(pl.Callback):
    """Test only: epoch 1 starts once epoch 0 is evaluated.

    This shows that the evaluation happens while training runs, started by the request (the schedule
    is a day away).
    """

    def __init__(self, evaluated, log_path: Path) -> None:
        self.evaluated, self.log_path = evaluated, log_path

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            wait_for(lambda: self.evaluated(0), 240, "epoch 0 not evaluated", log=self.log_path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice on workers and logging
def test_served_monitor_evaluates_checkpoints_as_the_callback_writes_them(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()  # the session's server
    store, work, log_path = tmp_path / "store", tmp_path / "work", tmp_path / "serve.log"
    store.mkdir()
    (store / "ssl_eval.toml").write_text(TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(tmp_path / "prefect-client"),
               PREFECT_RUNNER_POLL_FREQUENCY="2", PREFECT_API_URL=api_url)
    ssl_eval = Path(sys.executable).with_name("ssl-eval")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(ssl_eval), "serve", str(store), "--interval", "86400", "--workdir", str(work), "--settle-seconds", "0"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: _deployment_exists(api_url), 180, "the monitor deployment is not served", proc=proc, log=log_path)

        ws = Workspace.at(work)

        def evaluated(epoch: int) -> bool:
            return ws.records.get(f"simclr-vit/seed0/epoch={epoch:04d}", "probe") is not None

        digits = torch.tensor(load_digits().images[:256, None] / 16.0, dtype=torch.float32)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(digits), batch_size=64)
        callback = MonitorCallback(store, family="simclr-vit", run="seed0", arch=VIT_ARCH, api_url=api_url)
        module = vit_simclr()
        trainer = pl.Trainer(
            max_epochs=2, limit_train_batches=2, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[callback, WaitForEpoch0(evaluated, log_path)],
        )
        trainer.fit(module, loader)
        assert [p.name for p in callback.written] == ["epoch=0000.ckpt", "epoch=0001.ckpt"]
        wait_for(lambda: evaluated(1), 300, "epoch 1 not evaluated", log=log_path)

        requester = callback.monitor.requester
        assert requester.wait(30) and requester.last_result == "requested monitor/monitor"
        # one run asked for each epoch; none came from the schedule; none failed (the last may
        # still be running: it finds nothing new)
        runs = [_get(f"{api_url}/flow_runs/{run_id}") for run_id in requester.flow_runs]
        assert len(runs) == 2 and not any(run["auto_scheduled"] for run in runs)
        states = [run["state"]["type"] for run in runs]
        assert states[0] == "COMPLETED" and not {"FAILED", "CRASHED"} & set(states), states
        # the served run embedded the final weights: the backbone's own output (tolerance 1e-4)
        inputs = preprocess(to_float_tensor(cached_splits(DATA).eval.images[:16]), **preprocess_options(DATA))
        with torch.no_grad():
            expected = module.backbone.eval()(inputs).numpy()
        np.testing.assert_allclose(ws.embeddings.read("simclr-vit/seed0/epoch=0001", "eval")[:16], expected, atol=1e-4)
    finally:
        stop_process_group(proc)
        log.close()
