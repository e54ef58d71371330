"""The demo trainers write a loadable, deterministic checkpoint store (tiny run on digits)."""

from __future__ import annotations

import math

import pytest
import torch

from ssl_eval.demo import make_demo_store
from ssl_eval.sources.models import build_backbone

METHODS = ("simclr", "mocov2", "simsiam")
KEYS = {"epoch", "global_step", "method", "arch", "dataset", "lr", "train_loss", "state_dict"}
HEAD_PREFIX = {"simclr": "projection_head.", "mocov2": "projection_head.", "simsiam": "prediction_head."}
TINY = dict(dataset="digits", epochs=1, n_train=300, batch_size=64, methods=METHODS)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    messages: list[str] = []
    paths = make_demo_store(out, seed=3, progress=messages.append, **TINY)
    return out, paths, messages


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _backbone_state(checkpoint):
    prefix = "backbone."
    return {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}


@pytest.mark.slow
def test_files_are_named_per_epoch_including_epoch_zero(tiny_store):
    out, paths, messages = tiny_store
    expected = [out / m / "run-0" / f"epoch={e:02d}.ckpt" for m in METHODS for e in (0, 1)]
    assert sorted(paths) == sorted(expected)
    assert all(p.is_file() for p in expected)
    # no temporary files left behind by the atomic writes
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(expected)
    assert messages and all(any(m in msg for m in METHODS) for msg in messages)


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_contents_load_safely_into_the_backbone(tiny_store, method):
    out, _, _ = tiny_store
    first = _load(out / method / "run-0" / "epoch=00.ckpt")
    last = _load(out / method / "run-0" / "epoch=01.ckpt")
    for ckpt, epoch in ((first, 0), (last, 1)):
        assert set(ckpt) == KEYS
        assert ckpt["epoch"] == epoch
        assert (ckpt["method"], ckpt["arch"], ckpt["dataset"]) == (method, "democnn", "digits")
        assert math.isnan(ckpt["train_loss"]) if epoch == 0 else math.isfinite(ckpt["train_loss"])
        assert any(k.startswith(HEAD_PREFIX[method]) for k in ckpt["state_dict"])
        assert not any(k.startswith("criterion.") for k in ckpt["state_dict"])
        backbone = build_backbone("democnn", in_channels=1)
        backbone.load_state_dict(_backbone_state(ckpt), strict=True)
    assert first["global_step"] == 0
    assert last["global_step"] == 300 // 64  # full batches only
    changed = [k for k, v in _backbone_state(first).items() if not torch.equal(v, _backbone_state(last)[k])]
    assert "features.0.weight" in changed


def test_mocov2_keeps_a_momentum_encoder(tiny_store):
    out, _, _ = tiny_store
    state = _load(out / "mocov2" / "run-0" / "epoch=01.ckpt")["state_dict"]
    assert any(k.startswith("backbone_momentum.") for k in state)
    assert any(k.startswith("projection_head_momentum.") for k in state)


def test_epoch_zero_is_the_same_encoder_for_every_method(tiny_store):
    out, _, _ = tiny_store
    states = [_backbone_state(_load(out / m / "run-0" / "epoch=00.ckpt")) for m in METHODS]
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in states[0])


def test_same_seed_gives_identical_weights_and_leaves_global_rng_alone(tiny_store, tmp_path):
    out, _, _ = tiny_store
    before = torch.random.get_rng_state()
    again = make_demo_store(tmp_path, seed=3, **{**TINY, "methods": ("simsiam",)})
    assert torch.equal(torch.random.get_rng_state(), before)
    a = _load(out / "simsiam" / "run-0" / "epoch=01.ckpt")["state_dict"]
    b = _load(again[-1])["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = make_demo_store(tmp_path / "other", seed=4, **{**TINY, "methods": ("simsiam",), "epochs": 0})
    c = _load(other[0])["state_dict"]
    d = _load(out / "simsiam" / "run-0" / "epoch=00.ckpt")["state_dict"]
    assert not torch.equal(c["backbone.features.0.weight"], d["backbone.features.0.weight"])


def test_runs_write_separate_folders(tmp_path):
    paths = make_demo_store(tmp_path, seed=0, runs=2, **{**TINY, "methods": ("simclr",), "epochs": 0})
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "simclr/run-0/epoch=00.ckpt",
        "simclr/run-1/epoch=00.ckpt",
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"methods": ("swav",)}, ValueError, "subset of"),
        ({"lr_scales": (1.0, 0.0)}, ValueError, "lr_scales must be positive"),
        ({"lr_schedule": "linear"}, ValueError, "lr_schedule must be one of"),
        ({"methods": "simclr"}, TypeError, "sequence of names"),
        ({"epochs": -1}, ValueError, "epochs must be an integer >= 0"),
        ({"batch_size": 1}, ValueError, "batch_size must be"),
        ({"runs": 0}, ValueError, "runs must be"),
    ],
)
def test_bad_arguments_say_what_was_expected(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_demo_store(tmp_path, dataset="digits", **kwargs)


@pytest.mark.slow
def test_learning_rate_scales_train_their_own_runs_from_one_initialisation(tmp_path):
    """Each scale is a run of its own (lr<scale>-run-<r>), from the same epoch-0 encoder, at the scaled rate.

    A constant schedule keeps the rate (recorded in the checkpoint).
    """
    paths = make_demo_store(tmp_path, seed=0, **{**TINY, "methods": ("simclr",)}, lr_scales=(0.5, 2), lr_schedule="constant")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "simclr/lr0.5-run-0/epoch=00.ckpt", "simclr/lr0.5-run-0/epoch=01.ckpt",
        "simclr/lr2-run-0/epoch=00.ckpt", "simclr/lr2-run-0/epoch=01.ckpt",
    ]
    low, high = (_load(tmp_path / "simclr" / run / "epoch=00.ckpt") for run in ("lr0.5-run-0", "lr2-run-0"))
    assert high["lr"] == pytest.approx(4 * low["lr"])
    assert all(torch.equal(low["state_dict"][k], high["state_dict"][k]) for k in low["state_dict"])
    assert not torch.equal(*(_load(tmp_path / "simclr" / run / "epoch=01.ckpt")["state_dict"]["backbone.features.0.weight"]
                             for run in ("lr0.5-run-0", "lr2-run-0")))


@pytest.mark.slow
def test_dino_trains_a_teacher_and_loads_safely(tmp_path):
    (first, last) = make_demo_store(tmp_path, seed=0, **{**TINY, "methods": ("dino",)})
    state = _load(last)["state_dict"]
    assert any(k.startswith("projection_head_momentum.last_layer.") for k in state)
    assert not any(k.startswith("criterion.") for k in state)  # the centre is training state
    teacher = {k: v for k, v in state.items() if k.startswith("backbone_momentum.")}
    assert teacher and not all(torch.equal(v, _load(first)["state_dict"][k]) for k, v in teacher.items())
    build_backbone("democnn", in_channels=1).load_state_dict(_backbone_state(_load(last)), strict=True)
