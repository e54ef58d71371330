"""Reliability, third pass: the store may not choose where work runs, what is read, or how much memory and time it takes.

Each attack runs in a child process capped at 2 GiB above its baseline
(tests/memory_cap.py) and must be refused, or recorded as one checkpoint's failure, within
seconds of CPU time (a bound on the work done, which load beside the tests does not stretch).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import socket
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import timm  # imported before the child's memory cap, as the product imports it
import torch
import torchvision  # noqa: F401 - the same
from PIL import Image
from typer.testing import CliRunner

from ssl_eval.cli import EXIT_USAGE, app
from ssl_eval.config import FamilyConfig, load_config
from ssl_eval.pipeline.embedding import embed_or_record_failure
from ssl_eval.pipeline.eval_data import cached_splits
from ssl_eval.pipeline.preflight import check_architectures
from ssl_eval.results.workspace import Workspace
from ssl_eval.sources.checkpoints import discover
from ssl_eval.sources.datasets import load_split
from ssl_eval.sources.loading import CheckpointError, load_checkpoint
from ssl_eval.sources.model_building import build_model
from tests.helpers import make_store
from tests.memory_cap import run_capped

# CPU seconds an attack may take once its child has imported its modules: work done, not wall
# time, so the bound holds beside any other work. Each attack takes about a second or less on
# this machine's cores; the store file's giant models take about 5 (timm builds a 2,000-block ViT
# on the meta device: 20 while its weight initialisation still ran there, see on_meta_device).
ATTACK_CPU_SECONDS = 10.0
GIANT_MODEL_CPU_SECONDS = 15.0

DIGITS = '[data]\nname = "digits"\nn_eval = 100\nn_probe_train = 200\nn_probe_test = 100\n'


def _refusal(call) -> str:
    try:
        call()
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        return f"refused: {exc}"
    return "accepted"


# -- checkpoints: sizes come from storage bytes, not shapes -------------------------------

def expanded_pad(tmp: str) -> str:
    path = Path(tmp) / "a.pt"
    torch.save({"arch": "timm:vit_gigantic_patch14_clip_224", "state_dict": {"pad": torch.zeros(1).expand(4_000_000_000)}, "epoch": 1}, path)
    return f"{path.stat().st_size} bytes; " + _refusal(lambda: load_checkpoint(path, FamilyConfig()))


def expanded_projector(tmp: str) -> str:
    path, family = Path(tmp) / "a.pt", FamilyConfig(arch="democnn", layer="projector")
    state = {f"backbone.{k}": v for k, v in torch.nn.Module.state_dict(_democnn()).items()}
    state["projection_head.0.weight"] = torch.zeros(1).expand(30000, 30000)
    torch.save({"state_dict": state}, path)
    return _refusal(lambda: load_checkpoint(path, family))


def shared_storage(tmp: str) -> str:
    """No stride trick: every weight of a gigantic ViT is a view of one 16 MB storage."""
    with torch.device("meta"):
        wanted = timm.create_model("vit_gigantic_patch14_clip_224", num_classes=0).state_dict()
    storage = torch.zeros(max(t.numel() for t in wanted.values()))
    state = {k: storage[: t.numel()].view(t.shape) for k, t in wanted.items()}
    path = Path(tmp) / "a.pt"
    torch.save({"arch": "timm:vit_gigantic_patch14_clip_224", "state_dict": state}, path)
    loaded = load_checkpoint(path, FamilyConfig())
    return _refusal(lambda: build_model(loaded, FamilyConfig(), in_channels=3, path=str(path)))


def view_past_its_storage(tmp: str) -> str:
    """A pickle edited so that a 4-element storage is read as 100 million elements."""
    path = Path(tmp) / "a.pt"
    torch.save({"w": torch.arange(4, dtype=torch.float32)}, path)
    with zipfile.ZipFile(path) as archive:
        items = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info, data in items:
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"K\x00K\x04\x85", b"K\x00J" + struct.pack("<i", 100_000_000) + b"\x85")
            archive.writestr(info, data)
    return _refusal(lambda: load_checkpoint(path, FamilyConfig(prefix="")))


def stride_trick_failure_is_permanent(tmp: str) -> str:
    store = make_store(Path(tmp) / "store", {"simclr": 1})
    ref = discover(store)[0]
    torch.save({"arch": "democnn", "state_dict": {"pad": torch.zeros(1).expand(4_000_000_000)}}, ref.path)
    ref, ws = discover(store, settle_seconds=0)[0], Workspace.at(Path(tmp) / "w")
    overrides: dict[str, Any] = {"data.name": "digits", "data.n_eval": 100}
    outcome = embed_or_record_failure(ref, load_config(**overrides), ws)
    failure = ws.records.get(ref.id, "failure")
    return f"{outcome.status.name} permanent={failure['permanent']}: {failure['error']}"


def _democnn() -> torch.nn.Module:
    from ssl_eval.sources.models import DemoCNN

    return DemoCNN(in_channels=1)


@pytest.mark.slow
@pytest.mark.parametrize("attack, expected", [
    ("expanded_pad", "refused: .*tensor 'pad' is an expanded \\(stride-0\\) tensor of shape \\(4000000000,\\).*stride trick"),
    ("expanded_projector", "refused: .*'projection_head.0.weight' is an expanded .* tensor of shape \\(30000, 30000\\)"),
    ("shared_storage", "refused: .*'timm:vit_gigantic_patch14_clip_224' has 1,8.* parameters but the file holds .* bytes of weights"),
    ("view_past_its_storage", "refused: .*not a readable torch checkpoint .*resize storage"),
    ("stride_trick_failure_is_permanent", "FAILED permanent=True: .*stride trick"),
])
def test_checkpoint_sizes_come_from_storage_bytes(attack, expected, tmp_path):
    done, cpu = run_capped(f"{__name__}:{attack}", str(tmp_path), cpu_seconds=ATTACK_CPU_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(expected, done.stdout), done.stdout
    assert cpu < ATTACK_CPU_SECONDS, done.stderr[-3000:]


# -- the configuration: what a store's own file may set, and its size -------------------

def nested_toml(tmp: str) -> str:
    store = Path(tmp)
    (store / "ssl_eval.toml").write_text("a = " + "[" * 500 + "]" * 500 + "\n")
    first = _refusal(lambda: load_config(store=store))
    (store / "ssl_eval.toml").write_text("a = " + "{b = " * 500 + "1" + "}" * 500 + "\n")
    return first + " | " + _refusal(lambda: load_config(store=store))


def many_unknown_keys(tmp: str) -> str:
    store = Path(tmp)
    (store / "ssl_eval.toml").write_text("".join(f"k{i} = 1\n" for i in range(100_000)))
    message = _refusal(lambda: load_config(store=store))
    return f"{len(message)} characters: {message}"


def giant_model_in_store_file(tmp: str) -> str:
    """A family with no checkpoints naming a gigantic model, then a ViT made deep and wide by arch_args."""
    out: list[str] = []
    for family in ('arch = "timm:vit_gigantic_patch14_clip_224"', 'arch = "timm:vit_small_patch16_224"\narch_args = {depth = 2000}',
                   'arch = "timm:vit_small_patch16_224"\narch_args = {img_size = 4096}'):
        store = Path(tmp) / str(len(out))
        store.mkdir()
        (store / "ssl_eval.toml").write_text(DIGITS + f"channels = 3\nimage_size = 224\n[families.x]\n{family}\n")
        config = load_config(store=store)
        out.append(_refusal(lambda config=config: check_architectures(config, cached_splits(config.data))))
    return " | ".join(out)


def huge_sizes_in_store_file(tmp: str) -> str:
    out: list[str] = []
    for data in ("image_size = 8192", "batch_size = 65536\nimage_size = 1024", "image_size = 100000", "n_views = 100000000"):
        store = Path(tmp) / str(len(out))
        store.mkdir()
        (store / "ssl_eval.toml").write_text(DIGITS + data + '\n[families.x]\narch = "democnn"\n')
        out.append(_refusal(lambda store=store: check_architectures(config := load_config(store=store), cached_splits(config.data))))
    return " | ".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("attack, expected", [
    ("nested_toml", r"refused: .*ssl_eval.toml is nested too deeply .* \| refused: .*nested too deeply"),
    ("many_unknown_keys", r"^[0-9]{3,4} characters: refused: invalid configuration in .*ssl_eval.toml:.*\n.*and 99,990 more$"),
    ("giant_model_in_store_file", r"refused: families.x.arch 'timm:vit_gigantic_patch14_clip_224' .* needs at least [0-9.]+ GiB "
                                  r"\(.*model weights.* more than the memory budget of 2 GiB.*--memory-gb.* \| "
                                  r"refused: .*needs at least .* \| refused: .*needs about"),
    ("huge_sizes_in_store_file", r"refused: .*a batch's input.*--memory-gb .* \| refused: .*needs about .* \| "
                                 r"refused: .*image_size: Input should be less than or equal to 8192 .* \| "
                                 r"refused: .*n_views: Input should be less than or equal to 1048576"),
])
def test_store_file_sizes_and_shapes_are_bounded(attack, expected, tmp_path):
    bound = GIANT_MODEL_CPU_SECONDS if attack == "giant_model_in_store_file" else ATTACK_CPU_SECONDS
    done, cpu = run_capped(f"{__name__}:{attack}", str(tmp_path), cpu_seconds=bound)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(expected, done.stdout, flags=re.S | re.M), done.stdout[-3000:]
    assert cpu < bound, done.stderr[-3000:]


def test_store_file_cannot_choose_the_scheduler_and_nothing_connects(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    store = make_store(tmp_path / "store", {"simclr": 1})
    for section in (f'[dask]\naddress = "tcp://127.0.0.1:{listener.getsockname()[1]}"\n', "[limits]\nmemory_gb = 1000\n",
                    '[metrics]\nk = "tcp://127.0.0.1:1"\n'):
        (store / "ssl_eval.toml").write_text(DIGITS + section)
        result = CliRunner().invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w")])
        assert result.exit_code == EXIT_USAGE, result.output
        assert "refused in a store's own ssl_eval.toml" in result.output and "--config" in result.output
        assert not (tmp_path / "w" / "prefect").exists()
    with pytest.raises(socket.timeout):
        listener.accept()  # nothing ever connected
    listener.close()


@pytest.mark.slow
def test_an_operators_scheduler_that_does_not_answer_is_exit_2_before_anything_starts(tmp_path, monkeypatch):
    import functools

    from ssl_eval.pipeline import preflight

    # 1 s instead of the 5 s default for each address: the wait for an answer that never comes
    # (Dask retries a refused connection until then) was 10 of this test's 11 s
    monkeypatch.setattr(preflight, "check_scheduler", functools.partial(preflight.check_scheduler, timeout=1.0))
    silent = socket.socket()  # accepts connections, never answers Dask's handshake
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    store = make_store(tmp_path / "store", {"simclr": 1})
    (store / "ssl_eval.toml").write_text(DIGITS)
    for address in (f"tcp://127.0.0.1:{silent.getsockname()[1]}", "tcp://127.0.0.1:1"):
        result = CliRunner().invoke(app, ["evaluate", str(store), "--workdir", str(tmp_path / "w"), "--dask-address", address])
        assert result.exit_code == EXIT_USAGE and f"the Dask scheduler {address} does not answer" in result.output, result.output
        assert not (tmp_path / "w" / "prefect").exists()  # checked before the Prefect server starts
    silent.close()


def test_a_scheduler_that_answers_passes_the_check():
    from distributed import LocalCluster

    from ssl_eval.pipeline.preflight import check_scheduler

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        check_scheduler(cluster.scheduler_address)


# -- data paths and decoders --------------------------------------------------------------

def _png(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares width x height (one row of data: never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b""))


def _folder(root: Path) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / label / f"{i}.png")
    return root


def imagefolder_traps(tmp: str) -> str:
    """A symlink loop and a FIFO named like an image inside an image folder named by the store's file."""
    store = Path(tmp)
    folder = _folder(store / "data")
    (folder / "a" / "loop").symlink_to(folder / "a")
    os.mkfifo(folder / "b" / "z.png")
    (store / "ssl_eval.toml").write_text('[data]\nname = "imagefolder:data"\n')
    data = load_config(store=store).data
    train = load_split(data.name, "train", bounds=_bounds(data))
    return f"loaded {len(train) + len(load_split(data.name, 'test', bounds=_bounds(data)))} images"


