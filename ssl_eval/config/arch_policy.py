"""Who may choose the code that builds a backbone.

The operator (command line, environment, a configuration passed with ``--config``, code
that builds a :class:`~ssl_eval.config.Config`) may name any architecture, import paths
included. Store content may not choose code:

- a checkpoint's own ``arch`` entry may name a built-in architecture (``democnn``,
  ``resnet18``, ...) or a model of timm's registry (``timm:<name>``: library constructors,
  no import of other modules, no weights fetched); an import path ``package.module:factory``
  only when the operator allowed its module;
- an import path in the store's own ``ssl_eval.toml`` needs the same consent: the store's
  writer and the operator are often different people.

The operator allows modules with ``--allow-module MODULE`` (repeatable), the environment
variable ``SSL_EVAL_ALLOW_MODULES`` (comma-separated), or ``allow_modules = [...]`` in a
configuration passed with ``--config``. Allowing ``pkg`` allows ``pkg`` and ``pkg.*``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

ALLOW_ENV = "SSL_EVAL_ALLOW_MODULES"
TIMM_PREFIX = "timm:"
# The names of ssl_eval.sources.models.ARCHITECTURES (kept here so that reading a configuration
# does not import torch; a test keeps the two the same).
BUILTIN_ARCHITECTURES = frozenset(
    {"democnn", "democnn-small", *(f"resnet{d}{v}" for d in (18, 34, 50) for v in ("", "-cifar"))}
)


def is_import_path(arch: str) -> bool:
    """Whether ``arch`` is ``package.module:factory`` (not a registry name, not ``timm:<model>``).

    Args:
        arch: an architecture name.

    Returns:
        True for an import path.
    """
    return ":" in arch and not arch.startswith(TIMM_PREFIX)


def allowed_modules_from_env(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The modules named in ``SSL_EVAL_ALLOW_MODULES`` (comma-separated, blanks ignored).

    Args:
        environ: the environment to read; None reads ``os.environ``.

    Returns:
        The module names, in order.
    """
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    return tuple(m.strip() for m in raw.split(",") if m.strip())


def module_allowed(arch: str, allowed: Iterable[str]) -> bool:
    """Whether the import path ``arch``'s module is ``allowed`` (exactly, or inside an allowed package).

    Args:
        arch: an import path ``package.module:factory``.
        allowed: the allowed modules or packages.

    Returns:
        True when allowed.
    """
    module = arch.partition(":")[0]
    return any(module == a or module.startswith(a + ".") for a in allowed if a)


def store_may_name(arch: str, allowed: Iterable[str]) -> bool:
    """Whether store content (a checkpoint's ``arch`` entry, the store's ``ssl_eval.toml``) may name ``arch``.

    Args:
        arch: the architecture the store names.
        allowed: the modules the operator allowed.

    Returns:
        True for a built-in, ``timm:<name>``, or an import path of an allowed module.
    """
    if arch in BUILTIN_ARCHITECTURES or arch.startswith(TIMM_PREFIX):
        return True
    return is_import_path(arch) and module_allowed(arch, allowed)


def refusal(arch: str, origin: str) -> str:
    """The message for an import path named by store content without the operator's consent.

    Args:
        arch: the refused architecture.
        origin: what named it, e.g. ``checkpoint 'f/run/epoch=1.ckpt'``.

    Returns:
        The message, with the two ways to consent.
    """
    module = arch.partition(":")[0]
    return (
        f"{origin} names the architecture {arch!r}, which is not built in; store content never chooses code "
        f"to import. Set families.<family>.arch in a configuration you pass with --config, or allow the "
        f"module with --allow-module {module} (or {ALLOW_ENV}={module}) if you trust it. Built-in names: "
        f"{sorted(BUILTIN_ARCHITECTURES)} and 'timm:<model name>'."
    )
