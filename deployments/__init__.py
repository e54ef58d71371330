"""Deployments: ``prefect.yaml`` and its entry points, ``ssl-eval serve``, the temporary Prefect server and the reaper.

Layer: under ``ssl_eval.cli``; imports ``flows``, ``tasks`` and ``ssl_eval``.
"""
