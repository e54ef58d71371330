"""Deployment entrypoints for prefect.yaml.

Prefect loads a ``path/to/file.py:flow`` entrypoint as a module named after the file
(``monitor``, not ``flows.monitor``); anything of that module that Dask pickles for a
remote worker would then name a module the workers cannot import. Importing the flows
here keeps their home modules ``flows.monitor`` and ``flows.embed_checkpoints``, importable everywhere
the package is installed.
"""

from flows.embed_checkpoints import embed_checkpoints
from flows.monitor import monitor

__all__ = ["embed_checkpoints", "monitor"]
