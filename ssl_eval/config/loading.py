"""Reading the configuration: the store's ``ssl_eval.toml`` (or ``--config``), then the command line's overrides.

The file is read at the checkpoint store's root unless the operator passes ``--config``; the result
is validated into a :class:`~ssl_eval.config.Config`. Unknown keys and wrong types are errors that
name the key and what is allowed; a store's own file may not grant itself consent to run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ssl_eval.common.safe_text import printable
from ssl_eval.config.schema import Config
from ssl_eval.config.sections import FamilyConfig
from ssl_eval.config.store_file import check_operator_keys, confine_data_path, data_path_key, listed, parse_toml, short

__all__ = ["CONFIG_FILE", "load_config"]

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
    from ssl_eval.config.arch_policy import allowed_modules_from_env

    raw: dict[str, Any] = {}
    source = "defaults"
    from_store = (not path) if from_store is None else from_store
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist; fix --config or drop it.")
    data, file = (Path(path).read_bytes(), str(path)) if path else _store_file(store)
    store_paths: set[str] = set()  # the [data] keys naming a path that the store's own file set
    if data is not None:
        source = file
        raw = parse_toml(data, file)
        if from_store:
            check_operator_keys(raw, file)
            _check_store_file(raw, file, (*allow_modules, *allowed_modules_from_env()))
            store_paths = set(raw.get("data", {})) & {"name", "root"} if isinstance(raw.get("data"), dict) else set()
    granted = [*allow_modules, *allowed_modules_from_env()]
    if granted:
        existing = raw.get("allow_modules", [])
        raw["allow_modules"] = [*(existing if isinstance(existing, list) else [existing]), *granted]
    _apply_overrides(raw, overrides, store_paths)
    data_table = raw.get("data")
    if isinstance(data_table, dict) and data_path_key(data_table) in store_paths:
        data_table["confined_to"] = confine_data_path(data_table, store, file)
    return _validated(raw, source)


def _apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], store_paths: set[str]) -> None:
    """Set each dotted override (None: not given) in ``raw``.

    A ``data`` key the operator sets is no longer the store file's (dropped from ``store_paths``).
    """
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        if parents == ["data"]:
            store_paths.discard(leaf)


def _validated(raw: dict[str, Any], source: str) -> Config:
    """Validate ``raw`` into a :class:`Config`.

    Returns:
        The configuration.

    Raises:
        ValueError: one error naming ``source`` and every bad key (unknown keys with the keys allowed there).
    """
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = printable(".".join(str(p) for p in err["loc"]))  # keys are the file writer's: shown escaped
            if err["type"] == "extra_forbidden":
                parent = _model_at(err["loc"][:-1])
                allowed = sorted(parent.model_fields) if parent else []
                problems.append(f"unknown key '{short(where)}'; allowed keys here: {allowed}")
            else:
                problems.append(f"{short(where)}: {err['msg']} (got {short(repr(err.get('input')))})")
        raise ValueError(f"invalid configuration in {source}:\n  " + listed(problems)) from None


def _store_file(store: str | Path | None) -> tuple[bytes | None, str]:
    """The bytes of ``<store>/ssl_eval.toml`` (a folder or an fsspec URL) and its name for messages; (None, name) when the store has none."""
    if store is None:
        return None, "defaults"
    from ssl_eval.common.urls import filesystem, is_url, join, redact

    if is_url(store):
        fs, base = filesystem(str(store))
        try:
            return fs.cat_file(join(base, CONFIG_FILE)), str(redact(join(str(store), CONFIG_FILE)))
        except FileNotFoundError:
            return None, "defaults"
    file = Path(store) / CONFIG_FILE
    return (file.read_bytes(), str(file)) if file.is_file() else (None, "defaults")


def _check_store_file(raw: dict[str, Any], file: str, allowed: tuple[str, ...]) -> None:
    """Refuse what a store's own file may not do: grant itself consent, or name an import path of a module the operator did not allow."""
    from ssl_eval.config.arch_policy import refusal, store_may_name

    if "allow_modules" in raw:
        raise ValueError(
            f"{file}: 'allow_modules' is refused in a store's own ssl_eval.toml: only the operator allows modules "
            "(--allow-module, SSL_EVAL_ALLOW_MODULES, or a file passed with --config)."
        )
    families = raw.get("families", {})
    for name, family in (families.items() if isinstance(families, dict) else ()):
        arch = family.get("arch") if isinstance(family, dict) else None
        if isinstance(arch, str) and not store_may_name(arch, allowed):
            raise ValueError(refusal(arch, f"{file} (families.{printable(name)}.arch)"))


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        if model is Config and part == "families":
            model = None  # type: ignore[assignment]  # families.<name>: a free key, no model to descend into
            continue
        if model is None:  # inside families.<name>
            model = FamilyConfig
            continue
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model
