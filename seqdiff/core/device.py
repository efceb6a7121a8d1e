"""Where a model runs: one rule for every command and estimator."""

from __future__ import annotations

import torch

from seqdiff.errors import SeqdiffError


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cpu'; 'cuda' or 'cuda:N' (an error without a GPU).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise SeqdiffError(f"device {device!r}: choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SeqdiffError(f"device {device!r}: no CUDA GPU is available here")
    return torch.device(device)
