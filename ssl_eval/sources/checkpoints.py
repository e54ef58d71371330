"""Discover checkpoints in a store laid out as ``<store>/<family>/<run>/<file>``.

A checkpoint is identified by ``<family>/<run>/<stem>`` and fingerprinted by the hash of
its bytes, so a rewritten file counts as new. Each part of the id is the store's name
escaped by :func:`~ssl_eval.common.names.escape_name`, a one-to-one map onto ``[A-Za-z0-9_=-]`` and ``~HH``
escapes that never yields a ``.`` or a leading ``_``: two different names never share an id
part, and no id part is ever one of the tool's own names (``correlations.json``,
``zarr.json``, ``.staging``, ``_pooled``: the tool's names hold a ``.`` or start with
``_``). Two files that still share an id (``epoch=01.ckpt`` beside ``epoch=01.pt``, or
``<family>/epoch=01.ckpt`` beside ``<family>/default/epoch=01.ckpt``) are one ref whose
``conflicts`` lists them all: it fails, naming both files, until one is renamed. A file still being written (modified within
the last ``settle_seconds``, or a temp/partial name) is left for a later scan.

A store may also be an fsspec URL (``s3://bucket/checkpoints``). There a checkpoint is
fingerprinted by its object's ETag and size instead of its bytes (hashing would download
every checkpoint on every scan); a rewritten object gets a new ETag, so it still counts as
new. ``CheckpointRef.path`` is then the object's URL; :func:`open_checkpoint` reads it.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ssl_eval.common.names import escape_name
from ssl_eval.common.urls import filesystem, is_url
from ssl_eval.sources.checkpoint_names import checkpoint_stem, epoch_from_name, is_checkpoint_name

__all__ = ["DEFAULT_RUN", "CheckpointRef", "discover", "fingerprint", "open_checkpoint"]

DEFAULT_RUN = "default"  # the run of files directly under <family>/


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint found in the store: where it sits (family, run, file), its epoch and its content's fingerprint."""
    family: str
    run: str
    name: str  # file stem, safe for use as a zarr node name
    path: str
    epoch: int | None
    fingerprint: str
    size: int
    conflicts: tuple[str, ...] = ()  # every file of the store that maps to this id, when more than one

    @property
    def id(self) -> str:
        """``<family>/<run>/<name>``: the checkpoint's id in the records and the embedding arrays."""
        return f"{self.family}/{self.run}/{self.name}"


def _with_conflicts(refs: list[CheckpointRef]) -> list[CheckpointRef]:
    """One ref per id, sorted by family, run and epoch.

    Files that share an id become one ref naming all of them in ``conflicts``
    (fingerprinted by all of them, so it is retried as soon as any of them changes or
    goes).

    Returns:
        The refs, one per id.
    """
    by_id: dict[str, list[CheckpointRef]] = {}
    for ref in refs:
        by_id.setdefault(ref.id, []).append(ref)
    out = []
    for same in by_id.values():
        if len(same) == 1:
            out.append(same[0])
            continue
        same.sort(key=lambda r: r.path)
        joint = hashlib.blake2b("|".join(f"{r.path}:{r.fingerprint}" for r in same).encode(), digest_size=16).hexdigest()
        out.append(replace(same[0], fingerprint=joint, conflicts=tuple(r.path for r in same)))
    out.sort(key=lambda r: (r.family, r.run, r.epoch if r.epoch is not None else -1, r.name))
    return out


