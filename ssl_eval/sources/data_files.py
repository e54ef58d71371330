"""Reading data-set files within bounds: where they may be, what they may be, how much they may decode to.

A data path a store's own ``ssl_eval.toml`` names is read only inside that store
(:attr:`Bounds.within`): a relative path is relative to the store, and no symlink leads out
of it. Every data file, the operator's too, must be a regular file (a FIFO would block
``open()`` forever; a device never ends), and every decoder checks what the file declares
(idx dimensions, an ``.npz`` array header, an image's size from its header) against
:attr:`Bounds.max_bytes` before it allocates. An image folder is walked once per folder, so
a symlink loop ends.
"""

from __future__ import annotations

import fcntl
import gzip
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from PIL.ImageFile import ImageFile

__all__ = ["Bounds", "DEFAULT_DATA_BYTES", "check_budget", "decode_images", "image_samples", "is_regular", "open_regular",
           "read_idx", "read_npz", "resolve"]

DEFAULT_DATA_BYTES = 1 << 30  # [limits] data_gb's default
_RAISE = "raise it with --data-gb N (or SSL_EVAL_DATA_GB, or [limits] data_gb in a file passed with --config)"


@dataclass(frozen=True)
class Bounds:
    """Where data files may be read (``within``: a store's real path; None: anywhere) and how many bytes one file or folder may decode to."""

    within: str | None = None
    max_bytes: int = DEFAULT_DATA_BYTES


def resolve(path: str | Path, bounds: Bounds) -> Path:
    """``path`` as it will be read: relative to the store and inside it when ``bounds.within`` is set.

    Args:
        path: a data path as configured.
        bounds: the reading bounds.

    Returns:
        The path (its real path when confined).

    Raises:
        ValueError: a confined path that leads outside the store (through ``..`` or a symlink).
    """
    if bounds.within is None:
        return Path(path)
    root = Path(bounds.within).resolve()
    real = (root / path).resolve()
    if not real.is_relative_to(root):
        raise ValueError(f"{path} leads outside the store ({real}); a store's own ssl_eval.toml may only name data inside the "
                         "store. Name data elsewhere with --dataset / --data-root or a file passed with --config.")
    return real


