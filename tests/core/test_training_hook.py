"""The training-loop hook: atomic checkpoints, and evaluation requests that never hold up or fail training.

Checkpoints are written in the store layout; requests go to a stand-in for Prefect's REST API.
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import torch
from torch import nn

from ssl_eval.config import FamilyConfig
from ssl_eval.integrations.training_hook import EvaluationRequester, TrainingMonitor, checkpoint_path, save_backbone
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.loading import load_checkpoint
from ssl_eval.sources.model_building import build_model


def test_save_backbone_writes_the_store_layout_the_loader_reads(tmp_path):
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    path = save_backbone(backbone, tmp_path, family="simclr", run="seed0", epoch=3, global_step=30)
    assert path == tmp_path / "simclr" / "seed0" / "epoch=0003.ckpt"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    (ref,) = discover(tmp_path, settle_seconds=0)
    assert (ref.family, ref.run, ref.epoch) == ("simclr", "seed0", 3)
    family = FamilyConfig(arch="tests.core.test_training_hook:_conv")
    loaded = load_checkpoint(path, family)
    assert loaded.meta == {"epoch": 3, "global_step": 30} and loaded.prefix == "backbone."
    model = build_model(loaded, family, in_channels=1, path=path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(model(x), backbone(x))


def _conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_a_failed_write_leaves_nothing_the_watcher_would_read(tmp_path, monkeypatch):
    def broken_save(obj, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_backbone(_conv(), tmp_path, family="f", run="r", epoch=0)
    assert list((tmp_path / "f" / "r").iterdir()) == []


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b"])
def test_names_must_be_one_folder(tmp_path, name):
    with pytest.raises(ValueError, match="must be one folder name"):
        checkpoint_path(tmp_path, name, "run", 0)


class FakePrefect(http.server.BaseHTTPRequestHandler):
    """Answers like Prefect's API for the deployments it knows; records every call."""

    known: dict[str, str] = {}
    calls: list[tuple[str, str, str | None]] = []
    busy: dict[str, list[int]] = {}  # per method, status codes to answer first, one per call (a busy server)
    release = threading.Event()  # a slow server: holds every answer until set

    def _answer(self, code: int, body: dict) -> None:
        FakePrefect.release.wait(30)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        FakePrefect.calls.append(("GET", self.path, self.headers.get("Authorization")))
        if FakePrefect.busy.get("GET"):
            return self._answer(FakePrefect.busy["GET"].pop(0), {"detail": "busy"})
        name = self.path.removeprefix("/api/deployments/name/")
        if name in self.known:
            self._answer(200, {"id": self.known[name], "name": name})
        else:
            self._answer(404, {"detail": "Deployment not found"})

    def do_POST(self):
        FakePrefect.calls.append(("POST", self.path, self.headers.get("Authorization")))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if FakePrefect.busy.get("POST"):
            return self._answer(FakePrefect.busy["POST"].pop(0), {"detail": "busy"})
        self._answer(201, {"id": "run-1", "state": {"type": "SCHEDULED"}})

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_prefect():
    FakePrefect.calls, FakePrefect.known, FakePrefect.busy = [], {"monitor/monitor": "dep-1"}, {}
    FakePrefect.release.set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrefect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    FakePrefect.release.set()
    server.shutdown()
    server.server_close()


def test_request_creates_a_run_of_the_served_deployment(fake_prefect, monkeypatch):
    monkeypatch.setenv("PREFECT_API_KEY", "k-123")
    requester = EvaluationRequester(fake_prefect)
    assert requester.request()
    requester.thread.join(30)
    assert requester.last_result == "requested monitor/monitor"
    assert FakePrefect.calls == [
        ("GET", "/api/deployments/name/monitor/monitor", "Bearer k-123"),
        ("POST", "/api/deployments/dep-1/create_flow_run", "Bearer k-123"),
    ]
    FakePrefect.known = {"monitor-store/monitor": "dep-2"}  # served by an earlier release
    requester.request()
    requester.thread.join(30)
    assert requester.last_result == "requested monitor-store/monitor"
    assert FakePrefect.calls[-2:] == [
        ("GET", "/api/deployments/name/monitor-store/monitor", "Bearer k-123"),
        ("POST", "/api/deployments/dep-2/create_flow_run", "Bearer k-123"),
    ]


