"""The whole path at the size a ViT expects, from a DINO-format checkpoint of a tiny timm ViT.

MNIST resized to 224 px, three channels, ImageNet normalisation, a tiny timm ViT (16 px patches)
from a DINO-format checkpoint, embedding, every metric group and the probes; and the pooled token in
the provenance and the embedding key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ssl_eval.config import Config, DataConfig, FamilyConfig
from ssl_eval.metrics import GROUPS
from ssl_eval.pipeline.embedding import embed_checkpoint
from ssl_eval.pipeline.eval_data import cached_splits
from ssl_eval.pipeline.evaluation import compute_parts
from ssl_eval.pipeline.inference import preprocess_options
from ssl_eval.pipeline.outcomes import Status
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.preprocess import preprocess, to_float_tensor
from tests.helpers import DINOHead, MultiCropWrapper, dino_args

VIT_224 = {"img_size": 224, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}


def _dino_checkpoint(path) -> Any:  # the teacher's timm VisionTransformer (timm: typed Any)
    import timm

    teacher = MultiCropWrapper(timm.create_model("vit_tiny_patch16_224", pretrained=False, **VIT_224), DINOHead(32))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in teacher.state_dict().items():
            if name.endswith("weight") and tensor.ndim > 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / tensor[0].numel() ** 0.5)
    path.parent.mkdir(parents=True)
    torch.save({"student": teacher.state_dict(), "teacher": teacher.state_dict(), "epoch": 2, "args": dino_args()}, path)
    return teacher.backbone.eval()


@pytest.mark.slow
def test_mnist_at_224_px_with_a_tiny_vit_end_to_end(tmp_path):
    vit = _dino_checkpoint(tmp_path / "store" / "dino" / "run-0" / "checkpoint0002.pth")
    data = DataConfig(
        name="mnist", n_eval=60, n_probe_train=80, n_probe_test=40, n_views=16, batch_size=32,
        image_size=224, channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    )
    family = FamilyConfig(arch="timm:vit_tiny_patch16_224", arch_args=VIT_224)
    config = Config(data=data, families={"dino": family})
    ws = Workspace.at(tmp_path / "work")
    (ref,) = discover(tmp_path / "store", settle_seconds=0)

    assert embed_checkpoint(ref, config, ws).status is Status.EMBEDDED
    prov = ws.embeddings.provenance(ref.id)
    assert (prov["pool"], prov["format"], prov["dim"], prov["epoch"]) == ("cls", "dino-teacher", 32, 2)
    features = ws.embeddings.read(ref.id, "eval")
    images = cached_splits(data).eval.images
    inputs = preprocess(to_float_tensor(images[:8]), **preprocess_options(data))
    assert images.shape[1:3] == (28, 28) and inputs.shape == (8, 3, 224, 224)  # resized on the way in
    with torch.no_grad():
        expected = vit.forward_features(inputs)[:, 0]
    np.testing.assert_allclose(features[:8], expected.numpy(), atol=1e-4)

    parts = compute_parts(ws, ref.id, [*(f"metrics-{g}" for g in GROUPS), "probe"], config)
    assert 0.0 <= parts["probe"].values["linear_acc"] <= 1.0 and 0.0 <= parts["probe"].values["knn_acc"] <= 1.0
    geometry = ws.records.get(ref.id, "metrics-geometry")["values"]
    assert np.isfinite(geometry["alignment"]) and np.isfinite(geometry["uniformity"])

    # the pooled token is part of the embedding key: changing it re-embeds, and says so
    mean = Config(data=data, families={"dino": family.model_copy(update={"pool": "mean"})})
    assert mean.embedding_key("dino") != config.embedding_key("dino")
    assert embed_checkpoint(ref, mean, ws).status is Status.EMBEDDED
    assert ws.embeddings.provenance(ref.id)["pool"] == "mean"
    assert not np.allclose(ws.embeddings.read(ref.id, "eval"), features)


def test_families_without_vit_settings_keep_their_embedding_key():
    """Pool and arch_args at their defaults leave the embedding key as it was before they existed.

    The key holds the family's other fields only (an unset state_dict_key as its earlier placeholder
    default), so existing work dirs are not re-embedded.
    """
    from ssl_eval.config.schema import _digest

    family = FamilyConfig(arch="resnet18", prefix="")
    config = Config(families={"a": family})
    earlier = {**family.model_dump(exclude={"arch_args", "pool"}), "state_dict_key": "state_dict"}
    before = _digest({"d": config.data.model_dump(exclude={"batch_size", "confined_to"}), "f": earlier})  # confined_to: newer, never hashed
    assert config.embedding_key("a") == before
    for changed in ({"pool": "cls"}, {"arch_args": {"width": 2}}):
        assert Config(families={"a": family.model_copy(update=changed)}).embedding_key("a") != before
