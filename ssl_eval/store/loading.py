"""Safe checkpoint loading: ``torch.load(weights_only=True)``, format adapters, key prefixes.

A checkpoint never runs code: there is no fallback to ``weights_only=False``. Every error
is a :class:`CheckpointError` naming the file, what was wrong and what to do.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_eval.config import FamilyConfig
from ssl_eval.models import build_backbone

# Prefixes written by common SSL code: Lightning-based libraries (lightly, solo-learn),
# the MoCo reference repo (module.encoder_q.), the SimSiam reference repo (module.encoder.).
KNOWN_PREFIXES = ("backbone.", "module.encoder_q.", "module.encoder.", "encoder.", "model.backbone.")
# Classifier heads that reference repositories keep inside the encoder.
_HEAD_KEYS = ("fc.", "head.", "classifier.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit its architecture."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]  # plain values from the file: epoch, global_step, method, arch, ...
    prefix: str


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file is gone (deleted or replaced after discovery); it will be retried on the next scan.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file; re-save the checkpoint.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
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
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or corrupt?): {exc}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict (a state dict or {{'state_dict': ...}}), got {type(obj).__name__}.")
    return obj


def _select_state_dict(obj: dict[str, Any], key: str | None, path: Path) -> dict[str, torch.Tensor]:
    if key and key in obj and isinstance(obj[key], dict):
        return obj[key]
    for candidate in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(candidate), dict):
            return obj[candidate]
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj  # a plain state dict
    raise CheckpointError(
        f"{path}: no state dict found under {key!r}; top-level keys are {sorted(obj)[:20]}. "
        "Set families.<family>.state_dict_key in ssl_eval.toml."
    )


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str | None, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    candidates = (prefix,) if prefix else KNOWN_PREFIXES
    for candidate in candidates:
        chosen = {k[len(candidate):]: v for k, v in state.items() if k.startswith(candidate)}
        if chosen:
            return chosen, candidate
    if prefix is None or prefix == "":
        return dict(state), ""
    # The configured prefix is absent: find one of the known ones if exactly one fits.
    found = [p for p in KNOWN_PREFIXES if any(k.startswith(p) for k in state)]
    if len(found) == 1:
        return {k[len(found[0]):]: v for k, v in state.items() if k.startswith(found[0])}, found[0]
    raise CheckpointError(
        f"{path}: no keys start with prefix {prefix!r}; first keys are {list(state)[:5]}. "
        "Set families.<family>.prefix in ssl_eval.toml (\"\" for a plain backbone state dict)."
    )


def load_checkpoint(path: str | Path, family: FamilyConfig) -> LoadedCheckpoint:
    path = Path(path)
    obj = read_checkpoint(path)
    state = _select_state_dict(obj, family.state_dict_key, path)
    state, prefix = _strip_prefix(state, family.prefix, path)
    state = {k: v for k, v in state.items() if not k.startswith(_HEAD_KEYS)}
    meta = {k: v for k, v in obj.items() if isinstance(v, (int, float, str, bool)) and not isinstance(v, dict)}
    return LoadedCheckpoint(state, meta, prefix)


def build_model(loaded: LoadedCheckpoint, family: FamilyConfig, *, in_channels: int, path: str | Path) -> nn.Module:
    """Build the family's architecture and load the backbone weights strictly."""
    arch = family.arch or loaded.meta.get("arch")
    if not arch:
        raise CheckpointError(f"{path}: the checkpoint has no 'arch' key; set families.<family>.arch in ssl_eval.toml.")
    model = build_backbone(str(arch), in_channels=in_channels)
    try:
        result = model.load_state_dict(loaded.state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches are raised even when strict=False
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r}: {exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: weights do not fit architecture {arch!r} (prefix {loaded.prefix!r}). "
            f"missing keys: {result.missing_keys[:10]}{' ...' if len(result.missing_keys) > 10 else ''}; "
            f"unexpected keys: {result.unexpected_keys[:10]}{' ...' if len(result.unexpected_keys) > 10 else ''}. "
            "Check families.<family>.arch and prefix in ssl_eval.toml."
        )
    for name, tensor in loaded.state_dict.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weight {name!r} holds NaN or inf; the training run diverged at this checkpoint.")
    return model.eval()
