"""Safe checkpoint loading: ``torch.load(weights_only=True)``, then the format and prefix rules of :mod:`ssl_eval.sources.formats`.

This module reads a file into a :class:`LoadedCheckpoint` (the backbone's weights, and the
projector's); :mod:`ssl_eval.sources.model_building` builds the model those weights go into.

A checkpoint never runs code: loading never falls back to unrestricted unpickling. The one
class allowed beside tensors and plain containers is ``argparse.Namespace`` (DINO, iBOT and
MAE pickle their command-line arguments): exactly that class, whose state is set as a plain
``__dict__``; any other class is still refused. torch keeps its allowed classes in one
process-wide list: that class is added to it once per process (:func:`allow_namespace`)
and never removed, since a ``safe_globals`` block per load removed it while another
thread was loading (docs/reliability.md, "Tasks on threads"). Every error is a :class:`CheckpointError`
naming the file, what was wrong and what to do. A checkpoint's own ``arch`` entry chooses
code only within ``ssl_eval.config.arch_policy``'s rule.
"""

from __future__ import annotations

import argparse
import io
import pickle
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ssl_eval.common.urls import is_url, redact
from ssl_eval.config import FamilyConfig
from ssl_eval.sources.checkpoints import open_checkpoint
from ssl_eval.sources.formats import HEAD_KEYS, FormatError, encoder_only, pick_network, projector_state, strip_prefix
from ssl_eval.sources.tensor_checks import check_tensors


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit its architecture."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read safely: its backbone weights, plain metadata, and how they were found."""
    state_dict: dict[str, torch.Tensor]  # backbone weights, prefix stripped, heads dropped
    meta: dict[str, Any]  # plain values from the file: epoch, global_step, method, arch, ...
    prefix: str  # the backbone prefix used ("" for a plain state dict)
    prefix_source: str = "config"  # "config" or "detected"
    format: str = "state-dict"  # which network of which file format (ssl_eval.sources.formats)
    projector: dict[str, torch.Tensor] = field(default_factory=dict)  # projector weights, prefix stripped
    projector_prefix: str = ""


# The one class a checkpoint may reference beside tensors and plain containers.
ALLOWED_CLASSES = (argparse.Namespace,)
_allow_lock = threading.Lock()


def allow_namespace() -> None:
    """Add :data:`ALLOWED_CLASSES` to torch's process-wide safe globals, once, under a lock.

    Never removed: ``torch.serialization.safe_globals`` adds on entry and removes on exit
    from one process-wide set, so on threads one load's exit refused another's file. Added
    again should other code have removed them (``clear_safe_globals``).
    """
    if set(ALLOWED_CLASSES) <= set(torch.serialization.get_safe_globals()):
        return
    with _allow_lock:
        missing: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
            c for c in ALLOWED_CLASSES if c not in torch.serialization.get_safe_globals()]
        if missing:
            torch.serialization.add_safe_globals(missing)


# torch.save writes its zip archive uncompressed, so what an entry declares it unpacks to is
# about its stored size. A much larger declared size is a zip bomb.
MAX_EXPANSION = 4.0
MAX_CHECKPOINT_BYTES = 64 << 30


def check_archive(path: Path | io.BytesIO, size: int, label: str) -> None:
    """Refuse, before unpacking anything, files torch would read unbounded.

    Anything not in torch's zip format (a legacy pickle allocates whatever sizes it declares),
    zip bombs, and archives that declare more than ``MAX_CHECKPOINT_BYTES``.

    Args:
        path: the local file, or the bytes of a remote one.
        size: its size on disk in bytes.
        label: the file's (redacted) name for messages.

    Raises:
        CheckpointError: the file is refused (the message says why).
    """
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{label}: not a readable torch checkpoint: not in torch's zip format (corrupt, truncated, "
            "or written by torch<1.6, whose legacy format allocates whatever sizes it declares). "
            "Re-save it with a current torch.save."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{label}: not a readable torch checkpoint (truncated or corrupt?): {exc}") from None
    if declared > MAX_CHECKPOINT_BYTES or declared > MAX_EXPANSION * size + (1 << 20):
        raise CheckpointError(
            f"{label}: refused: its archive declares {declared:,} bytes unpacked from {size:,} on disk "
            f"(limits: {MAX_EXPANSION:g}x the file, {MAX_CHECKPOINT_BYTES:,} bytes); a torch checkpoint "
            "is stored uncompressed, so this is a zip bomb or a damaged file."
        )


