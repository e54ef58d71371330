"""Vision Transformer checkpoints as DINO, iBOT, MAE, MoCo v3 and solo-learn write them.

Each file is written here the way the trainer's own code writes it (the dict keys, the
wrappers that name the state-dict keys, ``args`` as an ``argparse.Namespace``), around a
tiny timm ViT, then read with no configuration beyond the architecture name; the
embedding must equal the source encoder's output (tolerance 1e-5).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import pytest
import torch

from ssl_eval.config import FamilyConfig
from ssl_eval.sources.loading import ALLOWED_CLASSES, CheckpointError, load_checkpoint
from ssl_eval.sources.model_building import build_model, pool_of
from ssl_eval.sources.models import build_backbone
from ssl_eval.sources.token_pooling import pooled
from tests.helpers import (
    DDP,
    VIT_ARCH,
    VIT_ARGS,
    DINOHead,
    Evil,
    MaskedAutoencoderViT,
    MoCoViT,
    MultiCropWrapper,
    cls_features,
    dino_args,
    moco_mlp,
    tiny_vit,
)

VIT = FamilyConfig(arch=VIT_ARCH, arch_args=VIT_ARGS)
X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _embed(path, family: FamilyConfig = VIT, **kwargs):
    loaded = load_checkpoint(path, family)
    model = build_model(loaded, family, in_channels=3, path=path, **kwargs)
    with torch.no_grad():
        return model(X), loaded, model


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")  # DINO uses it
@pytest.mark.parametrize("loss_key", ["dino_loss", "ibot_loss"])
def test_dino_and_ibot_teacher_backbone(tmp_path, loss_key):
    """DINO's main_dino.py format; iBOT writes the same with 'ibot_loss'.

    save_dict = {'student': student.state_dict() (DDP), 'teacher': teacher.state_dict() (no DDP for
    a ViT), 'optimizer', 'epoch', 'args', 'dino_loss'} + 'fp16_scaler'.
    """
    student_net = MultiCropWrapper(tiny_vit(1), DINOHead(24))
    student = DDP(student_net)
    teacher = MultiCropWrapper(tiny_vit(2), DINOHead(24))
    optimizer = torch.optim.AdamW(student.parameters())
    student_net.backbone(X).sum().backward()
    optimizer.step()
    center = collections.OrderedDict(center=torch.zeros(1, 64))
    save_dict = {
        "student": student.state_dict(), "teacher": teacher.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": 5, "args": dino_args(), loss_key: center,
        "fp16_scaler": torch.amp.GradScaler("cpu").state_dict(),
    }
    path = tmp_path / "checkpoint0004.pth"
    torch.save(save_dict, path)

    features, loaded, model = _embed(path)
    assert (loaded.format, loaded.prefix) == ("dino-teacher", "backbone.")
    assert loaded.meta["epoch"] == 5 and "args" not in loaded.meta
    assert torch.allclose(features, cls_features(teacher.backbone, X), atol=1e-5)
    assert not torch.allclose(features, cls_features(student_net.backbone, X), atol=1e-2)
    assert pool_of(model) == "cls"

    student_family = FamilyConfig(**{**VIT.model_dump(exclude_unset=True), "state_dict_key": "student"})
    features, loaded, _ = _embed(path, student_family)
    assert loaded.prefix == "module.backbone."
    assert torch.allclose(features, cls_features(student_net.backbone, X), atol=1e-5)


def test_mae_encoder_only(tmp_path):
    """MAE's util/misc.py save_model format.

    {'model': model_without_ddp.state_dict(), 'optimizer', 'epoch', 'scaler':
    loss_scaler.state_dict(), 'args'} to checkpoint-<epoch>.pth.
    """
    encoder = tiny_vit(3)
    mae = MaskedAutoencoderViT(encoder)
    optimizer = torch.optim.AdamW(mae.parameters())
    to_save = {"model": mae.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7,
               "scaler": torch.amp.GradScaler("cpu").state_dict(), "args": dino_args(mask_ratio=0.75, norm_pix_loss=False)}
    path = tmp_path / "checkpoint-7.pth"
    torch.save(to_save, path)

    features, loaded, model = _embed(path)
    assert (loaded.format, loaded.prefix) == ("mae-encoder", "")
    assert not any(k.startswith(("decoder_", "mask_token")) for k in loaded.state_dict)
    assert torch.allclose(features, cls_features(encoder, X), atol=1e-5)  # MAE's linear probe reads the class token

    mean_family = FamilyConfig(**{**VIT.model_dump(exclude_unset=True), "pool": "mean"})
    features, _, model = _embed(path, mean_family)
    with torch.no_grad():
        expected = encoder.forward_features(X)[:, 1:].mean(dim=1)
    assert pool_of(model) == "mean" and torch.allclose(features, expected, atol=1e-5)


def test_mae_bare_state_dict(tmp_path):
    """torch.save(model.state_dict()) of MAE's pre-training model, no wrapper dict: still the encoder only."""
    encoder = tiny_vit(9)
    path = tmp_path / "mae_pretrain.pth"
    torch.save(MaskedAutoencoderViT(encoder).state_dict(), path)
    features, loaded, _ = _embed(path)
    assert (loaded.format, loaded.prefix) == ("mae-encoder", "")
    assert torch.allclose(features, cls_features(encoder, X), atol=1e-5)


