"""The Lightning callback in a real (tiny) Lightning training.

A checkpoint every n epochs in the store layout, and training that finishes whatever the evaluation
request does.
"""

from __future__ import annotations

import socket

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from ssl_eval.integrations.lightning_callback import MonitorCallback


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 3)

    def training_step(self, batch, batch_index):
        return self.backbone(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(callback: MonitorCallback, module: pl.LightningModule, epochs: int = 3) -> None:
    data = torch.utils.data.TensorDataset(torch.rand(8, 4, generator=torch.Generator().manual_seed(0)))
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))


def _closed_port_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice on workers
def test_every_n_epochs_with_no_server_reachable(tmp_path):
    callback = MonitorCallback(tmp_path, family="simclr", run="seed0", arch="x", every_n_epochs=2, api_url=_closed_port_url())
    # retries at short delays (the defaults, 1 + 3 + 9 s a request, held this test 26 s)
    callback.monitor.requester.retry_delays = (0.1, 0.2, 0.3)
    module = Tiny()
    _fit(callback, module, epochs=4)
    assert [p.name for p in callback.written] == ["epoch=0001.ckpt", "epoch=0003.ckpt"]
    saved = torch.load(callback.written[-1], weights_only=True)
    assert (saved["epoch"], saved["global_step"], saved["arch"]) == (3, 8, "x")  # 2 batches an epoch
    assert torch.equal(saved["state_dict"]["backbone.weight"], module.backbone.weight)  # the trained weights, detached copies
    # training's end let the last request finish (retries included) before fit returned
    assert not callback.monitor.requester.thread.is_alive()
    assert callback.monitor.requester.last_result.startswith("no Prefect server reachable")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_raising_request_does_not_stop_training(tmp_path, monkeypatch, caplog):
    callback = MonitorCallback(tmp_path, family="simclr", run="seed0", api_url="http://127.0.0.1:9/api")

    def refuse():
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(callback.monitor.requester, "request", refuse)
    _fit(callback, Tiny(), epochs=2)
    assert [p.name for p in callback.written] == ["epoch=0000.ckpt", "epoch=0001.ckpt"]
    assert "can't start new thread" in caplog.text


def test_configuration_errors_come_before_training(tmp_path):
    with pytest.raises(ValueError, match="every_n_epochs must be an integer >= 1, got 0"):
        MonitorCallback(tmp_path, family="f", run="r", every_n_epochs=0)
    with pytest.raises(ValueError, match="must be one folder name"):
        MonitorCallback(tmp_path, family="f", run="..")
    with pytest.raises(ValueError, match="Tiny has no attribute 'encoder'; pass backbone="):
        _fit(MonitorCallback(tmp_path, family="f", run="r", backbone="encoder", request=False), Tiny(), epochs=1)
    assert not (tmp_path / "f").exists()
