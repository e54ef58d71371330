"""Batch norms folded into their convolutions: the same features, and only where the wiring is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ssl_eval.config import Config, DataConfig
from ssl_eval.pipeline.embedding import embed_checkpoint
from ssl_eval.pipeline.eval_data import data_splits
from ssl_eval.pipeline.inference import preprocess_options
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.folding import fold_batch_norms
from ssl_eval.sources.models import DemoCNN, build_backbone
from ssl_eval.sources.preprocess import preprocess, to_float_tensor


def _trained_looking(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch-norm statistics and affine terms away from their initial 0/1, as after training."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            if module.running_mean is not None and module.running_var is not None:
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            if module.affine:
                module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


def _norms(model: nn.Module) -> int:
    return sum(type(m) is nn.BatchNorm2d for m in model.modules())


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


@pytest.mark.parametrize(("arch", "side"), [("democnn", 28), ("resnet18", 32), ("resnet18-cifar", 32), ("resnet50", 32)])
def test_every_batch_norm_of_the_built_in_architectures_is_folded_and_the_features_stay(arch, side):
    model = _trained_looking(build_backbone(arch, in_channels=3))
    x = torch.randn(6, 3, side, side, generator=torch.Generator().manual_seed(1))
    expected, norms = _features(model, x), _norms(model)
    assert norms > 0
    assert fold_batch_norms(model) == norms and _norms(model) == 0
    scale = float(expected.abs().max())
    # float rounding of the folded weights only: about 1e-6 of the features' scale
    np.testing.assert_allclose(_features(model, x), expected, atol=1e-4 * scale, rtol=0)
    assert fold_batch_norms(model) == 0  # folding twice changes nothing


def test_a_timm_resnet_keeps_its_features_and_its_own_block_types_are_left_alone():
    model = _trained_looking(build_backbone("timm:resnet18", in_channels=3))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    expected, norms = _features(model, x), _norms(model)
    folded = fold_batch_norms(model)
    assert 0 < folded < norms  # the downsample Sequentials fold; timm's blocks are not torchvision's: their pairs stay
    np.testing.assert_allclose(_features(model, x), expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


class _SharedOutput(nn.Module):
    """A convolution whose output feeds its batch norm and a skip connection: folding would change it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        return self.bn1(y) + y


class _OwnConv(nn.Conv2d):
    """A subclass with a forward of its own (as timm's weight-standardised convolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2.0


def test_pairs_of_unknown_wiring_subclasses_batch_statistics_and_training_mode_are_left_alone():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    unknown: tuple[nn.Module, ...] = (
        _SharedOutput(),
        nn.Sequential(_OwnConv(3, 4, 3), nn.BatchNorm2d(4)),
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)),
    )
    for model in map(_trained_looking, unknown):
        expected = _features(model, x)
        assert fold_batch_norms(model) == 0
        torch.testing.assert_close(_features(model, x), expected)
    training = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    assert fold_batch_norms(training) == 0 and _norms(training) == 1


def test_embed_checkpoint_stores_the_unfolded_models_features(tmp_path):
    torch.manual_seed(0)
    backbone = _trained_looking(DemoCNN(in_channels=1), seed=4)
    path = tmp_path / "store" / "simclr" / "run-0" / "epoch=01.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "arch": "democnn", "state_dict": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}}, path)
    data = DataConfig(name="digits", n_eval=40, n_probe_train=20, n_probe_test=20, n_views=0)
    ws = Workspace.at(tmp_path / "work")
    (ref,) = discover(tmp_path / "store", settle_seconds=0)
    embed_checkpoint(ref, Config(data=data), ws)
    images = data_splits(data).eval.images
    expected = _features(backbone, preprocess(to_float_tensor(images), **preprocess_options(data))).numpy()
    stored = ws.embeddings.read(ref.id, "eval")
    np.testing.assert_allclose(stored, expected, atol=1e-4 * float(np.abs(expected).max()), rtol=0)
