"""Checkpoint formats users arrive with, each written here in that format, then loaded safely.

Lightning (solo-learn, lightly), the MoCo-v2 and SimSiam reference repositories'
``checkpoint_NNNN.pth.tar``, and plain state dicts. Every file is read with
``torch.load(weights_only=True)`` (no file here holds anything else than tensors and plain
values), the backbone keys are found, and the embedding equals the source model's output.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from torch import nn

from ssl_eval.config import FamilyConfig
from ssl_eval.sources.loading import CheckpointError, LoadedCheckpoint, load_checkpoint
from ssl_eval.sources.model_building import build_model
from ssl_eval.sources.models import build_backbone, mlp_from_state_dict

X = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@functools.lru_cache(maxsize=1)
def _cifar_resnet18(seed: int = 0) -> nn.Module:
    """Built once per session (tests only read it)."""
    torch.manual_seed(seed)
    model = build_backbone("resnet18-cifar", in_channels=3)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode is really used
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.clone() for k, v in module.state_dict().items()}


def _embed(path, family: FamilyConfig, in_channels: int = 3) -> tuple[torch.Tensor, LoadedCheckpoint]:
    loaded = load_checkpoint(path, family)
    model = build_model(loaded, family, in_channels=in_channels, path=path)
    with torch.inference_mode():
        return model(X), loaded


def _lightning_extras(model: nn.Module) -> dict:
    """Top-level keys a Lightning 2.x .ckpt has besides the state dict (plain values only)."""
    params = [p for p in model.parameters()][:3]
    return {
        "epoch": 7,
        "global_step": 700,
        "pytorch-lightning_version": "2.4.0",
        "optimizer_states": [{
            "state": {i: {"momentum_buffer": torch.zeros_like(p)} for i, p in enumerate(params)},
            "param_groups": [{"lr": 0.06, "momentum": 0.9, "weight_decay": 5e-4, "params": [0, 1, 2]}],
        }],
        "lr_schedulers": [{"base_lrs": [0.06], "last_epoch": 7, "_step_count": 8}],
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min'}": {
            "best_model_score": None, "best_model_path": "", "dirpath": "/runs/x", "best_k_models": {}}},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 8, "completed": 7}}}},
        "hparams_name": "kwargs",
        "hyper_parameters": {"method": "simclr", "backbone": {"name": "resnet18", "kwargs": {}},
                             "optimizer": {"lr": 0.4, "batch_size": 256}, "temperature": 0.2},
    }


@pytest.mark.slow
def test_solo_learn_lightning_ckpt(tmp_path):
    backbone = _cifar_resnet18()
    projector = nn.Sequential(nn.Linear(512, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 16)).eval()
    norm = projector[1]
    assert isinstance(norm, nn.BatchNorm1d)
    norm.running_mean.uniform_(-0.1, 0.1)
    state = {
        **_prefixed("backbone.", backbone),
        **_prefixed("projector.", projector),
        "momentum_backbone.conv1.weight": torch.zeros(64, 3, 3, 3),  # momentum copy (one key suffices)
        "classifier.weight": torch.zeros(10, 512), "classifier.bias": torch.zeros(10),
    }
    path = tmp_path / "epoch=7-step=700.ckpt"
    torch.save({**_lightning_extras(backbone), "state_dict": state}, path)
    torch.load(path, weights_only=True)  # the format itself is weights_only-safe

    out, loaded = _embed(path, FamilyConfig(arch="resnet18-cifar"))
    assert loaded.prefix == "backbone." and loaded.meta["epoch"] == 7
    with torch.inference_mode():
        torch.testing.assert_close(out, backbone(X))
        proj, loaded = _embed(path, FamilyConfig(arch="resnet18-cifar", layer="projector", projector_prefix="projector."))
        torch.testing.assert_close(proj, projector(backbone(X)))
    assert loaded.projector_prefix == "projector."


@pytest.mark.slow
def test_lightly_lightning_ckpt_with_sequential_resnet_and_projection_head(tmp_path):
    lightly_heads = pytest.importorskip("lightly.models.modules")
    resnet = torchvision.models.resnet18(weights=None).eval()
    backbone = nn.Sequential(*list(resnet.children())[:-1]).eval()  # lightly's examples
    head = lightly_heads.SimCLRProjectionHead(512, 128, 32).eval()
    head.layers[1].running_var.uniform_(0.5, 2.0)
    state = {**_prefixed("backbone.", backbone), **_prefixed("projection_head.", head)}
    path = tmp_path / "epoch=03.ckpt"
    torch.save({**_lightning_extras(backbone), "state_dict": state}, path)

    out, loaded = _embed(path, FamilyConfig(arch="resnet18"))
    with torch.inference_mode():
        torch.testing.assert_close(out, backbone(X).flatten(1))
        proj, _ = _embed(path, FamilyConfig(arch="resnet18", layer="projector"))
        torch.testing.assert_close(proj, head(backbone(X).flatten(1)))


def test_moco_v2_reference_checkpoint_with_mlp_fc(tmp_path):
    # github.com/facebookresearch/moco main_moco.py: save_checkpoint({'epoch', 'arch',
    # 'state_dict': model.state_dict() (DDP: module.encoder_q.*, module.encoder_k.*, queue),
    # 'optimizer'}, filename='checkpoint_{:04d}.pth.tar'); --mlp makes fc = Linear-ReLU-Linear.
    encoder = torchvision.models.resnet18(weights=None, num_classes=128)
    encoder.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), encoder.fc)
    encoder.eval()
    state = {**_prefixed("module.encoder_q.", encoder), **_prefixed("module.encoder_k.", encoder),
             "module.queue": torch.randn(128, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    path = tmp_path / "checkpoint_0199.pth.tar"
    optimizer = {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": list(range(5))}]}
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state, "optimizer": optimizer}, path)

    out, loaded = _embed(path, FamilyConfig())  # nothing configured: arch from the file, prefix found
    assert (loaded.prefix, loaded.prefix_source) == ("module.encoder_q.", "detected")
    encoder.fc = nn.Identity()
    with torch.inference_mode():
        torch.testing.assert_close(out, encoder(X))


def test_simsiam_reference_checkpoint(tmp_path):
    # github.com/facebookresearch/simsiam: module.encoder.* (fc = 3-layer projector), module.predictor.*
    encoder = torchvision.models.resnet18(weights=None).eval()
    encoder.fc = nn.Sequential(nn.Linear(512, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(),
                               nn.Linear(64, 32), nn.BatchNorm1d(32, affine=False)).eval()
    predictor = nn.Sequential(nn.Linear(32, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 32))
    state = {**_prefixed("module.encoder.", encoder), **_prefixed("module.predictor.", predictor)}
    path = tmp_path / "checkpoint_0009.pth.tar"
    torch.save({"epoch": 10, "arch": "resnet18", "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)

    out, loaded = _embed(path, FamilyConfig(arch="resnet18"))
    assert loaded.prefix == "module.encoder."
    with torch.inference_mode():
        proj, _ = _embed(path, FamilyConfig(arch="resnet18", layer="projector", projector_prefix="fc."))
        torch.testing.assert_close(proj, encoder(X))  # the encoder's own output is its projector's
        encoder.fc = nn.Identity()
        torch.testing.assert_close(out, encoder(X))


def test_plain_state_dict(tmp_path):
    model = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "ep5.pth"  # .pt below
    torch.save(model.state_dict(), path)  # fc.* (the classifier) is dropped
    out, loaded = _embed(path, FamilyConfig(arch="resnet18"))
    assert loaded.prefix == "" and loaded.meta == {}
    model.fc = nn.Identity()
    with torch.inference_mode():
        torch.testing.assert_close(out, model(X))


def test_pytorch_tutorial_checkpoint_with_model_state_dict(tmp_path):
    """PyTorch's "saving a general checkpoint" recipe: {'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}."""
    model = _cifar_resnet18()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "checkpoint_0012.pt"
    torch.save({"epoch": 12, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "loss": 0.25}, path)
    out, loaded = _embed(path, FamilyConfig(arch="resnet18-cifar"))
    assert (loaded.format, loaded.prefix, loaded.meta["epoch"]) == ("entry 'model_state_dict'", "", 12)
    with torch.inference_mode():
        torch.testing.assert_close(out, model(X))


def test_dataparallel_plain_state_dict_strips_module(tmp_path):
    model = _cifar_resnet18()
    path = tmp_path / "ep1.pt"
    torch.save(_prefixed("module.", model), path)
    out, loaded = _embed(path, FamilyConfig(arch="resnet18-cifar"))
    assert loaded.prefix == "module."
    with torch.inference_mode():
        torch.testing.assert_close(out, model(X))  # the stripped weights are the model's own


def test_architecture_mismatch_lists_keys_and_shapes(tmp_path):
    path = tmp_path / "epoch=01.ckpt"
    torch.save({"state_dict": _prefixed("backbone.", _cifar_resnet18())}, path)
    loaded = load_checkpoint(path, FamilyConfig(arch="resnet18"))
    with pytest.raises(CheckpointError, match=r"epoch=01\.ckpt.*'resnet18'.*conv1\.weight: checkpoint \(64, 3, 3, 3\) vs model \(64, 3, 7, 7\)"):
        build_model(loaded, FamilyConfig(arch="resnet18"), in_channels=3, path=path)
    loaded = load_checkpoint(path, FamilyConfig(arch="resnet34-cifar"))
    with pytest.raises(CheckpointError, match=r"missing keys: \['layer1\.2\.conv1\.weight"):
        build_model(loaded, FamilyConfig(arch="resnet34-cifar"), in_channels=3, path=path)


def test_configured_prefix_is_required_and_ambiguity_is_an_error(tmp_path):
    model = build_backbone("democnn", in_channels=1)
    path = tmp_path / "a.pt"
    torch.save({"state_dict": _prefixed("module.encoder.", model)}, path)
    with pytest.raises(CheckpointError, match=r"configured prefix 'backbone\.'.*known prefixes present: \['module\.encoder\.'\]"):
        load_checkpoint(path, FamilyConfig(prefix="backbone."))
    torch.save({"state_dict": {**_prefixed("encoder.", model), **_prefixed("module.encoder_q.", model)}}, path)
    with pytest.raises(CheckpointError, match=r"several backbone prefixes fit.*set families"):
        load_checkpoint(path, FamilyConfig())
    assert load_checkpoint(path, FamilyConfig(prefix="encoder.")).prefix_source == "config"


def test_missing_projector_is_a_clear_error(tmp_path):
    path = tmp_path / "a.ckpt"
    torch.save({"state_dict": _prefixed("backbone.", build_backbone("democnn", in_channels=1))}, path)
    with pytest.raises(CheckpointError, match=r"layer 'projector'.*'projection_head\.'.*projector_prefix"):
        load_checkpoint(path, FamilyConfig(layer="projector"))


def test_mlp_from_state_dict_orders_blocks_and_adds_relu():
    head = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3, affine=False)).eval()
    rebuilt = mlp_from_state_dict(dict(head.state_dict())).eval()
    x = torch.randn(7, 6)
    torch.testing.assert_close(rebuilt(x), head(x))
    with pytest.raises(ValueError, match="neither Linear nor BatchNorm1d"):
        mlp_from_state_dict({"0.weight": torch.zeros(3, 3, 3, 3)})


def tiny_encoder(in_channels: int = 1) -> nn.Module:
    """A custom encoder reached through the import path tests.core.test_formats:tiny_encoder."""
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_import_path_architecture(tmp_path):
    torch.manual_seed(0)
    model = tiny_encoder(3).eval()
    path = tmp_path / "ep2.pt"
    torch.save({"state_dict": _prefixed("encoder.", model)}, path)
    out, loaded = _embed(path, FamilyConfig(arch="tests.core.test_formats:tiny_encoder"))
    assert loaded.prefix == "encoder."
    with torch.inference_mode():
        torch.testing.assert_close(out, model(X))
    with pytest.raises(ValueError, match="cannot import 'nope'"):
        build_backbone("tests.core.test_formats:nope", in_channels=3)
