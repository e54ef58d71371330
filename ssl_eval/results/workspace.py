"""The work dir: where the embeddings, records, MLflow database and PREFECT_HOME live.

The work dir is always a local folder: PREFECT_HOME, the default sqlite MLflow database, Dask
scratch and the file locks stay on the machine that runs the process. With a results URL
(``--results-url s3://bucket/prefix``) the shared results, ``embeddings.zarr`` and ``records``, live under that URL instead, so Dask workers
and GPU workers on other machines read and write the same arrays and records.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_eval.common.errors import WorkdirError
from ssl_eval.common.urls import filesystem, is_url, join, redact
from ssl_eval.results.embeddings import EmbeddingArrays, open_embedding_arrays
from ssl_eval.results.records import RecordFiles, open_record_files

if TYPE_CHECKING:
    from filelock import FileLock

DEFAULT_WORKDIR = ".ssl_eval"


@dataclass(frozen=True)
class Workspace:
    """Where one deployment keeps its results: a frozen description (two fields) that every task gets as a parameter.

    Its stores are built on first use and kept for the life of this object; pickling (Dask,
    Prefect) carries the fields only, and the receiving process builds its own stores.
    """

    root: Path
    results_url: str | None = None  # where embeddings.zarr and records live, when not under root

    @classmethod
    def at(cls, path: str | Path | None = None, *, results_url: str | None = None) -> Workspace:
        """The work dir at ``path``, made if missing; entry points build it once and pass it to every task.

        Args:
            path: a local folder; None: $SSL_EVAL_WORKDIR, else ./.ssl_eval.
            results_url: an fsspec URL for the embeddings and records; "" or None keeps them in the work dir.

        Returns:
            The :class:`Workspace` (its root resolved to an absolute path).

        Raises:
            WorkdirError: the work dir cannot be created (naming it and why).
        """  # noqa: DOC501 - WorkdirError.writing is the class's factory; ruff reads "writing" as an exception
        root = Path(path or os.environ.get("SSL_EVAL_WORKDIR", DEFAULT_WORKDIR)).resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkdirError.writing(root, exc, then="Nothing was started.") from exc
        return cls(root, results_url.rstrip("/") if results_url else None)

    def check_writable(self) -> None:
        """Before anything starts: every place a run writes takes a small file.

        The places are the work dir, PREFECT_HOME, the locks, and the records and embeddings,
        locally or at the results URL. Local folders (a ``file://`` results URL is one) are
        created as the stores would create them; on a remote URL a probe object is written.

        Raises:
            WorkdirError: a place cannot be written (naming the path and why).
        """  # noqa: DOC501 - WorkdirError.writing is the class's factory; ruff reads "writing" as an exception
        places: list[str | Path] = [self.root, self.prefect_home, self.root / "locks"]
        places += [join(self.results_url, "records"), join(self.results_url, "embeddings.zarr")] if self.results_url else [
            self.root / "records", self.root / "embeddings.zarr"]
        for place in places:
            if not is_url(place):  # a file:// results URL is a local folder, as the stores read it
                place = Path(str(place).removeprefix("file://"))
            probe = f".write-check-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                if isinstance(place, Path):
                    place.mkdir(parents=True, exist_ok=True)
                    (place / probe).write_bytes(b"")
                    (place / probe).unlink()
                else:
                    fs, base = filesystem(place)
                    fs.pipe_file(join(base, probe), b"")
                    fs.rm(join(base, probe))
            except Exception as exc:  # whatever the file system says, name the place (re-raised)
                raise WorkdirError.writing(redact(str(place)), exc, then="Nothing was started.") from exc

    @property
    def shared_root(self) -> str:
        """Where the shared results live: the results URL, or the work dir."""
        return self.results_url or str(self.root)

    @cached_property
    def embeddings(self) -> EmbeddingArrays:
        """The embedding arrays (``embeddings.zarr`` under the results URL or the work dir), built once."""
        return open_embedding_arrays(join(self.shared_root, "embeddings.zarr"))

    @cached_property
    def records(self) -> RecordFiles:
        """The record files (``records`` under the results URL or the work dir), built once."""
        return open_record_files(join(self.shared_root, "records"))

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: the stores built here (open file systems) stay in this process."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def mlflow_db(self) -> Path:
        """The default MLflow store's sqlite file, ``mlflow.db`` in the work dir."""
        return self.root / "mlflow.db"

    @property
    def mlflow_uri(self) -> str:
        """The default MLflow tracking URI: :attr:`mlflow_db`."""
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_artifacts(self) -> Path:
        """The default MLflow artifact folder, ``mlartifacts`` in the work dir."""
        return self.root / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME of processes started for this work dir: ``prefect`` in it."""
        return self.root / "prefect"

    def lock(self, key: str, *, timeout: float = 3600.0) -> FileLock:
        """An inter-process lock for one unit of work: two monitor runs at once never compute the same thing twice on this machine.

        A file lock does not reach other machines. With a results URL, duplicate work across
        machines is prevented upstream (the monitor deployment's concurrency limit of 1, and
        one task per checkpoint and part in a run) and is harmless if it happens anyway:
        writes are idempotent (same bytes to the same version path; the commit marker and
        each record are single-object PUTs).

        Args:
            key: the unit of work: a checkpoint id, a record part, ...
            timeout: seconds to wait for the lock before ``filelock.Timeout``.

        Returns:
            A ``filelock.FileLock`` under ``locks/`` (use it as a context manager).
        """
        from filelock import FileLock

        # "~2F" never occurs in an escaped id part (a name cannot hold "/"): one key, one file
        path = self.root / "locks" / (key.replace("/", "~2F") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path), timeout=timeout)

    def runtime_env(self) -> dict[str, str]:
        """Environment that keeps Prefect, Dask and matplotlib inside the work dir.

        Returns:
            Variable -> value (PREFECT_HOME, DASK_TEMPORARY_DIRECTORY, MPLCONFIGDIR, telemetry off, MLflow timeouts).
        """
        return {
            "PREFECT_HOME": str(self.prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",  # no client telemetry, and no notice about it on the first run
            # the temporary server's default 20 s start-up is too short on a busy 2-core machine
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "DASK_TEMPORARY_DIRECTORY": str(self.root / "dask"),
            "MPLCONFIGDIR": str(self.root / "matplotlib"),
            "DASK_LOGGING__DISTRIBUTED": "warning",
            # An unreachable MLflow server should fail in seconds, not minutes of backoff.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        }
