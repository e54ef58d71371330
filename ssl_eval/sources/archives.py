"""The CIFAR-10/100 and STL-10 archives as their authors publish them, unpacked in a root folder.

The layout is torchvision's: CIFAR's batch pickles, read through an unpickler that admits
only numpy arrays and lists, and STL-10's raw binaries. Each file is a regular file inside the
allowed folder and within the memory budget (``ssl_eval.sources.data_files``). Nothing here
downloads; :mod:`ssl_eval.sources.datasets` names them ``cifar10``, ``cifar100`` and ``stl10``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ssl_eval.sources.data_files import Bounds, check_budget, open_regular

__all__ = ["read_cifar", "read_stl10"]


class _NumpyOnlyUnpickler(pickle.Unpickler):  # noqa: S301 - the safe unpickler itself: find_class allows numpy's arrays only
    """Reads the CIFAR batch pickles and refuses every global but numpy's arrays.

    A batch is a dict of bytes, lists and numpy arrays: refusing any other global means a
    doctored data file cannot run code.
    """

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}  # encode: bytes in protocol 2

    def find_class(self, module: str, name: str) -> Any:
        module = module.replace("numpy.core.", "numpy._core.")  # files written by numpy 1.x
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR batch holds only numpy arrays and lists")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, bounds: Bounds) -> dict[bytes, object]:
    with open_regular(path, bounds) as handle:
        # a pickle of byte strings and arrays holds what it unpacks to: its size is the bound
        check_budget(os.fstat(handle.fileno()).st_size, str(path), bounds)
        return _NumpyOnlyUnpickler(handle, encoding="bytes").load()


_CIFAR = {
    # name: (folder in the official archive, train files, test files, label key, classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def read_cifar(name: str, split: Literal["train", "test"], root: str | None, bounds: Bounds) -> tuple[np.ndarray, np.ndarray, int]:
    """CIFAR-10 or CIFAR-100 (``name``) from the batch pickles of its official archive, unpacked in ``root``.

    Returns:
        uint8 images (N, 32, 32, 3), int64 labels, and the number of classes.

    Raises:
        FileNotFoundError: no root, or the batch files are not there (the message says where to get them).
        pickle.UnpicklingError: a batch file names anything but numpy arrays and lists.
    """
    folder_name, train_files, test_files, label_key, classes = _CIFAR[name]
    archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    if root is None:
        raise FileNotFoundError(
            f"{name} needs --data-root (data.root): the folder holding {folder_name}/ (torchvision's root), "
            f"unpacked from {archive} of https://www.cs.toronto.edu/~kriz/cifar.html. ssl-eval never downloads it."
        )
    files = train_files if split == "train" else test_files
    for folder in (Path(root) / folder_name, Path(root)):
        if all((folder / f).is_file() for f in files):
            break
    else:
        raise FileNotFoundError(
            f"{name}: {files} not found in {Path(root) / folder_name} nor {root}; unpack {archive} "
            f"(from https://www.cs.toronto.edu/~kriz/cifar.html) into {root}. ssl-eval never downloads it."
        )
    images, labels = [], []
    for f in files:
        batch = _read_cifar_batch(folder / f, bounds)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    x = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))
    return x, np.concatenate(labels), classes


def _read_bin(path: Path, bounds: Bounds) -> np.ndarray:
    with open_regular(path, bounds) as handle:
        check_budget(os.fstat(handle.fileno()).st_size, str(path), bounds)
        return np.frombuffer(handle.read(), dtype=np.uint8)


def read_stl10(split: Literal["train", "test"], root: str | None, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 from its official binaries (stl10_binary.tar.gz) in ``root``.

    ``<split>_X.bin`` is uint8 (N, 3, 96, 96) in column-major order, ``<split>_y.bin`` uint8
    labels 1..10. The unlabeled split is not used.

    Returns:
        uint8 images (N, 96, 96, 3) and int64 labels 0..9.

    Raises:
        FileNotFoundError: no root, or the binaries are not there (the message says where to get them).
        ValueError: the two files disagree on the number of images.
    """
    folders = [Path(root) / "stl10_binary", Path(root)] if root else []
    for folder in folders:
        x_file, y_file = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
        if x_file.is_file() and y_file.is_file():
            x = _read_bin(x_file, bounds).reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
            y = _read_bin(y_file, bounds).astype(np.int64) - 1
            if len(y) != len(x):
                raise ValueError(f"stl10: {x_file} holds {len(x)} images but {y_file} {len(y)} labels; re-extract the archive.")
            return np.ascontiguousarray(x), y
    raise FileNotFoundError(
        f"stl10: {split}_X.bin / {split}_y.bin not found in {[str(f) for f in folders] or 'no root'}; pass "
        "--data-root (data.root) to the folder holding stl10_binary/ (torchvision's root), unpacked from "
        "stl10_binary.tar.gz of https://cs.stanford.edu/~acoates/stl10/. ssl-eval never downloads it."
    )
