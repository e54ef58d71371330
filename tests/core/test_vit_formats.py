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
import timm
import torch
from torch import nn

from ssl_eval.config import FamilyConfig
from ssl_eval.models import build_backbone, pooled
from ssl_eval.storage.loading import CheckpointError, build_model, load_checkpoint, pool_of

ARGS = {"img_size": 16, "patch_size": 4, "embed_dim": 24, "depth": 2, "num_heads": 2}
VIT = FamilyConfig(arch="timm:vit_tiny_patch16_224", arch_args=ARGS)
X = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def tiny_vit(seed: int, num_classes: int = 10) -> nn.Module:
    """A timm ViT with weights drawn from ``seed`` (including LayerNorms and the tokens, so
    that every key matters)."""
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, **ARGS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2 + (1.0 if tensor.ndim == 1 else 0.0))
    return model.eval()


def cls_features(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return vit.forward_features(x)[:, 0]


def _embed(path, family: FamilyConfig = VIT, **kwargs):
    loaded = load_checkpoint(path, family)
    model = build_model(loaded, family, in_channels=3, path=path, **kwargs)
    with torch.no_grad():
        return model(X), loaded, model


class DDP(nn.Module):
    """Names keys as torch.nn.parallel.DistributedDataParallel does (``module.``), without a process group."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


class MultiCropWrapper(nn.Module):
    """DINO's utils.MultiCropWrapper: backbone (its fc and head set to Identity) + head."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        backbone.fc, backbone.head = nn.Identity(), nn.Identity()
        self.backbone, self.head = backbone, head


class DINOHead(nn.Module):
    """DINO's head: an MLP and a weight-normalised last layer (keys mlp.*, last_layer.weight_g/v)."""

    def __init__(self, in_dim: int, out_dim: int = 64, hidden: int = 32, bottleneck: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))


def _namespace(**extra) -> argparse.Namespace:
    return argparse.Namespace(arch="vit_small", patch_size=16, out_dim=65536, lr=0.0005, global_crops_scale=[0.4, 1.0],
                              output_dir="./out", use_fp16=True, **extra)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")  # DINO uses it
@pytest.mark.parametrize("loss_key", ["dino_loss", "ibot_loss"])
def test_dino_and_ibot_teacher_backbone(tmp_path, loss_key):
    """main_dino.py: save_dict = {'student': student.state_dict() (DDP), 'teacher':
    teacher.state_dict() (no DDP for a ViT), 'optimizer', 'epoch', 'args', 'dino_loss'} +
    'fp16_scaler'; iBOT writes the same with 'ibot_loss'."""
    student = DDP(MultiCropWrapper(tiny_vit(1), DINOHead(24)))
    teacher = MultiCropWrapper(tiny_vit(2), DINOHead(24))
    optimizer = torch.optim.AdamW(student.parameters())
    student.module.backbone(X).sum().backward()
    optimizer.step()
    center = collections.OrderedDict(center=torch.zeros(1, 64))
    save_dict = {
        "student": student.state_dict(), "teacher": teacher.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": 5, "args": _namespace(), loss_key: center,
        "fp16_scaler": torch.amp.GradScaler("cpu").state_dict(),
    }
    path = tmp_path / "checkpoint0004.pth"
    torch.save(save_dict, path)

    features, loaded, model = _embed(path)
    assert (loaded.format, loaded.prefix) == ("dino-teacher", "backbone.")
    assert loaded.meta["epoch"] == 5 and "args" not in loaded.meta
    assert torch.allclose(features, cls_features(teacher.backbone, X), atol=1e-5)
    assert not torch.allclose(features, cls_features(student.module.backbone, X), atol=1e-2)
    assert pool_of(model) == "cls"

    student_family = FamilyConfig(**{**VIT.model_dump(exclude_unset=True), "state_dict_key": "student"})
    features, loaded, _ = _embed(path, student_family)
    assert loaded.prefix == "module.backbone."
    assert torch.allclose(features, cls_features(student.module.backbone, X), atol=1e-5)


