"""Data sets from local files in their official formats, written here in miniature."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from ssl_eval.sources.datasets import load_split
from ssl_eval.sources.preprocess import preprocess, to_float_tensor
from ssl_eval.sources.splits import eval_splits


def _write_cifar(root, name: str, n_per_file: int = 6):
    """Write cifar-10-batches-py / cifar-100-python as the official archives hold them.

    Pickled dicts with bytes keys, b'data' a (N, 3072) uint8 array (R, G, B planes), labels a list.
    """
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder, files, key, classes = root / "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", 10
    else:
        folder, files, key, classes = root / "cifar-100-python", ["train", "test"], b"fine_labels", 100
    folder.mkdir(parents=True)
    written = {}
    for f in files:
        images = rng.integers(0, 256, size=(n_per_file, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, classes, size=n_per_file).tolist()
        batch = {b"batch_label": f.encode(), b"labels" if key == b"labels" else key: labels,
                 b"data": images.transpose(0, 3, 1, 2).reshape(n_per_file, -1),
                 b"filenames": [f"img_{i}.png".encode() for i in range(n_per_file)]}
        with open(folder / f, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
        written[f] = (images, labels)
    return written


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_official_batches(tmp_path, name):
    written = _write_cifar(tmp_path, name)
    train, test = load_split(name, "train", root=str(tmp_path)), load_split(name, "test", root=str(tmp_path))
    first = "data_batch_1" if name == "cifar10" else "train"
    last = "test_batch" if name == "cifar10" else "test"
    assert train.images.shape == ((30 if name == "cifar10" else 6), 32, 32, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images[:6], written[first][0])
    np.testing.assert_array_equal(test.images, written[last][0])
    assert test.labels.tolist() == written[last][1]
    assert train.num_classes == (10 if name == "cifar10" else 100)
    # the batch folder itself works as the root too
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    assert len(load_split(name, "test", root=str(tmp_path / folder))) == 6


def test_cifar_missing_names_root_and_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data-root.*cifar-10-batches-py.*never downloads"):
        load_split("cifar10", "train")
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}.*unpack cifar-100-python\.tar\.gz"):
        load_split("cifar100", "test", root=str(tmp_path))


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": Payload(), b"labels": []}, handle)
    with pytest.raises(pickle.UnpicklingError, match="refusing posix.system"):
        load_split("cifar10", "test", root=str(tmp_path))
    assert not marker.exists()


def test_stl10_binary(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 96, 96, 3), dtype=np.uint8)  # (N, H, W, C)
    # the official files are column-major (N, C, W, H) planes
    images.transpose(0, 3, 2, 1).tofile(folder / "test_X.bin")
    np.array([1, 10, 4], dtype=np.uint8).tofile(folder / "test_y.bin")
    test = load_split("stl10", "test", root=str(tmp_path))
    np.testing.assert_array_equal(test.images, images)
    assert test.labels.tolist() == [0, 9, 3] and test.num_classes == 10
    with pytest.raises(FileNotFoundError, match=r"train_X\.bin.*stl10_binary.*never downloads"):
        load_split("stl10", "train", root=str(tmp_path))


def test_imagefolder_decodes_to_uint8_at_a_fixed_size(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / "set" / split / cls).mkdir(parents=True)
            for i in range(n):
                size = (12, 10) if i else (16, 16)  # mixed sizes: decoded to one size
                Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(tmp_path / "set" / split / cls / f"{i}.png")
    train = load_split(f"imagefolder:{tmp_path / 'set'}", "train", image_size=8)
    assert train.images.shape == (6, 8, 8, 3) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and train.num_classes == 2
    native = load_split(f"imagefolder:{tmp_path / 'set'}", "test")
    assert native.images.shape == (4, 16, 16, 3)  # the first image's size
    # without train/test folders: a fixed 70/30 split of one folder
    whole = load_split(f"imagefolder:{tmp_path / 'set' / 'train'}", "test", image_size=8)
    assert len(whole) == 2
    with pytest.raises(FileNotFoundError, match="imagefolder:PATH"):
        load_split(f"imagefolder:{tmp_path / 'nope'}", "train")


def test_splits_are_fixed_by_seed_and_disjoint(tmp_path):
    _write_cifar(tmp_path, "cifar10", n_per_file=20)
    a = eval_splits("cifar10", n_eval=8, n_probe_train=30, n_probe_test=8, random_state=3, root=str(tmp_path))
    b = eval_splits("cifar10", n_eval=8, n_probe_train=30, n_probe_test=8, random_state=3, root=str(tmp_path))
    for key in a.indices:
        np.testing.assert_array_equal(a.indices[key], b.indices[key])
    assert not set(a.indices["eval"]) & set(a.indices["probe_test"])


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match=r"cifar10.*stl10.*imagefolder:PATH"):
        load_split("svhn", "train")


def test_preprocess_defaults_to_native_size_in_unit_range():
    images = np.random.default_rng(0).integers(0, 256, size=(2, 6, 6), dtype=np.uint8)
    x = to_float_tensor(images)
    assert torch.equal(preprocess(x), x) and float(x.max()) <= 1.0
    y = preprocess(x, image_size=12, mean=(0.5,), std=(0.25,), channels=3)
    assert y.shape == (2, 3, 12, 12)
    np.testing.assert_allclose(float(y.mean()), (float(x.mean()) - 0.5) / 0.25, atol=0.05)
    with pytest.raises(ValueError, match="1 or 3 values"):
        preprocess(y, mean=(0.1, 0.2))


def test_one_set_data_sets_share_the_fixed_70_30_split(tmp_path):
    """Data sets of one set (digits and npz:PATH) are cut by the same rule.

    The first 70 % of one fixed permutation train, the rest test, disjoint and covering every image.
    """
    from sklearn.datasets import load_digits

    n = len(load_digits().target)
    train, test = load_split("digits", "train"), load_split("digits", "test")
    assert (len(train), len(test)) == (int(0.7 * n), n - int(0.7 * n)) == (1257, 540)
    x = np.arange(n, dtype=np.uint8).repeat(4).reshape(n, 2, 2)  # image i holds i % 256: rows can be traced
    y = np.arange(n, dtype=np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    npz_train, npz_test = load_split(f"npz:{tmp_path / 'd.npz'}", "train"), load_split(f"npz:{tmp_path / 'd.npz'}", "test")
    assert sorted(np.concatenate([npz_train.labels, npz_test.labels])) == list(range(n))
    digits = load_digits()
    np.testing.assert_array_equal(train.labels, digits.target[npz_train.labels])  # the same rows in the same order
    np.testing.assert_array_equal(test.labels, digits.target[npz_test.labels])
