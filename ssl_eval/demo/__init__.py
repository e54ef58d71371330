"""Small SSL trainers (SimCLR, MoCo-v2, SimSiam on a small CNN) that fill a demo checkpoint store."""

from ssl_eval.demo.train import make_demo_store

__all__ = ["make_demo_store"]
