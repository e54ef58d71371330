"""Vision Transformers read at one token, as the linear-probe protocols read them.

A timm-style ViT (``forward_features`` gives (N, tokens, D), ``num_prefix_tokens`` says how
many are not patches) is read at its class token or at the mean of its patch tokens
(:func:`pooled`, :class:`TokenPooled`); a CNN is used as it is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["TokenPooled", "is_token_model", "pooled"]


class TokenPooled(nn.Module):
    """A Vision Transformer read at one token, as the linear-probe protocols read it.

    ``"cls"`` (the class token) or ``"mean"`` (the mean of the patch tokens, register and class
    tokens left out) of the final, normalised tokens of ``forward_features``.
    """

    def __init__(self, model: nn.Module, pool: str) -> None:
        super().__init__()
        # a timm VisionTransformer, whose forward_features is timm's (typed Any: timm is not followed)
        self.model: Any = model
        self.pool = pool
        self.prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled final tokens of a batch of images.

        Args:
            x: float (N, C, H, W) tensor, as the wrapped model takes it.

        Returns:
            (N, D) features: the class token, or the mean of the patch tokens.
        """
        tokens = self.model.forward_features(x)
        return tokens[:, 0] if self.pool == "cls" else tokens[:, self.prefix_tokens:].mean(dim=1)


def is_token_model(model: nn.Module) -> bool:
    """Whether ``model`` is a timm-style Vision Transformer.

    ``forward_features`` gives (N, tokens, D) and ``num_prefix_tokens`` says how many of them
    are not patches.

    Args:
        model: any backbone.

    Returns:
        True for a token model.
    """
    return hasattr(model, "forward_features") and isinstance(getattr(model, "num_prefix_tokens", None), int)


def pooled(model: nn.Module, pool: str | None, arch: str) -> nn.Module:
    """``model`` read at ``pool``; a model without tokens (a CNN) is returned as it is when ``pool`` is unset.

    Args:
        model: the backbone.
        pool: ``"cls"``, ``"mean"``, or None for the default (``"cls"`` for a ViT with a class
            token, ``"mean"`` without one).
        arch: the architecture's name, for messages.

    Returns:
        ``model`` itself, or a :class:`TokenPooled` wrapper.

    Raises:
        ValueError: ``pool`` is set for a model without tokens, or is ``"cls"`` without a class token.
    """
    if not is_token_model(model):
        if pool is not None:
            raise ValueError(
                f"families.<family>.pool = {pool!r} applies to Vision Transformers (timm-style, with "
                f"forward_features and num_prefix_tokens); {arch!r} is not one. Remove pool for this family."
            )
        return model
    has_cls = getattr(model, "cls_token", None) is not None
    if pool is None:
        pool = "cls" if has_cls else "mean"
    if pool == "cls" and not has_cls:
        raise ValueError(f"families.<family>.pool = 'cls', but {arch!r} has no class token; use pool = 'mean'.")
    return TokenPooled(model, pool)
