"""Typed configuration: data set, families, metrics, probe and paths.

Read from ``ssl_eval.toml`` at the checkpoint store's root (or ``--config``), then CLI
overrides. Unknown keys and wrong types are errors that name the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    name: str = "mnist"
    root: str | None = None
    n_eval: int = Field(2000, gt=1)
    n_probe_train: int = Field(5000, gt=1)
    n_probe_test: int = Field(2000, gt=1)
    seed: int = 0
    batch_size: int = Field(512, gt=0)
    # Preprocessing: native size scaled to [0, 1] unless these are given. ``image_size``
    # resizes to a square (bilinear, antialiased); ``mean``/``std`` normalise per channel
    # (one value, or one per channel); ``channels=3`` repeats a grey channel for RGB models.
    image_size: int | None = Field(None, gt=0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = Field(None, gt=0)
    # Augmented views for alignment and LiDAR: 2 views of the first ``n_views`` eval images
    # (0 = none), drawn from ``seed``, the same for every checkpoint.
    n_views: int = Field(512, ge=0)


class FamilyConfig(_Strict):
    """How to read one family's checkpoints. ``arch=None`` takes the checkpoint's ``arch`` key.

    ``prefix`` left unset: ``backbone.`` if present, else the one known prefix that the
    checkpoint holds (see ``ssl_eval.store.loading``); set it (``""`` for a plain backbone
    state dict) to require exactly that prefix. ``layer = "projector"`` embeds the output of
    the projection head stored under ``projector_prefix`` instead of the backbone output.
    """

    arch: str | None = None
    state_dict_key: str | None = "state_dict"
    prefix: str | None = "backbone."
    method: str | None = None
    layer: Literal["backbone", "projector"] = "backbone"
    projector_prefix: str = "projection_head."


class MetricsConfig(_Strict):
    k: int | None = Field(None, gt=0)
    reduce: Literal["none", "pca"] = "none"
    pca_dims: int = Field(32, gt=0)
    silhouette_sample_size: int | None = Field(None, gt=1)
    entropy_knn_k: int = Field(3, gt=0)
    seed: int = 0


class ProbeConfig(_Strict):
    # "torch": preconditioned L-BFGS in float32 (GPU when present); "sklearn": the float64
    # scikit-learn reference. Same objective (L2, C=1, standardised features).
    solver: Literal["torch", "sklearn"] = "torch"
    max_iter: int = Field(1000, gt=0)
    knn_k: int = Field(20, gt=0)
    seed: int = 0


class AnalysisConfig(_Strict):
    late_fraction: float = Field(0.5, ge=0.0, le=1.0)


class DaskConfig(_Strict):
    """``address = "tcp://HOST:PORT"``: run the metric tasks on that Dask scheduler's
    workers (``--dask-address`` overrides); unset, a LocalCluster on 127.0.0.1."""

    address: str | None = None


class Config(_Strict):
    data: DataConfig = DataConfig()
    families: dict[str, FamilyConfig] = {}
    metrics: MetricsConfig = MetricsConfig()
    probe: ProbeConfig = ProbeConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    dask: DaskConfig = DaskConfig()

    def family(self, name: str) -> FamilyConfig:
        return self.families.get(name, FamilyConfig())

    def embedding_key(self, family: str) -> str:
        """Hash of everything that changes a family's embeddings (not the metrics): the data
        configuration and how the family's checkpoints are read (arch, prefix, layer, ...)."""
        return _digest({"d": self.data.model_dump(exclude={"batch_size"}), "f": self.family(family).model_dump()})

    def metrics_key(self, family: str) -> str:
        """Hash of everything that changes a family's metric or probe values."""
        return _digest({"m": self.metrics.model_dump(), "p": self.probe.model_dump(), "e": self.embedding_key(family)})


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


CONFIG_FILE = "ssl_eval.toml"


def load_config(path: str | Path | None = None, *, store: str | Path | None = None, **overrides: Any) -> Config:
    """Load ``path`` (or ``<store>/ssl_eval.toml`` when it exists) and apply dotted overrides,
    e.g. ``load_config(store=s, **{"data.name": "digits"})``. None-valued overrides are ignored."""
    raw: dict[str, Any] = {}
    source = "defaults"
    file = Path(path) if path else (Path(store) / CONFIG_FILE if store else None)
    if path and not file.is_file():
        raise FileNotFoundError(f"config file {file} does not exist; fix --config or drop it.")
    if file is not None and file.is_file():
        source = str(file)
        try:
            raw = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{file} is not valid TOML: {exc}") from exc
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                parent = _model_at(err["loc"][:-1])
                allowed = sorted(parent.model_fields) if parent else []
                problems.append(f"unknown key {where!r}; allowed keys here: {allowed}")
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        raise ValueError(f"invalid configuration in {source}:\n  " + "\n  ".join(problems)) from None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        if model is Config and part == "families":
            model = None  # type: ignore[assignment]
            continue
        if model is None:  # inside families.<name>
            model = FamilyConfig
            continue
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model
