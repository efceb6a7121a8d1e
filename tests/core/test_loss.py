"""The MD4 NELBO estimator (md4_spec.md section 2) against closed forms.

With a context-free denoiser (fixed logits, ``FixedDenoiser``) the per-sequence loss at a
given t and forward sample is weight(t) * sum over masked tokens of -log p(x_n), and its
expectation over the mask is weight(t) (1 - alpha_t) sum_n CE_n. Integrated over t this is
(alpha_0 - alpha_1) sum_n CE_n, whatever the schedule. The Monte-Carlo tests compare the
estimator's mean with that integral computed by quadrature; their tolerance is 4 standard
errors of the mean, the standard error taken as std / sqrt(B) over the B rows (conservative:
the stratified t makes the true error smaller than for independent t).

The padding tests check that padding changes nothing: a padded batch gives the same
per-sequence terms as each sequence alone, at the same t and mask pattern.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.core.denoiser import PACKED_SIZES, Denoiser, DenoiserConfig
from seqdiff.core.diffusion import GENMD4_T1, MaskedDiffusion
from seqdiff.core.schedules import (
    EPS,
    CosineSchedule,
    GeometricSchedule,
    LearnableStateSchedule,
    LinearSchedule,
    PolynomialSchedule,
)
from seqdiff.errors import SeqdiffError

N_VALUES, N = 5, 6  # 5 real values, mask id 5, sequences of 6 tokens


def alpha_linear(t):
    return (1 - 2 * EPS) * (1 - t) + EPS


def weight_linear(t):
    return (1 - 2 * EPS) / (1 - alpha_linear(t))


def alpha_cosine(t):
    return (1 - 2 * EPS) * (1 - torch.cos(math.pi / 2 * (1 - t))) + EPS


def weight_cosine(t):
    return (1 - 2 * EPS) * (math.pi / 2) * torch.sin(math.pi / 2 * (1 - t)) / (1 - alpha_cosine(t))


FORMULAS = {
    "linear": (LinearSchedule, alpha_linear, weight_linear),
    "cosine": (CosineSchedule, alpha_cosine, weight_cosine),
}


def fixed_logits(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, N_VALUES + 1, generator=g)
    logits[:, N_VALUES] = 5.0  # a large mask logit: it must get probability zero anyway
    return logits


def true_logp(logits: torch.Tensor) -> torch.Tensor:
    """log p over the real values only: [N, N_VALUES]."""
    return torch.log_softmax(logits[:, :N_VALUES].double(), dim=-1)


def data(batch: int, seed: int = 1, missing: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, N] with some missing tokens (the mask id) and padding at the end of some rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, N_VALUES, (batch, N), generator=g)
    if missing:
        x[torch.rand(batch, N, generator=g) < 0.15] = N_VALUES
    lengths = torch.randint(3, N + 1, (batch,), generator=g)
    valid = torch.arange(N)[None] < lengths[:, None]
    x[~valid] = 2  # padding carries an ordinary token id: only ``valid`` may exclude it
    return x, valid


@pytest.mark.parametrize("name", FORMULAS)
def test_loss_equals_closed_form_at_given_t_and_mask(toys, name):
    make_schedule, alpha, weight = FORMULAS[name]
    logits = fixed_logits()
    model = toys.make_model(toys.FixedDenoiser(logits), make_schedule(), N_VALUES)
    x, valid = data(16)
    t = torch.linspace(0.02, 0.98, 16)
    out = model.losses(x, valid, t=t, generator=torch.Generator().manual_seed(7))

    # Replay the forward sample: one uniform per token, masked iff u < 1 - alpha_t.
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(7))
    observed = valid & (x != N_VALUES)
    masked = (u < 1 - alpha(t.double())[:, None]) & observed
    assert 0 < int(masked.sum()) < int(observed.sum())
    logp = true_logp(logits)
    nll = -logp[torch.arange(N)[None].expand_as(x), x.clamp(max=N_VALUES - 1)]
    tokens = observed.sum(-1).double()
    recon = tokens * EPS * math.log(N_VALUES)  # N (1 - alpha_0) log V, alpha_0 = 1 - eps
    expected = weight(t.double()) * (nll * masked).sum(-1) + recon

    torch.testing.assert_close(out.nelbo.double(), expected, rtol=2e-5, atol=1e-5)
    torch.testing.assert_close(out.tokens.double(), tokens)
    torch.testing.assert_close(out.objective, out.nelbo.sum(), rtol=1e-6, atol=1e-5)


def test_uniform_weighting_trains_on_the_mean_masked_cross_entropy_and_reports_the_nelbo(toys):
    logits = fixed_logits()
    x, valid = data(16)
    t = torch.linspace(0.02, 0.98, 16)
    outs = {}
    for weighting in ("elbo", "uniform"):
        model = toys.make_model(toys.FixedDenoiser(logits), LinearSchedule(), N_VALUES, weighting=weighting)
        outs[weighting] = model.losses(x, valid, t=t, generator=torch.Generator().manual_seed(7))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(7))
    observed = valid & (x != N_VALUES)
    masked = (u < t[:, None]) & observed  # linear schedule: 1 - alpha_t = (1 - eps) t
    nll = -true_logp(logits)[torch.arange(N)[None].expand_as(x), x.clamp(max=N_VALUES - 1)]
    mean_ce = (nll * masked).sum() / masked.sum()
    uniform = outs["uniform"]
    torch.testing.assert_close(uniform.nelbo, outs["elbo"].nelbo)
    torch.testing.assert_close(
        uniform.objective / uniform.tokens.sum(), mean_ce.float(), rtol=1e-5, atol=1e-6
    )


def test_weighting_is_checked(toys):
    with pytest.raises(SeqdiffError, match="weighting must be one of"):
        toys.make_model(toys.FixedDenoiser(fixed_logits()), LinearSchedule(), N_VALUES, weighting="l2")
    with pytest.raises(SeqdiffError, match="GenMD4 trains on the ELBO"):
        toys.make_model(
            toys.FixedDenoiser(fixed_logits()),
            LearnableStateSchedule(N_VALUES + 1),
            N_VALUES,
            weighting="uniform",
        )


def test_discrete_time_loss_equals_closed_form(toys):
    T = 10
    logits = fixed_logits(3)
    model = toys.make_model(toys.FixedDenoiser(logits), LinearSchedule(), N_VALUES, timesteps=T)
    x, valid = data(10, seed=4)
    t = torch.arange(1, T + 1) / T  # every grid point t = k / T once
    out = model.losses(x, valid, t=t, generator=torch.Generator().manual_seed(5))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    observed = valid & (x != N_VALUES)
    td = t.double()
    a_t, a_s = alpha_linear(td), alpha_linear(td - 1 / T)
    masked = (u < 1 - a_t[:, None]) & observed
    nll = -true_logp(logits)[torch.arange(N)[None].expand_as(x), x.clamp(max=N_VALUES - 1)]
    # md4_spec.md section 2: L_T = T (alpha_s - alpha_t) / (1 - alpha_t) * sum_masked -log p.
    expected = T * (a_s - a_t) / (1 - a_t) * (nll * masked).sum(-1)
    expected = expected + observed.sum(-1) * EPS * math.log(N_VALUES)
    torch.testing.assert_close(out.nelbo.double(), expected, rtol=2e-5, atol=1e-5)


def test_sample_t_is_stratified(toys):
    model = toys.make_model(toys.FixedDenoiser(fixed_logits()), LinearSchedule(), N_VALUES)
    t = model.sample_t(64, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert sorted(torch.floor(t * 64).long().tolist()) == list(range(64)), "one t per stratum"
    again = model.sample_t(64, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert torch.equal(t, again)

    discrete = toys.make_model(toys.FixedDenoiser(fixed_logits()), LinearSchedule(), N_VALUES, timesteps=8)
    td = discrete.sample_t(64, torch.device("cpu"), torch.Generator().manual_seed(1))
    counts = torch.bincount(torch.round(td * 8).long(), minlength=9)
    assert counts.tolist() == [0] + [8] * 8, "each grid point 1/T..1 equally often"

    genmd4 = toys.make_model(
        toys.FixedDenoiser(fixed_logits()), LearnableStateSchedule(N_VALUES + 1), N_VALUES
    )
    tg = genmd4.sample_t(64, torch.device("cpu"), torch.Generator().manual_seed(2))
    assert float(tg.min()) >= GENMD4_T1 and float(tg.max()) <= 1
    strata = torch.floor((tg - GENMD4_T1) / (1 - GENMD4_T1) * 64 + 1e-4).long()
    assert sorted(strata.tolist()) == list(range(64))


MC_CASES = {
    "linear": (LinearSchedule(), 0),
    "cosine": (CosineSchedule(), 0),
    "poly2": (PolynomialSchedule(2.0), 0),
    "geometric": (GeometricSchedule(), 0),
    "linear-T10": (LinearSchedule(), 10),
    "cosine-T10": (CosineSchedule(), 10),
}


@pytest.mark.parametrize("case", MC_CASES)
def test_estimator_mean_matches_integrated_elbo(toys, case):
    schedule, T = MC_CASES[case]
    logits = fixed_logits(11)
    model = toys.make_model(toys.FixedDenoiser(logits), schedule, N_VALUES, timesteps=T)
    batch = 40_000
    x, valid = data(batch, seed=12)
    out = model.losses(x, valid, generator=torch.Generator().manual_seed(13))

    # The ELBO integrand for a context-free denoiser is weight(t) (1 - alpha_t) * sum_n CE_n.
    if T == 0:
        t = torch.linspace(0, 1, 200_001, dtype=torch.float64)
        factor = float(torch.trapezoid(schedule.weight(t) * (1 - schedule.alpha(t)), t))
    else:  # the expectation over the grid t = k/T is an exact finite sum
        t = torch.arange(1, T + 1, dtype=torch.float64) / T
        a_t, a_s = schedule.alpha(t), schedule.alpha(t - 1 / T)
        factor = float((T * (a_s - a_t) / (1 - a_t) * (1 - a_t)).mean())
    ends = schedule.alpha(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert factor == pytest.approx(float(ends[0] - ends[1]), rel=1e-6)

    observed = valid & (x != N_VALUES)
    nll = -true_logp(logits)[torch.arange(N)[None].expand_as(x), x.clamp(max=N_VALUES - 1)]
    expected = factor * (nll * observed).sum(-1) + observed.sum(-1) * EPS * math.log(N_VALUES)
    residual = out.nelbo.double() - expected
    stderr = float(residual.std()) / math.sqrt(batch)
    assert abs(float(residual.mean())) < 4 * stderr, (float(residual.mean()), stderr)
    # The test has power: the mean loss is ~10 nats per row, the standard error ~1% of it.
    assert stderr < 0.02 * float(expected.mean())


# --- padding -------------------------------------------------------------------------------

PAD, MASK, VOCAB = 5, 6, 7  # values 0..4, a padding id outside the allowed set, the mask id


def real_model(positions: str, schedule=None) -> MaskedDiffusion:
    torch.manual_seed(0)
    cfg = DenoiserConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, positions=positions, max_len=16)
    allowed = torch.arange(VOCAB) < PAD
    model = MaskedDiffusion(Denoiser(cfg), schedule or LinearSchedule(), mask_id=MASK, allowed=allowed)
    with torch.no_grad():  # make the outputs depend strongly on the context
        for p in model.denoiser.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    return model.eval()


def padded_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 9, 3, 7]
    n = max(lengths)
    x = torch.randint(0, PAD, (len(lengths), n), generator=g)
    valid = torch.arange(n)[None] < torch.tensor(lengths)[:, None]
    x[~valid] = PAD
    t = torch.tensor([0.3, 0.55, 0.8, 0.15])
    masked = (torch.rand(x.shape, generator=g) < 0.5) & valid
    masked[:, 0] = True  # every sequence has something masked
    z = torch.where(masked | ~valid, torch.full_like(x, MASK), x)
    return x, z, masked, valid, t, lengths


def md4_integrand(model, x, z, masked, valid, t):
    """MD4 eq. 5 at one t, per sequence: the weight times the masked tokens' NLL."""
    return model._md4_weight(t) * model._masked_nll(x, z, masked, valid, t)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_padded_batch_equals_sequences_alone_md4(positions):
    model = real_model(positions)
    x, z, masked, valid, t, lengths = padded_batch()
    with torch.no_grad():
        batched = md4_integrand(model, x, z, masked, valid, t)
        alone = torch.cat(
            [
                md4_integrand(
                    model, x[i : i + 1, :n], z[i : i + 1, :n], masked[i : i + 1, :n], None, t[i : i + 1]
                )
                for i, n in enumerate(lengths)
            ]
        )
        # The padding's content is invisible: change the padded tokens in both x and z.
        x2 = torch.where(valid, x, torch.full_like(x, 3))
        z2 = torch.where(valid, z, torch.full_like(z, 1))
        changed = md4_integrand(model, x2, z2, masked, valid, t)
    assert bool((alone > 1.0).all()), "a non-trivial loss per sequence"
    # float32 network: relative rounding ~1e-6 per term, summed over a few dozen terms.
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(changed, batched, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_padded_batch_equals_sequences_alone_genmd4(positions):
    schedule = LearnableStateSchedule(VOCAB)
    with torch.no_grad():
        schedule.w_raw.copy_(torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0, 0.0, 0.0]))
    model = real_model(positions, schedule)
    x, z, masked, valid, t, lengths = padded_batch(1)
    observed = valid
    with torch.no_grad():
        batched = model.genmd4_integrand(x, z, masked, valid, t)
        log_q = model.genmd4_log_q(x, masked, observed, t)
        recon = model.genmd4_recon(x, observed)
        for i, n in enumerate(lengths):
            sl = (slice(i, i + 1), slice(0, n))
            alone = model.genmd4_integrand(x[sl], z[sl], masked[sl], None, t[i : i + 1])
            torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)
            ones = torch.ones(1, n, dtype=torch.bool)
            torch.testing.assert_close(
                log_q[i : i + 1], model.genmd4_log_q(x[sl], masked[sl], ones, t[i : i + 1])
            )
            torch.testing.assert_close(recon[i : i + 1], model.genmd4_recon(x[sl], ones))
    assert bool((batched.abs() > 0.1).all())


