"""Evaluation splits: the fixed, seeded image sets every checkpoint is embedded on.

Splits are fixed by ``random_state`` (:func:`eval_splits`) and recorded with the
embeddings, so every checkpoint is measured on exactly the same images. The data sets
themselves are read by :mod:`ssl_eval.sources.datasets`; the images become model input in
:mod:`ssl_eval.sources.preprocess`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ssl_eval.sources.data_files import Bounds
from ssl_eval.sources.datasets import ImageArrays, load_split

_log = logging.getLogger(__name__)

__all__ = ["EvalSplits", "eval_splits"]


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
    image_size: int | None = None,
    bounds: Bounds = Bounds(),
) -> EvalSplits:
    """Fixed, seeded splits of a data set: the images every checkpoint is embedded on.

    ``eval`` and ``probe_test`` are disjoint parts of the test split; ``probe_train`` comes
    from the train split. Sizes are capped by what exists (``eval`` at half the test split), with a warning in the log.

    Args:
        name: the data set (a name of :data:`ssl_eval.sources.datasets.DATASETS`, ``npz:PATH`` or ``imagefolder:PATH``).
        n_eval: images to compute the label-free metrics on.
        n_probe_train: images to train the probes on.
        n_probe_test: images to test the probes on.
        random_state: seed of the splits.
        root: folder of the data set's files; None: its default place.
        image_size: decode size of an image folder; None: the first image's size.
        bounds: where the data files may be read and how much one may decode to.

    Returns:
        The :class:`EvalSplits`, with the source indices (sorted) of each set.

    Raises:
        ValueError: an unknown data set, or malformed data set files.
        FileNotFoundError: the data set's files are missing.
    """
    rng = np.random.default_rng(random_state)
    train = load_split(name, "train", root=root, image_size=image_size, bounds=bounds)
    test = load_split(name, "test", root=root, image_size=image_size, bounds=bounds)
    test_order = rng.permutation(len(test))
    asked = {"n_eval": n_eval, "n_probe_test": n_probe_test, "n_probe_train": n_probe_train}
    n_eval = min(n_eval, len(test) // 2)
    n_probe_test = min(n_probe_test, len(test) - n_eval)
    capped = {"n_eval": n_eval, "n_probe_test": n_probe_test, "n_probe_train": min(n_probe_train, len(train))}
    for key, size in capped.items():
        if size < asked[key]:  # once per process and data configuration: the splits are cached
            _log.warning("data.%s = %d is more than data set %r holds for it; using %d images "
                         "(recorded as %s in each checkpoint's provenance).", key, asked[key], name, size, key)
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
