"""Rotary embeddings in the compute dtype: the float32 reference's numbers, and a forward pass with
no host synchronisation (it compiles as one graph)."""

from __future__ import annotations

import torch

from seqdiff.core.denoiser import Denoiser, DenoiserConfig, apply_rope, rope_tables


def reference_rope(x: torch.Tensor, n: int, theta: float = 10_000.0) -> torch.Tensor:
    """Rotary embeddings as written out in float32: the pairs (x[i], x[i + d/2]) rotated by
    position * theta^(-2i/d)."""
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.arange(n, dtype=torch.float64)[:, None] * freqs
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x.double().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def test_rope_matches_the_float32_reference_and_bf16_stays_within_its_rounding() -> None:
    x = torch.randn(2, 3, 50, 16, generator=torch.Generator().manual_seed(0))
    expected = reference_rope(x, 50)
    tables = rope_tables(50, 16, 10_000.0)
    torch.testing.assert_close(apply_rope(x, tables).double(), expected, rtol=1e-5, atol=1e-5)
    low = apply_rope(x.bfloat16(), tables.bfloat16())
    assert low.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: a few units of 2^-8 relative to the values' scale.
    assert (low.double() - expected).abs().max() < 4 * 2**-8 * expected.abs().max()


def test_positions_beyond_max_len_rotate_as_in_a_longer_model() -> None:
    torch.manual_seed(0)
    short = Denoiser(DenoiserConfig(vocab_size=10, dim=32, n_layers=1, n_heads=2, max_len=8))
    long = Denoiser(DenoiserConfig(vocab_size=10, dim=32, n_layers=1, n_heads=2, max_len=64))
    long.load_state_dict(short.state_dict())
    tokens = torch.randint(0, 10, (2, 20))
    torch.testing.assert_close(short(tokens), long(tokens))


def test_autocast_runs_rope_in_bf16_close_to_float32() -> None:
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(vocab_size=10, dim=32, n_layers=2, n_heads=2, max_len=64))
    tokens = torch.randint(0, 10, (2, 30))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(tokens).float()
    full = net(tokens)
    assert (low - full).abs().max() < 0.05 * full.abs().max()


def test_the_forward_pass_with_a_padding_mask_compiles_as_one_graph() -> None:
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(vocab_size=33, dim=32, n_layers=2, n_heads=2, max_len=64))
    tokens = torch.randint(0, 33, (3, 10))
    valid = torch.arange(10) < torch.tensor([10, 7, 4])[:, None]
    # fullgraph=True fails on any graph break: a tensor read on the host (bool(), item()) is one.
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(tokens, valid), net(tokens, valid))
    torch.testing.assert_close(compiled(tokens, None), net(tokens))
