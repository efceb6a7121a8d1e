"""Sampling a masked-diffusion model, with fixed positions.

One loop serves MD4 and GenMD4. From time t to s < t a masked position becomes value i with
probability mu_i (alpha_{s,i} - alpha_{t,i}) / (1 - alpha_{t,i}) and stays masked otherwise.
For an MD4 schedule alpha does not depend on i and this is MD4 Alg. 2; for GenMD4's
alpha_{t,i} = 1 - (1 - eps) t^{w_i} it is P(x_s = i) = (1 - (s/t)^{w_i}) mu_i and
P(stay masked) = sum_i mu_i (s/t)^{w_i} (md4_spec.md section 5). The schedule's
``alpha_all`` is the only place the two differ. That is ``decoding="ancestral"``; the other
decoding strategies (``seqdiff.core.decoding``) choose differently which positions a step decides.

Positions that are not the mask id at the start are kept as they are (infilling, motif
scaffolding, conditional table rows). Categorical draws happen in float64 by inverting the
CDF, so low-probability tokens are not truncated (md4_spec.md section 5, MD4 App. G).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from seqdiff.core.decoding import (
    even_counts,
    gumbel,
    most_confident,
    remask_probability,
    unmask_counts,
    unmask_rate,
)
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.noise import GeneratorNoise
from seqdiff.core.sampler_settings import DEFAULT_SETTINGS, GRIDS, SamplerSettings

Noise = Callable[[int, tuple[int, ...], torch.device], Tensor]


@dataclass
class SampleResult:
    """What the sampler returns, all [B, N].

    ``unmask_step`` is the step (0-based) at which a position was decided (finally, if remasking
    decided it again), -1 for positions that were given. ``confidence`` is the probability of the chosen token under the distribution it
    was drawn from and ``entropy`` (nats) that distribution's entropy; both NaN where given.
    ``network_calls`` counts denoiser evaluations (fewer than steps when the cache hits).
    ``within`` is where each value lies inside its token's bin, for a model with ordered
    positions: as given, or drawn uniformly in [0, 1] as the token is decided; None otherwise.
    """

    tokens: Tensor
    unmask_step: Tensor
    confidence: Tensor
    entropy: Tensor
    network_calls: int
    within: Tensor | None = None


def time_grid(steps: int, grid: str = "cosine", device: torch.device | None = None) -> Tensor:
    """Times 1 = t_0 > t_1 > ... > t_steps = 0 (float64).

    ``cosine`` maps the uniform grid through t -> cos(pi/2 (1 - t)) as MD4 does: small steps
    early, when almost everything is masked (md4_spec.md section 5).

    Example:
        >>> time_grid(4, "uniform").tolist()
        [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
    if grid == "cosine":
        t = torch.cos(math.pi / 2 * (1 - t))
        t[-1] = 0.0
    elif grid != "uniform":
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, not {grid!r}")
    return t


def shape_probs(log_probs: Tensor, temperature: float = 1.0, top_p: float = 1.0) -> Tensor:
    """Temperature and nucleus (top-p) filtering of log-probabilities -> float64 probabilities.

    Example:
        >>> p = shape_probs(torch.log(torch.tensor([[0.6, 0.3, 0.1]])), top_p=0.8)
        >>> [round(v, 3) for v in p[0].tolist()]
        [0.667, 0.333, 0.0]
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    probs = torch.softmax(log_probs.double() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest set whose mass reaches top_p (the first token always stays).
        keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < top_p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def draw_categorical(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw from [..., K] float64 probabilities given uniforms ``u`` [...].

    Rows need not sum exactly to 1.

    Example:
        >>> draw_categorical(torch.tensor([[0.2, 0.8]], dtype=torch.float64), torch.tensor([0.5])).tolist()
        [1]
    """
    cdf = probs.cumsum(-1)
    u = u * cdf[..., -1]
    idx = torch.searchsorted(cdf, u[..., None]).squeeze(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


# The sampler's streams of ``noise``: step i of stream k draws noise(k * steps + i), so no two draws
# share numbers (what keyed noise needs; a generator just draws on).
TOKEN_STREAM, WITHIN_STREAM, ORDER_STREAM, REMASK_STREAM = range(4)


def _unmask(
    settings: SamplerSettings,
    probs: Tensor,
    todo: Tensor,
    rate: Tensor | None,
    noise: Noise,
    i: int,
    owed: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step's decisions among the masked positions ``todo``: (slot [B, N], decided [B, N], owed).

    ``probs`` [B, N, K] are over each position's slots; ``rate`` [1 or N, K] is each slot's move
    probability (None at the last step, which decides everything); ``owed`` is confidence decoding's
    running fraction of a position per row (``unmask_counts``).
    """
    shape, slots = tuple(todo.shape), probs.shape[-1]
    u = noise(TOKEN_STREAM * settings.steps + i, shape, todo.device)
    if settings.decoding == "first-hitting":
        order_u = noise(ORDER_STREAM * settings.steps + i, shape, todo.device)
        decided = most_confident(order_u, todo, even_counts(todo.sum(-1), settings.steps - i))
        return draw_categorical(probs, u), decided, owed
    if settings.decoding == "confidence":
        chosen = draw_categorical(probs, u)
        if rate is None:
            return chosen, todo, owed
        expected = ((probs * rate).sum(-1) * todo).sum(-1)
        count, owed = unmask_counts(expected, owed, todo.sum(-1))
        log_p = probs.gather(-1, chosen[..., None])[..., 0].clamp(min=1e-300).log()
        order_u = noise(ORDER_STREAM * settings.steps + i, shape, todo.device)
        decided = most_confident(log_p + settings.order_noise * gumbel(order_u), todo, count)
        return chosen, decided, owed
    move = probs if rate is None else probs * rate
    stay = (1 - move.sum(-1, keepdim=True)).clamp(min=0)
    choice = draw_categorical(torch.cat([move, stay], dim=-1), u)
    return choice.clamp(max=slots - 1), todo & (choice < slots), owed


@torch.no_grad()
def sample(
    model: MaskedDiffusion,
    z: Tensor,
    valid: Tensor | None = None,
    steps: int = DEFAULT_SETTINGS.steps,
    grid: str = DEFAULT_SETTINGS.grid,
    temperature: float = DEFAULT_SETTINGS.temperature,
    top_p: float = DEFAULT_SETTINGS.top_p,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    noise: Noise | None = None,
    within: Tensor | None = None,
    *,
    decoding: str = DEFAULT_SETTINGS.decoding,
    order_noise: float = DEFAULT_SETTINGS.order_noise,
    remask_eta: float = DEFAULT_SETTINGS.remask_eta,
    log_prior: Tensor | None = None,
) -> SampleResult:
    """Fill every mask in ``z`` [B, N]; all other tokens (and padding) are kept unchanged.

    The settings are those of ``SamplerSettings`` (``decoding``: see ``seqdiff.core.decoding``);
    bad ones raise ValueError. Randomness comes from ``noise(step, shape, device)`` (see
    ``seqdiff.core.noise``; keyed noise makes each row's result independent of its batch), or from
    ``generator``. For a model with ordered positions, ``within`` [B, N] (NaN where unknown) places
    the given tokens' values inside their bins, and a token decided at an ordered position gets a
    uniform ``within``: a quantile bin's values are uniform in rank, so it is the bin's own
    distribution of positions.

    ``log_prior`` [B, N, V] (finite; 0 where there is no opinion) is added to the denoiser's
    log-probabilities before the temperature: each prediction is multiplied by ``exp(log_prior)``
    and renormalised, a product of experts with outside knowledge such as a family profile.

    Each position's distribution is over the ids it may take (``MaskedDiffusion.slot_log_probs``), not
    the whole vocabulary: a table column's few values, where a wide table's vocabulary is every
    column's. The slots list their ids in increasing order, so the draws are the same.

    Example:
        >>> from seqdiff.core.denoiser import Denoiser, DenoiserConfig
        >>> from seqdiff.core.schedules import LinearSchedule
        >>> net = Denoiser(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2))
        >>> model = MaskedDiffusion(net, LinearSchedule(), mask_id=4, allowed=torch.tensor([1, 1, 1, 1, 0]))
        >>> z = torch.full((2, 10), model.mask_id)
        >>> sample(model, z, steps=10, decoding="confidence").tokens.shape
        torch.Size([2, 10])
    """
    settings = SamplerSettings(steps, grid, temperature, top_p, decoding, order_noise, remask_eta)
    settings.check()
    model.eval()
    device = z.device
    mask_id = model.mask_id
    vocab = model.vocab_size
    ids = model.position_ids(z.shape[1])  # [1 or N, K]: the token id of each position's slot
    slot_ids = ids.expand(*z.shape, -1)
    z = z.clone()
    todo = z == mask_id
    if valid is not None:
        todo &= valid
    free = todo.clone()  # the positions the sampler decides: the only ones it may mask again
    unmask_step = torch.full(z.shape, -1, dtype=torch.long, device=device)
    confidence = torch.full(z.shape, float("nan"), dtype=torch.float64, device=device)
    entropy = torch.full_like(confidence, float("nan"))
    owed = torch.zeros(z.shape[0], dtype=torch.float64, device=device)
    times = time_grid(steps, grid, device)
    time_conditioned = model.denoiser.cfg.time_conditioning
    probs, calls = None, 0
    noise = noise or GeneratorNoise(generator)
    remasking = decoding == "remask" and bool(free.any())
    if model.ordered is not None:
        within = torch.full(z.shape, float("nan"), device=device) if within is None else within.clone()
    else:
        within = None
    for i in range(steps):
        if not bool(todo.any()) and not remasking:  # ReMDM may mask again while steps remain
            break
        t, s = times[i], times[i + 1]
        rate = sigma = None  # None at the last step: it decides every position still masked
        if i < steps - 1:
            a_t = model.schedule.alpha_all(t.float().reshape(1), vocab).double()[0]
            a_s = model.schedule.alpha_all(s.float().reshape(1), vocab).double()[0]
            sigma = remask_probability(a_t, a_s, remask_eta) if remasking else None
            rate = unmask_rate(a_t, a_s, 0.0 if sigma is None else sigma)[ids]
        # Positions decided before this step: ReMDM masks them again from z_t, alongside the unmasking.
        again = torch.zeros_like(todo)
        if sigma is not None:
            u = noise(REMASK_STREAM * steps + i, tuple(z.shape), device)
            again = free & ~todo & (u < sigma[z])
        if bool(todo.any()):
            if probs is None or time_conditioned or not use_cache:
                t_batch = torch.full((z.shape[0],), float(t), device=device)
                log_probs = model.slot_log_probs(z, valid, t_batch if time_conditioned else None, within)
                if log_prior is not None:
                    log_probs = log_probs + log_prior.gather(-1, slot_ids)
                probs = shape_probs(log_probs, temperature, top_p)
                calls += 1
            slot, newly, owed = _unmask(settings, probs, todo, rate, noise, i, owed)
            if bool(newly.any()):
                p_chosen = probs.gather(-1, slot[..., None])[..., 0]
                h = -(probs * torch.log(probs.clamp(min=1e-300))).sum(-1)
                z = torch.where(newly, slot_ids.gather(-1, slot[..., None])[..., 0], z)
                if within is not None:
                    u = noise(WITHIN_STREAM * steps + i, tuple(z.shape), device).to(within.dtype)
                    within = torch.where(newly & model.ordered[: z.shape[1]], u, within)
                # A position decided again keeps the record of its final decision.
                unmask_step = torch.where(newly, torch.full_like(unmask_step, i), unmask_step)
                confidence = torch.where(newly, p_chosen, confidence)
                entropy = torch.where(newly, h, entropy)
                todo &= ~newly
                probs = None  # the input changed: the cached prediction is stale
        if bool(again.any()):
            z = torch.where(again, torch.full_like(z, mask_id), z)  # its within is hidden until decided again
            todo |= again
            probs = None
        if on_step is not None:
            on_step(i + 1, steps)
    return SampleResult(z, unmask_step, confidence.float(), entropy.float(), calls, within)
