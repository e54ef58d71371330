"""Evaluation splits: the fixed, seeded image sets every checkpoint is embedded on.

Splits are fixed by ``random_state`` (:func:`eval_splits`) and recorded with the
embeddings, so every checkpoint is measured on exactly the same images. The data sets
themselves are read by :mod:`ssl_eval.datasets`; the images become model input in
:mod:`ssl_eval.preprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssl_eval.datasets import ImageArrays, load_split

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
) -> EvalSplits:
    """Fixed, seeded splits: ``eval`` and ``probe_test`` are disjoint parts of the test
    split; ``probe_train`` comes from the train split. Sizes are capped by what exists."""
    rng = np.random.default_rng(random_state)
    train = load_split(name, "train", root=root, image_size=image_size)
    test = load_split(name, "test", root=root, image_size=image_size)
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