def test_moco_v3_base_encoder(tmp_path):
    """MoCo v3's main_moco.py save_checkpoint format.

    save_checkpoint({'epoch', 'arch': args.arch, 'state_dict': model.state_dict() (DDP),
    'optimizer', 'scaler'}, filename='checkpoint_%04d.pth.tar').
    """
    base = tiny_vit(4)
    model = DDP(MoCoViT(base, tiny_vit(5)))
    path = tmp_path / "checkpoint_0009.pth.tar"
    torch.save({"epoch": 10, "arch": "vit_small", "state_dict": model.state_dict(),
                "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
                "scaler": torch.amp.GradScaler("cpu").state_dict()}, path)

    features, loaded, _ = _embed(path)
    assert loaded.prefix == "module.base_encoder."
    assert torch.allclose(features, cls_features(base, X), atol=1e-5)
    # the file's own arch is MoCo v3's name, not one ssl-eval builds: the family must say it
    with pytest.raises(CheckpointError, match="'vit_small', which is not built in"):
        _embed(path, FamilyConfig())


def test_solo_learn_and_lightly_vit_backbone_in_a_lightning_checkpoint(tmp_path):
    """Solo-learn's and lightly's ViT backbones: timm VisionTransformers (num_classes=0) under ``backbone.``.

    Momentum copies, projector and online classifier are other keys.
    """
    backbone, momentum = tiny_vit(6, num_classes=0), tiny_vit(7, num_classes=0)
    state = {
        **{f"backbone.{k}": v for k, v in backbone.state_dict().items()},
        **{f"momentum_backbone.{k}": v for k, v in momentum.state_dict().items()},
        **{f"projector.{k}": v for k, v in moco_mlp(2, 24, 32, 16).state_dict().items()},
        "classifier.weight": torch.zeros(10, 24), "classifier.bias": torch.zeros(10),
    }
    path = tmp_path / "epoch=3-step=40.ckpt"
    torch.save({"epoch": 3, "global_step": 40, "pytorch-lightning_version": "2.6.6", "state_dict": state,
                "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
                "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.1, "proj_hidden_dim": 32}}, path)
    features, loaded, _ = _embed(path)
    assert loaded.prefix == "backbone."
    assert torch.allclose(features, cls_features(backbone, X), atol=1e-5)


class NamespaceSubclass(argparse.Namespace):
    pass


class ClassSwap:
    """A crafted Namespace whose state assigns ``__class__``."""

    def __reduce__(self):
        return argparse.Namespace, (), (None, {"__class__": collections.OrderedDict})


def test_namespace_is_the_only_class_allowed(tmp_path):
    state = {f"backbone.{k}": v for k, v in tiny_vit(8, num_classes=0).state_dict().items()}
    marker = tmp_path / "pwned"
    for name, args, message in [
        ("evil", dino_args(hook=Evil(marker)), "refused by torch.load.*'posix.system'"),
        ("subclass", NamespaceSubclass(lr=0.1), "refused by torch.load.*NamespaceSubclass"),
        # not code-running, but not allowed either: any other class stays refused
        ("path", argparse.Namespace(output_dir=Path("out")), "refused by torch.load.*'pathlib.PosixPath'"),
        ("swap", ClassSwap(), "not a readable torch checkpoint .*crafted.*TypeError"),
    ]:
        path = tmp_path / f"{name}.ckpt"
        torch.save({"state_dict": state, "args": args, "epoch": 1}, path)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path, VIT)
    assert not marker.exists()
    torch.save({"state_dict": state, "args": dino_args(), "epoch": 1}, tmp_path / "plain.ckpt")
    assert load_checkpoint(tmp_path / "plain.ckpt", VIT).meta["epoch"] == 1
    # registered with torch once per process, and it alone (tests/core/test_thread_safety.py)
    assert ALLOWED_CLASSES == (argparse.Namespace,) and argparse.Namespace in torch.serialization.get_safe_globals()


def test_pool_rules():
    cnn = build_backbone("resnet18-cifar", in_channels=3)
    assert pooled(cnn, None, "resnet18-cifar") is cnn  # a CNN pools by itself
    with pytest.raises(ValueError, match="pool = 'mean' applies to Vision Transformers.*'resnet18-cifar'"):
        pooled(cnn, "mean", "resnet18-cifar")
    arch = "timm:vit_tiny_patch16_224"
    no_cls = build_backbone(arch, in_channels=3, arch_args={**VIT_ARGS, "class_token": False, "global_pool": "avg"})
    with pytest.raises(ValueError, match="has no class token; use pool = 'mean'"):
        pooled(no_cls, "cls", arch)
    assert pooled(no_cls, None, arch).pool == "mean"
    assert pooled(build_backbone(arch, in_channels=3, arch_args=VIT_ARGS), None, arch).pool == "cls"