class MaskedAutoencoderViT(nn.Module):
    """The key names of MAE's models_mae.MaskedAutoencoderViT: the encoder (cls_token,
    pos_embed, patch_embed, blocks, norm) and the decoder (decoder_*, mask_token)."""

    def __init__(self, encoder: nn.Module, decoder_dim: int = 16) -> None:
        super().__init__()
        self.patch_embed, self.cls_token, self.pos_embed = encoder.patch_embed, encoder.cls_token, encoder.pos_embed
        self.blocks, self.norm = nn.ModuleList(list(encoder.blocks)), encoder.norm
        self.decoder_embed = nn.Linear(24, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 17, decoder_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([timm.models.vision_transformer.Block(decoder_dim, 2)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, 4 * 4 * 3)


def test_mae_encoder_only(tmp_path):
    """util/misc.py save_model: {'model': model_without_ddp.state_dict(), 'optimizer', 'epoch',
    'scaler': loss_scaler.state_dict(), 'args'} to checkpoint-<epoch>.pth."""
    encoder = tiny_vit(3)
    mae = MaskedAutoencoderViT(encoder)
    optimizer = torch.optim.AdamW(mae.parameters())
    to_save = {"model": mae.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7,
               "scaler": torch.amp.GradScaler("cpu").state_dict(), "args": _namespace(mask_ratio=0.75, norm_pix_loss=False)}
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
    """torch.save(model.state_dict()) of MAE's pre-training model, no wrapper dict: still the
    encoder only."""
    encoder = tiny_vit(9)
    path = tmp_path / "mae_pretrain.pth"
    torch.save(MaskedAutoencoderViT(encoder).state_dict(), path)
    features, loaded, _ = _embed(path)
    assert (loaded.format, loaded.prefix) == ("mae-encoder", "")
    assert torch.allclose(features, cls_features(encoder, X), atol=1e-5)


def _moco_mlp(num_layers: int, input_dim: int, mlp_dim: int, output_dim: int, last_bn: bool = True) -> nn.Sequential:
    """moco/builder.py MoCo._build_mlp."""
    layers: list[nn.Module] = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        layers.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            layers += [nn.BatchNorm1d(dim2), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*layers)


class MoCoViT(nn.Module):
    """moco/builder.py MoCo_ViT: base and momentum encoders whose ``head`` is the projector, and a predictor."""

    def __init__(self, base: nn.Module, momentum: nn.Module) -> None:
        super().__init__()
        self.base_encoder, self.momentum_encoder = base, momentum
        del self.base_encoder.head, self.momentum_encoder.head
        self.base_encoder.head = _moco_mlp(3, 24, 32, 16)
        self.momentum_encoder.head = _moco_mlp(3, 24, 32, 16)
        self.predictor = _moco_mlp(2, 16, 32, 16, False)


def test_moco_v3_base_encoder(tmp_path):
    """main_moco.py save_checkpoint({'epoch', 'arch': args.arch, 'state_dict':
    model.state_dict() (DDP), 'optimizer', 'scaler'}, filename='checkpoint_%04d.pth.tar')."""
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
    """solo-learn's and lightly's ViT backbones are timm VisionTransformers (num_classes=0)
    under ``backbone.``; momentum copies, projector and online classifier are other keys."""
    backbone, momentum = tiny_vit(6, num_classes=0), tiny_vit(7, num_classes=0)
    state = {
        **{f"backbone.{k}": v for k, v in backbone.state_dict().items()},
        **{f"momentum_backbone.{k}": v for k, v in momentum.state_dict().items()},
        **{f"projector.{k}": v for k, v in _moco_mlp(2, 24, 32, 16).state_dict().items()},
        "classifier.weight": torch.zeros(10, 24), "classifier.bias": torch.zeros(10),
    }
    path = tmp_path / "epoch=3-step=40.ckpt"
    torch.save({"epoch": 3, "global_step": 40, "pytorch-lightning_version": "2.6.6", "state_dict": state,
                "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [],
                "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.1, "proj_hidden_dim": 32}}, path)
    features, loaded, _ = _embed(path)
    assert loaded.prefix == "backbone."
    assert torch.allclose(features, cls_features(backbone, X), atol=1e-5)


class Evil:
    """Its pickle calls os.system when unpickled without restriction."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


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
        ("evil", _namespace(hook=Evil(marker)), "refused by torch.load.*'posix.system'"),
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
    torch.save({"state_dict": state, "args": _namespace(), "epoch": 1}, tmp_path / "plain.ckpt")
    assert load_checkpoint(tmp_path / "plain.ckpt", VIT).meta["epoch"] == 1
    assert "Namespace" not in torch.serialization.get_safe_globals().__repr__()  # never allowed process-wide


def test_pool_rules():
    cnn = build_backbone("resnet18-cifar", in_channels=3)
    assert pooled(cnn, None, "resnet18-cifar") is cnn  # a CNN pools by itself
    with pytest.raises(ValueError, match="pool = 'mean' applies to Vision Transformers.*'resnet18-cifar'"):
        pooled(cnn, "mean", "resnet18-cifar")
    arch = "timm:vit_tiny_patch16_224"
    no_cls = build_backbone(arch, in_channels=3, arch_args={**ARGS, "class_token": False, "global_pool": "avg"})
    with pytest.raises(ValueError, match="has no class token; use pool = 'mean'"):
        pooled(no_cls, "cls", arch)
    assert pooled(no_cls, None, arch).pool == "mean"
    assert pooled(build_backbone(arch, in_channels=3, arch_args=ARGS), None, arch).pool == "cls"
