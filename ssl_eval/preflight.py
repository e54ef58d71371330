"""Checks made before anything starts (no Prefect server, no Dask cluster, nothing written).

A configuration that cannot work (an unknown data set, its files missing, a configured
architecture that does not build) is an error here, once, with the fix; sizes larger than
the data set are warnings saying what will be used. The evaluation splits loaded here are
the ones every checkpoint reuses (``ssl_eval.embedding.cached_splits``), so an in-process run
pays for the data set once.
"""

from __future__ import annotations

from ssl_eval.config import Config


def check_data(config: Config) -> list[str]:
    """Load the evaluation splits; ValueError/FileNotFoundError when the data set cannot be
    read. Returns warnings for sizes capped by what the data set holds."""
    from ssl_eval.embedding import cached_splits

    data = config.data
    try:
        splits = cached_splits(data)
    except (ValueError, FileNotFoundError, OSError) as exc:
        message = str(exc) if data.name in str(exc) else f"data set {data.name!r}: {exc}"
        raise type(exc)(message) from None
    warnings = []
    for option, asked, got, where in (
        ("n_eval", data.n_eval, len(splits.eval), "half of the test split"),
        ("n_probe_test", data.n_probe_test, len(splits.probe_test), "the test split minus the eval images"),
        ("n_probe_train", data.n_probe_train, len(splits.probe_train), "the train split"),
    ):
        if got < asked:
            warnings.append(f"{option}={asked} is more than {data.name!r} holds ({where}): {got} images are used; "
                            f"pass --{option.replace('_', '-')} {got} to silence this.")
    return warnings


def check_architectures(config: Config, *, in_channels: int) -> None:
    """Build every architecture the configuration names (untrained, on the CPU): an unknown
    name, an import path that does not import or constructor arguments that do not fit are
    a ValueError naming the family. Architectures named only by checkpoints are checked per
    checkpoint when it is read."""
    from ssl_eval.models import build_backbone

    for family, fc in config.families.items():
        if fc.arch is None:
            continue
        try:
            build_backbone(fc.arch, in_channels=in_channels, arch_args=fc.arch_args)
        except (ValueError, TypeError, ImportError) as exc:
            raise ValueError(f"families.{family}.arch: {exc}") from None


def preflight(config: Config) -> list[str]:
    """Everything checkable before starting; raises on an error, returns the warnings."""
    warnings = check_data(config)
    from ssl_eval.embedding import cached_splits

    check_architectures(config, in_channels=config.data.channels or cached_splits(config.data).eval.channels)
    return warnings
