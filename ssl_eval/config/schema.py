"""The typed configuration: its sections with their defaults and checks, and its cache keys.

The sections are the data set, families, metrics, probe, analysis, verdict and Dask; the keys say
when embeddings or metrics must be recomputed (:meth:`Config.embedding_key`,
:meth:`Config.metrics_key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ssl_eval.common import strict_json
from ssl_eval.common.names import display_name, escape_name
from ssl_eval.common.safe_text import printable
from ssl_eval.metrics.options import MetricOptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """``[data]``: the evaluation data set and the sizes of its three splits (eval, probe train, probe test)."""
    name: str = "mnist"
    root: str | None = None
    n_eval: int = Field(2000, gt=1)
    n_probe_train: int = Field(5000, gt=1)
    n_probe_test: int = Field(2000, gt=1)
    random_state: int = 0
    # Upper bounds here are sanity caps; what a configuration may really ask for is its
    # memory estimate against ``[limits] memory_gb`` (ssl_eval.pipeline.budget).
    batch_size: int = Field(512, gt=0, le=1 << 16)
    # Preprocessing: native size scaled to [0, 1] unless these are given. ``image_size``
    # resizes to a square (bilinear, antialiased); ``mean``/``std`` normalise per channel
    # (one value, or one per channel); ``channels=3`` repeats a grey channel for RGB models.
    image_size: int | None = Field(None, gt=0, le=8192)
    mean: tuple[float, ...] | None = Field(None, max_length=64)
    std: tuple[float, ...] | None = Field(None, max_length=64)
    channels: int | None = Field(None, gt=0, le=64)
    # Augmented views for alignment and LiDAR: 2 views of the first ``n_views`` eval images
    # (0 = none), drawn from ``random_state``, the same for every checkpoint.
    n_views: int = Field(512, ge=0, le=1 << 20)
    # Set by load_config, never written in a file: the store folder whose own ssl_eval.toml
    # named the data path (``npz:``/``imagefolder:`` PATH, or ``root``), which is then read
    # only inside that folder (ssl_eval.sources.data_files). None: the path is the operator's.
    confined_to: str | None = None


class FamilyConfig(_Strict):
    """How to read one family's checkpoints. ``arch=None`` takes the checkpoint's ``arch`` key.

    ``prefix`` unset (None): detected, ``backbone.`` if present, else the one known prefix
    that the checkpoint holds (see ``ssl_eval.sources.loading``); set it (``""`` for a plain
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
    """``[metrics]``: every :class:`~ssl_eval.metrics.options.MetricOptions` field, and the metrics' seed.

    Each field has the same name, default and check; the seed drives every random step of the
    metrics.
    """

    random_state: int = 0

    def options(self) -> MetricOptions:
        """The options alone, as the metric functions take them.

        Returns:
            This section without ``random_state``, as a :class:`~ssl_eval.metrics.options.MetricOptions`.
        """
        return MetricOptions(**self.model_dump(exclude={"random_state"}))


class ProbeConfig(_Strict):
    """``[probe]``: the linear probe's solver and iterations, the kNN probe's k, and the probe's seed."""
    # "torch": preconditioned L-BFGS in float32 (GPU when present); "sklearn": the float64
    # scikit-learn reference. Same objective (L2, C=1, standardised features).
    solver: Literal["torch", "sklearn"] = "torch"
    max_iter: int = Field(1000, gt=0)
    knn_k: int = Field(20, gt=0)
    random_state: int = 0


class AnalysisConfig(_Strict):
    """``[analysis]``: the share of the epochs, at the end of training, that the late-window correlations read."""
    late_fraction: float = Field(0.5, ge=0.0, le=1.0)


class VerdictConfig(_Strict):
    """The rules that turn a family's records into answers (docs/verdicts.md explains each).

    Progress: a trend test (Theil-Sen slope, Mann-Kendall p-value) over the last ``window``
    checkpoints of a run; a signal improves or degrades when ``p <= alpha`` and its fitted
    change over the window is at least ``min_change`` of the range it has covered in the run
    so far. Stop (``stop_rule``): "best" fires when the run's smoothed signal aggregate (each
    signal scaled to the range it covered so far, averaged, a centred mean of ``smooth``
    checkpoints) has not reached a new best for ``stop_patience`` checkpoints, never before
    ``min_epoch``, and keeps the best checkpoint of that aggregate; "trend" fires after
    ``patience`` consecutive progress tests with no improvement. Trust (``trust_basis``):
    "within_run" reads Spearman's rho inside each run averaged over the runs (a block
    bootstrap over runs for its interval), "pooled" the checkpoints of all runs together; at least
    ``trust_min_checkpoints`` checkpoints with a probe; trusted when the signed Spearman's
    bootstrap interval lies above 0 and its estimate is at least ``trust_min_rho``; misleading
    when the interval lies below 0; with ``late_priority`` the late window (at least
    ``late_min_checkpoints``) overrides the whole-run reading when it is decisive. ``default_signals``: read when no
    signal is trusted or borrowed. Collapse (``ssl_eval.analysis.collapse``): identical embeddings,
    centered RankMe below ``collapse_rank_floor``, norm_std below ``collapse_norm_std_floor``,
    or below ``collapse_history_fraction`` of the run's best earlier value.
    """

    window: int = Field(6, ge=3)
    alpha: float = Field(0.1, gt=0.0, lt=1.0)
    min_change: float = Field(0.05, ge=0.0, le=1.0)
    patience: int = Field(2, ge=1)
    stop_rule: Literal["best", "trend"] = "best"
    stop_patience: int = Field(8, ge=1)
    min_epoch: int = Field(0, ge=0)
    smooth: int = Field(3, ge=1, le=9)
    trust_basis: Literal["within_run", "pooled"] = "within_run"
    late_priority: bool = False
    trust_min_checkpoints: int = Field(8, ge=3)
    trust_min_rho: float = Field(0.5, ge=0.0, le=1.0)
    late_min_checkpoints: int = Field(5, ge=3)
    default_signals: tuple[str, ...] = ("rankme",)
    collapse_rank_floor: float = Field(2.0, ge=1.0)
    collapse_norm_std_floor: float = Field(1e-4, ge=0.0)
    collapse_history_fraction: float = Field(0.2, gt=0.0, lt=1.0)

    def collapse_rule(self) -> dict[str, float]:
        """Keyword arguments of ``ssl_eval.analysis.collapse.collapse_reasons``.

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
    """``[dask]``: the Dask scheduler that runs the metric tasks.

    ``address = "tcp://HOST:PORT"`` runs them on that scheduler's workers (``--dask-address``
    overrides); unset, a LocalCluster on 127.0.0.1.
    """

    address: str | None = None


class LimitsConfig(_Strict):
    """``[limits]``: how much memory the store may make a run ask for.

    The operator's to set (``--memory-gb``/``--data-gb``, their environment variables, or a file
    passed with ``--config``): refused in a store's own ssl_eval.toml.

    ``memory_gb``: the estimate of one checkpoint's embedding (model parameters, a batch's
    input and activations, the images held; ssl_eval.pipeline.budget). ``data_gb``: what one data
    file or image folder may decode to (ssl_eval.sources.data_files).
    """

    memory_gb: float = Field(2.0, gt=0)
    data_gb: float = Field(1.0, gt=0)

    @property
    def memory_bytes(self) -> int:
        """``memory_gb`` in bytes (GiB)."""
        return int(self.memory_gb * (1 << 30))

    @property
    def data_bytes(self) -> int:
        """``data_gb`` in bytes (GiB)."""
        return int(self.data_gb * (1 << 30))


class Config(_Strict):
    """The whole configuration of one run: every section, resolved from the store's file and the overrides."""
    data: DataConfig = DataConfig()
    families: dict[str, FamilyConfig] = {}
    metrics: MetricsConfig = MetricsConfig()
    probe: ProbeConfig = ProbeConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    verdict: VerdictConfig = VerdictConfig()
    dask: DaskConfig = DaskConfig()
    limits: LimitsConfig = LimitsConfig()
    # Modules whose ``package.module:factory`` store content may name (see ssl_eval.config.arch_policy);
    # set by the operator only: refused in a store's own ssl_eval.toml.
    allow_modules: tuple[str, ...] = ()

    def family(self, name: str) -> FamilyConfig:
        """The configuration of family ``name``.

        Args:
            name: the family's id (its folder's name escaped, as records and refs hold it).

        Returns:
            Its ``[families."<folder name>"]`` section, matched by the name the user sees
            (``[families."sim.clr"]`` for the id ``sim~2Eclr``), or the defaults when it has none.
        """
        for key, section in self.families.items():
            if escape_name(key) == name:
                return section
        return FamilyConfig()

    def unmatched_families(self, family_ids: Iterable[str]) -> list[str]:
        """A warning for every ``[families.<name>]`` section that matches none of ``family_ids``.

        Args:
            family_ids: the ids of the store's families.

        Returns:
            One message per section that applies to no family (a misspelt or stale name),
            naming the families there are; empty when every section matches one.
        """
        ids = set(family_ids)
        shown = ", ".join(sorted(printable(display_name(f)) for f in ids)) or "none yet"
        out = []
        for key in self.families:
            if escape_name(key) in ids:
                continue
            hint = f"; write [families.\"{printable(display_name(key))}\"], the folder's own name" if key in ids else ""
            out.append(f"[families.\"{printable(key)}\"] in the configuration matches no family of the store "
                       f"(families: {shown}){hint}; its settings apply to nothing.")
        return out

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
        return _digest({"d": self.data.model_dump(exclude={"batch_size", "confined_to"}), "f": read})

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
