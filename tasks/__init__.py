"""Prefect tasks: thin ``@task`` wrappers, one per step of the monitor flow, each calling one function of ``ssl_eval.pipeline`` (or below).

``resolve_config`` is the exception: a plain function the flow calls (its module says why).

Layer: under ``flows``; imports ``ssl_eval`` (never ``ssl_eval.cli``).
"""
