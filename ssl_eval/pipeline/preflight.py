"""Checks made before anything starts (no Prefect server, no Dask cluster, nothing written).

A configuration that cannot work (an operator's Dask scheduler that does not answer, an
unknown data set, its files missing or over the data budget, a configured architecture
that does not build, an embedding whose memory estimate exceeds ``[limits] memory_gb``;
architectures are built on the meta device only) is an error here, once, with the fix;
sizes larger than the data set are warnings saying what will be used. The evaluation splits loaded here are
the ones every checkpoint reuses (``ssl_eval.pipeline.embedding.cached_splits``), so an in-process run
pays for the data set once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssl_eval.config import Config

if TYPE_CHECKING:
    from ssl_eval.sources.splits import EvalSplits


def check_data(config: Config) -> list[str]:
    """Load the evaluation splits, and warn about sizes capped by what the data set holds.

    Args:
        config: the run's configuration (its ``data`` section).

    Returns:
        The warnings, one sentence each (empty when every size fits).

    Raises:
        ValueError: the data set is unknown or its content is malformed (the message names it).
        FileNotFoundError: its files are missing.
    """
    from ssl_eval.pipeline.eval_data import cached_splits

    data = config.data
    try:
        splits = cached_splits(data, config.limits.data_bytes)
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


def check_architectures(config: Config, splits: EvalSplits) -> None:
    """Check the estimated memory of every architecture the configuration names, and of the data alone.

    Each architecture is built on the meta device (shapes only, nothing allocated); the estimates
    are held against ``[limits] memory_gb``.

    Architectures named only by checkpoints are checked per checkpoint when it is read.

    Args:
        config: the run's configuration (its ``families`` and ``data``).
        splits: the evaluation splits (their image size and count).

    Raises:
        ValueError: an unknown name, an import path that does not import, constructor
            arguments that do not fit, or an estimate over the budget, naming the family.
    """
    from ssl_eval.pipeline.budget import check_memory, held_images

    shape = tuple(splits.eval.images.shape[1:])
    n_images = held_images(splits, config.data.n_views)
    in_channels = config.data.channels or splits.eval.channels
    check_memory(config, None, image_shape=shape, n_images=n_images, what=f"data set {config.data.name!r}")
    for family, fc in config.families.items():
        if fc.arch is None:
            continue
        from ssl_eval.sources.models import build_on_meta  # torch: only for a configured architecture

        try:
            model = build_on_meta(fc.arch, in_channels=in_channels, arch_args=fc.arch_args)
        except (ValueError, TypeError, ImportError) as exc:
            raise ValueError(f"families.{family}.arch: {exc}") from None
        check_memory(config, model, image_shape=shape, n_images=n_images, what=f"families.{family}.arch {fc.arch!r}")


SCHEDULER_TIMEOUT = 5.0


def check_scheduler(address: str, *, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Check that the operator's Dask scheduler answers Dask's handshake within ``timeout`` seconds.

    Args:
        address: ``tcp://HOST:PORT`` (any scheme Dask knows).
        timeout: seconds to wait for the connection and the handshake.

    Raises:
        ValueError: the address is malformed, or nothing answered as a Dask scheduler there.
    """
    import asyncio

    from distributed.comm.core import connect

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 1)
        await comm.close()

    try:
        asyncio.run(handshake())
    except (OSError, ValueError, TimeoutError) as exc:
        reason = str(exc) or f"no Dask handshake within {timeout:g} s"
        raise ValueError(
            f"the Dask scheduler {address} does not answer ({reason}); start it, fix --dask-address (or "
            "SSL_EVAL_DASK_ADDRESS, or [dask] address in the file passed with --config), or leave it out for a local cluster."
        ) from None


def preflight(config: Config) -> list[str]:
    """Everything checkable before starting: the data set, then the configured architectures.

    Args:
        config: the run's configuration.

    Returns:
        The warnings of :func:`check_data`.

    Raises:
        ValueError: see :func:`check_data` and :func:`check_architectures`.
        FileNotFoundError: the data set's files are missing.
    """
    if config.dask.address:
        check_scheduler(config.dask.address)
    warnings = check_data(config)
    from ssl_eval.pipeline.eval_data import cached_splits

    check_architectures(config, cached_splits(config.data, config.limits.data_bytes))
    return warnings
