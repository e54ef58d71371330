"""The work dir: where the embedding store, records, MLflow store and PREFECT_HOME live."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ssl_eval.store.embeddings import EmbeddingStore, RecordStore

DEFAULT_WORKDIR = ".ssl_eval"

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|key|secret|password|signature|x-amz-[a-z-]+)=)[^&\s]+")


def redact(uri: str | None) -> str | None:
    """A URI without credentials (user:password@, token/key/secret query values), for
    logs, messages and MLflow tags."""
    if uri is None:
        return None
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", uri))


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: str | Path | None = None) -> "Workspace":
        root = Path(path or os.environ.get("SSL_EVAL_WORKDIR", DEFAULT_WORKDIR)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def embeddings(self) -> EmbeddingStore:
        return EmbeddingStore(self.root / "embeddings.zarr")

    @property
    def records(self) -> RecordStore:
        return RecordStore(self.root / "records")

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def lock(self, key: str, *, timeout: float = 3600.0):
        """An inter-process lock for one unit of work (a checkpoint id, a record part):
        two monitor runs at once never compute the same thing twice."""
        from filelock import FileLock

        path = self.root / "locks" / (key.replace("/", "__") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path), timeout=timeout)

    def runtime_env(self) -> dict[str, str]:
        """Environment that keeps Prefect, Dask and matplotlib inside the work dir."""
        return {
            "PREFECT_HOME": str(self.prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DASK_TEMPORARY_DIRECTORY": str(self.root / "dask"),
            "MPLCONFIGDIR": str(self.root / "matplotlib"),
            "DASK_LOGGING__DISTRIBUTED": "warning",
            # An unreachable MLflow server should fail in seconds, not minutes of backoff.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        }
