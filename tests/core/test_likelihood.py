"""The NELBO as a likelihood bound: tight for the exact denoiser, an upper bound otherwise.

- With the exact conditionals p(x_n | unmasked tokens) of a distribution (``ExactDenoiser``),
  the continuous-time NELBO of each sequence equals -log p(x): it is the any-order
  autoregressive NLL averaged over orders (MD4 section 3), and every order gives -log p(x).
- Discrete time and GenMD4 with unequal rates give a looser bound: in expectation over p it
  is >= the entropy H(p).
- ``evaluate_nelbo`` reports per-token nats with a standard error over passes.
- A small ``Denoiser`` trained on a Markov chain of known entropy reaches a NELBO above the
  entropy and within 5% of it.

Monte-Carlo tolerances are 4 standard errors (std / sqrt(rows), conservative for stratified t)
plus, where stated, the O(eps) and O(t1) end corrections of the schedules.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqdiff.core.autoregressive import AutoregressiveLM
from seqdiff.core.denoiser import Denoiser, DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.evaluation import NelboReport, evaluate_nelbo
from seqdiff.core.schedules import EPS, CosineSchedule, LearnableStateSchedule, LinearSchedule

K, L = 3, 3  # 3 values, sequences of 3 tokens: 27 sequences
REPEATS = 2000


def per_sequence_nelbo(toys, schedule, timesteps: int = 0, seed: int = 0):
    """Mean and standard error of the NELBO of each of the 27 sequences, and -log p(x)."""
    p = toys.toy_distribution(L, K, seed=5)
    model = toys.make_model(toys.ExactDenoiser(p, L, K), schedule, K, timesteps=timesteps)
    # Tile (not repeat_interleave): losses() draws one stratified sweep t_i = (u + i/B) mod 1
    # over the batch, so row i of sequence i mod 27 gets times spread evenly over [0, 1].
    x = model.denoiser.seqs.repeat(REPEATS, 1)
    with torch.no_grad():
        nelbo = model.losses(x, generator=torch.Generator().manual_seed(seed)).nelbo.double()
    nelbo = nelbo.view(REPEATS, K**L)
    mean = nelbo.mean(0)
    stderr = nelbo.std(0) / math.sqrt(REPEATS)
    return mean, stderr, -p.log(), p


@pytest.mark.parametrize("schedule", [LinearSchedule(), CosineSchedule()], ids=["linear", "cosine"])
def test_exact_denoiser_nelbo_is_tight(toys, schedule):
    mean, stderr, nll, p = per_sequence_nelbo(toys, schedule)
    # End corrections: alpha runs over [eps, 1 - eps] and the recon term adds N eps log K: < 1e-3.
    gap = mean - nll
    assert bool((gap.abs() < 4 * stderr + 1e-3).all()), (gap / stderr).tolist()
    # Per sequence the error is up to ~0.5 nats (rare sequences, weight 1/t); over p it is small.
    se = float((p**2 * stderr**2).sum().sqrt())
    entropy = float((p * nll).sum())
    assert abs(float((p * mean).sum()) - entropy) < 4 * se + 1e-3
    assert se < 0.01 * entropy, "the test has power: H(p) is estimated to 1%"


def test_genmd4_equal_rates_is_tight(toys):
    """GenMD4 with w = 1 is MD4 linear on [t1, 1] plus the recon term: tight up to O(t1 N log K)."""
    mean, stderr, nll, _ = per_sequence_nelbo(toys, LearnableStateSchedule(K + 1), seed=1)
    gap = mean - nll
    assert bool((gap.abs() < 4 * stderr + 5e-3).all()), (gap / stderr).tolist()


def test_looser_bounds_are_still_bounds(toys):
    """Discrete time (T=2) and GenMD4 with unequal rates: E_p[NELBO] >= H(p), strictly for T=2."""
    schedule = LearnableStateSchedule(K + 1)
    with torch.no_grad():
        schedule.w_raw.copy_(torch.tensor([-1.5, 0.5, 2.5, 0.0]))
    for sched, T in [(LinearSchedule(), 2), (schedule, 0)]:
        mean, stderr, nll, p = per_sequence_nelbo(toys, sched, timesteps=T, seed=2)
        expected, entropy = float((p * mean).sum()), float((p * nll).sum())
        se = float((p**2 * stderr**2).sum().sqrt())
        assert expected > entropy - 4 * se, (expected, entropy, se)
        if T == 2:
            # Two steps unmask tokens jointly from independent marginals: a real gap.
            assert expected > entropy + 8 * se, (expected, entropy, se)


def test_evaluate_nelbo_with_context_free_denoiser(toys):
    """For fixed logits the expected NELBO per token is (1 - 2 eps) mean CE + eps log V."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, generator=g)
    model = toys.make_model(toys.FixedDenoiser(logits), LinearSchedule(), 5)
    x = torch.randint(0, 5, (4096, 4), generator=g)
    valid = torch.rand(4096, 4, generator=g) < 0.9
    valid[:, 0] = True
    batches = [(x[i : i + 1024], valid[i : i + 1024]) for i in range(0, 4096, 1024)]
    report = evaluate_nelbo(model, batches, passes=6, seed=1)

    logp = torch.log_softmax(logits[:, :5].double(), -1)
    nll = -logp[torch.arange(4)[None].expand_as(x), x]
    expected = ((1 - 2 * EPS) * float((nll * valid).sum()) / float(valid.sum())) + EPS * math.log(5)
    assert report.tokens == int(valid.sum()) and report.sequences == 4096 and report.passes == 6
    assert report.stderr_nats > 0
    assert abs(report.nats_per_token - expected) < 4 * report.stderr_nats, (report, expected)
    assert report.stderr_nats < 0.01 * expected
    assert report.bits_per_token == pytest.approx(report.nats_per_token / math.log(2))
    assert report.perplexity == pytest.approx(math.exp(report.nats_per_token))
    d = report.to_dict()
    lo, hi = d["perplexity_ci95"]
    assert lo < d["perplexity"] < hi

    again = evaluate_nelbo(model, batches, passes=6, seed=1)
    assert again.nats_per_token == report.nats_per_token, "same seed, same estimate"
    single = evaluate_nelbo(model, batches, passes=1, seed=1)
    assert math.isnan(single.stderr_nats)
    d = single.to_dict()
    assert d["stderr_nats"] is None and d["perplexity_ci95"] is None
    json.dumps(d, allow_nan=False)


