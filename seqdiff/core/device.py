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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (a CUDA GPU that supports it, or a CPU
    with AVX512-BF16 or AMX), so that bf16 autocast trains faster there than float32.

    Example:
        >>> native_bf16(torch.device("cpu")) in (True, False)
        True
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # PyTorch has no public query for native bf16 on a CPU: these private checks read the CPU flags.
    return device.type == "cpu" and (
        torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    )
