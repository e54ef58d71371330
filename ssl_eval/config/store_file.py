"""What a checkpoint store's own ``ssl_eval.toml`` may set, and the bounds every configuration file is parsed within.

A store's own file describes how to read the store: the data set (a path in it only inside
the store), the families, the metrics, the probe, the analysis and the verdict. Where work
runs and where results go (``[dask]``, and any address or URI) and how much memory a run may
ask for (``[limits]``) are the operator's: the command line, the environment, a file passed
with ``--config``. A Dask scheduler receives the evaluation data and answers in pickles, so
a store's writer who could name one would choose code.

Every file, the operator's too, is at most :data:`MAX_CONFIG_BYTES` and
:data:`MAX_DEPTH` levels deep; messages quote at most :data:`MAX_PROBLEMS` problems.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_PROBLEMS", "OPERATOR_ONLY", "check_operator_keys", "confine_data_path", "data_path_key",
           "listed", "parse_toml", "short"]

MAX_CONFIG_BYTES = 2 << 20
MAX_DEPTH = 12  # the deepest real key, families.<f>.arch_args.<name> = [..], is 5
MAX_PROBLEMS = 10
# Sections only the operator sets, and how.
OPERATOR_ONLY = {
    "dask": "--dask-address tcp://HOST:PORT (or SSL_EVAL_DASK_ADDRESS, or [dask] address in a file passed with --config)",
    "limits": "--memory-gb / --data-gb (or SSL_EVAL_MEMORY_GB / SSL_EVAL_DATA_GB, or [limits] in a file passed with --config)",
}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PATH_DATA_SETS = ("npz:", "imagefolder:")


def short(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters (a file's keys and values can be huge).

    Args:
        value: anything.
        limit: the most characters shown.

    Returns:
        The repr, ending in ``...`` when cut.
    """
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listed(problems: list[str]) -> str:
    """The first :data:`MAX_PROBLEMS` problems, one a line, then ``and N more``.

    Args:
        problems: one sentence each.

    Returns:
        The indented lines.
    """
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    return "\n  ".join(shown + ([f"and {more:,} more"] if more else []))


def parse_toml(data: bytes, file: str) -> dict[str, Any]:
    """``data`` parsed as TOML within the size and depth bounds.

    Args:
        data: the file's bytes.
        file: its name for messages.

    Returns:
        The parsed tables.

    Raises:
        ValueError: too large, too deeply nested, not UTF-8 or not TOML (naming the file).
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"{file} is {len(data):,} bytes; a configuration file may be at most {MAX_CONFIG_BYTES:,}. "
                         "It is not an ssl_eval.toml written by hand: remove it or fix it.")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file} is not valid TOML: {short(str(exc), 300)}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise ValueError(f"{file} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8.") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ValueError(f"{file} is nested too deeply to be a configuration (at most {MAX_DEPTH} levels); fix it.") from None
    for key, _, depth in _walk(raw):
        if depth > MAX_DEPTH:
            raise ValueError(f"{file}: {short(key)} is nested {depth} levels deep; a configuration has at most {MAX_DEPTH}.")
    return raw


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any, int]]:
    """(dotted key, value, depth) of every value under ``node``, without recursion."""
    stack = [(key, node, 0)]
    while stack:
        where, value, depth = stack.pop()
        yield where, value, depth
        if depth > MAX_DEPTH:
            continue
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(value))


def check_operator_keys(raw: dict[str, Any], file: str) -> None:
    """Refuse what only the operator may set: ``[dask]``, ``[limits]``, ``data.confined_to``, any address or URI.

    Args:
        raw: the store file's parsed tables.
        file: its name for messages.

    Raises:
        ValueError: the first such key, with how the operator sets it.
    """
    for section, how in OPERATOR_ONLY.items():
        if section in raw:
            raise ValueError(
                f"{file}: [{section}] is refused in a store's own ssl_eval.toml: where work runs, where results go and "
                f"how much memory a run may take are the operator's to say. Set it with {how}."
            )
    data = raw.get("data")
    if isinstance(data, dict) and "confined_to" in data:
        raise ValueError(f"{file}: data.confined_to is set by ssl-eval, never in a file; remove it.")
    for key, value, _ in _walk(raw):
        if isinstance(value, str) and _URI.match(value):
            raise ValueError(
                f"{file}: {short(key)} = {short(value, 60)!r} is an address or URI, refused in a store's own ssl_eval.toml: "
                "where work runs and where data comes from are the operator's to say (command line, environment, "
                "or a file passed with --config)."
            )


def data_path_key(data: dict[str, Any]) -> str | None:
    """Which key of a ``[data]`` table names a path.

    Args:
        data: the ``[data]`` table.

    Returns:
        ``"name"`` for ``npz:``/``imagefolder:``, else ``"root"`` when set, else None.
    """
    name = data.get("name")
    if isinstance(name, str) and name.startswith(_PATH_DATA_SETS):
        return "name"
    return "root" if data.get("root") is not None else None


def confine_data_path(data: dict[str, Any], store: str | Path | None, file: str) -> str:
    """Check that the data path a store's file names lies inside the store; the store's real path.

    A relative path is read relative to the store (ssl_eval.sources.data_files resolves it there).

    Args:
        data: the ``[data]`` table as the run will use it (the key :func:`data_path_key` names came from the store's file).
        store: the checkpoint store (a folder; a URL store's file may name no local path).
        file: the store file's name for messages.

    Returns:
        The store folder's real path: the data is read only inside it.

    Raises:
        ValueError: the path leaves the store (naming it, and how the operator names data elsewhere).
    """
    key = data_path_key(data)
    value = str(data[key]) if key else ""
    path = value.split(":", 1)[1] if key == "name" else value
    how = "pass --dataset / --data-root, or name it in a file passed with --config"
    from ssl_eval.common.urls import is_url

    if store is None or is_url(store):
        raise ValueError(f"{file}: data.{key} = {short(value, 80)!r} names a local path, refused in the own file of a store "
                         f"at a URL; {how}.")
    root = Path(store).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(
            f"{file}: data.{key} = {short(value, 80)!r} lies outside the store ({target}): a store's own ssl_eval.toml may "
            f"only name data inside the store. To read data elsewhere, {how}."
        )
    return str(root)