def fingerprint(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """The hash of a file's bytes (BLAKE2b, 16 bytes), read in chunks.

    Args:
        path: a local file.
        chunk: bytes read at a time.

    Returns:
        32 hex digits.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _visible(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` that are not hidden, or none when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []


def _checkpoint_files(root: Path) -> Iterator[tuple[tuple[str, ...], os.DirEntry[str]]]:
    """Every checkpoint-named file at ``<family>/<file>`` or ``<family>/<run>/<file>``, as (relative parts, entry).

    These are the only two depths the layout has, so nothing deeper is listed.

    Yields:
        ``(relative parts, entry)`` of each checkpoint-named file.
    """
    for family in _visible(root):
        if not family.is_dir():
            continue
        for entry in _visible(Path(family.path)):
            if entry.is_dir():
                for file in _visible(Path(entry.path)):
                    if file.is_file() and is_checkpoint_name(file.name):
                        yield (family.name, entry.name, file.name), file
            elif entry.is_file() and is_checkpoint_name(entry.name):
                yield (family.name, entry.name), entry


def discover(
    store: str | Path, *, settle_seconds: float = 2.0, now: float | None = None,
    fingerprints: MutableMapping[str, list[Any]] | None = None,
) -> list[CheckpointRef]:
    """All complete checkpoint files under ``store``, sorted by family, run and epoch.

    ``<store>/<family>/<run>/<file>`` is the layout; ``<store>/<family>/<file>`` is read as
    run ``default``. Files younger than ``settle_seconds`` are skipped (still being written).

    Args:
        store: a local folder or an fsspec URL.
        settle_seconds: files modified more recently than this are left for a later scan.
        now: the current time (seconds since the epoch); None: ``time.time()``.
        fingerprints: local stores only: each file's fingerprint with its size, mtime, ctime
            and inode, which any write or replacement changes; a file whose stat is unchanged
            is not read again. Updated in place to the files found this scan.

    Returns:
        One :class:`CheckpointRef` per id (files sharing an id are one ref with ``conflicts``).

    Raises:
        FileNotFoundError: the store does not exist.
        NotADirectoryError: a local store is a file.
    """
    if is_url(store):
        return _discover_url(str(store), settle_seconds=settle_seconds, now=now)
    root = _local_root(Path(store))
    now = time.time() if now is None else now
    known = {} if fingerprints is None else dict(fingerprints)
    seen: dict[str, list[Any]] = {}
    refs: list[CheckpointRef] = []
    for rel, entry in _checkpoint_files(root):
        stat = entry.stat()
        if now - stat.st_mtime < settle_seconds:
            continue
        path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        cached = known.get(path)
        digest = cached[-1] if cached and cached[:-1] == key else fingerprint(path)
        seen[path] = [*key, digest]
        family, run = rel[0], (rel[1] if len(rel) == 3 else DEFAULT_RUN)
        refs.append(
            CheckpointRef(
                family=escape_name(family),
                run=escape_name(run),
                name=checkpoint_stem(rel[-1]),
                path=path,
                epoch=epoch_from_name(rel[-1]),
                fingerprint=digest,
                size=stat.st_size,
            )
        )
    if fingerprints is not None:
        fingerprints.clear()
        fingerprints.update(seen)
    return _with_conflicts(refs)


def _local_root(root: Path) -> Path:
    """The resolved folder of a local store, or an error naming it and the layout expected."""
    if not root.exists():
        raise FileNotFoundError(f"checkpoint store {root} does not exist; pass the folder that holds <family>/<run>/<checkpoint> files.")
    if not root.is_dir():
        raise NotADirectoryError(f"checkpoint store {root} is a file; pass the folder that holds <family>/<run>/<checkpoint> files.")
    return root.resolve()


def _mtime(info: dict[str, Any]) -> float:
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("updated") or info.get("created") or 0
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def _discover_url(url: str, *, settle_seconds: float, now: float | None) -> list[CheckpointRef]:
    fs, base = filesystem(url)
    if not fs.exists(base):
        raise FileNotFoundError(f"checkpoint store {url} does not exist; pass the URL that holds <family>/<run>/<checkpoint> objects.")
    now = time.time() if now is None else now
    protocol = url.split("://", 1)[0]
    refs: list[CheckpointRef] = []
    for key, info in sorted(fs.find(base, detail=True).items()):
        rel = key[len(base) + 1:].split("/")
        name = rel[-1]
        if len(rel) not in (2, 3) or any(part.startswith(".") for part in rel):
            continue
        if not is_checkpoint_name(name) or now - _mtime(info) < settle_seconds:
            continue
        tag = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("crc32c") or _mtime(info))
        family, run = rel[0], (rel[1] if len(rel) == 3 else DEFAULT_RUN)
        refs.append(
            CheckpointRef(
                family=escape_name(family),
                run=escape_name(run),
                name=checkpoint_stem(name),
                path=f"{protocol}://{key}",
                epoch=epoch_from_name(name),
                fingerprint=hashlib.blake2b(f"{tag.strip(chr(34))}:{info['size']}".encode(), digest_size=16).hexdigest(),
                size=int(info["size"]),
            )
        )
    return _with_conflicts(refs)


def open_checkpoint(location: str | Path) -> io.BytesIO:
    """A checkpoint's bytes as a file object (``torch.load`` takes it), from a local path or an fsspec URL.

    Args:
        location: a local path or an fsspec URL.

    Returns:
        The whole file in memory.

    Raises:
        FileNotFoundError: the file or object is gone.
    """
    if not is_url(location):
        return io.BytesIO(Path(location).read_bytes())
    fs, key = filesystem(str(location))
    return io.BytesIO(fs.cat_file(key))
