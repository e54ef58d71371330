"""Names from the store as ids, and ids as the names a person reads.

A family, run or checkpoint name from the store becomes an id part by :func:`escape_name`
(a one-to-one map onto ``[A-Za-z0-9_=-]`` and ``~HH`` escapes that never holds a ``.`` nor
starts with ``_``, so never one of the tool's own names): ids name records, arrays and
artifact folders. A person reads :func:`display_name`, the store's name itself: in the
report, the HTML page, the progress lines, MLflow's tags and run names, and the
configuration's ``[families."<name>"]`` sections match it (:func:`escape_name` of the key).
Anything shown on a terminal still passes :func:`ssl_eval.common.safe_text.printable`.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["display_id", "display_name", "escape_name", "readable_id"]

_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=-")
_MAX_PART = 200  # escaped parts are file and zarr node names: stay well under 255 bytes
_ESCAPED = re.compile(r"(?:~[0-9A-F]{2})+")


def escape_name(name: str) -> str:
    """A store name as an id part: ``[A-Za-z0-9_=-]`` kept (but a leading ``_``), every other byte ``~HH``.

    One-to-one on the UTF-8 form, so different names never collide; never empty, never
    holding ``.`` or starting with ``_``, so never one of the tool's own names. A very long
    result keeps its start and a hash of the whole.

    Args:
        name: a family, run or file name from the store.

    Returns:
        The escaped id part, at most 200 characters.
    """
    out = []
    for i, ch in enumerate(name):
        if ch in _KEEP and not (i == 0 and ch == "_"):
            out.append(ch)
        else:
            out.extend(f"~{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    escaped = "".join(out) or "~"
    if len(escaped) > _MAX_PART:  # "~~" never comes out of the escaping above
        escaped = escaped[:150] + "~~" + hashlib.blake2b(escaped.encode(), digest_size=16).hexdigest()
    return escaped


def display_name(part: str) -> str:
    """The store's name that :func:`escape_name` made ``part`` of: ``sim~2Eclr`` -> ``sim.clr``.

    Args:
        part: an id part (a family, run or checkpoint).

    Returns:
        The name as the store has it (bytes that are not UTF-8 as lone surrogates); a name
        shortened to its start and a hash (over 200 characters escaped) ends in ``…``.
    """
    shortened = "~~" in part
    if shortened:
        part = re.sub(r"~[0-9A-F]?$", "", part.split("~~", 1)[0])  # an escape the cut split in two
    if part == "~":  # the escape of ""
        return ""
    name = _ESCAPED.sub(lambda m: bytes.fromhex(m.group(0).replace("~", "")).decode("utf-8", "surrogateescape"), part)
    return name + "…" if shortened else name


def display_id(checkpoint_id: str) -> str:
    """A ``family/run/checkpoint`` id (or any ``/``-joined ids) with every part as the store names it.

    Args:
        checkpoint_id: e.g. ``sim~2Eclr/run-0/epoch=01``.

    Returns:
        e.g. ``sim.clr/run-0/epoch=01``.
    """
    return "/".join(display_name(part) for part in checkpoint_id.split("/"))


def readable_id(part: str) -> str:
    """The store's name where it can stand for the id in a shared namespace, else the id.

    The namespace is MLflow's experiment names; the result is unique either way and never one of the
    tool's own names.

    The name is used when it holds nothing a terminal would act on, no ``~`` and does not
    start with ``_``; every other name's id holds a ``~`` (its escapes), so a name used
    as it is never equals another name's id, and the tool's names (``_summary``) start
    with ``_``.

    Args:
        part: an id part (a family).

    Returns:
        ``sim.clr`` for ``sim~2Eclr``; ``~5Fx`` for the family ``_x``.
    """
    name = display_name(part)
    return name if name and name.isprintable() and "~" not in name and not name.startswith("_") and "…" not in name else part
