"""Does a checkpoint store look like ``<store>/<family>/<run>/<checkpoint file>``?

Discovery reads checkpoint files two or three levels down and nothing else, so a store
pointed at one level too deep or too high still "works": families named ``run-0`` or
nothing found at all. :func:`layout_problems` looks at names and depths only (no file is
opened or hashed) and says what looks shifted and which folder to pass instead.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from ssl_eval.common.names import escape_name
from ssl_eval.common.safe_text import printable
from ssl_eval.sources.checkpoint_names import CHECKPOINT_SUFFIXES

EXPECTED = "STORE/<family>/<run>/<checkpoint file>, e.g. STORE/simclr/run-0/epoch=03.ckpt"
# Folder names that name a training run (seed, version, run), not an SSL method.
_RUN_NAME = re.compile(r"^(run|seed|version|trial|rep|replica)[-_=]?\d+$|^\d+$", re.I)
_MAX_DEPTH = 6


def _checkpoint_depths(root: Path) -> Counter[tuple[str, ...]]:
    """Checkpoint-named files per folder (relative parts), by name only: nothing is opened.

    Hidden folders and anything deeper than ``_MAX_DEPTH`` levels are left out.

    Returns:
        Relative folder parts -> how many checkpoint-named files it holds.
    """
    found: Counter[tuple[str, ...]] = Counter()
    for folder, dirs, files in os.walk(root):
        parts = Path(folder).relative_to(root).parts
        dirs[:] = [] if len(parts) >= _MAX_DEPTH else sorted(d for d in dirs if not d.startswith("."))
        count = sum(1 for f in files if f.endswith(CHECKPOINT_SUFFIXES) and not f.startswith("."))
        if count:
            found[parts] += count
    return found


def layout_problems(store: str | Path) -> tuple[int, list[str]]:
    """How many checkpoint files discovery will read in a local store, and what looks shifted in its layout.

    Names and depths only: no file is opened or hashed.

    Args:
        store: the local store folder.

    Returns:
        (checkpoint files at the depths discovery reads, warnings naming the folder to pass instead).
    """
    root = Path(store)
    folders = _checkpoint_depths(root)
    readable = sum(n for parts, n in folders.items() if len(parts) in (1, 2))
    warnings: list[str] = []
    top = sum(n for parts, n in folders.items() if len(parts) == 0)
    if top:
        warnings.append(f"{top} checkpoint file(s) lie directly in {root} and are not read: the store is the folder "
                        f"ABOVE the family folders ({EXPECTED}); pass {root.parent} if {root.name!r} is a family, or "
                        f"move the files into {root}/<family>/<run>/.")
    deep = Counter(parts[:-2] for parts in folders if len(parts) > 2)
    if deep:
        example = printable("/".join(next(iter(deep))))
        warnings.append(f"{sum(n for p, n in folders.items() if len(p) > 2)} checkpoint file(s) lie more than two "
                        f"folders below {root} and are not read ({EXPECTED}); if the families are under "
                        f"{root / example}, pass that folder as STORE.")
    families = {parts[0] for parts in folders if len(parts) in (1, 2)}
    if families and all(_RUN_NAME.match(f) for f in families):
        warnings.append(f"the family folders of {root} are named like runs ({', '.join(map(printable, sorted(families)[:4]))}): "
                        f"{root} looks like one family's folder; pass its parent {root.parent} as STORE ({EXPECTED}).")
    return readable, warnings


def family_ids(store: str | Path) -> list[str]:
    """The ids of a local store's family folders (hidden ones left out; names only).

    Args:
        store: the local store folder.

    Returns:
        :func:`ssl_eval.common.names.escape_name` of every family folder's name, sorted.
    """
    try:
        with os.scandir(store) as entries:
            return sorted(escape_name(e.name) for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []
