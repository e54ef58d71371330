"""Discover checkpoints in a store laid out as ``<store>/<family>/<run>/<file>``.

A checkpoint is identified by ``<family>/<run>/<stem>`` and fingerprinted by the hash of
its bytes, so a rewritten file counts as new. A file still being written (modified within
the last ``settle_seconds``, or a temp/partial name) is left for a later scan.

A store may also be an fsspec URL (``s3://bucket/checkpoints``). There a checkpoint is
fingerprinted by its object's ETag and size instead of its bytes (hashing would download
every checkpoint on every scan); a rewritten object gets a new ETag, so it still counts as
new. ``CheckpointRef.path`` is then the object's URL; :func:`open_checkpoint` reads it.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ssl_eval.storage.urls import filesystem, is_url

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".pth.tar", ".tar")
_PARTIAL = re.compile(r"(\.tmp|\.partial|\.part|~)$|^\.")
# epoch=03.ckpt, epoch_3.pt, checkpoint_0199.pth.tar, ep50.pt, e7.pth
_EPOCH_PATTERNS = (
    re.compile(r"epoch[=_-]?(\d+)", re.I),
    re.compile(r"checkpoint[_-](\d+)", re.I),
    re.compile(r"(?:^|[_-])ep?(\d+)(?:\D|$)", re.I),
)
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]")


@dataclass(frozen=True)
class CheckpointRef:
    family: str
    run: str
    name: str  # file stem, safe for use as a zarr node name
    path: str
    epoch: int | None
    fingerprint: str
    size: int

    @property
    def id(self) -> str:
        return f"{self.family}/{self.run}/{self.name}"


def checkpoint_stem(filename: str) -> str:
    for suffix in sorted(CHECKPOINT_SUFFIXES, key=len, reverse=True):
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
            break
    return _SAFE.sub("_", filename)


def epoch_from_name(filename: str) -> int | None:
    stem = checkpoint_stem(filename)
    for pattern in _EPOCH_PATTERNS:
        match = pattern.search(stem)
        if match:
            return int(match.group(1))
    return None


def fingerprint(path: str | Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_checkpoint_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(CHECKPOINT_SUFFIXES) and not _PARTIAL.search(path.name)


def discover(store: str | Path, *, settle_seconds: float = 2.0, now: float | None = None) -> list[CheckpointRef]:
    """All complete checkpoint files under ``store``, sorted by family, run and epoch.

    ``<store>/<family>/<run>/<file>`` is the layout; ``<store>/<family>/<file>`` is read
    as run ``default``. Files younger than ``settle_seconds`` are skipped (still being written).
    """
    if is_url(store):
        return _discover_url(str(store), settle_seconds=settle_seconds, now=now)
    root = Path(store)
    if not root.exists():
        raise FileNotFoundError(f"checkpoint store {root} does not exist; pass the folder that holds <family>/<run>/<checkpoint> files.")
    if not root.is_dir():
        raise NotADirectoryError(f"checkpoint store {root} is a file; pass the folder that holds <family>/<run>/<checkpoint> files.")
    now = time.time() if now is None else now
    refs: list[CheckpointRef] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if len(rel) not in (2, 3) or any(part.startswith(".") for part in rel) or not is_checkpoint_file(path):
            continue
        stat = path.stat()
        if now - stat.st_mtime < settle_seconds:
            continue
        family, run = rel[0], (rel[1] if len(rel) == 3 else "default")
        refs.append(
            CheckpointRef(
                family=_SAFE.sub("_", family),
                run=_SAFE.sub("_", run),
                name=checkpoint_stem(path.name),
                path=str(path.resolve()),
                epoch=epoch_from_name(path.name),
                fingerprint=fingerprint(path),
                size=stat.st_size,
            )
        )
    refs.sort(key=lambda r: (r.family, r.run, r.epoch if r.epoch is not None else -1, r.name))
    return refs


def _mtime(info: dict) -> float:
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
        if not name.endswith(CHECKPOINT_SUFFIXES) or _PARTIAL.search(name) or now - _mtime(info) < settle_seconds:
            continue
        tag = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("crc32c") or _mtime(info))
        family, run = rel[0], (rel[1] if len(rel) == 3 else "default")
        refs.append(
            CheckpointRef(
                family=_SAFE.sub("_", family),
                run=_SAFE.sub("_", run),
                name=checkpoint_stem(name),
                path=f"{protocol}://{key}",
                epoch=epoch_from_name(name),
                fingerprint=hashlib.blake2b(f"{tag.strip(chr(34))}:{info['size']}".encode(), digest_size=16).hexdigest(),
                size=int(info["size"]),
            )
        )
    refs.sort(key=lambda r: (r.family, r.run, r.epoch if r.epoch is not None else -1, r.name))
    return refs


def open_checkpoint(location: str | Path) -> io.BytesIO:
    """A checkpoint's bytes as a file object (``torch.load`` takes it), from a local path
    or an fsspec URL. Raises FileNotFoundError when the file or object is gone."""
    if not is_url(location):
        return io.BytesIO(Path(location).read_bytes())
    fs, key = filesystem(str(location))
    return io.BytesIO(fs.cat_file(key))