def _source(location: str | Path) -> tuple[Path | io.BytesIO, int]:
    """A local file as a path, an fsspec URL as its bytes; with the size."""
    gone = f"{redact(str(location))}: file is gone (deleted or moved after discovery); it will be retried on the next scan."
    if is_url(location):
        try:
            data = open_checkpoint(location)
        except FileNotFoundError:
            raise FileNotFoundError(gone) from None
        return data, len(data.getbuffer())
    path = Path(location)
    if not path.is_file():
        # Not a bad file: nothing to hold against its fingerprint, so it is no CheckpointError.
        raise FileNotFoundError(gone)
    return path, path.stat().st_size


def read_checkpoint(location: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, read with ``torch.load(weights_only=True)`` after :func:`check_archive`.

    Args:
        location: a local path or an fsspec URL.

    Returns:
        The loaded dict (tensors on the CPU; local files memory-mapped).

    Raises:
        FileNotFoundError: the file is gone since discovery (retried on the next scan).
        CheckpointError: an empty, corrupt, refused or code-referencing file, or one that is not a dict.
    """
    path = redact(str(location))  # the name every message uses
    source, size = _source(location)
    if size == 0:
        raise CheckpointError(f"{path}: empty file; re-save the checkpoint.")
    check_archive(source, size, path)
    if isinstance(source, io.BytesIO):
        source.seek(0)  # the archive check read from it
    try:
        # mmap (local files): tensor storages are mapped from the file, not allocated, so
        # memory use is bounded by the (already checked) archive size.
        allow_namespace()
        obj = torch.load(source, map_location="cpu", weights_only=True, mmap=isinstance(source, Path))
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not a refusal: the bytes are no pickle torch can read
            detail = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
            raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or corrupt?): {detail}") from None
        raise CheckpointError(
            f"{path}: refused by torch.load(weights_only=True): the file references {found.group(1)!r}, "
            "which would run code on loading. ssl-eval never runs code from a checkpoint; re-save it "
            "as a dict of tensors (e.g. {'state_dict': model.state_dict()})."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a malformed pickle raises whatever the unpickler meets
        # (TypeError from a crafted __class__ assignment in an allowed class's state, KeyError, ...)
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (truncated, corrupt or crafted?): {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict (a state dict or {{'state_dict': ...}}), got {type(obj).__name__}.")
    return obj


def load_checkpoint(path: str | Path, family: FamilyConfig) -> LoadedCheckpoint:
    """Read ``path`` safely and keep the backbone weights (and the projector's, for ``layer = "projector"``).

    Args:
        path: a local path or an fsspec URL.
        family: the family's configuration (``state_dict_key``, ``prefix``, ``layer``, ``projector_prefix``).

    Returns:
        The :class:`LoadedCheckpoint`; its ``prefix_source`` says whether the prefix was
        configured or detected.

    Raises:
        FileNotFoundError: the file is gone since discovery.
        CheckpointError: the file cannot be read, no network or prefix fits, or the projector is missing.
    """
    obj = read_checkpoint(path)
    path = redact(str(path))
    try:
        network = pick_network(obj, family.state_dict_key)
        state, prefix = strip_prefix(network.state, family.prefix)
    except FormatError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    full = network.state
    state = encoder_only(network, {k: v for k, v in state.items() if not k.startswith(HEAD_KEYS)})
    projector: dict[str, torch.Tensor] = {}
    projector_prefix = ""
    if family.layer == "projector":
        projector, projector_prefix = projector_state(full, family.projector_prefix, prefix)
        if not projector:
            raise CheckpointError(
                f"{path}: layer 'projector' asked for, but no keys start with {family.projector_prefix!r} "
                f"(nor {prefix + family.projector_prefix!r}); top-level key groups are "
                f"{sorted({k.split('.')[0] + '.' for k in full})[:12]}. Set families.<family>.projector_prefix."
            )
    try:
        check_tensors({**state, **{f"{projector_prefix}{k}": v for k, v in projector.items()}})
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    meta = {k: v for k, v in obj.items() if isinstance(v, (int, float, str, bool)) and not isinstance(v, dict)}
    return LoadedCheckpoint(
        state, meta, prefix,
        prefix_source="detected" if family.prefix is None else "config", format=network.name,
        projector=projector, projector_prefix=projector_prefix,
    )
