"""Checkpoint discovery and safe loading (the result stores: test_result_stores.py)."""

from __future__ import annotations

import os
import time

import pytest
import torch

from ssl_eval.config import FamilyConfig
from ssl_eval.sources.checkpoint_names import epoch_from_name
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.loading import CheckpointError, load_checkpoint
from ssl_eval.sources.model_building import build_model
from tests.helpers import write_checkpoint


@pytest.mark.parametrize(
    "name, epoch",
    [("epoch=03.ckpt", 3), ("checkpoint_0199.pth.tar", 199), ("ep50.pt", 50), ("epoch_7.pth", 7), ("last.ckpt", None)],
)
def test_epoch_from_name(name, epoch):
    assert epoch_from_name(name) == epoch


def test_discover_layout_order_and_fingerprint(tmp_path):
    for epoch in (10, 2, 0):
        write_checkpoint(tmp_path / "simclr" / "run-0" / f"epoch={epoch:02d}.ckpt", epoch=epoch, seed=epoch)
    write_checkpoint(tmp_path / "byol" / "ep3.pt", epoch=3, seed=9)
    (tmp_path / "simclr" / "run-0" / "notes.txt").write_text("not a checkpoint")
    refs = discover(tmp_path)
    assert [(r.family, r.run, r.epoch) for r in refs] == [
        ("byol", "default", 3), ("simclr", "run-0", 0), ("simclr", "run-0", 2), ("simclr", "run-0", 10),
    ]
    assert refs[1].id == "simclr/run-0/epoch=00"
    assert len({r.fingerprint for r in refs}) == 4


def test_discover_skips_files_still_being_written(tmp_path):
    path = write_checkpoint(tmp_path / "simclr" / "run-0" / "epoch=00.ckpt", epoch=0, seed=0)
    os.utime(path, (time.time(), time.time()))  # just modified
    (tmp_path / "simclr" / "run-0" / "epoch=01.ckpt.tmp").write_bytes(b"partial")
    assert discover(tmp_path, settle_seconds=30) == []
    assert len(discover(tmp_path, settle_seconds=0)) == 1


def test_rewritten_file_gets_new_fingerprint(tmp_path):
    path = tmp_path / "f" / "r" / "epoch=00.ckpt"
    write_checkpoint(path, epoch=0, seed=0)
    before = discover(tmp_path)[0].fingerprint
    write_checkpoint(path, epoch=0, seed=1)
    assert discover(tmp_path)[0].fingerprint != before


def test_discover_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(tmp_path / "nope")
    assert discover(tmp_path) == []  # an empty store is fine: nothing to do


def test_load_strips_prefix_and_fits_architecture(tmp_path):
    path = write_checkpoint(tmp_path / "c.ckpt", epoch=1, seed=0)
    loaded = load_checkpoint(path, FamilyConfig())
    assert loaded.prefix == "backbone." and loaded.meta["epoch"] == 1
    model = build_model(loaded, FamilyConfig(), in_channels=1, path=path)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 128)


def test_load_finds_reference_repo_prefix_when_configured_one_is_absent(tmp_path):
    path = write_checkpoint(tmp_path / "checkpoint_0001.pth.tar", epoch=1, seed=0, prefix="module.encoder_q.")
    loaded = load_checkpoint(path, FamilyConfig())
    assert loaded.prefix == "module.encoder_q."


def test_code_running_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(path, FamilyConfig())
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a zip"])
def test_empty_or_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path, FamilyConfig())


def test_wrong_architecture_lists_keys(tmp_path):
    path = write_checkpoint(tmp_path / "c.ckpt", epoch=0, seed=0)
    loaded = load_checkpoint(path, FamilyConfig(arch="resnet18"))
    with pytest.raises(CheckpointError, match="missing keys|do not fit"):
        build_model(loaded, FamilyConfig(arch="resnet18"), in_channels=1, path=path)


def test_nan_weights_are_refused(tmp_path):
    path = tmp_path / "nan.ckpt"
    write_checkpoint(path, epoch=0, seed=0)
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["backbone.features.0.weight"].fill_(float("nan"))
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="NaN"):
        build_model(load_checkpoint(path, FamilyConfig()), FamilyConfig(), in_channels=1, path=path)


def test_discover_on_a_url_store_fingerprints_by_etag_and_reads_back(tmp_path):
    import fsspec

    from ssl_eval.sources.checkpoints import open_checkpoint

    path = write_checkpoint(tmp_path / "c.ckpt", epoch=2, seed=0)
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/url-ckpts/simclr/run-0/epoch=02.ckpt", path.read_bytes())
    fs.pipe_file("/url-ckpts/simclr/run-0/epoch=03.ckpt.tmp", b"partial")
    (ref,) = discover("memory://url-ckpts", settle_seconds=0)
    assert (ref.id, ref.epoch, ref.size) == ("simclr/run-0/epoch=02", 2, path.stat().st_size)
    assert discover("memory://url-ckpts", settle_seconds=3600) == []  # just written: not settled
    assert torch.load(open_checkpoint(ref.path), weights_only=True)["epoch"] == 2
    assert load_checkpoint(ref.path, FamilyConfig()).meta["epoch"] == 2  # read from the URL itself
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover("memory://no-such-store")


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    import zipfile

    good = write_checkpoint(tmp_path / "good.ckpt", epoch=0, seed=0)
    bomb = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        # 256 MB of zeros deflate to a few hundred KB
        dst.writestr("good/data/bomb", b"\0" * (256 << 20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < (4 << 20)
    with pytest.raises(CheckpointError, match="zip bomb"):
        load_checkpoint(bomb, FamilyConfig())


def test_legacy_format_is_refused(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": {"backbone.w": torch.zeros(2)}}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy format"):
        load_checkpoint(path, FamilyConfig())
