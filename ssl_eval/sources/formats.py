"""Which network of a checkpoint file to read, and which of its keys are not the encoder.

Detected from the file alone where it is unambiguous:

- DINO and iBOT (``{"student", "teacher", "epoch", "args", ...}``): the teacher, as DINO's
  own evaluation reads it (``state_dict_key = "student"`` picks the student);
- MAE (``{"model", "epoch", "args", "scaler", ...}``): the encoder; the decoder
  (``decoder_*``) and the mask token are dropped;
- Lightning (solo-learn, lightly), the MoCo v2/v3 and SimSiam reference repositories, and
  plain state dicts: the ``state_dict``/``model`` entry or the file itself.

The backbone key prefix (``backbone.``, ``module.base_encoder.``, ...) is found afterwards
by ``ssl_eval.sources.loading.detect_prefix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


class FormatError(ValueError):
    """No network could be picked from the file; the message says what it holds."""


@dataclass(frozen=True)
class Network:
    """The network a checkpoint file holds, with the name of the file's format."""
    name: str  # the file's format, recorded in the embedding provenance
    state: dict[str, torch.Tensor]  # the picked network's full state dict (prefixes not yet stripped)


_STATE_KEYS = ("state_dict", "model", "model_state_dict")
# MAE's pre-training model (models_mae.MaskedAutoencoderViT): decoder modules and the mask token.
_MAE_DECODER = ("decoder_embed.", "decoder_blocks.", "decoder_norm.", "decoder_pred.", "decoder_pos_embed", "mask_token")


def _is_state(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def pick_network(obj: dict[str, Any], key: str | None) -> Network:
    """The network to evaluate in the checkpoint dict ``obj``.

    Args:
        obj: the loaded checkpoint (a dict).
        key: ``families.<family>.state_dict_key``: when set, that entry wins over detection
            (``"student"`` in a DINO file, ``"model"`` in another); None detects.

    Returns:
        The :class:`Network`: the format's name and the picked full state dict.

    Raises:
        FormatError: no state dict found (the message lists the top-level keys).
    """
    if key and isinstance(obj.get(key), dict):
        return Network(f"entry {key!r}", obj[key])
    if isinstance(obj.get("teacher"), dict) and isinstance(obj.get("student"), dict):
        return Network("dino-teacher", obj["teacher"])  # DINO, iBOT
    for candidate in _STATE_KEYS:
        if isinstance(obj.get(candidate), dict):
            state = obj[candidate]
            if candidate == "model" and _is_mae(state):
                return Network("mae-encoder", state)
            return Network(f"entry {candidate!r}", state)
    if _is_state(obj):
        return Network("mae-encoder" if _is_mae(obj) else "state-dict", obj)
    raise FormatError(
        f"no state dict found{f' under {key!r}' if key else ''}; top-level keys are {sorted(map(str, obj))[:20]}. "
        "Set families.<family>.state_dict_key in ssl_eval.toml."
    )


def _is_mae(state: dict[str, Any]) -> bool:
    return "mask_token" in state and any(k.startswith("decoder_") for k in state)


def encoder_only(network: Network, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` (prefix stripped) without the keys of the format's non-encoder parts.

    Args:
        network: the picked network (its ``name`` is the format).
        state: its state dict with the backbone prefix stripped.

    Returns:
        ``state`` itself, or for MAE a copy without the decoder and the mask token.
    """
    if network.name != "mae-encoder":
        return state
    return {k: v for k, v in state.items() if not k.startswith(_MAE_DECODER)}
