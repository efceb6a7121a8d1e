"""The optimisers `DiffusionModule` trains with: AdamW, or Muon for the transformer blocks' weight
matrices with AdamW for the rest (embeddings, positions, output head, norms), as one optimizer.

Muon (Jordan et al. 2024; `torch.optim.Muon`) orthogonalises each matrix's momentum before the update,
so every direction of a hidden layer learns at the same rate; embeddings and the output head, whose rows
are tokens, stay with AdamW. With ``adjust_lr_fn="match_rms_adamw"`` its updates have AdamW's size, so
both share one learning rate, weight decay and schedule. `NativeMuon` is torch's Muon with its
orthogonalisation in bfloat16 only where bf16 matmuls are native.

Example:
    >>> from seqdiff.core.bundle import ModelSpec, build_model
    >>> from seqdiff.core.denoiser import DenoiserConfig
    >>> model = build_model(ModelSpec(DenoiserConfig(vocab_size=5, dim=16, n_layers=1, n_heads=2),
    ...                               mask_id=4, allowed=[0, 1, 2, 3]))
    >>> opt = build_optimizer(model, "muon", lr=1e-3, betas=(0.9, 0.98), weight_decay=0.03)
    >>> [len(g["params"]) for g in opt.param_groups]  # AdamW with decay, without, then Muon
    [2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim._muon import _adjust_lr

from seqdiff.core.device import native_bf16
from seqdiff.errors import SeqdiffError

OPTIMIZERS = ("adamw", "muon")


def check_optimizer(name: str) -> None:
    """A one-line SeqdiffError for an optimizer name not in OPTIMIZERS (a training config's typo)."""
    if name not in OPTIMIZERS:
        raise SeqdiffError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")


def _parameter_groups(model: nn.Module, muon: bool) -> tuple[list, list, list]:
    """(AdamW with weight decay, AdamW without, Muon): matrices decay (GenMD4's rate parameters
    ``w_raw`` do not), vectors do not; with `muon`, the blocks' matrices go to Muon."""
    decay, no_decay, orthogonal = [], [], []
    for name, p in model.named_parameters():
        if muon and ".blocks." in f".{name}" and p.dim() == 2:
            orthogonal.append(p)
        elif p.dim() >= 2 and "w_raw" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return decay, no_decay, orthogonal


def orthogonalise(
    update: torch.Tensor, dtype: torch.dtype, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration (`torch.optim.Muon`'s, step for step) on a matrix, computed
    in `dtype`: its singular vectors with singular values near 1."""
    a, b, c = coefficients
    x = update.to(dtype)
    tall = x.size(0) > x.size(1)
    x = x.T if tall else x
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class NativeMuon(torch.optim.Muon):
    """`torch.optim.Muon` (same parameters, groups and state) whose Newton-Schulz iteration runs in
    bfloat16 only where the parameters' device multiplies bf16 natively (`native_bf16`), else in
    float32. torch's runs in bf16 everywhere, which a CPU without AVX512-BF16 or AMX emulates, many
    times slower than float32 (BENCHMARKS.md, "MCAR on a CPU without native bf16")."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            if not params:
                continue
            lr, momentum = group["lr"], group["momentum"]
            dtype = torch.bfloat16 if native_bf16(params[0].device) else torch.float32
            for param, grad, buffer in zip(params, grads, buffers, strict=True):
                buffer.lerp_(grad, 1 - momentum)
                update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
                update = orthogonalise(
                    update, dtype, group["ns_coefficients"], group["ns_steps"], group["eps"]
                )
                param.mul_(1 - lr * group["weight_decay"])
                # torch's own learning-rate factor per matrix shape (adjust_lr_fn), not a copy of it
                param.add_(update.to(param.dtype), alpha=-_adjust_lr(lr, group["adjust_lr_fn"], param.shape))
        return loss


class MuonAdamW(torch.optim.Optimizer):
    """`torch.optim.AdamW` and `NativeMuon` stepped together: their parameter groups are this
    optimizer's (a learning-rate scheduler sets both), their states its state dict. Lightning's
    automatic optimisation takes one optimizer, hence one object."""

    def __init__(self, adamw: torch.optim.AdamW, muon: NativeMuon):
        self.adamw, self.muon = adamw, muon
        super().__init__(adamw.param_groups + muon.param_groups, {})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.adamw.step()
        self.muon.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"adamw": self.adamw.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.adamw.load_state_dict(state_dict["adamw"])
        self.muon.load_state_dict(state_dict["muon"])
        # Loading gives each optimizer new group dicts: share them again, or the scheduler's learning
        # rates would no longer reach the steps.
        self.param_groups = self.adamw.param_groups + self.muon.param_groups


def build_optimizer(
    model: nn.Module, name: str, *, lr: float, betas: tuple[float, float], weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW (``name="adamw"``) or `MuonAdamW` (``"muon"``) over `model`'s parameters."""
    check_optimizer(name)
    decay, no_decay, orthogonal = _parameter_groups(model, name == "muon")
    # Multi-tensor updates, not a loop over tensors. Not fused=True: Lightning refuses gradient
    # clipping with a fused optimizer under mixed precision.
    adamw = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=betas,
        foreach=True,
    )
    if not orthogonal:
        return adamw
    muon = NativeMuon(orthogonal, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
    return MuonAdamW(adamw, muon)
