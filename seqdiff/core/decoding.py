"""Decoding strategies of the sampler (their settings: `seqdiff.core.sampler_settings`).

Each step from time t to s < t decides some masked positions. The strategies differ in which ones:

- ``ancestral``: MD4's reverse step. Each masked position moves on its own, to value i with
  probability mu_i (alpha_{s,i} - alpha_{t,i}) / (1 - alpha_{t,i}) (md4_spec.md section 5).
- ``confidence``: confidence-ordered unmasking (MaskGIT; DPLM). A token is drawn at every masked
  position. Each row then keeps the same expected number of decisions as the ancestral step would
  make (its masked positions' summed move probabilities), taking its most confident positions:
  those with the highest log-probability of their drawn token, plus Gumbel noise scaled by
  ``order_noise``. At ``order_noise=0`` the order is pure confidence.
- ``remask``: ReMDM-cap (Wang et al. 2025, arXiv 2503.00307). In the same step as the unmasking, a
  position the sampler decided earlier is masked again with probability
  sigma_t = min(eta, (1 - alpha_s) / alpha_t), and masked positions unmask at the raised rate
  (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t). Then P(unmasked at s) is still alpha_s, so
  the model sees inputs like the ones it was trained on. The cap keeps each re-masking chance
  small, and (1 - alpha_s) / alpha_t takes it to zero as t nears 0, so the last steps settle.
  GenMD4's per-value alpha gives a per-value sigma.
- ``first-hitting``: the first-hitting sampler (Zheng et al. 2024, arXiv 2409.02908). Under MD4's
  schedules the masked positions of a row are decided one at a time, in uniformly random order, and a
  time-agnostic model's prediction does not depend on when. So a row with m masked positions needs
  exactly m steps, each deciding one position given every earlier decision: draws from the model's
  joint distribution, with no two positions drawn independently in the same step (as the ancestral
  step draws them). With fewer steps than masked positions a row decides an even share at each step.
  It ignores the time grid's pace (and GenMD4's per-value rates, whose order depends on the value).

Given positions are never touched. The last step decides every position still masked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def unmask_rate(a_t: Tensor, a_s: Tensor, sigma: Tensor) -> Tensor:
    """P(a masked position becomes value i | it is i) from t to s, per value, when decided positions are
    masked again with probability ``sigma`` (0: the ancestral rate). Keeps P(unmasked at s) = alpha_s.

    Example:
        >>> a_t, a_s = torch.tensor([0.5]), torch.tensor([0.75])
        >>> unmask_rate(a_t, a_s, torch.tensor([0.0])).item(), unmask_rate(a_t, a_s, torch.tensor([0.5])).item()
        (0.5, 1.0)
    """
    return ((a_s - a_t + sigma * a_t) / (1 - a_t)).clamp(0, 1)


def remask_probability(a_t: Tensor, a_s: Tensor, eta: float) -> Tensor:
    """ReMDM-cap's sigma_t = min(eta, (1 - alpha_s) / alpha_t), per value: the largest (up to ``eta``)
    that keeps ``unmask_rate`` a probability.

    Example:
        >>> sigma = remask_probability(torch.tensor([0.5, 0.9]), torch.tensor([0.6, 0.99]), eta=0.1)
        >>> [round(v, 4) for v in sigma.tolist()]
        [0.1, 0.0111]
    """
    return ((1 - a_s) / a_t).clamp(max=eta)


def unmask_counts(expected: Tensor, owed: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """How many positions each row decides this step, and the fraction it still owes after.

    Rounding the running total rather than each step keeps the ancestral pace when a step's share
    is below one position (the cosine grid's first steps): the owed fractions add up.

    Example:
        >>> owed = torch.zeros(1, dtype=torch.float64)
        >>> for _ in range(3):
        ...     count, owed = unmask_counts(torch.tensor([0.4], dtype=torch.float64), owed, torch.tensor([5]))
        ...     print(int(count))
        0
        1
        0
    """
    total = owed + expected
    count = torch.minimum(torch.round(total), masked.to(total.dtype))
    return count.long(), total - count


def gumbel(u: Tensor) -> Tensor:
    """Standard Gumbel noise from uniforms in [0, 1) (0 is moved to the smallest positive float)."""
    return -torch.log(-torch.log(u.clamp(min=torch.finfo(u.dtype).tiny)))


def most_confident(score: Tensor, todo: Tensor, count: Tensor) -> Tensor:
    """The ``count[b]`` positions of row b with the highest ``score`` among ``todo`` [B, N] (ties: the
    first position first), as a bool [B, N].

    Example:
        >>> todo = torch.tensor([[True, True, False, True]])
        >>> most_confident(torch.tensor([[0.1, 0.5, 0.9, 0.3]]), todo, torch.tensor([2])).tolist()
        [[False, True, False, True]]
    """
    score = score.masked_fill(~todo, -math.inf)
    order = score.argsort(dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(
        -1, order, torch.arange(score.shape[-1], device=score.device).expand_as(order)
    )
    return todo & (rank < count[:, None])


def even_counts(masked: Tensor, steps_left: int) -> Tensor:
    """First-hitting's decisions per row this step: its masked positions shared evenly over the steps
    left (one a step when there are as many steps as positions; all of them at the last step).

    Example:
        >>> even_counts(torch.tensor([3, 7, 0]), 3).tolist()
        [1, 3, 0]
    """
    return (masked + steps_left - 1) // steps_left
