"""A lightly SimCLR loop with ssl-eval's Lightning callback fills a store; the monitor flow evaluates it.

The loop trains a tiny timm ViT; the flow evaluates only what is new when the plain-PyTorch helper
adds the next epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits

from flows.monitor import run_monitor
from ssl_eval.config import Config, DataConfig, FamilyConfig
from ssl_eval.integrations.lightning_callback import MonitorCallback
from ssl_eval.integrations.training_hook import save_backbone
from ssl_eval.pipeline.eval_data import cached_splits
from ssl_eval.pipeline.inference import preprocess_options
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.preprocess import preprocess, to_float_tensor
from tests.helpers import DIGITS_VIT_ARGS, VIT_ARCH, vit_simclr


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice on workers and logging
def test_callback_fills_a_store_the_monitor_evaluates(prefect_harness, tmp_path, mlflow_store, no_mlflow_figures):
    digits = load_digits()
    images = torch.tensor(digits.images[:256, None] / 16.0, dtype=torch.float32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=64, shuffle=False)
    store = tmp_path / "store"
    callback = MonitorCallback(store, family="simclr-vit", run="seed0", arch=VIT_ARCH, request=False)
    module = vit_simclr()
    trainer = pl.Trainer(
        max_epochs=2, limit_train_batches=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    trainer.fit(module, loader)
    assert [p.name for p in callback.written] == ["epoch=0000.ckpt", "epoch=0001.ckpt"]

    # the checkpoint names its timm architecture; the configuration adds only its size
    overrides = {"data.name": "digits", "data.n_eval": 120, "data.n_probe_train": 150, "data.n_probe_test": 100,
                 "data.n_views": 0, "families.simclr-vit.arch_args": DIGITS_VIT_ARGS}
    config = Config(data=DataConfig(name="digits", n_eval=120, n_probe_train=150, n_probe_test=100, n_views=0),
                    families={"simclr-vit": FamilyConfig(arch_args=DIGITS_VIT_ARGS)})
    ws = Workspace.at(tmp_path / "work")
    mlflow_store(ws.root / "mlflow.db")
    summary = run_monitor(str(store), str(ws.root), overrides=overrides, settle_seconds=0)
    assert summary.failed == {} and sorted(summary.embedded) == ["simclr-vit/seed0/epoch=0000", "simclr-vit/seed0/epoch=0001"]
    prov = ws.embeddings.provenance("simclr-vit/seed0/epoch=0001")
    assert (prov["arch"], prov["pool"], prov["dim"], prov["epoch"]) == (VIT_ARCH, "cls", 24, 1)
    # the last checkpoint holds the trained backbone: its stored embedding is that model's output
    inputs = preprocess(to_float_tensor(cached_splits(config.data).eval.images[:16]), **preprocess_options(config.data))
    with torch.no_grad():
        expected = module.backbone.eval()(inputs).numpy()
    np.testing.assert_allclose(ws.embeddings.read("simclr-vit/seed0/epoch=0001", "eval")[:16], expected, atol=1e-4)
    assert 0.0 <= ws.records.get("simclr-vit/seed0/epoch=0001", "probe")["values"]["linear_acc"] <= 1.0

    # the plain-PyTorch helper adds the next epoch: only it is evaluated on the next scan
    save_backbone(module.backbone, store, family="simclr-vit", run="seed0", epoch=2, arch=VIT_ARCH)
    summary = run_monitor(str(store), str(ws.root), overrides=overrides, settle_seconds=0)
    assert sorted(summary.embedded) == ["simclr-vit/seed0/epoch=0002"]
    assert np.isfinite(ws.records.get("simclr-vit/seed0/epoch=0002", "metrics-spectral")["values"]["rankme"])
