"""CPU attention: short sequences take the explicit kernel, which must agree with PyTorch's fused
``scaled_dot_product_attention`` in values and gradients, masks and all."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from seqdiff.core.denoiser import FEW_KEYS, SHORT_ATTENTION, attention, explicit_attention


def _qkv(n: int, batch: int = 3, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 4, n, 16, generator=g).requires_grad_() for _ in range(3)]


def _padding_mask(batch: int, n: int) -> torch.Tensor:
    mask = torch.ones(batch, 1, 1, n, dtype=torch.bool)
    mask[0, ..., n // 2 :] = False  # a padded sequence
    mask[1] = False  # a sequence with no token to attend: the fused kernel returns zeros
    return mask


@pytest.mark.parametrize("n", [FEW_KEYS - 6, FEW_KEYS + 2])  # softmax written out, PyTorch's
@pytest.mark.parametrize(("masked", "causal"), [(False, False), (True, False), (False, True)])
def test_explicit_attention_matches_the_fused_kernel_and_its_gradients(masked: bool, causal: bool, n: int):
    q, k, v = _qkv(n)
    mask = _padding_mask(3, n) if masked else None
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    fused_grads = torch.autograd.grad(fused.square().sum(), (q, k, v))
    explicit = explicit_attention(q, k, v, mask, 0.0, causal)
    explicit_grads = torch.autograd.grad(explicit.square().sum(), (q, k, v))
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-5)
    for a, b in zip(explicit_grads, fused_grads, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if masked:
        assert (explicit[1] == 0).all()


def test_cpu_attention_is_explicit_up_to_the_short_length_and_fused_beyond():
    for n, expected in [(SHORT_ATTENTION, explicit_attention), (SHORT_ATTENTION + 1, None)]:
        q, k, v = _qkv(n, batch=2)
        mask = _padding_mask(2, n)
        out = attention(q, k, v, mask, dropout=0.0, causal=False)
        if expected is None:
            reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            reference = expected(q, k, v, mask, 0.0, False)
        torch.testing.assert_close(out, reference, rtol=0, atol=0)


def test_explicit_attention_dropout_drops_weights_and_keeps_the_expectation():
    torch.manual_seed(0)
    q, k = (torch.randn(64, 4, 10, 16) for _ in range(2))
    ones = torch.ones(64, 4, 10, 16)
    # With v = 1 each output is the sum of its kept attention weights, rescaled by 1 / (1 - p).
    out = explicit_attention(q, k, ones, None, 0.5, False)
    assert not torch.allclose(out, ones)
    assert out.mean().item() == pytest.approx(1.0, abs=0.03)
    torch.testing.assert_close(explicit_attention(q, k, ones, None, 0.0, False), ones)
