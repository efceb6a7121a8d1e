"""The ancestral sampler (md4_spec.md section 5).

Distribution tests use ``ExactDenoiser``, the exact conditionals of a correlated distribution p
over the 27 sequences of length 3 over 3 values. With it the sampler's output law is computable
exactly (``sampler_law``, a dynamic programme over the 64 partially masked states, written
independently of the sampler): it tends to p as the steps grow, because the only error left is
two tokens unmasked in the same step from independent marginals.

- At 200 steps that error is tiny: the chi-square non-centrality 6000 sum (law - p)^2 / p is
  < 0.5 on both grids (checked below), so a Pearson test of 6,000 samples against p at level
  0.001 keeps its size (rejection probability < 0.002 at df 26).
- At 3 steps the law is far from p; the samples must follow the predicted law and not p, which
  checks the per-step move/stay probabilities, the grid and the final step, and shows the test
  has the power to see a wrong distribution.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.core.denoiser import Denoiser, DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.noise import KeyedNoise
from seqdiff.core.sampling import draw_categorical, sample, shape_probs, time_grid
from seqdiff.core.schedules import EPS, CosineSchedule, LinearSchedule

K, L, M = 3, 3, 3  # values, length, mask id
SAMPLES, LEVEL = 6000, 1e-3


def linear_alpha(t: torch.Tensor) -> torch.Tensor:
    return ((1 - 2 * EPS) * (1 - t) + EPS).expand(K)


def exact_model(toys, schedule=None):
    p = toys.toy_distribution(L, K, seed=0)
    model = toys.make_model(toys.ExactDenoiser(p, L, K), schedule or LinearSchedule(), K)
    return model, p


def counts_of(toys, tokens: torch.Tensor) -> torch.Tensor:
    return torch.bincount(toys.index_of(tokens, K), minlength=K**L)


# --- grid, probability shaping, categorical draws ------------------------------------------


def test_time_grid():
    u = time_grid(4, "uniform")
    assert u.dtype == torch.float64 and u.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    c = time_grid(8, "cosine")
    assert float(c[0]) == 1.0 and float(c[-1]) == 0.0
    assert bool((c.diff() < 0).all())
    torch.testing.assert_close(c[1:-1], torch.cos(math.pi / 2 * (1 - time_grid(8, "uniform")[1:-1])))
    # Cosine: small steps near t = 1 (everything masked), large near t = 0.
    assert float(c[0] - c[1]) < float(c[-2] - c[-1])
    with pytest.raises(ValueError):
        time_grid(0)
    with pytest.raises(ValueError):
        time_grid(4, "log")


def test_shape_probs_temperature():
    p = torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64)
    torch.testing.assert_close(shape_probs(p.log()), p)
    for temp in (0.5, 2.0):
        expected = p ** (1 / temp) / (p ** (1 / temp)).sum()
        torch.testing.assert_close(shape_probs(p.log(), temperature=temp), expected)
    cold = shape_probs(p.log(), temperature=0.01)
    assert float(cold[0, 0]) > 1 - 1e-15
    with pytest.raises(ValueError):
        shape_probs(p.log(), temperature=0.0)
    # -inf (disallowed) stays at probability zero whatever the temperature.
    q = shape_probs(torch.tensor([[0.0, float("-inf"), -1.0]]), temperature=3.0)
    assert float(q[0, 1]) == 0.0 and q.dtype == torch.float64


def test_shape_probs_top_p():
    p = torch.tensor([[0.15, 0.5, 0.05, 0.3]], dtype=torch.float64)
    # The smallest set, in order of probability, whose mass reaches top_p.
    cases = {0.4: [0, 1, 0, 0], 0.7: [0, 1, 0, 1], 0.85: [1, 1, 0, 1], 0.97: [1, 1, 1, 1], 1.0: [1, 1, 1, 1]}
    for top_p, keep in cases.items():
        keep = torch.tensor([keep], dtype=torch.bool)
        expected = torch.where(keep, p, torch.zeros_like(p))
        torch.testing.assert_close(shape_probs(p.log(), top_p=top_p), expected / expected.sum())
    # The most probable token always stays, even for a tiny top_p; rows are independent.
    rows = torch.tensor([[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]], dtype=torch.float64)
    out = shape_probs(rows.log(), top_p=1e-9)
    assert out.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    # Temperature first, then the nucleus of the sharpened distribution.
    sharp = shape_probs(p.log(), temperature=0.5, top_p=0.9)
    p2 = p**2 / (p**2).sum()  # [0.062, 0.685, 0.007, 0.247]: 0.685 + 0.247 = 0.932 >= 0.9
    expected = torch.tensor([[0.0, p2[0, 1], 0.0, p2[0, 3]]], dtype=torch.float64)
    torch.testing.assert_close(sharp, expected / expected.sum())


def test_draw_categorical_frequencies(toys):
    probs = torch.tensor([0.5, 0.0, 0.2, 0.299, 0.001], dtype=torch.float64)
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    draws = draw_categorical(probs.expand(200_000, 5) * 3.0, u)  # rows need not be normalised
    counts = torch.bincount(draws, minlength=5)
    assert int(counts[1]) == 0, "a zero-probability outcome is never drawn"
    keep = probs > 0
    assert toys.chi2_pvalue(counts[keep], probs[keep]) > LEVEL
    # float64 inverse CDF: a 1e-3 outcome appears ~200 times in 200,000 draws (not truncated).
    assert 140 < int(counts[4]) < 260


# --- distribution of the samples -----------------------------------------------------------


@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_sampler_law_at_200_steps_is_close_to_p(toys, grid):
    """Justifies the size of the chi-square tests below (see the module docstring)."""
    model, p = exact_model(toys)
    law = toys.sampler_law(model.denoiser, torch.full((L,), M), time_grid(200, grid), linear_alpha)
    assert float(law.sum()) == pytest.approx(1.0, abs=1e-12)
    noncentrality = SAMPLES * float(((law - p) ** 2 / p).sum())
    assert noncentrality < 0.5
    # ...while the same law at 3 steps is far from p (a product of marginals mixed in).
    coarse = toys.sampler_law(model.denoiser, torch.full((L,), M), time_grid(3, grid), linear_alpha)
    assert SAMPLES * float(((coarse - p) ** 2 / p).sum()) > 500


@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_sampler_matches_distribution(toys, grid):
    model, p = exact_model(toys)
    z = torch.full((SAMPLES, L), M)
    out = sample(model, z, steps=200, grid=grid, generator=torch.Generator().manual_seed(1))
    assert int((out.tokens == M).sum()) == 0
    assert toys.chi2_pvalue(counts_of(toys, out.tokens), p) > LEVEL


@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_coarse_sampler_matches_its_exact_law_not_p(toys, grid):
    model, p = exact_model(toys)
    law = toys.sampler_law(model.denoiser, torch.full((L,), M), time_grid(3, grid), linear_alpha)
    out = sample(
        model, torch.full((SAMPLES, L), M), steps=3, grid=grid, generator=torch.Generator().manual_seed(2)
    )
    counts = counts_of(toys, out.tokens)
    assert toys.chi2_pvalue(counts, law) > LEVEL
    assert toys.chi2_pvalue(counts, p) < 1e-12, "the chi-square test sees a wrong distribution"


def test_sampler_with_cosine_schedule_matches_distribution(toys):
    model, p = exact_model(toys, CosineSchedule())
    out = sample(model, torch.full((SAMPLES, L), M), steps=200, generator=torch.Generator().manual_seed(3))
    assert toys.chi2_pvalue(counts_of(toys, out.tokens), p) > LEVEL


def test_sampler_conditional_distribution(toys):
    """Fix the middle token to 2: the other two follow p(x0, x2 | x1 = 2)."""
    model, p = exact_model(toys)
    z = torch.tensor([M, 2, M]).expand(SAMPLES, L).clone()
    out = sample(model, z, steps=200, grid="cosine", generator=torch.Generator().manual_seed(4))
    assert bool((out.tokens[:, 1] == 2).all())
    assert bool((out.unmask_step[:, 1] == -1).all()) and bool((out.unmask_step[:, [0, 2]] >= 0).all())
    seqs = model.denoiser.seqs
    keep = seqs[:, 1] == 2
    counts = counts_of(toys, out.tokens)[keep]
    assert int(counts.sum()) == SAMPLES
    assert toys.chi2_pvalue(counts, p[keep]) > LEVEL
    law = toys.sampler_law(model.denoiser, torch.tensor([M, 2, M]), time_grid(200, "cosine"), linear_alpha)
    torch.testing.assert_close(law[keep], p[keep] / p[keep].sum(), atol=2e-3, rtol=0)


def test_temperature_and_top_p_through_the_sampler(toys):
    """One position, p = [0.5, 0.3, 0.2]: temperature 0.5 samples p^2/Z, top_p 0.7 samples {0, 1}."""
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    model = toys.make_model(toys.ExactDenoiser(p, 1, 3), LinearSchedule(), 3)
    z = torch.full((SAMPLES, 1), 3)
    hot = sample(model, z, steps=10, temperature=0.5, generator=torch.Generator().manual_seed(5))
    assert toys.chi2_pvalue(torch.bincount(hot.tokens[:, 0], minlength=3), p**2) > LEVEL
    nucleus = sample(model, z, steps=10, top_p=0.7, generator=torch.Generator().manual_seed(6))
    counts = torch.bincount(nucleus.tokens[:, 0], minlength=3)
    assert int(counts[2]) == 0
    assert toys.chi2_pvalue(counts[:2], p[:2]) > LEVEL
    # The reported confidence is the probability under the shaped distribution it was drawn from.
    conf = nucleus.confidence[:, 0].double()
    expected = (p[:2] / p[:2].sum())[nucleus.tokens[:, 0]]
    torch.testing.assert_close(conf, expected.float().double(), atol=1e-6, rtol=0)


def test_a_log_prior_multiplies_the_prediction(toys):
    """One position, p = [0.5, 0.3, 0.2] and a prior q = [0.2, 0.2, 0.6]: the sampler draws p q / Z, and
    at temperature 0.5 (p q)^2 / Z; a zero prior changes nothing, bit for bit."""
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64)
    model = toys.make_model(toys.ExactDenoiser(p, 1, 3), LinearSchedule(), 3)
    z = torch.full((SAMPLES, 1), 3)
    prior = torch.cat([q.log(), torch.zeros(1, dtype=torch.float64)]).float().expand(SAMPLES, 1, 4)
    tilted = sample(model, z, steps=10, generator=torch.Generator().manual_seed(7), log_prior=prior)
    assert toys.chi2_pvalue(torch.bincount(tilted.tokens[:, 0], minlength=3), p * q) > LEVEL
    hot = sample(
        model, z, steps=10, temperature=0.5, generator=torch.Generator().manual_seed(8), log_prior=prior
    )
    assert toys.chi2_pvalue(torch.bincount(hot.tokens[:, 0], minlength=3), (p * q) ** 2) > LEVEL
    plain = sample(model, z, steps=10, generator=torch.Generator().manual_seed(9))
    zero = sample(
        model, z, steps=10, generator=torch.Generator().manual_seed(9), log_prior=torch.zeros(SAMPLES, 1, 4)
    )
    assert torch.equal(plain.tokens, zero.tokens)


# --- conditioning, padding, bookkeeping ----------------------------------------------------

VOCAB, PAD, MASK = 8, 6, 7  # values 0..5, a padding id, the mask id


def random_model(time_conditioning: bool = False, schedule=None) -> MaskedDiffusion:
    torch.manual_seed(0)
    cfg = DenoiserConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, time_conditioning=time_conditioning)
    model = MaskedDiffusion(
        Denoiser(cfg), schedule or CosineSchedule(), mask_id=MASK, allowed=torch.arange(VOCAB) < PAD
    )
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.mul_(5.0 if p.dim() == 2 else 1.0)
    return model


def template(batch: int = 16, n: int = 12, seed: int = 0):
    """Half the positions fixed, padding at the end (filled with PAD or with the mask id)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(0, PAD, (batch, n), generator=g)
    z[torch.rand(batch, n, generator=g) < 0.5] = MASK
    lengths = torch.randint(4, n + 1, (batch,), generator=g)
    valid = torch.arange(n)[None] < lengths[:, None]
    pad = torch.where(torch.rand(batch, n, generator=g) < 0.5, PAD, MASK)
    z = torch.where(valid, z, pad)
    return z, valid


