"""The whole configuration of a run and its cache keys.

:class:`Config` gathers the sections of :mod:`ssl_eval.config.sections`; its keys say when
embeddings or metrics must be recomputed (:meth:`Config.embedding_key`,
:meth:`Config.metrics_key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from ssl_eval.common import strict_json
from ssl_eval.common.names import display_name, escape_name
from ssl_eval.common.safe_text import printable
from ssl_eval.config.sections import (
    AnalysisConfig,
    DaskConfig,
    DataConfig,
    FamilyConfig,
    LimitsConfig,
    MetricsConfig,
    ProbeConfig,
    StrictSection,
    VerdictConfig,
)


class Config(StrictSection):
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
