"""What a checkpoint's tensors really hold: bytes of storage, not the sizes they claim.

A tensor's shape can claim far more than its file holds: ``torch.zeros(1).expand(4e9)``
saves 4 bytes of storage for 4 billion elements, and code that sizes a model from
``numel()`` would then allocate gigabytes for a 2 KB file. Here every tensor kept from a
checkpoint must be dense and strided, with no stride-0 axis longer than 1 and no more
elements than its storage holds within its extent (:func:`check_tensors`), and sizes are
counted as the distinct storages' bytes (:func:`storage_bytes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

__all__ = ["check_tensors", "storage_bytes"]


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """The bytes of storage behind ``tensors``, each storage counted once.

    Args:
        tensors: tensors (several may share one storage).

    Returns:
        The sum of ``untyped_storage().nbytes()`` over distinct storages.
    """
    seen: dict[tuple[str, int], int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[(str(storage.device), storage.data_ptr() or id(storage))] = storage.nbytes()
    return sum(seen.values())


def _problem(tensor: torch.Tensor) -> str | None:
    """Why ``tensor`` claims more than it holds, or None."""
    if tensor.layout != torch.strided:
        return f"a {tensor.layout} tensor; a state dict holds dense tensors"
    if tensor.numel() == 0:
        return None
    if any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride(), strict=True)):
        return f"an expanded (stride-0) tensor of shape {tuple(tensor.shape)}"
    if any(stride < 0 for stride in tensor.stride()):
        return "negative strides"
    held = tensor.untyped_storage().nbytes()
    claimed = tensor.numel() * tensor.element_size()
    extent = (tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True)) + 1)
    if claimed > held or extent * tensor.element_size() > held:
        return f"shape {tuple(tensor.shape)} ({claimed:,} bytes) over {held:,} bytes of storage"
    return None


def check_tensors(tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse stride tricks: a tensor that claims more elements than its storage holds.

    Args:
        tensors: name -> tensor, as kept from the checkpoint.

    Raises:
        ValueError: the first such tensor, named, with what it claims and holds (the caller adds the file's name).
    """
    for name, tensor in tensors.items():
        problem = _problem(tensor)
        if problem:
            raise ValueError(
                f"tensor {name[:200]!r} is {problem}: its shape claims more than the file holds (a stride trick). "
                "Re-save the checkpoint from the model's own state_dict() (or .contiguous() copies)."
            )
