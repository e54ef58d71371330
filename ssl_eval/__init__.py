"""ssl-eval: label-free monitoring of self-supervised image encoders.

The command line (``ssl-eval --help``) watches a checkpoint store; from Python, the
metrics work on any embedding matrix::

    from ssl_eval.metrics import compute_all, rankme

    result = compute_all(X, labels=y)   # every registry metric that applies: .values, .flags
    rankme(X)                           # one metric by name, a Python float

The core (this package) never imports prefect or mlflow; they live in ``tasks``/``flows``.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("ssl-eval")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
