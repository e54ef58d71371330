"""Typed configuration: data set, families, metrics, probe and paths.

Read from ``ssl_eval.toml`` at the checkpoint store's root (or ``--config``), then CLI
overrides. Unknown keys and wrong types are errors that name the key and what is allowed.

:mod:`~ssl_eval.config.sections` holds the sections and their defaults,
:mod:`~ssl_eval.config.schema` the whole :class:`Config` and its cache keys,
:mod:`~ssl_eval.config.loading` reads the file and the overrides (:func:`load_config`),
:mod:`~ssl_eval.config.store_file` what a store's own file may set, and
:mod:`~ssl_eval.config.arch_policy` who may choose the code that builds a backbone;
every public name is importable from ``ssl_eval.config``.

Layer: imports ``ssl_eval.metrics`` (the metric options) and ``ssl_eval.common``.
"""

from __future__ import annotations

from ssl_eval.config.loading import CONFIG_FILE, load_config
from ssl_eval.config.schema import Config
from ssl_eval.config.sections import (
    AnalysisConfig,
    DaskConfig,
    DataConfig,
    FamilyConfig,
    LimitsConfig,
    MetricsConfig,
    ProbeConfig,
    VerdictConfig,
)

__all__ = [
    "AnalysisConfig", "Config", "DaskConfig", "DataConfig", "FamilyConfig", "LimitsConfig", "MetricsConfig", "ProbeConfig", "VerdictConfig",
    "CONFIG_FILE", "load_config",
]