def _bounds(data, max_bytes: int = 1 << 30):
    from ssl_eval.sources.data_files import Bounds

    return Bounds(data.confined_to, max_bytes)


def data_outside_the_store(tmp: str) -> str:
    store, outside = Path(tmp) / "store", _folder(Path(tmp) / "outside")
    store.mkdir()
    np.savez(Path(tmp) / "x.npz", x=np.zeros((4, 8, 8), np.uint8))
    out = []
    for name in ("imagefolder:../outside", f"imagefolder:{outside}", f"npz:{Path(tmp) / 'x.npz'}"):
        (store / "ssl_eval.toml").write_text(f'[data]\nname = "{name}"\n')
        out.append(_refusal(lambda: load_config(store=store)))
    (store / "ssl_eval.toml").write_text('[data]\nname = "cifar10"\nroot = "/usr"\n')
    out.append(_refusal(lambda: load_config(store=store)))
    # a link made after the configuration was read: refused when the data is read
    (store / "ssl_eval.toml").write_text('[data]\nname = "imagefolder:data"\n')
    _folder(store / "data")
    data = load_config(store=store).data
    (store / "data" / "a" / "9.png").symlink_to(outside / "a" / "0.png")
    out.append(_refusal(lambda: load_split(data.name, "train", bounds=_bounds(data))))
    return " | ".join(out)


