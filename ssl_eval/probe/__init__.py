"""Reference accuracies that need labels: the linear probe (a full-batch multinomial logistic
regression in torch, ``logistic``) and the cosine kNN probe (``probes``).

Layer: imports only ``ssl_eval.common``.
"""

from ssl_eval.probe.probes import knn_probe, linear_probe

__all__ = ["knn_probe", "linear_probe"]
