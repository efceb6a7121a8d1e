"""bf16 autocast on CPU: attention stays in float32, the linear layers go to bf16, and precision
"auto" trains in bf16 exactly where the hardware multiplies bf16 natively."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from seqdiff.core.denoiser import Denoiser, DenoiserConfig, attention, explicit_attention
from seqdiff.core.device import native_bf16
from seqdiff.tabular.imputer import MaskedDiffusionImputer


def test_attention_under_cpu_autocast_runs_in_float32_and_returns_bf16():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    mask[0, ..., 5:] = False
    exact = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # The bf16 inputs are the only rounding: the kernel itself computes in float32.
        qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
        out = attention(qb, kb, vb, mask, dropout=0.0, causal=False)
    assert out.dtype == torch.bfloat16
    same_inputs = explicit_attention(qb.float(), kb.float(), vb.float(), mask, 0.0, False)
    torch.testing.assert_close(out, same_inputs.bfloat16(), rtol=0, atol=0)
    assert (out.float() - exact).abs().max() < 0.05


def test_denoiser_logits_under_bf16_autocast_stay_close_to_float32():
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(vocab_size=12, dim=32, n_layers=2, n_heads=4)).eval()
    tokens = torch.randint(0, 12, (4, 20))
    exact = net(tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = net(tokens)
    assert fast.dtype == torch.bfloat16
    assert (fast.float() - exact).abs().max() < 0.05 * exact.abs().max()


@pytest.mark.parametrize("precision", ["auto", "32-true", "bf16-mixed"])
def test_imputer_records_the_precision_it_trained_in(precision):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    df.loc[::7, "x"] = np.nan
    imputer = MaskedDiffusionImputer(
        dim=16, n_layers=1, n_heads=2, max_steps=3, early_stopping=False, device="cpu", precision=precision
    ).fit(df)
    expected = {"auto": "bf16-mixed" if native_bf16(torch.device("cpu")) else "32-true"}.get(
        precision, precision
    )
    assert imputer.training_["precision"] == expected
    assert next(imputer.model_.parameters()).dtype == torch.float32  # weights and imputation stay float32
    assert not imputer.transform(df).isna().any().any()
