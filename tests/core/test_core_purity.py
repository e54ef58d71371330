"""The core must not load prefect or mlflow: it runs inside workers and notebooks alike."""

from __future__ import annotations

import subprocess
import sys


def test_importing_core_loads_neither_prefect_nor_mlflow():
    code = (
        "import sys, ssl_eval, ssl_eval.config, ssl_eval.data, ssl_eval.models, ssl_eval.embed, "
        "ssl_eval.evaluation, ssl_eval.analysis, ssl_eval.report, ssl_eval.metrics, ssl_eval.probe, "
        "ssl_eval.store.checkpoints, ssl_eval.store.loading, ssl_eval.store.embeddings, ssl_eval.demo.train\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'mlflow'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
