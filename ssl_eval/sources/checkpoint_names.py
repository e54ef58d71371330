"""What a checkpoint's file name says: whether it is one, its id part, and its epoch.

The suffixes a checkpoint may have, the marks of a file still being written, the epoch
patterns (``epoch=03``, ``epoch_3``, ``checkpoint_0199``, ``ep50``, ``e7``) and the largest
epoch believed.
"""

from __future__ import annotations

import re

from ssl_eval.common.names import escape_name

__all__ = ["CHECKPOINT_SUFFIXES", "MAX_EPOCH", "checkpoint_stem", "epoch_from_name", "is_checkpoint_name"]

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".pth.tar", ".tar")
_PARTIAL = re.compile(r"(\.tmp|\.partial|\.part|~)$|^\.")
# epoch=03.ckpt, epoch_3.pt, checkpoint_0199.pth.tar, ep50.pt, e7.pth
_EPOCH_PATTERNS = (
    re.compile(r"epoch[=_-]?(\d+)", re.I),
    re.compile(r"checkpoint[_-](\d+)", re.I),
    re.compile(r"(?:^|[_-])ep?(\d+)(?:\D|$)", re.I),
)
#: The largest epoch taken from a file name or an ``epoch`` entry (a step count fits too):
#: beyond it is a broken or hostile file, whose number MLflow (a 64-bit step) cannot hold.
MAX_EPOCH = 10**9


def checkpoint_stem(filename: str) -> str:
    """A checkpoint file's name without its checkpoint suffix, escaped as an id part.

    Args:
        filename: e.g. ``epoch=03.ckpt`` or ``checkpoint_0199.pth.tar``.

    Returns:
        :func:`escape_name` of the stem, e.g. ``epoch=03``.
    """
    for suffix in sorted(CHECKPOINT_SUFFIXES, key=len, reverse=True):
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
            break
    return escape_name(filename)


def epoch_from_name(filename: str) -> int | None:
    """The epoch written in a checkpoint's file name (``epoch=03``, ``epoch_3``, ``checkpoint_0199``, ``ep50``, ``e7``).

    Args:
        filename: the file's name.

    Returns:
        The epoch, or None when the name holds none.
    """
    stem = checkpoint_stem(filename)
    for pattern in _EPOCH_PATTERNS:
        match = pattern.search(stem)
        if match:
            return int(match.group(1))
    return None


def is_checkpoint_name(name: str) -> bool:
    """Whether a file's name is a checkpoint's that is not still being written.

    Args:
        name: the file's name.

    Returns:
        True for a checkpoint suffix without a temporary or partial mark.
    """
    return name.endswith(CHECKPOINT_SUFFIXES) and not _PARTIAL.search(name)
