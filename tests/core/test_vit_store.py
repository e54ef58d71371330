"""The ViT issue's done-when, on one store of DINO-, MAE- and MoCo v3-format checkpoints of a timm ViT.

Each is written as its trainer writes it; all are discovered and evaluated (embedding, every metric
group, probes) with no configuration beyond the architecture name (and the tiny model's size); a DINO file
whose Namespace carries a hostile class fails alone and runs nothing.
"""

from __future__ import annotations

import collections

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
from ssl_eval.sources.loading import CheckpointError
from ssl_eval.sources.preprocess import preprocess, to_float_tensor
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
    tiny_vit,
)


def _write_store(store, marker) -> dict[str, torch.nn.Module]:
    """The three trainers' files (and a hostile DINO file); returns each run's encoder."""
    teacher = MultiCropWrapper(tiny_vit(2), DINOHead(24))
    (store / "dino" / "vit-t").mkdir(parents=True)
    dino = {"student": DDP(MultiCropWrapper(tiny_vit(1), DINOHead(24))).state_dict(), "teacher": teacher.state_dict(),
            "epoch": 5, "args": dino_args(), "dino_loss": collections.OrderedDict(center=torch.zeros(1, 64))}
    torch.save(dino, store / "dino" / "vit-t" / "checkpoint0004.pth")
    (store / "dino" / "hostile").mkdir()
    torch.save({**dino, "args": dino_args(hook=Evil(marker))}, store / "dino" / "hostile" / "checkpoint0004.pth")

    encoder = tiny_vit(3)
    (store / "mae" / "vit-t").mkdir(parents=True)
    torch.save({"model": MaskedAutoencoderViT(encoder).state_dict(), "epoch": 7,
                "scaler": torch.amp.GradScaler("cpu").state_dict(), "args": dino_args(mask_ratio=0.75)},
               store / "mae" / "vit-t" / "checkpoint-7.pth")

    base = tiny_vit(4)
    (store / "mocov3" / "vit-t").mkdir(parents=True)
    torch.save({"epoch": 10, "arch": "vit_small", "state_dict": DDP(MoCoViT(base, tiny_vit(5))).state_dict()},
               store / "mocov3" / "vit-t" / "checkpoint_0009.pth.tar")
    return {"dino/vit-t": teacher.backbone, "mae/vit-t": encoder, "mocov3/vit-t": base}


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")  # DINO's head uses it
def test_a_store_of_vit_formats_evaluates_with_only_the_architecture_name(tmp_path):
    marker = tmp_path / "pwned"
    encoders = _write_store(tmp_path / "store", marker)
    data = DataConfig(name="digits", n_eval=60, n_probe_train=80, n_probe_test=40, n_views=0, image_size=16, channels=3)
    only_the_name = FamilyConfig(arch=VIT_ARCH, arch_args=VIT_ARGS)  # no format, key, prefix or pool
    config = Config(data=data, families={name: only_the_name for name in ("dino", "mae", "mocov3")})
    ws = Workspace.at(tmp_path / "work")
    refs = {f"{ref.family}/{ref.run}": ref for ref in discover(tmp_path / "store", settle_seconds=0)}
    assert sorted(refs) == ["dino/hostile", "dino/vit-t", "mae/vit-t", "mocov3/vit-t"]

    with pytest.raises(CheckpointError, match="refused by torch.load.*'posix.system'"):
        embed_checkpoint(refs.pop("dino/hostile"), config, ws)
    assert not marker.exists()

    inputs = preprocess(to_float_tensor(cached_splits(data).eval.images[:8]), **preprocess_options(data))
    formats = {}
    for run, ref in refs.items():
        assert embed_checkpoint(ref, config, ws).status is Status.EMBEDDED
        prov = ws.embeddings.provenance(ref.id)
        formats[run] = (prov["format"], prov["pool"], prov["epoch"])
        expected = cls_features(encoders[run], inputs).numpy()
        np.testing.assert_allclose(ws.embeddings.read(ref.id, "eval")[:8], expected, atol=1e-4)
        parts = compute_parts(ws, ref.id, [*(f"metrics-{g}" for g in GROUPS), "probe"], config)
        assert 0.0 <= parts["probe"].values["linear_acc"] <= 1.0
        assert np.isfinite(ws.records.get(ref.id, "metrics-spectral")["values"]["rankme"])
    assert formats["dino/vit-t"] == ("dino-teacher", "cls", 5)
    assert formats["mae/vit-t"] == ("mae-encoder", "cls", 7)
    assert formats["mocov3/vit-t"][1:] == ("cls", 9)  # the file name (0-based) wins over "epoch" (epoch + 1)
