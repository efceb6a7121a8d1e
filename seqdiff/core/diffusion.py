"""The masked-diffusion model: forward masking, the MD4 / GenMD4 NELBO, and its evaluation.

``MaskedDiffusion`` binds a denoiser, a schedule, the mask id and which token ids each position
may take. It knows nothing of proteins or tables: a protein position may take any of the 20
amino acids; a table position (a column) may take only its own slice of the flat vocabulary.

Units: every loss is a negative ELBO in nats, per sequence (sum over its observed tokens).
Divide by the token count for nats per token, and by ln 2 for bits per token (md4_spec.md
section 2, ``loss2bpt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqdiff.core.denoiser import Denoiser
from seqdiff.core.schedules import EPS, MaskingSchedule
from seqdiff.errors import SeqdiffError

GENMD4_T1 = 1e-3  # md4_spec.md section 1: GenMD4 rescales t to [t1, 1]
WEIGHTINGS = ("elbo", "uniform")  # the training objectives of MaskedDiffusion


@dataclass
class Losses:
    """Per-sequence terms of one Monte-Carlo estimate of the NELBO.

    ``nelbo`` [B] is what is reported; ``objective`` is the scalar to differentiate (for GenMD4
    it adds the REINFORCE leave-one-out surrogate, whose value is noise (not zero, not even in
    expectation) but whose gradient is the score-function term for the rates); ``tokens`` [B]
    counts observed tokens.
    """

    nelbo: Tensor
    tokens: Tensor
    objective: Tensor


class MaskedDiffusion(nn.Module):
    """An absorbing-state (masked) discrete diffusion model over token sequences.

    Args:
        denoiser: maps (z_t, valid, t) to logits [B, N, V].
        schedule: any ``MaskingSchedule``; a state-dependent one makes this GenMD4.
        mask_id: the absorbing token; it is never predicted (SUBS, md4_spec.md section 4).
        allowed: bool [V] or [N, V]: the token ids a position may take. Everything else,
            the mask id included, gets probability zero.
        timesteps: 0 for the continuous-time NELBO, T > 0 for MD4's discrete-time one.
        weighting: what training minimises. "elbo": the NELBO itself (MD4's weight
            alpha'/(1 - alpha) on each masked token's cross-entropy). "uniform": the mean
            cross-entropy over masked tokens, every t weighted alike (BERT / MaskGIT; the analogue
            of DDPM's L_simple). It is not a bound, but it imputed tables better (BENCHMARKS.md,
            "The training objective"). The NELBO is reported either way. MD4 schedules only:
            GenMD4's rates learn through the ELBO.
        ordered: bool [N] or None: positions whose allowed ids are ordered bins of a number (a
            table's numeric columns). There a token may come with ``within`` in [0, 1], where its
            exact value lies inside its bin; the denoiser (with ``value_frequencies``) then sees
            the value's place on the whole scale, (rank of the bin + within) / number of bins.
            ``within`` of masked tokens is never shown.
        skip_unscored: the loss asks the denoiser for the scored (masked) tokens' outputs alone
            (``Denoiser.forward``'s ``needed``): the same loss and gradients, for less work. The
            scored tokens are found with ``nonzero``, a host synchronisation on a GPU and a graph
            break under ``torch.compile``, so compiled training sets it False (every position
            computed). An attribute: it may change between calls.

    Example:
        >>> from seqdiff.core.denoiser import DenoiserConfig
        >>> from seqdiff.core.schedules import LinearSchedule
        >>> net = Denoiser(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2))
        >>> allowed = torch.tensor([True, True, True, True, False])
        >>> model = MaskedDiffusion(net, LinearSchedule(), mask_id=4, allowed=allowed)
        >>> model.losses(torch.randint(0, 4, (3, 7))).nelbo.shape
        torch.Size([3])
        >>> z = torch.tensor([[0, 4, 2, 4]])  # 4 is the mask
        >>> slots = model.slot_log_probs(z)  # the 4 allowed ids and an empty slot at each position
        >>> slots.shape, bool(torch.allclose(slots.exp().sum(-1), torch.ones(1, 4)))
        (torch.Size([1, 4, 5]), True)
        >>> model.log_prob_of(slots, torch.tensor([[0, 1, 2, 3]])).shape
        torch.Size([1, 4])
    """

    exact_likelihood = False  # `losses` is a Monte-Carlo estimate of the NELBO (an upper bound)

    def __init__(
        self,
        denoiser: Denoiser,
        schedule: MaskingSchedule,
        mask_id: int,
        allowed: Tensor,
        timesteps: int = 0,
        weighting: str = "elbo",
        ordered: Tensor | None = None,
        skip_unscored: bool = True,
    ):
        super().__init__()
        self.skip_unscored = skip_unscored
        if timesteps and schedule.state_dependent:
            raise ValueError("the discrete-time NELBO is implemented for MD4 schedules only")
        # Reachable from a training config (model.weighting): a one-line SeqdiffError.
        if weighting not in WEIGHTINGS:
            raise SeqdiffError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
        if weighting != "elbo" and schedule.state_dependent:
            raise SeqdiffError("weighting: GenMD4 trains on the ELBO, its rates get their gradient from it")
        self.weighting = weighting
        self.denoiser = denoiser
        self.schedule = schedule
        self.mask_id = mask_id
        self.timesteps = timesteps
        allowed = allowed.bool().clone()
        allowed[..., mask_id] = False
        self.register_buffer("allowed", allowed, persistent=False)
        # Per-position output heads: row n of `slot_ids` lists the ids position n may take, so the
        # output layer is applied to those rows of its weight only (a table column with 32 values
        # costs 32 logits, not the whole flat vocabulary). The last slot is always empty (the mask
        # id, -inf): `slot_of` sends any id a position may not take there.
        rows = allowed if allowed.dim() == 2 else allowed[None]
        width = int(rows.sum(-1).max()) + 1
        slot_ids = torch.full((rows.shape[0], width), mask_id, dtype=torch.long)
        slot_of = torch.full(rows.shape, width - 1, dtype=torch.long)
        for n, row in enumerate(rows):
            ids = row.nonzero()[:, 0]
            slot_ids[n, : len(ids)] = ids
            slot_of[n, ids] = torch.arange(len(ids))
        self.register_buffer("slot_ids", slot_ids, persistent=False)
        self.register_buffer("slot_of", slot_of, persistent=False)
        self.register_buffer("n_allowed", rows.sum(-1), persistent=False)
        self.register_buffer("ordered", None if ordered is None else ordered.bool(), persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.denoiser.cfg.vocab_size

    @property
    def genmd4(self) -> bool:
        return self.schedule.state_dependent

    def log_probs(
        self, z: Tensor, valid: Tensor | None = None, t: Tensor | None = None, within: Tensor | None = None
    ) -> Tensor:
        """log mu_theta(z_t, t): float32 [B, N, V], -inf outside each position's allowed set."""
        slots = self.slot_log_probs(z, valid, t, within)
        full = slots.new_full((*z.shape, self.vocab_size), float("-inf"))
        return full.scatter_(-1, self.position_ids(z.shape[1]).expand_as(slots), slots)

    def slot_log_probs(
        self,
        z: Tensor,
        valid: Tensor | None = None,
        t: Tensor | None = None,
        within: Tensor | None = None,
        needed: Tensor | None = None,
    ) -> Tensor:
        """log mu_theta(z_t, t) over each position's own ids: float32 [B, N, K], where slot k of
        position n is token ``slot_ids[n, k]`` (or ``slot_ids[0, k]`` when every position shares
        one set) and empty slots are -inf. What training uses: no logits outside the allowed sets.
        With ``needed`` (bool [B, N]) only those positions' values are meaningful (the denoiser
        skips work elsewhere; see ``Denoiser.forward``). The class example calls it.
        """
        ids = self.position_ids(z.shape[1])
        if isinstance(self.denoiser, Denoiser):
            h = self.denoiser(
                z, valid, t, logits=False, values=self.scale_positions(z, within), needed=needed
            )
            # [1 or N, K, dim], as an embedding lookup: its backward is cheaper than indexing's
            weight = F.embedding(ids, self.denoiser.head.weight)
            logits = h @ weight[0].T if ids.shape[0] == 1 else torch.einsum("bnd,nkd->bnk", h, weight)
        else:  # a denoiser whose output layer is not separable (ESM-2): pick from the full logits
            logits = self.denoiser(z, valid, t).gather(-1, ids.expand(*z.shape, -1))
        return torch.log_softmax(logits.float().masked_fill(ids == self.mask_id, float("-inf")), dim=-1)

    def scale_positions(self, z: Tensor, within: Tensor | None) -> Tensor | None:
        """Each visible token's exact place on its ordered position's scale, (rank of its bin +
        ``within``) / number of bins, in [0, 1]; NaN at masked tokens, unordered positions and
        unknown ``within``. None without ``ordered`` or ``within``.

        Example:
            >>> from seqdiff.core.denoiser import DenoiserConfig
            >>> from seqdiff.core.schedules import LinearSchedule
            >>> net = Denoiser(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2))
            >>> bins = torch.tensor([[True, True, True, True, False]] * 2)  # 2 positions, 4 bins each
            >>> model = MaskedDiffusion(net, LinearSchedule(), 4, bins, ordered=torch.tensor([True, True]))
            >>> model.scale_positions(torch.tensor([[1, 4]]), torch.tensor([[0.5, 0.5]]))
            tensor([[0.3750,    nan]])
        """
        if within is None or self.ordered is None:
            return None
        n = z.shape[1]
        rank = self.slot_of[torch.arange(n, device=z.device), z.clamp(max=self.vocab_size - 1)]
        position = (rank + within) / self.n_allowed[:n]
        hidden = (z == self.mask_id) | ~self.ordered[:n]
        return position.masked_fill(hidden, float("nan"))

    def position_ids(self, n: int) -> Tensor:
        """The token ids of the slots of ``slot_log_probs`` for ``n`` positions: [1, K] when every
        position shares one set, else [n, K] (unused slots: the mask id)."""
        return self.slot_ids if self.slot_ids.shape[0] == 1 else self.slot_ids[:n]

    def log_prob_of(self, slot_logp: Tensor, x: Tensor) -> Tensor:
        """log mu[x] [B, N] from ``slot_log_probs``; -inf where position n may not take x.

        The class example calls it.
        """
        n = x.shape[1]
        rows = torch.arange(n, device=x.device) if self.slot_of.shape[0] > 1 else x.new_zeros(n)
        local = self.slot_of[rows, x.clamp(max=self.vocab_size - 1)]
        return slot_logp.gather(-1, local[..., None])[..., 0]

    def sample_t(self, batch: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """Stratified (antithetic) times t_i = (u + i/B) mod 1 (MD4 Alg. 1)."""
        u = torch.rand((), generator=generator, device=device)
        t = (u + torch.arange(batch, device=device) / batch) % 1.0
        if self.genmd4:
            t = GENMD4_T1 + (1 - GENMD4_T1) * t
        elif self.timesteps:
            t = (torch.floor(t * self.timesteps) + 1) / self.timesteps
        return t

    def forward_mask(
        self, x: Tensor, observed: Tensor, t: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sample z_t ~ q(z_t | x): each observed token masked with probability 1 - alpha_t(x).

        Returns (z_t, masked) where ``masked`` marks observed tokens that were masked.
        """
        p_mask = 1 - self.schedule.alpha_for(t, x.clamp(max=self.vocab_size - 1))
        u = torch.rand(x.shape, generator=generator, device=x.device)
        masked = (u < p_mask) & observed
        z = torch.where(masked | ~observed, torch.full_like(x, self.mask_id), x)
        return z, masked

    def observed(self, x: Tensor, valid: Tensor | None) -> Tensor:
        """Tokens that carry data: not padding and not missing (a mask in the data itself)."""
        obs = x != self.mask_id
        return obs if valid is None else obs & valid

    def losses(
        self,
        x: Tensor,
        valid: Tensor | None = None,
        t: Tensor | None = None,
        generator: torch.Generator | None = None,
        within: Tensor | None = None,
    ) -> Losses:
        """One Monte-Carlo estimate of the NELBO for each sequence of ``x`` [B, N].

        Positions where ``x`` is the mask id are missing data: they are masked throughout and
        contribute nothing (training uses observed tokens only). ``valid`` marks non-padding;
        ``within`` (see ``ordered``) is shown for the tokens left unmasked.
        """
        if t is None:
            t = self.sample_t(x.shape[0], x.device, generator)
        observed = self.observed(x, valid)
        tokens = observed.sum(-1).float()
        if not self.genmd4:
            z, masked = self.forward_mask(x, observed, t, generator)
            nll = self._masked_nll(x, z, masked, valid, t, within)
            nelbo = self._md4_weight(t) * nll + self._md4_recon(tokens)
            if self.weighting == "elbo":
                return Losses(nelbo.detach(), tokens, nelbo.sum())
            # Scaled so that objective / observed tokens (how training normalises) is the mean
            # cross-entropy per masked token.
            scale = tokens.sum() / masked.sum().clamp(min=1)
            return Losses(nelbo.detach(), tokens, nll.sum() * scale)
        # GenMD4 (md4_spec.md section 3): two forward samples at the same t, REINFORCE-LOO for w.
        samples = [self.forward_mask(x, observed, t, generator) for _ in range(2)]
        integrands = [self.genmd4_integrand(x, z, m, valid, t, within) for z, m in samples]
        log_qs = [self.genmd4_log_q(x, m, observed, t) for _, m in samples]
        recon = self.genmd4_recon(x, observed)
        nelbo = 0.5 * (integrands[0] + integrands[1]) + recon
        objective = nelbo + reinforce_loo(integrands, log_qs)
        return Losses(nelbo.detach(), tokens, objective.sum())

    def _masked_nll(
        self,
        x: Tensor,
        z: Tensor,
        masked: Tensor,
        valid: Tensor | None,
        t: Tensor,
        within: Tensor | None = None,
    ) -> Tensor:
        """Sum over the masked tokens of -log mu[x], per sequence [B]."""
        logp = self._training_log_probs(z, masked, valid, t, within)
        nll = torch.where(masked, -self.log_prob_of(logp, x), torch.zeros(x.shape, device=x.device))
        return nll.sum(-1)

    def _training_log_probs(
        self, z: Tensor, masked: Tensor, valid: Tensor | None, t: Tensor, within: Tensor | None
    ) -> Tensor:
        """``slot_log_probs`` for a loss that scores the ``masked`` tokens (the others' values are
        not meaningful when ``skip_unscored``)."""
        time = t if self.denoiser.cfg.time_conditioning else None
        return self.slot_log_probs(z, valid, time, within, needed=masked if self.skip_unscored else None)

    def _md4_weight(self, t: Tensor) -> Tensor:
        """MD4 eq. 5's weight at t (continuous), or T (alpha_s - alpha_t)/(1 - alpha_t) (discrete,
        md4_spec.md section 2): the NELBO integrand is this times the masked tokens' NLL."""
        if not self.timesteps:
            return self.schedule.weight(t)
        s = t - 1 / self.timesteps
        a_t, a_s = self.schedule.alpha(t), self.schedule.alpha(s)
        return self.timesteps * (a_s - a_t) / (1 - a_t)

    def _md4_recon(self, tokens: Tensor) -> Tensor:
        """N (1 - alpha_0) log V: the tokens still masked at t=0 (md4_spec.md section 2)."""
        a0 = self.schedule.alpha(torch.zeros((), device=tokens.device))
        n_values = self.allowed.sum(-1).float().max()
        return tokens * (1 - a0) * torch.log(n_values)

    def genmd4_integrand(
        self,
        x: Tensor,
        z: Tensor,
        masked: Tensor,
        valid: Tensor | None,
        t: Tensor,
        within: Tensor | None = None,
    ) -> Tensor:
        """GenMD4 eq. 12 at one t, times (1 - t1) for the rescaled time, per sequence.

        Per masked token: (1/t) [ -w_x (1 + log mu_x) + sum_i w_i mu_i ], which is MD4's
        (w/t)(-log mu_x) when every w_i equals w.
        """
        w = self.schedule.rates()
        logp = self._training_log_probs(z, masked, valid, t, within)
        xc = x.clamp(max=self.vocab_size - 1)
        logp_x = self.log_prob_of(logp, x)
        # Unscored tokens (padding, missing) may hold ids outside the allowed set, where log mu is
        # -inf: zero them before they meet w, or the backward pass gives the rates 0 * inf = NaN.
        logp_x = torch.where(masked, logp_x, torch.zeros_like(logp_x))
        expected_w = (logp.exp() * w[self.position_ids(x.shape[1])]).sum(-1)
        per_token = (-w[xc] * (1 + logp_x) + expected_w) / t[:, None]
        per_token = torch.where(masked, per_token, torch.zeros_like(per_token))
        return (1 - GENMD4_T1) * per_token.sum(-1)

    def genmd4_log_q(self, x: Tensor, masked: Tensor, observed: Tensor, t: Tensor) -> Tensor:
        """log q(z_t | x) of a forward sample, per sequence (needed for REINFORCE)."""
        w_x = self.schedule.rates()[x.clamp(max=self.vocab_size - 1)]
        log_t = torch.log(t)[:, None]
        log_mask = math.log(1 - EPS) + w_x * log_t
        log_keep = torch.log1p(-(1 - EPS) * torch.exp(w_x * log_t))
        per_token = torch.where(masked, log_mask, log_keep)
        return torch.where(observed, per_token, torch.zeros_like(per_token)).sum(-1)

    def genmd4_recon(self, x: Tensor, observed: Tensor) -> Tensor:
        """Reconstruction at t1 (md4_spec.md section 3):
        -(1 - eps) sum_n t1^{w_x} (w_x log t1 - logsumexp_i(w_i log t1)) over allowed i."""
        w = self.schedule.rates()
        log_t1 = math.log(GENMD4_T1)
        scores = (w * log_t1).masked_fill(~self.allowed, float("-inf"))  # [V] or [N, V]
        lse = torch.logsumexp(scores, dim=-1)  # [] or [N]
        if lse.dim() == 1:
            lse = lse[: x.shape[1]]
        w_x = w[x.clamp(max=self.vocab_size - 1)]
        per_token = -(1 - EPS) * GENMD4_T1**w_x * (w_x * log_t1 - lse)
        return torch.where(observed, per_token, torch.zeros_like(per_token)).sum(-1)


def learned_rates(model: MaskedDiffusion, names: dict[int, str]) -> list[tuple[str, float]]:
    """GenMD4's learned rates w by token name, largest first ("which tokens unmask first").

    A larger w keeps a token unmasked longer in the forward process, so the reverse process
    decides it earlier. ``names`` maps the token ids to report to their names.

    Example (an untrained model: every rate is still its initial 1.0):
        >>> from seqdiff.core.denoiser import DenoiserConfig
        >>> from seqdiff.core.schedules import LearnableStateSchedule
        >>> net = Denoiser(DenoiserConfig(vocab_size=6, dim=32, n_layers=1, n_heads=2))
        >>> allowed = torch.tensor([True, True, True, True, True, False])
        >>> model = MaskedDiffusion(net, LearnableStateSchedule(vocab_size=6), mask_id=5, allowed=allowed)
        >>> learned_rates(model, {4: "L", 3: "A"})
        [('L', 1.0), ('A', 1.0)]
    """
    if not model.genmd4:
        raise ValueError("an MD4 model has one schedule shared by every token; no learned rates")
    w = model.schedule.rates().detach().cpu()
    return sorted(((name, float(w[i])) for i, name in names.items()), key=lambda item: -item[1])


def reinforce_loo(values: list[Tensor], log_qs: list[Tensor]) -> Tensor:
    """REINFORCE with a leave-one-out baseline over two samples (GenMD4 App. I.2).

    Autodiff through a sampled mask cannot see how the masking probabilities move with w, and
    the naive estimator is biased toward w -> 0 (Shi et al. 2024, section 6). The score-function
    term 1/2 sg(L1 - L2)(log q1 - log q2) adds the missing part with the other sample as the
    baseline. Only its gradient matters: in expectation it is E[L grad log q], because
    E[grad log q] = 0. Its value is not zero (in expectation it is Cov(L, log q)), so it is kept
    out of the reported NELBO.
    """
    (l1, l2), (q1, q2) = values, log_qs
    return 0.5 * (l1 - l2).detach() * (q1 - q2)
