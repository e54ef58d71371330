"""Typed configuration: data set, families, metrics, probe and paths.

Read from ``ssl_eval.toml`` at the checkpoint store's root (or ``--config``), then CLI
overrides. Unknown keys and wrong types are errors that name the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ssl_eval import strict_json
from ssl_eval.metric_options import MetricOptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    name: str = "mnist"
    root: str | None = None
    n_eval: int = Field(2000, gt=1)
    n_probe_train: int = Field(5000, gt=1)
    n_probe_test: int = Field(2000, gt=1)
    random_state: int = 0
    batch_size: int = Field(512, gt=0)
    # Preprocessing: native size scaled to [0, 1] unless these are given. ``image_size``
    # resizes to a square (bilinear, antialiased); ``mean``/``std`` normalise per channel
    # (one value, or one per channel); ``channels=3`` repeats a grey channel for RGB models.
    image_size: int | None = Field(None, gt=0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = Field(None, gt=0)
    # Augmented views for alignment and LiDAR: 2 views of the first ``n_views`` eval images
    # (0 = none), drawn from ``random_state``, the same for every checkpoint.
    n_views: int = Field(512, ge=0)


class FamilyConfig(_Strict):
    """How to read one family's checkpoints. ``arch=None`` takes the checkpoint's ``arch`` key.

    ``prefix`` unset (None): detected, ``backbone.`` if present, else the one known prefix
    that the checkpoint holds (see ``ssl_eval.storage.loading``); set it (``""`` for a plain
    backbone state dict) to require exactly that prefix. ``state_dict_key`` unset: detected
    (``state_dict``, ``model``, ``model_state_dict``, a DINO/iBOT teacher); set it to read
    that entry first. ``layer = "projector"`` embeds the output of
    the projection head stored under ``projector_prefix`` instead of the backbone output.

    ``arch_args`` are constructor arguments for the architecture (``timm:<model>`` or an
    import path), e.g. ``{img_size = 28, patch_size = 4}``. ``pool`` picks a Vision
    Transformer's output token: ``"cls"`` (the default for ViTs, as the linear-probe
    protocols of DINO and MAE) or ``"mean"`` of the patch tokens; unset on a CNN.
    A DINO/iBOT file's teacher is read unless ``state_dict_key = "student"``.
    """

    arch: str | None = None
    arch_args: dict[str, int | float | bool | str | tuple[int, ...] | None] = {}
    pool: Literal["cls", "mean"] | None = None
    state_dict_key: str | None = None  # None: detect
    prefix: str | None = None  # None: detect
    method: str | None = None
    layer: Literal["backbone", "projector"] = "backbone"
    projector_prefix: str = "projection_head."


class MetricsConfig(MetricOptions):
    """``[metrics]``: every :class:`~ssl_eval.metric_options.MetricOptions` field (same
    name, default and check), and the seed of every random step of the metrics."""

    random_state: int = 0

    def options(self) -> MetricOptions:
        """The options alone, as the metric functions take them.

        Returns:
            This section without ``random_state``, as a :class:`~ssl_eval.metric_options.MetricOptions`.
        """
        return MetricOptions(**self.model_dump(exclude={"random_state"}))


class ProbeConfig(_Strict):
    # "torch": preconditioned L-BFGS in float32 (GPU when present); "sklearn": the float64
    # scikit-learn reference. Same objective (L2, C=1, standardised features).
    solver: Literal["torch", "sklearn"] = "torch"
    max_iter: int = Field(1000, gt=0)
    knn_k: int = Field(20, gt=0)
    random_state: int = 0


class AnalysisConfig(_Strict):
    late_fraction: float = Field(0.5, ge=0.0, le=1.0)


class VerdictConfig(_Strict):
    """The rules that turn a family's records into answers (docs/verdicts.md explains each).

    Progress: a trend test (Theil-Sen slope, Mann-Kendall p-value) over the last ``window``
    checkpoints of a run; a signal improves or degrades when ``p <= alpha`` and its fitted
    change over the window is at least ``min_change`` of the range it has covered in the run
    so far. Stop: ``patience`` consecutive progress tests with no improvement. Trust: at least
    ``trust_min_checkpoints`` checkpoints with a probe; trusted when the signed Spearman's
    bootstrap interval lies above 0 and its estimate is at least ``trust_min_rho``; misleading
    when the interval lies below 0; the late window (at least ``late_min_checkpoints``)
    overrides the whole-run reading when it is decisive. ``default_signals``: read when no
    signal is trusted or borrowed. Collapse (``ssl_eval.collapse``): identical embeddings,
    centered RankMe below ``collapse_rank_floor``, norm_std below ``collapse_norm_std_floor``,
    or below ``collapse_history_fraction`` of the run's best earlier value.
    """

    window: int = Field(6, ge=3)
    alpha: float = Field(0.1, gt=0.0, lt=1.0)
    min_change: float = Field(0.05, ge=0.0, le=1.0)
    patience: int = Field(2, ge=1)
    trust_min_checkpoints: int = Field(8, ge=3)
    trust_min_rho: float = Field(0.5, ge=0.0, le=1.0)
    late_min_checkpoints: int = Field(5, ge=3)
    default_signals: tuple[str, ...] = ("rankme",)
    collapse_rank_floor: float = Field(2.0, ge=1.0)
    collapse_norm_std_floor: float = Field(1e-4, ge=0.0)
    collapse_history_fraction: float = Field(0.2, gt=0.0, lt=1.0)

    def collapse_rule(self) -> dict[str, float]:
        """Keyword arguments of ``ssl_eval.collapse.collapse_reasons``.

        Returns:
            ``rank_floor``, ``norm_std_floor`` and ``history_fraction`` from this configuration.
        """
        return {"rank_floor": self.collapse_rank_floor, "norm_std_floor": self.collapse_norm_std_floor,
                "history_fraction": self.collapse_history_fraction}

    @field_validator("default_signals")
    @classmethod
    def _known_label_free(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ssl_eval.metrics import label_free_metrics

        allowed = label_free_metrics()
        unknown = [name for name in value if name not in allowed]
        if unknown or not value:
            raise ValueError(f"default_signals must be a non-empty list of label-free metric names, "
                             f"got unknown {unknown or value!r}; choose from {allowed}")
        return value


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
    verdict: VerdictConfig = VerdictConfig()
    dask: DaskConfig = DaskConfig()
    # Modules whose ``package.module:factory`` store content may name (see ssl_eval.arch_policy);
    # set by the operator only: refused in a store's own ssl_eval.toml.
    allow_modules: tuple[str, ...] = ()

    def family(self, name: str) -> FamilyConfig:
        """The configuration of family ``name``.

        Args:
            name: the family's name.

        Returns:
            Its ``[families.<name>]`` section, or the defaults when it has none.
        """
        return self.families.get(name, FamilyConfig())

    def embedding_key(self, family: str) -> str:
        """Hash of everything that changes a family's embeddings (not the metrics).

        The data configuration and how the family's checkpoints are read (arch, prefix, layer, ...).

        Args:
            family: the family's name.

        Returns:
            16 hex digits.
        """
        read = self.family(family).model_dump()
        for name in _NEWER_FAMILY_FIELDS:  # left out at their defaults: keys of earlier versions stay valid
            if read[name] == FamilyConfig.model_fields[name].default:
                del read[name]
        for name, legacy in _DETECTED_BEFORE.items():
            # "detect" hashes as the old placeholder default did (which meant detection too),
            # and setting that same value is told apart from it: setting or removing it
            # changes the key, so the family's known failures are retried.
            if read[name] is None:
                read[name] = legacy
            elif read[name] == legacy:
                read[name] = {"set": legacy}
        return _digest({"d": self.data.model_dump(exclude={"batch_size"}), "f": read})

    def metrics_key(self, family: str) -> str:
        """Hash of everything that changes a family's metric or probe values.

        Args:
            family: the family's name.

        Returns:
            16 hex digits (the embedding key is part of it).
        """
        metrics = self.metrics.model_dump()
        if metrics["max_points"] is None:  # left out at its default: keys of earlier versions stay valid
            del metrics["max_points"]
        return _digest({"m": metrics, "p": self.probe.model_dump(), "e": self.embedding_key(family)})


_NEWER_FAMILY_FIELDS = ("arch_args", "pool")
# Fields whose unset value means "detect", with the placeholder default they had before.
_DETECTED_BEFORE = {"state_dict_key": "state_dict", "prefix": "backbone."}


def _digest(payload: Any) -> str:
    return hashlib.sha256(strict_json.encode(payload, sort_keys=True).encode()).hexdigest()[:16]


CONFIG_FILE = "ssl_eval.toml"


def load_config(
    path: str | Path | None = None,
    *,
    store: str | Path | None = None,
    allow_modules: tuple[str, ...] | list[str] = (),
    from_store: bool | None = None,
    **overrides: Any,
) -> Config:
    """Load ``path`` (or ``<store>/ssl_eval.toml`` when it exists) and apply dotted overrides.

    The store may be a folder or an fsspec URL, e.g. ``load_config(store=s, **{"data.name": "digits"})``.
    ``allow_modules`` (the operator's ``--allow-module``) and ``SSL_EVAL_ALLOW_MODULES`` name
    the modules whose import paths store content may use. A file found in the store (or
    ``from_store=True``: a URL store's file fetched by the caller) is the store writer's: its
    import-path architectures need that consent and it may not set ``allow_modules``.

    Args:
        path: a TOML file the operator passed (``--config``); None reads the store's file.
        store: the checkpoint store (folder or URL) whose ``ssl_eval.toml`` to read.
        allow_modules: modules the operator allows import paths from.
        from_store: whether the file is the store writer's; None: when no ``path`` is given.
        **overrides: dotted keys -> values (``"data.name": "digits"``); None values are ignored.

    Returns:
        The validated :class:`Config`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not UTF-8 TOML, a store file names code it may not, or a key
            or value is invalid (each named, with the allowed keys).
    """
    from ssl_eval.arch_policy import allowed_modules_from_env

    raw: dict[str, Any] = {}
    source = "defaults"
    from_store = (not path) if from_store is None else from_store
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist; fix --config or drop it.")
    data, file = (Path(path).read_bytes(), str(path)) if path else _store_file(store)
    if data is not None:
        source = file
        try:
            raw = tomllib.loads(data.decode("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{file} is not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
            raise ValueError(f"{file} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8.") from None
        if from_store:
            _check_store_file(raw, file, (*allow_modules, *allowed_modules_from_env()))
    granted = [*allow_modules, *allowed_modules_from_env()]
    if granted:
        existing = raw.get("allow_modules", [])
        raw["allow_modules"] = [*(existing if isinstance(existing, list) else [existing]), *granted]
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


def _store_file(store: str | Path | None) -> tuple[bytes | None, str]:
    """The bytes of ``<store>/ssl_eval.toml`` (a folder or an fsspec URL) and its name for
    messages; (None, name) when the store has none."""
    if store is None:
        return None, "defaults"
    from ssl_eval.storage.urls import filesystem, is_url, join, redact

    if is_url(store):
        fs, base = filesystem(str(store))
        try:
            return fs.cat_file(join(base, CONFIG_FILE)), str(redact(join(str(store), CONFIG_FILE)))
        except FileNotFoundError:
            return None, "defaults"
    file = Path(store) / CONFIG_FILE
    return (file.read_bytes(), str(file)) if file.is_file() else (None, "defaults")


def _check_store_file(raw: dict[str, Any], file: str, allowed: tuple[str, ...]) -> None:
    """Refuse what a store's own file may not do: grant itself consent, or name an import
    path of a module the operator did not allow."""
    from ssl_eval.arch_policy import refusal, store_may_name

    if "allow_modules" in raw:
        raise ValueError(
            f"{file}: 'allow_modules' is refused in a store's own ssl_eval.toml: only the operator allows modules "
            "(--allow-module, SSL_EVAL_ALLOW_MODULES, or a file passed with --config)."
        )
    families = raw.get("families", {})
    for name, family in (families.items() if isinstance(families, dict) else ()):
        arch = family.get("arch") if isinstance(family, dict) else None
        if isinstance(arch, str) and not store_may_name(arch, allowed):
            raise ValueError(refusal(arch, f"{file} (families.{name}.arch)"))


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
