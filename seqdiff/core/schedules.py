"""Masking schedules: alpha_t, the probability that a token is still unmasked at time t.

Every schedule returns ``alpha`` and ``dalpha`` either as a tensor shaped like ``t`` (the MD4
schedules, the same for every token value) or with one extra trailing axis of size V (GenMD4's
state-dependent schedule, one rate per token value). The engine only ever asks for
``alpha_for(t, x)`` / ``weight_for(t, x)`` (gathered at the token values) and ``alpha_all(t)``
(every value), so both kinds plug into the same loss and sampler.

Reference: md4_spec.md section 1 (MD4 schedules, the epsilon shift) and section 3 (GenMD4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

EPS = 1e-4  # md4_spec.md section 1: alpha(t) = (1 - 2 eps) * a(t) + eps


class MaskingSchedule(nn.Module):
    """Base class. Subclasses define the unshifted ``_alpha``/``_dalpha`` on [0, 1].

    The shift alpha = (1 - 2 eps) a(t) + eps keeps the loss weight finite at both ends
    (md4_spec.md section 1).

    Example:
        >>> s = LinearSchedule()
        >>> float(s.alpha(torch.tensor(0.0))) > 0.999
        True
    """

    state_dependent = False

    def _alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _dalpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def alpha(self, t: Tensor) -> Tensor:
        """alpha_t, shaped like ``t``."""
        return (1 - 2 * EPS) * self._alpha(t) + EPS

    def dalpha(self, t: Tensor) -> Tensor:
        """d alpha_t / dt, shaped like ``t``."""
        return (1 - 2 * EPS) * self._dalpha(t)

    def weight(self, t: Tensor) -> Tensor:
        """The positive cross-entropy weight -alpha'_t / (1 - alpha_t) of the MD4 NELBO (eq. 5)."""
        return -self.dalpha(t) / (1 - self.alpha(t))

    # The engine's interface: per-token quantities, broadcast over the sequence axis.
    def alpha_for(self, t: Tensor, x: Tensor) -> Tensor:
        """alpha_t for each token of ``x`` [B, N]; ``t`` is [B]."""
        return self.alpha(t)[:, None].expand(x.shape)

    def weight_for(self, t: Tensor, x: Tensor) -> Tensor:
        """The loss weight for each token of ``x`` [B, N]; ``t`` is [B]."""
        return self.weight(t)[:, None].expand(x.shape)

    def alpha_all(self, t: Tensor, vocab_size: int) -> Tensor:
        """alpha_t for every token value: [..., V] (constant along V for MD4 schedules)."""
        return self.alpha(t)[..., None].expand(*t.shape, vocab_size)


class LinearSchedule(MaskingSchedule):
    """a(t) = 1 - t; the loss weight is 1/t (the MD4 default)."""

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - t

    def _dalpha(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)


class PolynomialSchedule(MaskingSchedule):
    """a(t) = 1 - t^k; the loss weight is k/t."""

    def __init__(self, power: float = 2.0):
        super().__init__()
        self.power = power

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - t**self.power

    def _dalpha(self, t: Tensor) -> Tensor:
        return -self.power * t ** (self.power - 1)


class CosineSchedule(MaskingSchedule):
    """a(t) = 1 - cos(pi/2 (1 - t)); weight (pi/2) tan(pi/2 (1 - t))."""

    def _alpha(self, t: Tensor) -> Tensor:
        return 1 - torch.cos(math.pi / 2 * (1 - t))

    def _dalpha(self, t: Tensor) -> Tensor:
        return -(math.pi / 2) * torch.sin(math.pi / 2 * (1 - t))


class GeometricSchedule(MaskingSchedule):
    """alpha = exp(-beta_min^(1-t) beta_max^t) (MD4 Tab. 4), before the epsilon shift."""

    def __init__(self, beta_min: float = 1e-5, beta_max: float = 20.0):
        super().__init__()
        self.log_min, self.log_max = math.log(beta_min), math.log(beta_max)

    def _beta(self, t: Tensor) -> Tensor:
        return torch.exp((1 - t) * self.log_min + t * self.log_max)

    def _alpha(self, t: Tensor) -> Tensor:
        return torch.exp(-self._beta(t))

    def _dalpha(self, t: Tensor) -> Tensor:
        beta = self._beta(t)
        return -torch.exp(-beta) * beta * (self.log_max - self.log_min)


class LearnableStateSchedule(MaskingSchedule):
    """GenMD4's state-dependent schedule alpha_{t,i} = 1 - (1 - eps) t^{w_i} (md4_spec.md section 3).

    One rate ``w_i = softplus(w_raw_i)`` per rate group, initialised to the linear schedule
    (w = 1). ``groups`` maps each token id to its rate group: the identity gives one rate per
    token value (per amino acid, per table column value); mapping all values of a table column
    to one group ties the rates per column. A large w keeps a token unmasked for longer
    (it is masked late in the forward process and so decided early in the reverse one).

    Example:
        >>> s = LearnableStateSchedule(vocab_size=4)
        >>> s.rates().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """

    state_dependent = True

    def __init__(self, vocab_size: int, groups: Tensor | None = None, power_init: float = 1.0):
        super().__init__()
        if groups is None:
            groups = torch.arange(vocab_size)
        n_groups = int(groups.max()) + 1
        self.register_buffer("groups", groups.long(), persistent=True)
        raw = math.log(math.expm1(power_init))
        self.w_raw = nn.Parameter(torch.full((n_groups,), raw))

    def rates(self) -> Tensor:
        """w for every token id: [V]."""
        return F.softplus(self.w_raw)[self.groups]

    def alpha_for(self, t: Tensor, x: Tensor) -> Tensor:
        w = self.rates()[x]
        return 1 - (1 - EPS) * t[:, None] ** w

    def weight_for(self, t: Tensor, x: Tensor) -> Tensor:
        # -alpha'/(1 - alpha) = w/t exactly: the (1 - eps) factor cancels.
        return self.rates()[x] / t[:, None]

    def alpha_all(self, t: Tensor, vocab_size: int) -> Tensor:
        return 1 - (1 - EPS) * t[..., None] ** self.rates()


SCHEDULES = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "polynomial": PolynomialSchedule,
    "geometric": GeometricSchedule,
}


def make_schedule(
    name: str, vocab_size: int, groups: Tensor | None = None, **kwargs: float
) -> MaskingSchedule:
    """Build a schedule by name: linear, cosine, polynomial, geometric, or genmd4 (learnable).

    Example:
        >>> make_schedule("cosine", vocab_size=33).__class__.__name__
        'CosineSchedule'
    """
    if name == "genmd4":
        return LearnableStateSchedule(vocab_size, groups=groups, **kwargs)
    if name not in SCHEDULES:
        from seqdiff.errors import SeqdiffError

        raise SeqdiffError(f"unknown schedule {name!r}; choose one of {sorted([*SCHEDULES, 'genmd4'])}")
    return SCHEDULES[name](**kwargs)