def test_a_slow_server_never_holds_up_the_caller_and_requests_do_not_pile_up(fake_prefect):
    FakePrefect.release.clear()
    requester = EvaluationRequester(fake_prefect)
    assert requester.request()  # returns while the server still holds its answer
    assert requester.thread.is_alive()
    thread = requester.thread
    assert requester.request() and requester.request()  # while one is in flight: folded into one more
    assert requester.thread is thread  # no second thread
    FakePrefect.release.set()
    assert requester.wait(30)
    assert requester.last_result == "requested monitor/monitor"
    # the first request, then one more for the two made meanwhile (its run sees their checkpoints)
    assert [c[0] for c in FakePrefect.calls] == ["GET", "POST", "GET", "POST"]
    assert requester.flow_runs == ["run-1", "run-1"]
    assert requester.request()  # idle again: a new thread
    assert requester.wait(30) and requester.thread is not thread and len(FakePrefect.calls) == 6


def test_a_busy_server_is_asked_again_and_a_lasting_error_is_not(fake_prefect):
    FakePrefect.busy = {"GET": [503, 429]}  # a busy database, then rate limiting, then all is well
    requester = EvaluationRequester(fake_prefect, retry_delays=(0.1, 0.1, 0.1))
    requester.request()
    assert requester.wait(30) and requester.last_result == "requested monitor/monitor"
    assert [c[0] for c in FakePrefect.calls] == ["GET", "GET", "GET", "POST"]
    FakePrefect.calls, FakePrefect.busy = [], {"POST": [503, 503, 503, 503]}  # busy for longer than the retries
    requester.request()
    assert requester.wait(30) and requester.last_result == "the Prefect server answered 503 when asked for a run of monitor/monitor"
    assert [c[0] for c in FakePrefect.calls] == ["GET", "POST"] * 4 and requester.flow_runs == ["run-1"]
    FakePrefect.calls, FakePrefect.busy = [], {"GET": [403]}  # not transient: one try, logged
    requester.request()
    assert requester.wait(30) and requester.last_result == "the Prefect server answered 403 for deployment monitor/monitor"
    assert len(FakePrefect.calls) == 1


def test_no_server_or_no_deployment_is_logged_never_raised(fake_prefect, caplog, monkeypatch):
    FakePrefect.known = {}
    requester = EvaluationRequester(fake_prefect)
    requester.request()
    requester.thread.join(30)
    assert requester.last_result.startswith("none of the deployments")
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    requester = EvaluationRequester(closed, timeout=2, retry_delays=(0.1,))
    requester.request()
    requester.thread.join(30)
    assert requester.last_result.startswith("no Prefect server reachable")
    assert "no evaluation run requested" in caplog.text
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert not EvaluationRequester("").request()  # nothing configured: nothing attempted


def test_plain_loop_monitor_writes_every_epoch_and_requests_a_run_each_time(fake_prefect, tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    monitor = TrainingMonitor(tmp_path, family="simclr", run="seed0", arch="x", api_url=fake_prefect)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        optimizer.zero_grad()
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        assert monitor.checkpoint(model, epoch, global_step=epoch + 1) == checkpoint_path(tmp_path, "simclr", "seed0", epoch)
        assert monitor.requester.wait(30)
    assert [p.name for p in monitor.written] == ["epoch=0000.ckpt", "epoch=0001.ckpt", "epoch=0002.ckpt"]
    assert monitor.requester.flow_runs == ["run-1"] * 3
    saved = torch.load(monitor.written[-1], weights_only=True)
    assert saved["arch"] == "x" and saved["global_step"] == 3
    layer = model[0]
    assert isinstance(layer, nn.Linear) and torch.equal(saved["state_dict"]["backbone.0.weight"], layer.weight)
    FakePrefect.release.clear()  # a slow server at the end of training: close waits, then gives up
    monitor.checkpoint(model, 3)
    monitor.close(timeout=0.2)
    assert monitor.requester.thread.is_alive()
    FakePrefect.release.set()
    monitor.close()
    assert monitor.requester.flow_runs == ["run-1"] * 4


def test_plain_loop_monitor_never_raises(tmp_path, monkeypatch, caplog):
    monitor = TrainingMonitor(tmp_path, family="f", run="r", api_url="http://127.0.0.1:9/api")

    def refuse():
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(monitor.requester, "request", refuse)
    path = monitor.checkpoint(_conv(), 0)  # the request raises: logged, the checkpoint stays
    assert path is not None and path.exists() and "can't start new thread" in caplog.text
    monkeypatch.setattr(torch, "save", lambda obj, handle: (_ for _ in ()).throw(OSError("No space left on device")))
    assert monitor.checkpoint(_conv(), 1) is None  # the write fails: logged, nothing half-written
    assert "No space left" in caplog.text and [p.name for p in path.parent.iterdir()] == [path.name]
    with pytest.raises(ValueError, match="must be one folder name"):
        TrainingMonitor(tmp_path, family="a/b", run="r")
