"""Benchmarks run on the runtime install (`pip install .`): no test-only imports."""

import ast
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py"))
TEST_ONLY = {"tests", "pytest", "hypothesis", "moto", "boto3"}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_only_runtime_packages(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & TEST_ONLY, f"{path.name} imports {sorted(imported & TEST_ONLY)}"


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 4