def check_sample(out, z, valid, steps):
    todo = (z == MASK) & valid
    assert torch.equal(out.tokens[~todo], z[~todo]), "fixed positions and padding untouched"
    assert int((out.tokens[valid] == MASK).sum()) == 0, "no mask left"
    assert bool((out.tokens[todo] < PAD).all()), "only allowed values are drawn"
    assert bool((out.unmask_step[~todo] == -1).all())
    assert bool(((out.unmask_step[todo] >= 0) & (out.unmask_step[todo] < steps)).all())
    assert bool(out.confidence[~todo].isnan().all()) and bool(out.entropy[~todo].isnan().all())
    conf = out.confidence[todo]
    assert bool(((conf > 0) & (conf <= 1)).all())
    assert bool((out.entropy[todo] >= 0).all()) and bool((out.entropy[todo] <= math.log(PAD) + 1e-5).all())


@pytest.mark.parametrize("time_conditioning", [False, True])
@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_sampler_keeps_fixed_positions_and_padding(time_conditioning, grid):
    model = random_model(time_conditioning)
    z, valid = template()
    out = sample(model, z, valid, steps=20, grid=grid, generator=torch.Generator().manual_seed(0))
    check_sample(out, z, valid, 20)
    # Without ``valid`` the mask ids in the padding are filled too, and nothing else changes.
    out = sample(model, z, None, steps=20, grid=grid, generator=torch.Generator().manual_seed(0))
    assert int((out.tokens == MASK).sum()) == 0
    assert torch.equal(out.tokens[z != MASK], z[z != MASK])