def test_losses_valid_none_equals_all_valid():
    model = real_model("rope")
    x = torch.randint(0, PAD, (6, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = model.losses(x, None, generator=torch.Generator().manual_seed(4))
        b = model.losses(x, torch.ones_like(x, dtype=torch.bool), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a.nelbo, b.nelbo)
    assert a.tokens.tolist() == [8.0] * 6


def column_model(schedule: str, n_layers: int) -> tuple[MaskedDiffusion, int, torch.Tensor]:
    """(model, mask id, allowed ids [4, 12]): four table-like columns of 3, 5, 1 and 2 values."""
    vocab, mask_id = 12, 11
    allowed = torch.zeros(4, vocab, dtype=torch.bool)
    for n, ids in enumerate([range(0, 3), range(3, 8), range(8, 9), range(9, 11)]):
        allowed[n, list(ids)] = True
    torch.manual_seed(0)
    net = Denoiser(
        DenoiserConfig(vocab_size=vocab, dim=32, n_layers=n_layers, n_heads=2, positions="learned", max_len=4)
    )
    sched = LearnableStateSchedule(vocab) if schedule == "genmd4" else LinearSchedule()
    return MaskedDiffusion(net, sched, mask_id=mask_id, allowed=allowed), mask_id, allowed


@pytest.mark.parametrize("schedule", ["md4", "genmd4"])
def test_per_position_heads_equal_the_masked_full_vocabulary(schedule):
    """Table columns: logits are computed for each position's own ids only (a head per column),
    and give exactly the distribution and the loss of the full head masked to those ids."""
    model, mask_id, allowed = column_model(schedule, n_layers=1)
    net, sched = model.denoiser, model.schedule
    z = torch.tensor([[0, mask_id, 8, mask_id], [mask_id, 4, mask_id, 10]])
    with torch.no_grad():
        full = torch.log_softmax(net(z).masked_fill(~allowed, float("-inf")), dim=-1)
        slots = model.slot_log_probs(z)
        torch.testing.assert_close(model.log_probs(z), full)
    assert slots.shape == (2, 4, 5 + 1)  # the widest column (5 ids) and the always-empty slot
    torch.testing.assert_close(slots.exp().sum(-1), torch.ones(2, 4))
    x = torch.tensor([[0, 5, 8, 9], [2, 4, 8, 10]])
    t = torch.tensor([0.6, 0.3])
    masked = z == mask_id
    with torch.no_grad():
        nll = -full.gather(-1, x[..., None])[..., 0]
        if schedule == "md4":
            got = md4_integrand(model, x, z, masked, None, t)
            want = sched.weight(t) * torch.where(masked, nll, torch.zeros_like(nll)).sum(-1)
        else:
            got = model.genmd4_integrand(x, z, masked, None, t)
            w = sched.rates()
            per = (-w[x] * (1 - nll) + (full.exp() * w).sum(-1)) / t[:, None]
            want = (1 - GENMD4_T1) * torch.where(masked, per, torch.zeros_like(per)).sum(-1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("time_conditioning", [False, True])
@pytest.mark.parametrize("n", [7, 40])  # 40: 120 positions, the packed rows padded (padded_rows)
def test_needed_positions_get_the_same_outputs_and_gradients(time_conditioning, n):
    """Training scores only the masked tokens: the denoiser's last block then runs its MLP at those
    positions alone. Their outputs and every parameter's gradient must not change."""
    torch.manual_seed(0)
    cfg = DenoiserConfig(
        vocab_size=9, dim=32, n_layers=2, n_heads=4, max_len=64, time_conditioning=time_conditioning
    )
    net = Denoiser(cfg)
    if time_conditioning:  # adaLN-Zero starts at zero; make it matter
        for block in net.blocks:
            torch.nn.init.normal_(block.ada.weight, std=0.1)
    z = torch.randint(0, 9, (3, n))
    valid = torch.ones(3, n, dtype=torch.bool)
    valid[0, 5:] = False
    needed = (torch.rand(3, n) < 0.5) & valid
    t = torch.tensor([0.2, 0.5, 0.9])
    weights = torch.randn(3, n, 32)

    def outputs_and_grads(**kwargs):
        net.zero_grad()
        h = net(z, valid, t, logits=False, **kwargs)
        (h[needed] * weights[needed]).sum().backward()
        return h.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    full, full_grads = outputs_and_grads()
    skipped, skipped_grads = outputs_and_grads(needed=needed)
    torch.testing.assert_close(skipped[needed], full[needed], rtol=1e-5, atol=1e-6)
    assert (skipped[~needed] == 0).all()
    assert len(skipped_grads) == len(full_grads)
    for a, b in zip(skipped_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_packed_rows_take_few_shapes():
    """Whatever the number of scored tokens, the last block's packed matmuls see at most PACKED_SIZES
    row counts (oneDNN caches a kernel per shape: one per count grew memory by gigabytes)."""
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(vocab_size=9, dim=16, n_layers=1, n_heads=2, max_len=64))
    seen = set()
    net.blocks[-1].gate_up.register_forward_hook(lambda module, args, out: seen.add(args[0].shape[0]))
    z = torch.randint(0, 9, (16, 64))
    for count in range(0, 16 * 64 + 1, 7):
        needed = torch.zeros(16 * 64, dtype=torch.bool)
        needed[torch.randperm(16 * 64)[:count]] = True
        net(z, logits=False, needed=needed.view(16, 64))
    assert len(seen) <= PACKED_SIZES and max(seen) == 16 * 64, sorted(seen)


@pytest.mark.parametrize("schedule", ["md4", "genmd4"])
def test_skipping_unscored_tokens_leaves_the_loss_and_gradients_unchanged(schedule):
    model, mask_id, _ = column_model(schedule, n_layers=2)
    x = torch.tensor([[0, 5, 8, 9], [2, 4, mask_id, 10], [1, 3, 8, 9]] * 4)

    def objective_and_grads(skip: bool):
        model.skip_unscored = skip
        model.zero_grad()
        out = model.losses(x, generator=torch.Generator().manual_seed(3))
        out.objective.backward()
        return out.objective.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    skipped, skipped_grads = objective_and_grads(True)
    full, full_grads = objective_and_grads(False)
    torch.testing.assert_close(skipped, full)
    assert len(skipped_grads) == len(full_grads) > 0
    for a, b in zip(skipped_grads, full_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