def test_exact_likelihood_needs_one_pass():
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(vocab_size=6, dim=32, n_layers=1, n_heads=2, causal=True))
    lm = AutoregressiveLM(net, bos_id=4, missing_id=5, allowed=torch.tensor([1, 1, 1, 1, 0, 0]).bool())
    x = torch.randint(0, 4, (3, 9))
    report = evaluate_nelbo(lm, [(x, None)], passes=5)
    with torch.no_grad():
        expected = float(lm.losses(x).nelbo.sum()) / x.numel()
    assert report.passes == 1 and report.stderr_nats == 0.0
    assert report.nats_per_token == pytest.approx(expected, rel=1e-6)
    assert report.to_dict()["perplexity_ci95"] == [report.perplexity, report.perplexity]


def test_nelbo_report_units():
    r = NelboReport(nats_per_token=math.log(4), stderr_nats=0.0, tokens=10, sequences=2, passes=3)
    assert r.bits_per_token == pytest.approx(2.0)
    assert r.perplexity == pytest.approx(4.0)


# --- training on a Markov chain of known entropy ------------------------------------------

TRANS = torch.tensor(
    [[0.80, 0.10, 0.05, 0.05], [0.05, 0.10, 0.80, 0.05], [0.10, 0.05, 0.05, 0.80], [0.60, 0.20, 0.10, 0.10]],
    dtype=torch.float64,
)
CHAIN_LEN = 8


def stationary(trans: torch.Tensor) -> torch.Tensor:
    evals, evecs = torch.linalg.eig(trans.T)
    pi = evecs[:, torch.argmin((evals - 1).abs())].real
    return pi / pi.sum()


def draw_chain(n: int, g: torch.Generator) -> torch.Tensor:
    init = stationary(TRANS)
    x = torch.empty(n, CHAIN_LEN, dtype=torch.long)
    x[:, 0] = torch.multinomial(init.expand(n, 4), 1, generator=g)[:, 0]
    for k in range(1, CHAIN_LEN):
        x[:, k] = torch.multinomial(TRANS[x[:, k - 1]], 1, generator=g)[:, 0]
    return x


def chain_log_prob(x: torch.Tensor) -> torch.Tensor:
    init = stationary(TRANS)
    return init[x[:, 0]].log() + TRANS[x[:, :-1], x[:, 1:]].log().sum(-1)


@pytest.mark.slow
def test_trained_denoiser_nelbo_bounds_and_approaches_entropy(toys):
    """~25 s: 300 Adam steps of batch 256 on fresh samples, then 4,096 held-out sequences."""
    torch.manual_seed(0)
    entropy = toys.exact_entropy_markov(stationary(TRANS), TRANS, CHAIN_LEN) / CHAIN_LEN  # 0.815 nats
    marginal = float(-(stationary(TRANS) * stationary(TRANS).log()).sum())  # 1.126 nats
    assert entropy < 0.75 * marginal, "the chain's dependence is worth learning"

    net = Denoiser(DenoiserConfig(vocab_size=5, dim=64, n_layers=2, n_heads=4))
    model = MaskedDiffusion(net, LinearSchedule(), mask_id=4, allowed=torch.arange(5) < 4)
    steps = 300
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.99))
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 20) * (1 - i / steps))
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        out = model.losses(draw_chain(256, g), generator=g)
        opt.zero_grad()
        (out.objective / out.tokens.sum()).backward()
        opt.step()
        lr.step()

    held_out = draw_chain(4096, torch.Generator().manual_seed(2))
    report = evaluate_nelbo(model, [(held_out[i : i + 1024], None) for i in range(0, 4096, 1024)], passes=8)
    # Two sources of error: the passes (t and masks; report.stderr_nats, ~0.006) and the finite
    # held-out set, whose sampling error is that of its mean log-likelihood (~0.006 per token).
    data_se = float((-chain_log_prob(held_out) / CHAIN_LEN).std()) / math.sqrt(len(held_out))
    se = math.hypot(report.stderr_nats, data_se)
    assert report.nats_per_token >= entropy - 3 * se, (report, entropy, se)
    assert report.nats_per_token <= 1.05 * entropy, (report, entropy)
