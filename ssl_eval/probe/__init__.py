"""Reference accuracies that need labels: the linear probe and the cosine kNN probe.

The linear probe is a full-batch multinomial logistic regression in torch (``logistic``); the kNN
probe is in ``probes``.

Layer: imports only ``ssl_eval.common``.
"""

from ssl_eval.probe.probes import knn_probe, linear_probe

__all__ = ["knn_probe", "linear_probe"]
