"""The demo trainers' augmentations, re-exported from :mod:`ssl_eval.sources.augment`.

The embedding step uses them for the view-based metrics too.
"""

from ssl_eval.sources.augment import AugmentConfig, random_views

__all__ = ["AugmentConfig", "random_views"]
