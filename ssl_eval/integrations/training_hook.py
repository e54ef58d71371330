"""A hook in the training loop: write the backbone into the store, ask for an evaluation.

:func:`save_backbone` writes ``<store>/<family>/<run>/epoch=NNNN.ckpt`` atomically (a
temporary ``.tmp`` name in the same folder, flushed to disk, then one rename), so the
watcher never reads half a file. :class:`EvaluationRequester` then asks a Prefect server
for a run of the monitor deployment at once, instead of waiting for the next scheduled
scan: on a background thread, with short timeouts, never raising. Training never waits
for, nor fails because of, the evaluation.

The request speaks Prefect's REST API over plain HTTP (``GET /deployments/name/<flow>/
<deployment>``, ``POST /deployments/<id>/create_flow_run``), so the core imports no
Prefect. The server is ``PREFECT_API_URL``; ``PREFECT_API_KEY``, when set, is sent as a
bearer token (read here, where it is used, never stored).

:class:`TrainingMonitor` puts the two together for a plain PyTorch loop (one call an
epoch); :mod:`ssl_eval.integrations.lightning_callback` is the same for PyTorch Lightning.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# `ssl-eval serve` and deployments/prefect.yaml both deploy the `monitor` flow as `monitor`;
# `monitor-store/monitor` is what `ssl-eval serve` registered in earlier releases.
DEPLOYMENTS = ("monitor/monitor", "monitor-store/monitor")
# Answers worth another try (a busy server's database answers 503, as Prefect's own client knows).
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def checkpoint_path(store: str | Path, family: str, run: str, epoch: int) -> Path:
    """Where the watcher expects the checkpoint: ``<store>/<family>/<run>/epoch=NNNN.ckpt``.

    Args:
        store: the store's root folder.
        family: the family: one folder name.
        run: the training run: one folder name.
        epoch: the epoch, >= 0.

    Returns:
        The path (nothing is created).

    Raises:
        ValueError: ``family`` or ``run`` is not one folder name, or ``epoch`` < 0.
    """
    for label, name in (("family", family), ("run", run)):
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"{label} {name!r} must be one folder name (no '/', not '.' or '..').")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}.")
    return Path(store) / family / run / f"epoch={epoch:04d}.ckpt"


def save_backbone(
    backbone: nn.Module,
    store: str | Path,
    *,
    family: str,
    run: str,
    epoch: int,
    global_step: int | None = None,
    arch: str | None = None,
) -> Path:
    """Write ``backbone``'s weights into the store layout, atomically.

    The file holds ``{"state_dict": {"backbone.<key>": ...}, "epoch", "global_step"[, "arch"]}``.

    Args:
        backbone: the module whose ``state_dict`` to save (copied to the CPU).
        store: the store's root folder.
        family: the family: one folder name.
        run: the training run: one folder name.
        epoch: the epoch, >= 0.
        global_step: the optimiser step, stored when given.
        arch: the architecture's name, stored when given.

    Returns:
        The final path.

    Raises:
        ValueError: see :func:`checkpoint_path`.
        OSError: the file cannot be written.
    """
    path = checkpoint_path(store, family, run, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"backbone.{k}": v.detach().to("cpu", copy=True) for k, v in backbone.state_dict().items()}
    payload: dict[str, Any] = {"state_dict": state, "epoch": int(epoch)}
    if global_step is not None:
        payload["global_step"] = int(global_step)
    if arch:
        payload["arch"] = arch
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # skipped by discovery (a .tmp name)
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class EvaluationRequester:
    """Asks a Prefect server for a run of the monitor deployment, in the background.

    ``request()`` returns at once. One background thread at a time makes the requests;
    requests made while it works are folded into one more request after the current one
    (its run then starts after the newest checkpoint was written), so they never pile up.
    A busy or restarting server (timeouts, no connection, 408/429/5xx) is asked again after
    each of ``retry_delays`` seconds. Failures that remain (no server, no deployment,
    anything raised) are logged once per kind and otherwise ignored. ``flow_runs`` lists the
    ids of the runs it created.
    """

    def __init__(
        self, api_url: str | None = None, deployments: tuple[str, ...] = DEPLOYMENTS, timeout: float = 5.0,
        retry_delays: tuple[float, ...] = (1.0, 3.0, 9.0),
    ) -> None:
        self.api_url = (api_url or os.environ.get("PREFECT_API_URL") or "").rstrip("/")
        self.deployments, self.timeout, self.retry_delays = deployments, timeout, retry_delays
        self._state = threading.Lock()
        self._pending = self._running = False
        self._warned: set[str] = set()
        self.last_result: str | None = None  # "requested <name>", or why not
        self.flow_runs: list[str] = []
        self.thread: threading.Thread | None = None

    def request(self) -> bool:
        """Ask for a run soon, on a daemon thread.

        Returns:
            False when no server is configured, else True (the request is made in the background).
        """
        if not self.api_url:
            return False
        with self._state:
            self._pending = True
            if self._running:  # the working thread makes one more request when it is done
                return True
            self._running = True
        self.thread = threading.Thread(target=self._run, name="ssl-eval-request", daemon=True)
        try:
            self.thread.start()
        except BaseException:
            with self._state:
                self._running = False
            raise
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the requests made so far (tests, the end of training).

        Args:
            timeout: seconds to wait at most; None waits until done.

        Returns:
            True when no request is still in progress.
        """
        if self.thread is not None:
            self.thread.join(timeout)
        return self.thread is None or not self.thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._state:
                if not self._pending:
                    self._running = False
                    return
                self._pending = False
            try:
                self.last_result = self._request_once()
            except Exception as exc:  # noqa: BLE001 - nothing may reach the training loop
                self.last_result = f"failed: {type(exc).__name__}: {exc}"
            if not self.last_result.startswith("requested") and self.last_result not in self._warned:
                self._warned.add(self.last_result)
                log.warning("ssl-eval: no evaluation run requested (%s); the next scheduled scan evaluates the checkpoint.", self.last_result)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("PREFECT_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        # S310: the operator's Prefect API URL (an argument of the hook), never a store's
        req = urllib.request.Request(self.api_url + path, data=data, headers=headers, method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def _request_once(self) -> str:
        delays = list(self.retry_delays)
        while True:
            result, transient = self._attempt()
            if not transient or not delays:
                return result
            time.sleep(delays.pop(0))

    def _attempt(self) -> tuple[str, bool]:
        """One try: (what happened, whether another try may help)."""
        for name in self.deployments:
            try:
                deployment = self._call("GET", f"/deployments/name/{name}")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    continue
                return f"the Prefect server answered {exc.code} for deployment {name}", exc.code in TRANSIENT_STATUS
            except OSError as exc:  # URLError, refused, timeout
                return f"no Prefect server reachable ({getattr(exc, 'reason', exc)})", True
            try:
                flow_run = self._call("POST", f"/deployments/{deployment['id']}/create_flow_run", {})
            except urllib.error.HTTPError as exc:
                return f"the Prefect server answered {exc.code} when asked for a run of {name}", exc.code in TRANSIENT_STATUS
            except OSError as exc:
                return f"no answer from the Prefect server when asked for a run of {name} ({getattr(exc, 'reason', exc)})", True
            self.flow_runs.append(str(flow_run.get("id")))
            return f"requested {name}", False
        return f"none of the deployments {list(self.deployments)} exists on the Prefect server", False


class TrainingMonitor:
    """The hook for a plain PyTorch loop.

    ``monitor.checkpoint(model.backbone, epoch)`` once an epoch writes the backbone into the store
    (:func:`save_backbone`) and asks for an evaluation (:class:`EvaluationRequester`;
    ``request=False`` only writes, ``api_url`` defaults to ``PREFECT_API_URL``, unset: the next
    scheduled scan finds the file).

    ``checkpoint`` never raises and never waits: a failed write (a full disk) or a failed
    request is logged and training goes on. ``close()`` at the end of training lets the last
    request finish (at most 30 s). Names that cannot be one folder are an error at
    once, before training starts.
    """

    def __init__(
        self,
        store: str | Path,
        *,
        family: str,
        run: str,
        arch: str | None = None,
        request: bool = True,
        api_url: str | None = None,
        deployments: tuple[str, ...] = DEPLOYMENTS,
    ) -> None:
        checkpoint_path(store, family, run, 0)  # a configuration error: say so now, not at the first epoch's end
        self.store, self.family, self.run, self.arch = Path(store), family, run, arch
        self.requester = EvaluationRequester(api_url, deployments) if request else None
        self.written: list[Path] = []

    def checkpoint(self, backbone: nn.Module, epoch: int, *, global_step: int | None = None) -> Path | None:
        """Write ``backbone`` as epoch ``epoch`` and ask for its evaluation; never raises.

        Args:
            backbone: the module to save.
            epoch: the epoch, >= 0.
            global_step: the optimiser step, stored when given.

        Returns:
            The checkpoint's path, or None when the write failed (logged).
        """
        try:
            path = save_backbone(backbone, self.store, family=self.family, run=self.run, epoch=epoch,
                                 global_step=global_step, arch=self.arch)
        except Exception as exc:  # noqa: BLE001 - monitoring must not stop training
            log.warning("ssl-eval: could not write the epoch %d checkpoint (%s: %s); training goes on.", epoch, type(exc).__name__, exc)
            return None
        self.written.append(path)
        if self.requester is not None:
            try:
                self.requester.request()
            except Exception as exc:  # noqa: BLE001 - e.g. no thread could be started
                log.warning("ssl-eval: no evaluation run requested (%s: %s); training goes on.", type(exc).__name__, exc)
        return path

    def close(self, timeout: float = 30.0) -> None:
        """At the end of training: give the last request up to ``timeout`` seconds to reach the server.

        The request thread is a daemon and ends with the process, which would leave the final
        checkpoint to the next scheduled scan. Never raises.

        Args:
            timeout: seconds to wait at most.
        """
        if self.requester is not None and not self.requester.wait(timeout):
            log.warning("ssl-eval: the last evaluation request did not finish in %g s; the next scheduled scan evaluates the checkpoint.", timeout)
