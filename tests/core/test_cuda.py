"""The CUDA path against the CPU path: embedding (bf16 autocast, channels_last, pinned transfers) and the torch linear probe.

Skipped without a CUDA device; ``benchmarks/gpu_check.sh`` runs them on a GPU machine. Only
tests marked ``cuda`` see the GPU as the default device (tests/conftest.py pins the others
to the CPU).

Tolerances: bf16 keeps 8 bits of mantissa, so bf16 features are compared by direction
(cosine >= 0.99 per row, the relative error of the whole matrix under 5 %); fp32 on the GPU
runs convolutions in TF32 by default (10 bits), so it is held to 1 % of the feature scale.
The probe is held to the same 0.5 points of accuracy as the CPU solver is against
scikit-learn (tests/core/test_probe.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_eval.config import Config, DataConfig
from ssl_eval.pipeline import inference
from ssl_eval.pipeline.embedding import embed_checkpoint
from ssl_eval.pipeline.inference import embed_images
from ssl_eval.probe import linear_probe, logistic
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.models import build_backbone
from ssl_eval.sources.token_pooling import pooled
from tests.helpers import make_store

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _assert_close_in_direction(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.isfinite(got).all()
    assert _rowwise_cosine(got, expected).min() >= 0.99
    assert np.linalg.norm(got - expected) <= 0.05 * np.linalg.norm(expected)


def test_default_devices_are_cuda():
    assert inference.default_device().type == "cuda"
    assert logistic.default_device().type == "cuda"


@pytest.mark.parametrize("arch, size, options", [
    ("resnet18-cifar", 32, None),
    ("resnet50", 64, None),
    # a ViT read at its CLS token, resized on the device from 32 px (the ViT path's preprocessing)
    ("timm:vit_tiny_patch16_224", 32, {"image_size": 64, "mean": (0.5,), "std": (0.5,), "channels": 3}),
])
def test_embed_images_on_cuda_agrees_with_the_cpu(arch, size, options):
    torch.manual_seed(0)
    args = {"img_size": 64} if arch.startswith("timm:") else None
    model = pooled(build_backbone(arch, in_channels=3, arch_args=args), None, arch).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(70, size, size, 3), dtype=np.uint8)
    expected = embed_images(model, images, batch_size=32, device=CPU, preprocess_options=options)
    bf16 = embed_images(model, images, batch_size=32, device=CUDA, preprocess_options=options)
    _assert_close_in_direction(bf16, expected)
    fp32 = embed_images(model, images, batch_size=32, device=CUDA, preprocess_options=options, amp=False)
    np.testing.assert_allclose(fp32, expected, rtol=0, atol=0.01 * float(np.abs(expected).max()))


def test_embed_checkpoint_on_cuda_agrees_with_the_cpu(tmp_path, monkeypatch):
    store = make_store(tmp_path / "store", {"simclr": 1})
    config = Config(data=DataConfig(name="digits", n_eval=150, n_probe_train=100, n_probe_test=60, n_views=20))
    (ref,) = discover(store)
    on_gpu, on_cpu = Workspace.at(tmp_path / "gpu"), Workspace.at(tmp_path / "cpu")
    embed_checkpoint(ref, config, on_gpu)  # the default device: CUDA
    monkeypatch.setattr(inference, "default_device", lambda: CPU)
    embed_checkpoint(ref, config, on_cpu)
    for split in ("eval", "probe_train", "probe_test", "views_a", "views_b"):
        _assert_close_in_direction(on_gpu.embeddings.read(ref.id, split), on_cpu.embeddings.read(ref.id, split))
    np.testing.assert_array_equal(on_gpu.embeddings.read(ref.id, "eval_labels"), on_cpu.embeddings.read(ref.id, "eval_labels"))


def test_linear_probe_on_cuda_agrees_with_the_cpu_and_scikit_learn():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X + np.random.default_rng(0).normal(scale=4.0, size=X.shape)  # overlapping classes: accuracy well below 1
    split = (X[:1000], y[:1000], X[1000:], y[1000:])
    on_gpu = linear_probe(*split, device="cuda")
    on_cpu = linear_probe(*split, device="cpu")
    reference = linear_probe(*split, solver="sklearn")
    assert 0.5 < reference < 0.97
    assert abs(on_gpu - on_cpu) <= 0.005 and abs(on_gpu - reference) <= 0.005
    assert linear_probe(*split) == on_gpu  # CUDA is the default where there is one


def test_logistic_fit_on_cuda_converges_as_far_as_on_the_cpu():
    rng = np.random.default_rng(1)
    centers = rng.normal(scale=2.0, size=(6, 40))
    codes = rng.integers(0, 6, 3000)
    X = torch.as_tensor(centers[codes] + 3.0 * rng.normal(size=(3000, 40)), dtype=torch.float32)
    X = (X - X.mean(0)) / X.std(0)
    fits = {d: logistic.fit_logistic(X.to(d), torch.as_tensor(codes, device=d), 6) for d in (CPU, CUDA)}

    def objective_and_gradient(fit) -> tuple[float, float]:
        """The per-sample objective (mean cross-entropy + ||W||^2 / (2 n), C = 1) and the largest entry of its gradient, in float64 on the CPU."""
        W = fit.weights.double().cpu().requires_grad_()
        b = fit.intercepts.double().cpu().requires_grad_()
        value = torch.nn.functional.cross_entropy(X.double() @ W + b, torch.as_tensor(codes)) + 0.5 * (W ** 2).sum() / len(X)
        value.backward()
        return float(value.detach()), float(max(W.grad.abs().max(), b.grad.abs().max()))

    assert fits[CUDA].weights.device.type == "cuda"
    (on_gpu, gpu_gradient), (on_cpu, cpu_gradient) = objective_and_gradient(fits[CUDA]), objective_and_gradient(fits[CPU])
    assert on_gpu <= on_cpu * (1 + 1e-5)
    assert gpu_gradient <= max(1.1e-4, 2 * cpu_gradient)  # converged as far as on the CPU
