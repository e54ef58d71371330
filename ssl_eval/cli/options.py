"""The options several commands share, defined once.

``evaluate`` and ``serve`` (and ``report``, ``ui``) take the same ones, with the same help.
"""

from __future__ import annotations

import typer

from ssl_eval.results.workspace import DEFAULT_WORKDIR
from ssl_eval.sources.datasets import DATASETS

DATASET_HELP = (
    f"Evaluation data set: {', '.join(DATASETS)}, npz:PATH or imagefolder:PATH "
    "(default: the config's \\[data] name, else mnist)."
)

# The options both entry points share, defined once so `evaluate` and `serve` take the same.
WorkdirOption = typer.Option(None, "--workdir", help=f"Work dir for embeddings, records, MLflow and Prefect (default ./{DEFAULT_WORKDIR}).")
ResultsUrlOption = typer.Option(
    None, "--results-url", envvar="SSL_EVAL_RESULTS_URL",
    help="fsspec URL (s3://bucket/prefix) for the embeddings and records shared by remote workers; "
    "credentials from AWS_* environment variables, never in the URL. Default: inside the work dir.",
)
StoreArgument = typer.Argument(
    ..., metavar="STORE", show_default=False,
    help="Checkpoint store: a folder (or fsspec URL) laid out as STORE/<family>/<run>/<checkpoint file>.",
)
DatasetOption = typer.Option(None, "--dataset", help=DATASET_HELP)
DataRootOption = typer.Option(None, "--data-root", help="Folder holding the data set's files (never downloaded).")
ConfigOption = typer.Option(None, "--config", help="TOML configuration (default: STORE/ssl_eval.toml when present).")
DaskOption = typer.Option(
    None, "--dask-address", envvar="SSL_EVAL_DASK_ADDRESS",
    help="tcp://HOST:PORT of an existing Dask scheduler (else the config's \\[dask] address, else a local cluster).",
)
MemoryOption = typer.Option(
    None, "--memory-gb", envvar="SSL_EVAL_MEMORY_GB", min=0.01,
    help="Memory budget (GiB) of one checkpoint's embedding: model, batch, images, estimated before anything runs (default 2).",
)
DataBudgetOption = typer.Option(
    None, "--data-gb", envvar="SSL_EVAL_DATA_GB", min=0.01,
    help="What one data-set file or image folder may decode to (GiB, default 1).",
)
MlflowOption = typer.Option(None, "--mlflow-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI (default: the work dir's sqlite store).")
NEvalOption = typer.Option(None, "--n-eval", min=2, help="Test images the label-free metrics are computed on (default 2000).")
NProbeTrainOption = typer.Option(None, "--n-probe-train", min=2, help="Train images the linear probe is fitted on (default 5000).")
NProbeTestOption = typer.Option(None, "--n-probe-test", min=2, help="Test images the probe is scored on, disjoint from --n-eval's (default 2000).")
SettleOption = typer.Option(2.0, "--settle-seconds", min=0.0, help="A checkpoint modified more recently than this is left for the next scan.")
AllowModuleOption = typer.Option(
    None, "--allow-module",
    help="Allow import-path architectures (package.module:factory) of this module when the store's own "
    "ssl_eval.toml or a checkpoint's arch entry names them (repeatable; also SSL_EVAL_ALLOW_MODULES).",
)
