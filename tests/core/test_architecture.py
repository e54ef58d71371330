"""The README's architecture tree and the import-linter contract name every package of the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _packages() -> set[str]:
    core = {f"ssl_eval.{p.parent.name}" for p in (ROOT / "ssl_eval").glob("*/__init__.py")}
    return core | {"deployments", "flows", "tasks"}


def test_the_readme_tree_shows_every_package_and_no_other():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Architecture", 1)[1].split("```", 2)[1]
    shown = {m.rstrip("/").replace("/", ".") for m in re.findall(r"(?:^|\|\s+)((?:ssl_eval/)?[a-z_]+/)\s", block, re.M)}
    assert shown == _packages()


def test_the_layers_contract_places_every_package_once():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    placed = [name.strip() for layer in layers for name in layer.split("|")]
    assert sorted(placed) == sorted(_packages())
