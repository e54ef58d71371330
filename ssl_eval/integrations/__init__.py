"""ssl-eval inside other tools: the training loop and MLflow.

:mod:`.training_hook` (and :mod:`.lightning_callback` on top of it) writes the backbone into
the checkpoint store as training goes and asks the deployment for an evaluation;
:mod:`.mlflow_mirror` mirrors the records into MLflow (:mod:`.mlflow_history` keeps one value
per step, :mod:`.mlflow_tags` writes the tags and params, :mod:`.mlflow_figures` draws the
figures where someone looks), and :mod:`.mlflow_ui` is the MLflow UI that ``ssl-eval ui`` serves.

Layer: the only part of ``ssl_eval`` beside the command line that imports MLflow; it may
import ``ssl_eval.reporting`` and everything below it.
"""
