"""Prefect flows: composition only (``monitor``, ``embed_checkpoints``), the Dask task runner they run on, and the progress a run reports.

Layer: under ``deployments``; imports ``tasks`` and ``ssl_eval`` (never ``ssl_eval.cli``).
"""