def open_regular(path: str | Path, bounds: Bounds) -> BinaryIO:
    """Open a data file for reading if it is a regular file, without blocking on a FIFO.

    Args:
        path: the file (resolved by :func:`resolve` when confined).
        bounds: the reading bounds.

    Returns:
        The open binary file.

    Raises:
        ValueError: not a regular file, or (confined) outside the store.
        FileNotFoundError: it does not exist.
    """
    real = resolve(path, bounds)
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if bounds.within is not None else 0)
    fd = os.open(real, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file (a FIFO, device or socket); data sets are read from regular files only.")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_regular(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (after links), never blocking.

    Args:
        path: any path.

    Returns:
        True for a regular file.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_budget(nbytes: int, what: str, bounds: Bounds) -> None:
    """Refuse a decode of ``nbytes`` over the data budget, before it allocates.

    Args:
        nbytes: what the file declares it decodes to.
        what: the file and what it declares, for the message.
        bounds: the reading bounds (``max_bytes``).

    Raises:
        ValueError: over the budget, with the override.
    """
    if nbytes > bounds.max_bytes:
        raise ValueError(f"{what} would decode to {nbytes:,} bytes, more than the data budget of {bounds.max_bytes:,} bytes "
                         f"({bounds.max_bytes / (1 << 30):g} GiB); if the data set really is that large, {_RAISE}.")


def read_idx(path: Path, bounds: Bounds) -> np.ndarray:
    """Read an idx file (``.gz`` or plain), its declared size checked first.

    Four bytes of magic (the last = number of dimensions), one big-endian int32 per dimension, then
    the uint8 data.

    Args:
        path: the file.
        bounds: the reading bounds.

    Returns:
        The uint8 array of the declared shape.

    Raises:
        ValueError: a malformed file, or a declared size over the budget.
    """
    with open_regular(path, bounds) as raw_file:
        handle: BinaryIO = gzip.GzipFile(fileobj=raw_file) if path.suffix == ".gz" else raw_file  # type: ignore[assignment]  # both are binary files
        magic = handle.read(4)
        if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08 or not 1 <= magic[3] <= 4:
            raise ValueError(f"{path}: not an idx file of uint8 (magic {magic!r}).")
        shape = tuple(int(v) for v in np.frombuffer(handle.read(4 * magic[3]), dtype=">i4"))
        if len(shape) != magic[3] or min(shape) < 0:
            raise ValueError(f"{path}: truncated or malformed idx header {shape}.")
        count = int(np.prod(shape, dtype=np.int64))
        check_budget(count, f"{path} (idx of shape {shape})", bounds)
        data = handle.read(count)
    if len(data) != count:
        raise ValueError(f"{path}: holds {len(data):,} bytes of data where its header declares {count:,}; re-extract it.")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _npz_array(archive: zipfile.ZipFile, name: str, path: Path, bounds: Bounds) -> np.ndarray:
    """One array of an ``.npz``, its header's shape and dtype checked before it is read."""
    with archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
        if dtype.hasobject:
            raise ValueError(f"{path}: array {name!r} holds Python objects; save plain numeric arrays.")
        check_budget(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, f"{path} (array {name!r} of shape {shape}, {dtype})", bounds)
    with archive.open(f"{name}.npy") as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def read_npz(path: Path, bounds: Bounds) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``x`` and optional ``y`` arrays of an ``.npz`` file, each within the budget.

    Args:
        path: the file.
        bounds: the reading bounds.

    Returns:
        (x, y or None).

    Raises:
        ValueError: no ``x``, an object array, a malformed file, or an array over the budget.
    """
    with open_regular(path, bounds) as handle, zipfile.ZipFile(handle) as archive:
        names = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
        if "x" not in names:
            raise ValueError(f"{path} has arrays {sorted(names)[:20]}; expected 'x' (N,H,W[,C]) uint8 and optional 'y'.")
        x = _npz_array(archive, "x", path, bounds)
        y = _npz_array(archive, "y", path, bounds) if "y" in names else None
    return x, y


def image_samples(base: Path, bounds: Bounds) -> tuple[list[tuple[str, int]], list[str]]:
    """The listing of torchvision's ``ImageFolder``, walked safely.

    ``base/<class>/**/<image>``, classes and files sorted; each folder walked once (a symlink loop
    ends), only regular files, and (confined) nothing outside the store.

    Args:
        base: the folder of class folders.
        bounds: the reading bounds.

    Returns:
        ([(image path, class index)], class names).

    Raises:
        ValueError: (confined) a link that leads outside the store.
        FileNotFoundError: no class folder holds an image.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    classes = sorted(entry.name for entry in os.scandir(base) if entry.is_dir())
    samples: list[tuple[str, int]] = []
    seen: set[tuple[int, int]] = set()
    for index, name in enumerate(classes):
        for folder, dirs, files in os.walk(base / name, followlinks=True):
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((info.st_dev, info.st_ino))
            if bounds.within is not None:
                resolve(folder, bounds)  # a linked folder outside the store is refused
            dirs.sort()
            for file in sorted(files):
                path = os.path.join(folder, file)
                if file.lower().endswith(IMG_EXTENSIONS) and is_regular(path):
                    samples.append((str(resolve(path, bounds)) if bounds.within else path, index))
    if not samples:
        raise FileNotFoundError(f"imagefolder: no image files ({', '.join(IMG_EXTENSIONS)}) in the class folders of {base}.")
    return samples, classes


def _open_image(handle: BinaryIO, path: str, bounds: Bounds) -> ImageFile:
    """PIL's lazy open (the header only); its own decompression-bomb refusal as ours."""
    from PIL import Image

    try:
        return Image.open(handle)
    except Image.DecompressionBombError as exc:
        pixels = exc.args[0].split("(")[1].split(" ")[0] if "(" in str(exc) else "more"
        raise ValueError(f"{path} declares {int(pixels):,} pixels, more than PIL decodes at all (a decompression bomb); "
                         "resize the image or remove it.") from None


def decode_images(samples: list[tuple[str, int]], size: int | None, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 images at ``size`` (None: the first image's size), checked against the budget before decoding.

    Every image's size is read from its header and the whole set's checked before any is decoded.

    Args:
        samples: (path, class index) pairs from :func:`image_samples`.
        size: the square side to resize to; None keeps the first image's size.
        bounds: the reading bounds.

    Returns:
        (images (N, H, W, 3), labels (N,)).

    Raises:
        ValueError: an image (or the set) over the budget, or a file that is not an image.
    """
    from PIL import Image

    target: tuple[int, int] | None = (size, size) if size else None
    for path, _ in samples:  # headers only: nothing decoded yet
        with open_regular(path, bounds) as handle, _open_image(handle, path, bounds) as opened:
            width, height = opened.size
            # decoding, converting and resizing hold a few copies of the full-size image
            check_budget(4 * width * height * len(opened.getbands()), f"{path} ({width} x {height} pixels, decoded 4 times over)", bounds)
            target = target or (width, height)
    if target is None:
        return np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, np.int64)
    check_budget(len(samples) * target[0] * target[1] * 3, f"the image folder ({len(samples):,} images at {target[0]} x {target[1]})", bounds)
    images = np.empty((len(samples), target[1], target[0], 3), np.uint8)
    for i, (path, _) in enumerate(samples):
        with open_regular(path, bounds) as handle, _open_image(handle, path, bounds) as opened:
            im = opened.convert("RGB")
            images[i] = np.asarray(im if im.size == target else im.resize(target, Image.Resampling.BILINEAR), dtype=np.uint8)
    return images, np.asarray([label for _, label in samples], dtype=np.int64)
