"""ViT checkpoints as DINO, iBOT, MAE and MoCo v3 write them, a pickle that runs code, and a lightly SimCLR module on a tiny timm ViT.

Re-exported by tests/helpers/__init__.py. timm, Lightning and lightly are imported where they
are used.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

import torch
from torch import nn

from ssl_eval.demo.stores import write_checkpoint

# --- ViT checkpoints as DINO, iBOT, MAE and MoCo v3 write them (the key names their wrappers give)

VIT_ARCH = "timm:vit_tiny_patch16_224"
VIT_ARGS = {"img_size": 16, "patch_size": 4, "embed_dim": 24, "depth": 2, "num_heads": 2}


def tiny_vit(seed: int, num_classes: int = 10) -> Any:  # a timm VisionTransformer (timm: typed Any)
    """A timm ViT (:data:`VIT_ARGS`) with weights drawn from ``seed`` (including LayerNorms and the tokens, so that every key matters)."""
    import timm

    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, **VIT_ARGS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2 + (1.0 if tensor.ndim == 1 else 0.0))
    return model.eval()


def cls_features(vit: Any, x: torch.Tensor) -> torch.Tensor:  # vit: a timm VisionTransformer
    """The class token of ``vit``'s last layer: what a ViT checkpoint's embedding must equal."""
    with torch.no_grad():
        return vit.forward_features(x)[:, 0]


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


def dino_args(**extra) -> argparse.Namespace:
    """The ``args`` entry DINO (and MAE) save: an argparse.Namespace."""
    return argparse.Namespace(arch="vit_small", patch_size=16, out_dim=65536, lr=0.0005, global_crops_scale=[0.4, 1.0],
                              output_dir="./out", use_fp16=True, **extra)


def write_dino_checkpoint(path, *, epoch: int, seed: int):
    """A DemoCNN saved as DINO saves it, with :func:`write_checkpoint`'s weights, settled the same way.

    ``teacher``, ``student``, ``args`` an argparse.Namespace, ``epoch``; no ``arch`` entry.
    """
    import os

    write_checkpoint(path, epoch=epoch, seed=seed)
    state = torch.load(path, weights_only=True)["state_dict"]
    stat = path.stat()
    torch.save({"teacher": state, "student": state, "args": dino_args(), "epoch": epoch}, path)
    os.utime(path, (stat.st_atime, stat.st_mtime))
    return path


class MaskedAutoencoderViT(nn.Module):
    """The key names of MAE's models_mae.MaskedAutoencoderViT.

    The encoder (cls_token, pos_embed, patch_embed, blocks, norm) and the decoder (decoder_*,
    mask_token).
    """

    def __init__(self, encoder: Any, decoder_dim: int = 16) -> None:  # encoder: a timm VisionTransformer
        from timm.models.vision_transformer import Block

        super().__init__()
        self.patch_embed, self.cls_token, self.pos_embed = encoder.patch_embed, encoder.cls_token, encoder.pos_embed
        self.blocks, self.norm = nn.ModuleList(list(encoder.blocks)), encoder.norm
        self.decoder_embed = nn.Linear(24, decoder_dim)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 17, decoder_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, 2)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, 4 * 4 * 3)


def moco_mlp(num_layers: int, input_dim: int, mlp_dim: int, output_dim: int, last_bn: bool = True) -> nn.Sequential:
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
        self.base_encoder.head = moco_mlp(3, 24, 32, 16)
        self.momentum_encoder.head = moco_mlp(3, 24, 32, 16)
        self.predictor = moco_mlp(2, 16, 32, 16, False)


class Evil:
    """Its pickle calls os.system when unpickled without restriction."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


# --- A lightly SimCLR module on a tiny timm ViT for 8x8 digits (the training-hook tests)

DIGITS_VIT_ARGS = {"img_size": 8, "patch_size": 4, "embed_dim": 24, "depth": 1, "num_heads": 2}


@functools.cache
def _vit_simclr_class() -> type:
    import pytorch_lightning as pl
    import timm
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    class SimCLR(pl.LightningModule):
        def __init__(self, seed: int = 0) -> None:
            super().__init__()
            self.backbone = timm.create_model(VIT_ARCH.removeprefix("timm:"), pretrained=False, num_classes=0, in_chans=1,
                                              **DIGITS_VIT_ARGS)
            self.projection_head = SimCLRProjectionHead(24, 32, 16)
            self.criterion = NTXentLoss()
            self.generator = torch.Generator().manual_seed(seed)

        def _view(self, x: torch.Tensor) -> torch.Tensor:
            flip = torch.rand(len(x), 1, 1, 1, generator=self.generator) < 0.5
            return torch.where(flip, x.flip(-1), x) + 0.1 * torch.randn(x.shape, generator=self.generator)

        def training_step(self, batch, batch_index):
            x = batch[0]
            z0 = self.projection_head(self.backbone(self._view(x)))
            z1 = self.projection_head(self.backbone(self._view(x)))
            return self.criterion(z0, z1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.06)

    return SimCLR


def vit_simclr(seed: int = 0):
    """A pytorch_lightning.LightningModule: SimCLR on a 1-channel timm ViT, with flip and noise views drawn from ``seed``.

    SimCLR is lightly's NT-Xent loss and projection head; the ViT is :data:`DIGITS_VIT_ARGS`,
    :data:`VIT_ARCH`.
    """
    return _vit_simclr_class()(seed)