def test_sampler_with_few_steps_decides_everything():
    model = random_model()
    z, valid = template(seed=1)
    for steps in (1, 2):
        out = sample(model, z, valid, steps=steps, generator=torch.Generator().manual_seed(0))
        check_sample(out, z, valid, steps)


def test_same_seed_same_samples_different_seed_different_samples():
    model = random_model()
    z, valid = template(batch=32, seed=2)
    a = sample(model, z, valid, steps=25, generator=torch.Generator().manual_seed(10))
    b = sample(model, z, valid, steps=25, generator=torch.Generator().manual_seed(10))
    c = sample(model, z, valid, steps=25, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.unmask_step, b.unmask_step)
    todo = (z == MASK) & valid
    # ~150 free positions over 6 values: two seeds agree on all of them with probability ~0.
    assert int((a.tokens != c.tokens)[todo].sum()) > 10


def test_cache_skips_calls_and_gives_identical_samples(toys):
    model, _ = exact_model(toys)
    z = torch.full((8, L), M)
    z[0, 1] = 1
    runs = {}
    for use_cache in (True, False):
        model.denoiser.calls = 0
        out = sample(model, z, steps=50, generator=torch.Generator().manual_seed(3), use_cache=use_cache)
        assert out.network_calls == model.denoiser.calls
        runs[use_cache] = out
    cached, plain = runs[True], runs[False]
    assert torch.equal(cached.tokens, plain.tokens)
    assert torch.equal(cached.unmask_step, plain.unmask_step)
    torch.testing.assert_close(cached.confidence, plain.confidence, equal_nan=True)
    # 8 sequences x <= 3 free tokens: at most 24 steps change anything, so most steps hit the cache.
    assert cached.network_calls <= 8 * L + 1 < plain.network_calls
    # Without the cache every step until the last unmasking calls the network.
    assert plain.network_calls == int(plain.unmask_step.max()) + 1


