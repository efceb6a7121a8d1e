"""Shared toy denoisers and helpers for the engine tests (``tests/core``).

Two denoisers whose output distribution is known exactly:

- ``FixedDenoiser``: the same logits whatever the input (a context-free model), so every
  expectation of the NELBO has a closed form.
- ``ExactDenoiser``: the exact posterior marginals log p(x_n | unmasked tokens of z) of a
  distribution over few enough sequences to enumerate. It is the optimal MD4 denoiser: its
  continuous-time NELBO equals -log p(x) and its ancestral sampler draws from p.

Both match the ``Denoiser`` interface that ``MaskedDiffusion`` uses: a ``.cfg`` with
``vocab_size`` and ``time_conditioning=False``, and ``forward(tokens, valid, t) -> logits``.
They count their calls, so the sampler's cache can be checked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from scipy import stats
from torch import Tensor, nn

from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.schedules import MaskingSchedule


class FixedDenoiser(nn.Module):
    """Returns ``logits`` ([V] or [N, V]) for every sequence, whatever it sees."""

    def __init__(self, logits: Tensor):
        super().__init__()
        self.cfg = DenoiserConfig(vocab_size=logits.shape[-1], time_conditioning=False)
        self.logits = nn.Parameter(logits.clone(), requires_grad=False)
        self.calls = 0

    def forward(self, tokens: Tensor, valid: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        self.calls += 1
        b, n = tokens.shape
        logits = self.logits if self.logits.dim() == 2 else self.logits.expand(n, -1)
        return logits[:n].expand(b, n, -1)


class ExactDenoiser(nn.Module):
    """The exact conditionals of p over all sequences of length ``n`` over ``k`` values.

    ``probs`` [k**n] lists p(x) in lexicographic order of x (see ``index_of``). The mask id
    is ``k`` and the vocabulary ``k + 1``; the mask logit is irrelevant (``allowed`` drops it).
    The log-marginals of every partially masked input ((k+1)**n of them) are tabulated once.
    """

    def __init__(self, probs: Tensor, n: int, k: int):
        super().__init__()
        self.cfg = DenoiserConfig(vocab_size=k + 1, time_conditioning=False)
        self.n, self.k = n, k
        seqs = torch.tensor(list(itertools.product(range(k), repeat=n)))  # [S, n], lexicographic
        states = torch.tensor(list(itertools.product(range(k + 1), repeat=n)))  # every z
        seen = states != k
        consistent = (~seen[:, None, :] | (states[:, None, :] == seqs[None])).all(-1)  # [Z, S]
        weights = consistent.double() * probs.double()
        marg = torch.einsum("zs,snk->znk", weights, nn.functional.one_hot(seqs, k).double())
        log_marg = torch.log(marg / marg.sum(-1, keepdim=True))
        table = torch.cat([log_marg, torch.zeros_like(log_marg[..., :1])], dim=-1)  # [Z, n, k+1]
        self.register_buffer("seqs", seqs)
        self.register_buffer("states", states)
        self.register_buffer("table", table)
        self.calls = 0

    def forward(self, tokens: Tensor, valid: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        self.calls += 1
        return self.table[index_of(tokens, self.k + 1)]


def index_of(x: Tensor, k: int) -> Tensor:
    """Lexicographic index of each row of x [B, n] among the k**n sequences."""
    n = x.shape[-1]
    return (x * (k ** torch.arange(n - 1, -1, -1))).sum(-1)


def sampler_law(
    denoiser: ExactDenoiser, z0: Tensor, times: Tensor, alpha: Callable[[Tensor], Tensor]
) -> Tensor:
    """The exact law of the ancestral sampler's output, by dynamic programming over every z.

    Written independently of ``seqdiff.core.sampling``: from t to s a masked position becomes
    value v with probability mu_v (alpha_s,v - alpha_t,v) / (1 - alpha_t,v) and stays masked
    otherwise; positions move independently given z; the last step unmasks everything.
    ``alpha(t)`` gives alpha_t for every value: [k]. Returns p(x) over the k**n sequences.
    """
    k, n = denoiser.k, denoiser.n
    states = denoiser.states  # [Z, n]
    mu = denoiser.table[..., :k].exp()  # [Z, n, k]
    law = torch.zeros(len(states), dtype=torch.float64)
    law[int(index_of(z0[None], k + 1))] = 1.0
    masked = states == k
    for i in range(len(times) - 1):
        t, s = times[i], times[i + 1]
        if i == len(times) - 2:
            r = torch.ones(k, dtype=torch.float64)
        else:
            a_t, a_s = alpha(t), alpha(s)
            r = ((a_s - a_t) / (1 - a_t)).clamp(0, 1)
        move = mu * r  # [Z, n, k]
        stay = 1 - move.sum(-1, keepdim=True)
        factor = torch.cat([move, stay], dim=-1)  # [Z, n, k+1]: masked position -> outcome
        kept = nn.functional.one_hot(states, k + 1).double()  # unmasked position stays put
        factor = torch.where(masked[..., None], factor, kept)
        trans = torch.ones(len(states), len(states), dtype=torch.float64)
        for pos in range(n):
            trans = trans * factor[:, pos, :][:, states[:, pos]]
        law = law @ trans
    return law[index_of(denoiser.seqs, k + 1)]


def make_model(
    denoiser: nn.Module, schedule: MaskingSchedule, n_values: int, timesteps: int = 0, weighting: str = "elbo"
) -> MaskedDiffusion:
    """A model whose mask id is ``n_values`` and whose allowed set is 0..n_values-1."""
    allowed = torch.arange(denoiser.cfg.vocab_size) < n_values
    return MaskedDiffusion(
        denoiser, schedule, mask_id=n_values, allowed=allowed, timesteps=timesteps, weighting=weighting
    )


def toy_distribution(n: int = 3, k: int = 3, seed: int = 0) -> Tensor:
    """A strongly correlated distribution over k**n sequences, every p(x) >= 0.15 / k**n.

    Dirichlet(0.3) puts most mass on a few sequences (far from a product of marginals); the
    uniform floor keeps every expected count of a 6,000-sample chi-square test above 30.
    """
    g = torch.Generator().manual_seed(seed)
    gamma = torch._standard_gamma(torch.full((k**n,), 0.3, dtype=torch.float64), generator=g)
    p = gamma / gamma.sum()
    return 0.85 * p + 0.15 / k**n


def chi2_pvalue(counts: Tensor, probs: Tensor) -> float:
    """Pearson chi-square goodness of fit of ``counts`` to ``probs`` (df = categories - 1)."""
    counts = counts.double()
    expected = probs.double() / probs.sum() * counts.sum()
    stat = float(((counts - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(stat, df=len(counts) - 1))


def exact_entropy_markov(init: Tensor, trans: Tensor, length: int) -> float:
    """Entropy (nats) of a first-order Markov chain of ``length`` tokens."""
    h0 = float(-(init * init.log()).sum())
    h_step = float((init * -(trans * trans.log()).sum(1)).sum())
    return h0 + (length - 1) * h_step


@pytest.fixture
def toys() -> SimpleNamespace:
    """The helpers above as one namespace (two folders' conftest modules cannot be imported by name)."""
    return SimpleNamespace(
        FixedDenoiser=FixedDenoiser,
        ExactDenoiser=ExactDenoiser,
        index_of=index_of,
        make_model=make_model,
        toy_distribution=toy_distribution,
        chi2_pvalue=chi2_pvalue,
        sampler_law=sampler_law,
        exact_entropy_markov=exact_entropy_markov,
    )
