"""Batched embedding, fixed augmented views, and view-based metrics reaching the records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_eval.config import Config, DataConfig, FamilyConfig
from ssl_eval.pipeline.embedding import embed_checkpoint
from ssl_eval.pipeline.eval_data import cached_views
from ssl_eval.pipeline.evaluation import compute_metric_group
from ssl_eval.pipeline.inference import embed_images
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.augment import fixed_views
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.models import DemoCNN
from ssl_eval.sources.preprocess import to_float_tensor
from tests.helpers import make_store


def test_embed_images_matches_the_bare_model_and_reports_progress():
    torch.manual_seed(0)
    model = DemoCNN(in_channels=1).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(37, 8, 8), dtype=np.uint8)
    seen: list[tuple[int, int]] = []
    out = embed_images(model, images, batch_size=16, device=torch.device("cpu"), progress=lambda d, n: seen.append((d, n)))
    with torch.inference_mode():
        expected = model(to_float_tensor(images)).numpy()
    assert out.dtype == np.float32 and out.shape == (37, 128)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert seen == [(16, 37), (32, 37), (37, 37)]
    with pytest.raises(ValueError, match="no images to embed"):
        embed_images(model, images[:0], device=torch.device("cpu"))


def test_embed_images_applies_configured_preprocessing():
    model = DemoCNN(in_channels=3).eval()
    images = np.random.default_rng(1).integers(0, 256, size=(4, 8, 8), dtype=np.uint8)
    options = {"image_size": 16, "mean": (0.5,), "std": (0.5,), "channels": 3}
    out = embed_images(model, images, device=torch.device("cpu"), preprocess_options=options)
    x = torch.nn.functional.interpolate(to_float_tensor(images).expand(-1, 3, -1, -1), size=(16, 16), mode="bilinear", antialias=True)
    with torch.inference_mode():
        np.testing.assert_allclose(out, model((x - 0.5) / 0.5).numpy(), rtol=1e-4, atol=1e-5)


def test_fixed_views_depend_only_on_the_seed():
    images = np.random.default_rng(2).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    a1, b1 = fixed_views(images, 6, random_state=5)
    a2, b2 = fixed_views(images, 6, random_state=5)
    assert a1.shape == (6, 8, 8, 3) and a1.dtype == np.uint8
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(a1, b1)
    assert not np.array_equal(a1, fixed_views(images, 6, random_state=6)[0])


def test_views_are_embedded_and_view_metrics_are_recorded(tmp_path):
    store = make_store(tmp_path / "store", {"simclr": 2})
    data = DataConfig(name="digits", n_eval=120, n_probe_train=100, n_probe_test=60, n_views=40)
    config = Config(data=data)
    ws = Workspace.at(tmp_path / "work")
    refs = discover(store)
    progress: list[int] = []
    for ref in refs:
        result = embed_checkpoint(ref, config, ws, progress=lambda d, n: progress.append(n))
        assert result.status is Status.EMBEDDED
    assert set(progress) == {120 + 100 + 60 + 2 * 40}
    ids = [ref.id for ref in refs]
    for checkpoint_id in ids:
        views_a = ws.embeddings.read(checkpoint_id, "views_a")
        assert views_a.shape == (40, 128)
        prov = ws.embeddings.provenance(checkpoint_id)
        assert (prov["n_views"], prov["layer"], prov["prefix"], prov["prefix_source"]) == (40, "backbone", "backbone.", "detected")
    assert cached_views(data) is cached_views(data)  # the same view images for every checkpoint

    compute_metric_group(ws, ids[0], "geometry", config)
    values = ws.records.get(ids[0], "metrics-geometry")["values"]
    assert {"alignment", "lidar", "uniformity"} <= set(values)
    assert all(np.isfinite(values[k]) for k in ("alignment", "lidar"))

    no_views = Config(data=data.model_copy(update={"n_views": 0}))
    embed_checkpoint(refs[0], no_views, ws)
    assert ws.embeddings.read_optional(ids[0], "views_a") is None
    compute_metric_group(ws, ids[0], "geometry", no_views)
    assert "alignment" not in ws.records.get(ids[0], "metrics-geometry")["values"]


def test_projector_layer_through_embed_checkpoint(tmp_path):
    torch.manual_seed(0)
    backbone = DemoCNN(in_channels=1).eval()
    head = torch.nn.Sequential(torch.nn.Linear(128, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    state = {**{f"backbone.{k}": v for k, v in backbone.state_dict().items()},
             **{f"projection_head.layers.{k}": v for k, v in head.state_dict().items()}}
    path = tmp_path / "store" / "simclr" / "run-0" / "epoch=01.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "arch": "democnn", "state_dict": state}, path)
    config = Config(data=DataConfig(name="digits", n_eval=20, n_probe_train=20, n_probe_test=20, n_views=0),
                    families={"simclr": FamilyConfig(layer="projector")})
    ws = Workspace.at(tmp_path / "work")
    (ref,) = discover(tmp_path / "store", settle_seconds=0)
    embed_checkpoint(ref, config, ws)
    assert ws.embeddings.read(ref.id, "eval").shape == (20, 8)
    assert ws.embeddings.provenance(ref.id)["layer"] == "projector"
