"""The shared cross-process comparison: it must fail on a real difference, not only pass."""

from __future__ import annotations

import math

import pytest

from tests.helpers import CROSS_PROCESS_RTOL, assert_same_values


def test_last_digit_differences_pass_and_real_differences_fail():
    # the silhouette seen on a Dask worker and in the flow's process (4.1e-8 relative apart)
    assert_same_values({"silhouette": 0.1028437547215531, "k": 10, "nan": math.nan},
                       {"silhouette": 0.10284375635846926, "k": 10, "nan": math.nan})
    with pytest.raises(AssertionError, match="silhouette"):
        assert_same_values({"silhouette": 0.1028437547 * (1 + 10 * CROSS_PROCESS_RTOL)}, {"silhouette": 0.1028437547})
    with pytest.raises(AssertionError, match="nan"):
        assert_same_values({"nan": 0.0}, {"nan": math.nan})
    with pytest.raises(AssertionError, match="k"):
        assert_same_values({"k": 9}, {"k": 10})
    with pytest.raises(AssertionError):
        assert_same_values({"a": 1.0}, {"a": 1.0, "b": 2.0})