def test_time_conditioned_model_never_uses_the_cache():
    model = random_model(time_conditioning=True)
    calls = 0

    def counting(*args):
        nonlocal calls
        calls += 1

    model.denoiser.register_forward_hook(counting)  # every logit the model computes passes through it
    z = torch.full((1, 4), MASK)
    out = sample(model, z, steps=30, generator=torch.Generator().manual_seed(0))
    assert out.network_calls == calls == int(out.unmask_step.max()) + 1


def test_per_position_allowed_sets_are_respected():
    """Table columns: each position draws only from its own slice of the vocabulary."""
    torch.manual_seed(0)
    allowed = torch.zeros(4, VOCAB, dtype=torch.bool)
    for pos, ids in enumerate([[0, 1], [2, 3, 4], [5], [0, 5]]):
        allowed[pos, ids] = True
    cfg = DenoiserConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2, positions="learned", max_len=4)
    model = MaskedDiffusion(Denoiser(cfg), LinearSchedule(), mask_id=MASK, allowed=allowed)
    out = sample(model, torch.full((500, 4), MASK), steps=8, generator=torch.Generator().manual_seed(0))
    assert bool(allowed[torch.arange(4)[None].expand(500, 4), out.tokens].all())
    assert set(out.tokens[:, 3].tolist()) == {0, 5}, "both values of a two-value column appear"
    # A log prior reaches each position's own ids: a strong one on an allowed id decides it, one on an
    # id the position may not take changes nothing, under every decoding.
    prior = torch.zeros(500, 4, VOCAB)
    prior[:, 0, 1], prior[:, 1, 4], prior[:, 2, 0], prior[:, 3, 2] = 50.0, 50.0, 50.0, 50.0
    for decoding in ("ancestral", "confidence", "remask"):
        tilted = sample(
            model,
            torch.full((500, 4), MASK),
            steps=8,
            generator=torch.Generator().manual_seed(0),
            decoding=decoding,
            log_prior=prior,
        )
        assert (tilted.tokens[:, 0] == 1).all() and (tilted.tokens[:, 1] == 4).all()
        assert (tilted.tokens[:, 2] == 5).all() and set(tilted.tokens[:, 3].tolist()) == {0, 5}


def test_keyed_noise_makes_rows_independent_of_their_batch(toys):
    model, _ = exact_model(toys)
    z = torch.full((6, L), M)
    z[2, 0] = 1
    keys = torch.tensor([10, 11, 12, 13, 14, 15])
    batch = sample(model, z, steps=20, noise=KeyedNoise(seed=5, row_keys=keys))
    for i in range(6):
        alone = sample(model, z[i : i + 1], steps=20, noise=KeyedNoise(seed=5, row_keys=keys[i : i + 1]))
        assert torch.equal(alone.tokens[0], batch.tokens[i])
        assert torch.equal(alone.unmask_step[0], batch.unmask_step[i])
    other = sample(model, z, steps=20, noise=KeyedNoise(seed=6, row_keys=keys))
    assert not torch.equal(other.unmask_step, batch.unmask_step)
