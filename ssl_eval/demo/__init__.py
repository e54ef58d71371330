"""Small SSL trainers (SimCLR, MoCo-v2, SimSiam on a small CNN) that fill a demo checkpoint store.

Layer: imports ``ssl_eval.sources`` (data sets, models, augmentations) and below.
"""

from typing import Any

__all__ = ["make_demo_store"]  # noqa: F822 - the module __getattr__ below imports it when asked


def __getattr__(name: str) -> Any:  # the trainers import lightly: load them only when asked
    if name == "make_demo_store":
        from ssl_eval.demo.train import make_demo_store

        return make_demo_store
    raise AttributeError(f"module 'ssl_eval.demo' has no attribute {name!r}")
