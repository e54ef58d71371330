"""Prefect tasks: thin ``@task`` wrappers, one per step of the monitor flow, each calling one function of ``ssl_eval.pipeline`` (or below).

Layer: under ``flows``; imports ``ssl_eval`` (never ``ssl_eval.cli``).
"""
