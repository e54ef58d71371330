"""Modules built on the meta device (``on_meta_device``): the shapes of a real build, no values written, in this thread only."""

from __future__ import annotations

import threading

import pytest
import torch

from ssl_eval.sources.models import build_backbone, on_meta_device

ARCHS = [
    ("democnn", {}),
    ("resnet18-cifar", {}),
    ("resnet50", {}),
    ("timm:vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    ("timm:convnext_atto", {}),
]


@pytest.mark.parametrize("arch, arch_args", ARCHS)
def test_a_meta_build_has_the_real_builds_tensors(arch, arch_args):
    real = build_backbone(arch, in_channels=3, arch_args=arch_args).state_dict()
    with on_meta_device():
        meta = build_backbone(arch, in_channels=3, arch_args=arch_args).state_dict()
    assert list(meta) == list(real)
    for key, tensor in meta.items():
        assert tensor.is_meta, key
        assert (tensor.shape, tensor.dtype) == (real[key].shape, real[key].dtype), key


def test_real_tensors_in_the_block_are_written_as_usual():
    with on_meta_device():
        placed = torch.zeros(3, device="cpu")
        placed.add_(1).mul_(2)
        torch.nn.init.constant_(weights := torch.empty(2, 2, device="cpu"), 5.0)
        default = torch.zeros(2)
    assert placed.tolist() == [2.0, 2.0, 2.0] and weights.eq(5.0).all()
    assert default.is_meta  # the block's default device


def test_another_thread_builds_real_initialised_modules_meanwhile():
    inside, built = threading.Event(), threading.Event()
    meta_model: list[torch.nn.Module] = []

    def on_meta() -> None:
        with on_meta_device():
            inside.set()
            built.wait(60)
            meta_model.append(build_backbone("democnn", in_channels=1))

    thread = threading.Thread(target=on_meta)
    thread.start()
    assert inside.wait(60)
    torch.manual_seed(0)
    real = build_backbone("democnn", in_channels=1)  # while the other thread is inside its block
    built.set()
    thread.join(60)
    torch.manual_seed(0)
    reference = build_backbone("democnn", in_channels=1)
    for (key, tensor), expected in zip(real.state_dict().items(), reference.state_dict().values(), strict=True):
        assert not tensor.is_meta, key
        torch.testing.assert_close(tensor, expected, rtol=0, atol=0)
    assert all(p.is_meta for p in meta_model[0].parameters())
