"""The sections of the configuration, each with its defaults and checks.

The data set, the families (how a checkpoint is read), the metrics, the probe, the analysis,
the verdict, and what only the operator sets (Dask, the memory limits). The whole configuration
and its cache keys are :mod:`ssl_eval.config.schema`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ssl_eval.metrics.options import MetricOptions


class StrictSection(BaseModel):
    """A section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(StrictSection):
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


class FamilyConfig(StrictSection):
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


class ProbeConfig(StrictSection):
    """``[probe]``: the linear probe's solver and iterations, the kNN probe's k, and the probe's seed."""
    # "torch": preconditioned L-BFGS in float32 (GPU when present); "sklearn": the float64
    # scikit-learn reference. Same objective (L2, C=1, standardised features).
    solver: Literal["torch", "sklearn"] = "torch"
    max_iter: int = Field(1000, gt=0)
    knn_k: int = Field(20, gt=0)
    random_state: int = 0


class AnalysisConfig(StrictSection):
    """``[analysis]``: the share of the epochs, at the end of training, that the late-window correlations read."""
    late_fraction: float = Field(0.5, ge=0.0, le=1.0)


class VerdictConfig(StrictSection):
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


class DaskConfig(StrictSection):
    """``[dask]``: the Dask scheduler that runs the metric tasks.

    ``address = "tcp://HOST:PORT"`` runs them on that scheduler's workers (``--dask-address``
    overrides); unset, a LocalCluster on 127.0.0.1.
    """

    address: str | None = None


class LimitsConfig(StrictSection):
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
