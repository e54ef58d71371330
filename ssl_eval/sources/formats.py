"""Which network of a checkpoint file to read, and which of its keys are not the encoder.

Detected from the file alone where it is unambiguous:

- DINO and iBOT (``{"student", "teacher", "epoch", "args", ...}``): the teacher, as DINO's
  own evaluation reads it (``state_dict_key = "student"`` picks the student);
- MAE (``{"model", "epoch", "args", "scaler", ...}``): the encoder; the decoder
  (``decoder_*``) and the mask token are dropped;
- Lightning (solo-learn, lightly), the MoCo v2/v3 and SimSiam reference repositories, and
  plain state dicts: the ``state_dict``/``model`` entry or the file itself.

The backbone key prefix (``backbone.``, ``module.base_encoder.``, ...) is found afterwards
by :func:`detect_prefix` (:func:`strip_prefix` keeps the keys under it).
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


# Prefixes written by common SSL code: Lightning-based libraries (lightly, solo-learn),
# the MoCo reference repo (module.encoder_q.), the SimSiam reference repo (module.encoder.),
# MoCo v3 (module.base_encoder.; its momentum encoder and predictor are other prefixes), a
# DataParallel-wrapped DINO/iBOT teacher or student (module.backbone.).
KNOWN_PREFIXES = (
    "backbone.", "module.encoder_q.", "module.encoder.", "encoder.", "model.backbone.",
    "module.base_encoder.", "base_encoder.", "module.backbone.",
)
# Classifier heads that reference repositories keep inside the encoder.
HEAD_KEYS = ("fc.", "head.", "classifier.")


def _matching(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def detect_prefix(state: dict[str, torch.Tensor]) -> str:
    """The backbone key prefix of ``state`` when that is unambiguous.

    ``backbone.`` wins when present (Lightning: lightly, solo-learn; its heads and momentum
    copies live under other names). Otherwise exactly one of :data:`KNOWN_PREFIXES` must
    occur; with none, ``module.`` (a DataParallel-saved model) when every key has it, else
    ``""`` (a plain backbone state dict).

    Args:
        state: the picked network's full state dict.

    Returns:
        The prefix, ``""`` for none.

    Raises:
        FormatError: two or more known prefixes occur (set ``families.<family>.prefix``).
    """
    if any(k.startswith("backbone.") for k in state):
        return "backbone."
    found = [p for p in KNOWN_PREFIXES if any(k.startswith(p) for k in state)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise FormatError(
            f"several backbone prefixes fit: {found}; set families.<family>.prefix in ssl_eval.toml to one of them."
        )
    if state and all(k.startswith("module.") for k in state):
        return "module."
    return ""


def strip_prefix(state: dict[str, torch.Tensor], prefix: str | None) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone keys under ``prefix``, stripped of it.

    Args:
        state: the picked network's full state dict.
        prefix: the configured prefix (``""``: a plain state dict), or None to detect it.

    Returns:
        ``(the backbone's weights, the prefix used)``.

    Raises:
        FormatError: no key has the configured prefix, or detection is ambiguous.
    """
    if prefix is not None:
        if prefix == "":
            return dict(state), ""
        chosen = _matching(state, prefix)
        if chosen:
            return chosen, prefix
        found = [p for p in KNOWN_PREFIXES if any(k.startswith(p) for k in state)]
        raise FormatError(
            f"no keys start with the configured prefix {prefix!r}; first keys are {list(state)[:5]}"
            f"{f', known prefixes present: {found}' if found else ''}. Fix families.<family>.prefix in "
            "ssl_eval.toml, or remove it to let ssl-eval find the backbone keys (\"\" for a plain state dict)."
        )
    chosen_prefix = detect_prefix(state)
    return (_matching(state, chosen_prefix) if chosen_prefix else dict(state)), chosen_prefix


def projector_state(state: dict[str, torch.Tensor], projector_prefix: str, backbone_prefix: str) -> tuple[dict[str, torch.Tensor], str]:
    """Keys of the projection head, at the top level or inside the backbone prefix.

    At the top level under ``projector_prefix`` (lightly: ``projection_head.``, solo-learn:
    ``projector.``), or inside the backbone prefix (the MoCo-v2 reference repo's MLP in
    ``module.encoder_q.fc.``).

    Args:
        state: the picked network's full state dict.
        projector_prefix: ``families.<family>.projector_prefix``.
        backbone_prefix: the backbone's prefix, where a reference repository nests the head.

    Returns:
        ``(projector weights with the prefix stripped, the prefix found)``.
    """
    for candidate in (projector_prefix, backbone_prefix + projector_prefix):
        chosen = _matching(state, candidate)
        if chosen:
            return chosen, candidate
    return {}, ""
