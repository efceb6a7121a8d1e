"""Exact values beside their bins: the model sees where a visible numeric value lies (never a masked
one's), the sampler places the values it decides, and a table whose columns relate below the bin scale
is imputed better with them than with the bins alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from seqdiff.core.bundle import ModelSpec, build_model
from seqdiff.core.denoiser import DenoiserConfig, ValueEmbedding
from seqdiff.core.noise import GeneratorNoise
from seqdiff.core.sampling import sample
from seqdiff.tabular.imputer import MaskedDiffusionImputer


def two_column_model(value_frequencies: int = 4):
    """Column 0: ordered bins (ids 0-3); column 1: categories (ids 4-5); mask id 6."""
    torch.manual_seed(0)
    cfg = DenoiserConfig(
        vocab_size=7,
        dim=16,
        n_layers=1,
        n_heads=2,
        max_len=2,
        positions="learned",
        value_frequencies=value_frequencies,
    )
    spec = ModelSpec(cfg, mask_id=6, allowed=[[0, 1, 2, 3], [4, 5]], ordered=[True, False])
    model = build_model(spec).eval()
    with torch.no_grad():  # a model that uses the features (they start at zero)
        model.denoiser.values.proj.normal_()
    return model


def test_value_embedding_ignores_nan_and_starts_at_zero():
    emb = ValueEmbedding(frequencies=3, positions=2, dim=4)
    assert emb(torch.tensor([[0.3, 0.9]])).abs().max() == 0  # zero-initialised
    emb.proj.data.normal_()
    out = emb(torch.tensor([[float("nan"), 0.25]]))
    assert out[0, 0].abs().max() == 0 and out[0, 1].abs().max() > 0


def test_scale_positions_place_visible_ordered_tokens_and_hide_the_rest():
    model = two_column_model()
    z = torch.tensor([[2, 5], [6, 4]])
    within = torch.tensor([[0.5, 0.5], [0.5, float("nan")]])
    got = model.scale_positions(z, within)
    assert got[0, 0].item() == pytest.approx((2 + 0.5) / 4)  # bin rank 2 of 4, half way in
    assert torch.isnan(got[0, 1]) and torch.isnan(got[1]).all()  # unordered column; masked token


def test_within_of_masked_tokens_never_reaches_the_model():
    model = two_column_model()
    z = torch.tensor([[6, 4], [1, 5]])
    a = model.slot_log_probs(z, within=torch.tensor([[0.1, float("nan")], [0.2, float("nan")]]))
    b = model.slot_log_probs(z, within=torch.tensor([[0.9, float("nan")], [0.2, float("nan")]]))
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # row 0's bin is masked: its within is hidden
    c = model.slot_log_probs(z, within=torch.tensor([[0.1, float("nan")], [0.8, float("nan")]]))
    assert not torch.allclose(a[1], c[1])  # row 1's visible value moved: the prediction moves


def test_sampler_keeps_given_within_and_draws_uniform_within_for_decided_values():
    model = two_column_model()
    z = torch.tensor([[2, 6]] + [[6, 6]] * 4000)
    within = torch.full(z.shape, float("nan"))
    within[0, 0] = 0.25
    noise = GeneratorNoise(torch.Generator().manual_seed(0))
    result = sample(model, z, steps=2, noise=noise, within=within)
    assert result.within[0, 0] == 0.25 and result.tokens[0, 0] == 2
    decided = result.within[1:, 0]
    assert torch.isnan(result.within[:, 1]).all()  # a categorical column has no place in a bin
    assert decided.min() >= 0 and decided.max() < 1
    assert abs(decided.mean().item() - 0.5) < 0.02 and abs(decided.std().item() - 12**-0.5) < 0.02


def sawtooth(n: int, seed: int = 0) -> pd.DataFrame:
    """y = frac(4 x): x's quarter (its bin, with 4 bins) says nothing about y; x's place in it does."""
    x = np.random.default_rng(seed).random(n)
    return pd.DataFrame({"x": x, "y": (4 * x) % 1.0})


def test_values_beat_bins_alone_when_columns_relate_below_the_bin_scale(y_imputation_error):
    complete = sawtooth(2000)
    hidden = np.random.default_rng(1).random(len(complete)) < 0.3
    errors = {  # exactly 4 bins (max_bin_width=0): x's bin says nothing about y
        frequencies: y_imputation_error(
            complete, hidden, n_bins=4, max_bin_width=0, value_frequencies=frequencies
        )
        for frequencies in (0, MaskedDiffusionImputer().value_frequencies)
    }
    # Bins alone leave y's bin a guess (mean error about 1/4); with x's place its bin is known, and
    # what is left is y's place inside its bin (about 1/16).
    assert errors[5] < 0.5 * errors[0], errors


def test_decoding_at_a_place_in_the_bin_inverts_within():
    from seqdiff.tabular.encoding import TableEncoder

    df = pd.DataFrame({"x": np.random.default_rng(0).normal(size=3000)})
    enc = TableEncoder.fit(df, n_bins=8)
    tokens = np.random.default_rng(1).integers(0, 8, (500, 1))
    places = np.random.default_rng(2).random((500, 1))
    decoded = enc.decode_sample(tokens, within=places).to_pandas()
    np.testing.assert_array_equal(enc.encode(decoded), tokens)  # each value lands in its bin
    np.testing.assert_allclose(enc.within(decoded), places, atol=1e-9)  # at its place
