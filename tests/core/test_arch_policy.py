"""Who chooses code: built-in and timm architectures only, import paths only with the operator's consent.

This holds for a checkpoint's own ``arch`` entry and a store's own ssl_eval.toml; factories are
called with the arguments they accept and must return a module.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn

from ssl_eval.config import FamilyConfig, load_config
from ssl_eval.config.arch_policy import ALLOW_ENV, BUILTIN_ARCHITECTURES, store_may_name
from ssl_eval.sources.loading import CheckpointError, load_checkpoint
from ssl_eval.sources.model_building import build_model
from ssl_eval.sources.models import ARCHITECTURES, build_backbone


def no_channels_encoder() -> nn.Module:
    """A factory as most people have one: no in_channels argument."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def sized_encoder(width: int = 4, in_channels: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def not_a_module(in_channels: int = 3):
    return "a string"


def _save(path, arch: str, model: nn.Module | None = None):
    model = model or sized_encoder()
    torch.save({"arch": arch, "state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}}, path)
    return path


def test_builtin_names_are_the_registry():
    assert BUILTIN_ARCHITECTURES == set(ARCHITECTURES)


def test_checkpoint_arch_cannot_import_a_module(tmp_path, monkeypatch):
    """``arch = "this:x"`` used to import (and so run) a module; a module of our own making records whether its top-level code ran."""
    marker = tmp_path / "ran"
    (tmp_path / "hostile_arch_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\nx = lambda **kw: None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for arch in ("hostile_arch_mod:x", "this:x"):
        path = _save(tmp_path / "a.pt", arch)
        loaded = load_checkpoint(path, FamilyConfig())
        with pytest.raises(CheckpointError, match="store content never chooses code"):
            build_model(loaded, FamilyConfig(), in_channels=3, path=path)
    assert not marker.exists()
    assert "hostile_arch_mod" not in sys.modules


def test_checkpoint_arch_cannot_call_os_system(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append((a, k)))
    path = _save(tmp_path / "a.pt", "os:system")
    with pytest.raises(CheckpointError, match=r"'os:system'.*--allow-module os"):
        build_model(load_checkpoint(path, FamilyConfig()), FamilyConfig(), in_channels=3, path=path)
    assert calls == []


def test_checkpoint_arch_of_an_allowed_module_builds(tmp_path):
    path = _save(tmp_path / "a.pt", "tests.core.test_arch_policy:sized_encoder")
    loaded = load_checkpoint(path, FamilyConfig())
    with pytest.raises(CheckpointError, match="never chooses code"):
        build_model(loaded, FamilyConfig(), in_channels=3, path=path, allowed_modules=("tests.core.other",))
    for allowed in ("tests.core.test_arch_policy", "tests"):  # the module, or a package above it
        model = build_model(loaded, FamilyConfig(), in_channels=3, path=path, allowed_modules=(allowed,))
        assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4)
    assert not store_may_name("tests_evil:x", ("tests",))  # a prefix of the name is no package


def test_operator_config_may_name_any_import_path(tmp_path):
    path = _save(tmp_path / "a.pt", "os:system")  # the file's own entry is ignored
    family = FamilyConfig(arch="tests.core.test_arch_policy:sized_encoder")
    model = build_model(load_checkpoint(path, family), family, in_channels=3, path=path)
    assert isinstance(model, nn.Module)


def test_factory_gets_only_the_arguments_it_accepts():
    model = build_backbone("tests.core.test_arch_policy:no_channels_encoder", in_channels=1)
    assert model[0].in_channels == 3  # called without in_channels instead of failing with TypeError
    model = build_backbone("tests.core.test_arch_policy:sized_encoder", in_channels=1, arch_args={"width": 6})
    assert (model[0].in_channels, model[0].out_channels) == (1, 6)
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['depth'\].*arch_args"):
        build_backbone("tests.core.test_arch_policy:sized_encoder", in_channels=1, arch_args={"depth": 2})


def test_factory_must_return_a_module():
    with pytest.raises(ValueError, match="returned a str, not a torch.nn.Module"):
        build_backbone("tests.core.test_arch_policy:not_a_module", in_channels=3)
    with pytest.raises(ValueError, match="not a callable factory"):
        build_backbone("tests.core.test_arch_policy:ALLOW_ENV", in_channels=3)


def _store_toml(tmp_path, text: str):
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    (store / "ssl_eval.toml").write_text(text)
    return store


def test_store_toml_import_path_needs_the_operators_consent(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    store = _store_toml(tmp_path, '[families.f]\narch = "os:system"\n')
    with pytest.raises(ValueError, match=r"ssl_eval.toml \(families.f.arch\) names the architecture 'os:system'"):
        load_config(store=store)
    assert load_config(store=store, allow_modules=("os",)).families["f"].arch == "os:system"
    monkeypatch.setenv(ALLOW_ENV, "json, os")
    assert load_config(store=store).allow_modules == ("json", "os")
    monkeypatch.delenv(ALLOW_ENV)
    # the same file passed by the operator with --config is the operator's
    assert load_config(store / "ssl_eval.toml").families["f"].arch == "os:system"
    # ... unless the caller says it came from the store (a URL store's file fetched for reading)
    with pytest.raises(ValueError, match="never chooses code"):
        load_config(store / "ssl_eval.toml", from_store=True)
    # built-in and timm names need no consent
    _store_toml(tmp_path, '[families.f]\narch = "timm:vit_tiny_patch16_224"\n[families.g]\narch = "resnet18-cifar"\n')
    assert load_config(store=store).families["f"].arch == "timm:vit_tiny_patch16_224"


def test_store_toml_cannot_grant_itself_consent(tmp_path):
    store = _store_toml(tmp_path, 'allow_modules = ["os"]\n[families.f]\narch = "os:system"\n')
    with pytest.raises(ValueError, match="'allow_modules' is refused in a store's own ssl_eval.toml"):
        load_config(store=store)
    assert load_config(store / "ssl_eval.toml").allow_modules == ("os",)  # the operator's file may


def test_cli_allow_module_reaches_the_config(tmp_path, monkeypatch):
    """Evaluate and serve take --allow-module, and their config loader passes it on.

    The store's own file is loaded as the store's.
    """
    import typer
    from typer.testing import CliRunner

    from ssl_eval.cli import app
    from ssl_eval.cli.startup import flow_parameters
    from ssl_eval.results.workspace import Workspace

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    store = _store_toml(tmp_path, '[data]\nname = "digits"\n[families.f]\narch = "tests.core.test_arch_policy:sized_encoder"\n')
    ws = Workspace.at(tmp_path / "w")
    with pytest.raises(typer.Exit):
        flow_parameters(str(store), ws, None, {}, None)
    _, config, parameters = flow_parameters(str(store), ws, None, {}, ["tests.core"])
    assert config.allow_modules == ("tests.core",)
    # the flow resolves the configuration again at every run, with the operator's consent
    assert parameters["allow_modules"] == ["tests.core"] and "config" not in parameters
    assert load_config(store=store, allow_modules=parameters["allow_modules"]).allow_modules == ("tests.core",)
    for command in ("evaluate", "serve"):
        assert "--allow-module" in CliRunner().invoke(app, [command, "--help"], terminal_width=200).output


TINY_VIT = {"img_size": 16, "patch_size": 4, "embed_dim": 24, "depth": 2, "num_heads": 2}


def test_timm_architecture_with_constructor_arguments():
    model = build_backbone("timm:vit_tiny_patch16_224", in_channels=1, arch_args=TINY_VIT)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 24)  # num_classes=0: features, not logits
    assert not any(k.startswith("head.") for k in model.state_dict())


@pytest.mark.parametrize(
    ("arch", "args", "message"),
    [
        ("timm:no_such_model", {}, "not a model in timm's registry"),
        ("timm:hf-hub:someone/model", {}, "not a model in timm's registry"),  # would download
        ("timm:vit_tiny_patch16_224", {"pretrained": True}, r"arch_args \['pretrained'\] would load weights"),
        ("timm:vit_tiny_patch16_224", {"checkpoint_path": "x.pth"}, "would load weights"),
        ("timm:resnet18", {"no_such_argument": 1}, "constructor arguments .* do not fit"),
    ],
)
def test_timm_refusals(arch, args, message):
    with pytest.raises(ValueError, match=message):
        build_backbone(arch, in_channels=3, arch_args=args)


def test_checkpoint_naming_a_huge_timm_model_is_refused_before_building(tmp_path):
    path = _save(tmp_path / "a.pt", "timm:vit_giant_patch14_224")
    with pytest.raises(CheckpointError, match="parameters but the file holds .* refused before building"):
        build_model(load_checkpoint(path, FamilyConfig()), FamilyConfig(), in_channels=3, path=path)
