"""The core must not load prefect or mlflow: it runs inside workers and notebooks alike."""

from __future__ import annotations

import subprocess
import sys


def test_importing_every_core_module_loads_neither_prefect_nor_mlflow():
    code = (
        "import importlib, pkgutil, sys, ssl_eval\n"
        "names = [m.name for m in pkgutil.walk_packages(ssl_eval.__path__, 'ssl_eval.') if m.name != 'ssl_eval.cli']\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'mlflow'))\n"
        "print(len(names), ','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, bad = out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (out.stdout.strip(), "")
    assert int(count) >= 20 and bad == ""
