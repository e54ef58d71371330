"""The demo trainers' augmentations live in :mod:`ssl_eval.sources.augment` (the embedding step
uses them for the view-based metrics too); this module re-exports them.
"""

from ssl_eval.sources.augment import AugmentConfig, random_views

__all__ = ["AugmentConfig", "random_views"]