def decoder_bombs(tmp: str) -> str:
    root, out = Path(tmp), []
    # idx .gz: 64 MB of zeros compressed to ~60 KB, declaring 6 GiB
    with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">iii", 6 * 1024 * 1024, 32, 32) + bytes(64 << 20))
    with gzip.open(root / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x01" + struct.pack(">i", 10) + bytes(10))
    out.append(_refusal(lambda: load_split("fashion-mnist", "train", root=str(root))))
    # .npz: deflated zeros whose header declares 3 GiB
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": (3 << 20, 32, 32)})
    with zipfile.ZipFile(root / "x.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", buffer.getvalue() + bytes(16 << 20))
    out.append(_refusal(lambda: load_split(f"npz:{root / 'x.npz'}", "train")))
    # twelve 8000 x 8000 PNGs (a few KB each), and one 60000 x 60000 resized to 32
    for label in ("a", "b"):
        (root / "big" / label).mkdir(parents=True)
        for i in range(6):
            _png(root / "big" / label / f"{i}.png", 8000, 8000)
    out.append(_refusal(lambda: load_split(f"imagefolder:{root / 'big'}", "train")))  # the first split a run reads
    (root / "huge" / "a").mkdir(parents=True)
    _png(root / "huge" / "a" / "0.png", 60000, 60000)
    out.append(_refusal(lambda: load_split(f"imagefolder:{root / 'huge'}", "test", image_size=32)))
    return " | ".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("attack, expected", [
    ("imagefolder_traps", r"^loaded 6 images$"),
    ("data_outside_the_store", r"refused: .*data.name = 'imagefolder:../outside' lies outside the store .*--dataset.* \| "
                               r"refused: .*lies outside the store .* \| refused: .*lies outside the store .* \| "
                               r"refused: .*data.root = '/usr' lies outside the store .* \| refused: .*9.png leads outside the store"),
    ("decoder_bombs", r"refused: .*train-images-idx3-ubyte.gz \(idx of shape \(6291456, 32, 32\)\) would decode to 6,442,450,944 bytes, "
                      r"more than the data budget .*--data-gb.* \| refused: .*array 'x' of shape \(3145728, 32, 32\).* would decode .* \| "
                      r"refused: the image folder \(8 images at 8000 x 8000\) would decode to 1,536,000,000 bytes.* \| "
                      r"refused: .*0.png declares 3,600,000,000 pixels"),
])
def test_data_paths_stay_in_the_store_and_decoders_have_a_budget(attack, expected, tmp_path):
    done, cpu = run_capped(f"{__name__}:{attack}", str(tmp_path), cpu_seconds=ATTACK_CPU_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(expected, done.stdout, flags=re.S), done.stdout[-3000:]
    assert cpu < ATTACK_CPU_SECONDS, done.stderr[-3000:]
