"""The sampler's decoding strategies (``seqdiff.core.decoding``): ancestral, confidence, remask,
first-hitting.

Every strategy must fill every mask, keep given positions and padding, and give a row the same result
alone as in a batch under keyed noise. Confidence decoding is checked against a denoiser whose
confidences are known (uniform over a different number of values at each position); remasking is
seen in the inputs the denoiser receives.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.core.bundle import ModelSpec, build_model
from seqdiff.core.denoiser import Denoiser, DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.noise import KeyedNoise
from seqdiff.core.sampler_settings import DECODINGS, SamplerSettings
from seqdiff.core.sampling import sample, time_grid
from seqdiff.core.schedules import LinearSchedule, make_schedule

VALUES, MASK, PAD = 6, 6, 7  # ids 0..5 are values; padding is neither a value nor the mask


def network_model(schedule: str = "cosine"):
    """A random transformer: its predictions change with the context it sees."""
    torch.manual_seed(0)
    cfg = DenoiserConfig(vocab_size=8, dim=32, n_layers=2, n_heads=4, time_conditioning=False)
    sched = make_schedule(schedule, 8)
    if schedule == "genmd4":
        with torch.no_grad():  # a different rate for every value
            sched.w_raw.copy_(torch.linspace(-1.0, 2.0, 8))
    with torch.no_grad():
        net = Denoiser(cfg)
        for p in net.parameters():
            p.mul_(4.0 if p.dim() == 2 else 1.0)
    return MaskedDiffusion(net, sched, mask_id=MASK, allowed=torch.arange(8) < VALUES)


def holed_rows(rows: int = 12, n: int = 10):
    """Rows with given values, masks, and padding after a row-dependent length."""
    g = torch.Generator().manual_seed(rows)
    z = torch.randint(0, VALUES, (rows, n), generator=g)
    z[torch.rand(rows, n, generator=g) < 0.6] = MASK
    valid = torch.arange(n)[None] < torch.randint(3, n + 1, (rows, 1), generator=g)
    return torch.where(valid, z, PAD), valid


@pytest.mark.parametrize("decoding", DECODINGS)
@pytest.mark.parametrize("schedule", ["cosine", "genmd4"])
@pytest.mark.parametrize("steps", [1, 3, 25])
def test_every_decoding_fills_every_mask_and_keeps_given_positions(decoding, schedule, steps):
    model = network_model(schedule)
    z, valid = holed_rows()
    out = sample(
        model, z, valid, steps=steps, decoding=decoding, remask_eta=0.3, noise=KeyedNoise(0, torch.arange(12))
    )
    designed = (z == MASK) & valid
    assert torch.equal(out.tokens[~designed], z[~designed]), "given positions and padding are kept"
    assert bool((out.tokens[designed] < VALUES).all()), "every mask is filled with a value"
    assert bool((out.unmask_step[~designed] == -1).all())
    assert bool(((out.unmask_step[designed] >= 0) & (out.unmask_step[designed] < steps)).all())
    assert bool(out.confidence[~designed].isnan().all())
    assert bool(((out.confidence[designed] > 0) & (out.confidence[designed] <= 1)).all())


@pytest.mark.parametrize("decoding", DECODINGS)
def test_every_decoding_is_seeded_and_independent_of_its_batch(decoding):
    model = network_model()
    z, valid = holed_rows(rows=6)
    keys = torch.arange(100, 106)
    settings = {"steps": 12, "decoding": decoding, "remask_eta": 0.3, "order_noise": 1.0}
    batch = sample(model, z, valid, noise=KeyedNoise(5, keys), **settings)
    for i in range(6):
        alone = sample(
            model, z[i : i + 1], valid[i : i + 1], noise=KeyedNoise(5, keys[i : i + 1]), **settings
        )
        assert torch.equal(alone.tokens[0], batch.tokens[i])
        assert torch.equal(alone.unmask_step[0], batch.unmask_step[i])
    other = sample(model, z, valid, noise=KeyedNoise(6, keys), **settings)
    assert not torch.equal(other.tokens, batch.tokens), "another seed, other designs"


class UniformOver(torch.nn.Module):
    """Position n's prediction is uniform over the values 0..sizes[n]-1, whatever the input: every
    token drawn there has probability 1/sizes[n], so the confidence order is known in advance."""

    def __init__(self, sizes: list[int], vocab: int):
        super().__init__()
        self.cfg = DenoiserConfig(vocab_size=vocab, time_conditioning=False)
        logits = torch.full((len(sizes), vocab), -1e4)
        for n, size in enumerate(sizes):
            logits[n, :size] = 0.0
        self.register_buffer("logits", logits)

    def forward(self, tokens, valid=None, t=None):
        return self.logits.expand(tokens.shape[0], -1, -1)


def uniform_over_model(sizes: list[int]):
    vocab = max(sizes) + 1
    allowed = torch.arange(vocab) < vocab - 1
    return MaskedDiffusion(UniformOver(sizes, vocab), LinearSchedule(), mask_id=vocab - 1, allowed=allowed)


def test_confidence_without_order_noise_decides_the_most_confident_first():
    sizes = [4, 1, 7, 2, 8, 3, 6, 5]  # 1/size: position 1 is the most confident, position 4 the least
    model = uniform_over_model(sizes)
    z = torch.full((20, 8), model.mask_id)
    noise = KeyedNoise(0, torch.arange(20))
    # Linear schedule, uniform grid, 8 steps: the ancestral step expects one decision per step.
    out = sample(model, z, steps=8, grid="uniform", decoding="confidence", order_noise=0.0, noise=noise)
    rank = torch.tensor(sizes).argsort().argsort()
    assert torch.equal(out.unmask_step, rank.expand(20, -1)), "one position a step, most confident first"
    noisy = sample(model, z, steps=8, grid="uniform", decoding="confidence", order_noise=3.0, noise=noise)
    assert int((noisy.unmask_step != rank).any(-1).sum()) >= 10, "Gumbel noise on the order varies it"
    ancestral = sample(model, z, steps=8, grid="uniform", noise=noise)
    assert int((ancestral.unmask_step != rank).any(-1).sum()) >= 10, "the ancestral order ignores confidence"


@pytest.mark.parametrize("grid", ["uniform", "cosine"])
def test_confidence_keeps_the_ancestral_pace(grid):
    """Decided by step i: within one position of what the ancestral sampler expects."""
    model = uniform_over_model([3] * 40)
    steps = 10
    out = sample(model, torch.full((1, 40), 3), steps=steps, grid=grid, decoding="confidence")
    alpha = model.schedule.alpha(time_grid(steps, grid).float()).double()  # alpha[0] is alpha at t = 1
    expected = 40 * (alpha[1:] - alpha[0]) / (1 - alpha[0])
    decided = torch.bincount(out.unmask_step[0], minlength=steps).cumsum(0)
    assert int(decided[-1]) == 40
    assert float((decided - expected).abs().max()) <= 1.0, (decided.tolist(), expected.tolist())


class EqualPair(torch.nn.Module):
    """A known joint distribution of two positions: equal values, 0 or 1 with probability 1/2. Each
    position predicts the other's value once it is given, and 0 or 1 evenly while it is masked."""

    cfg = DenoiserConfig(vocab_size=3, time_conditioning=False)

    def forward(self, tokens, valid=None, t=None):
        other = tokens[:, [1, 0]]
        logits = torch.full((*tokens.shape, 3), -1e4)
        logits[..., :2] = 0.0
        given = other < 2
        copied = torch.nn.functional.one_hot(other.clamp(max=1), 3).float() * 1e4 - 1e4
        return torch.where(given[..., None], copied, logits)


def test_first_hitting_decides_one_position_a_step_in_random_order_and_keeps_the_dependence():
    model = MaskedDiffusion(EqualPair(), LinearSchedule(), mask_id=2, allowed=torch.tensor([1, 1, 0]))
    z = torch.full((400, 2), 2)
    noise = KeyedNoise(0, torch.arange(400))
    out = sample(model, z, steps=2, decoding="first-hitting", noise=noise)
    assert sorted(out.unmask_step[0].tolist()) == [0, 1], "one position a step"
    assert bool((out.unmask_step.sort(-1).values == torch.tensor([0, 1])).all())
    first = (out.unmask_step[:, 0] == 0).float().mean()
    assert 0.4 < float(first) < 0.6, "either position first, evenly"
    assert torch.equal(out.tokens[:, 0], out.tokens[:, 1]), "the second draw sees the first: always equal"
    assert 0.4 < float(out.tokens[:, 0].float().mean()) < 0.6
    ancestral = sample(model, z, steps=2, noise=noise).tokens
    unequal = float((ancestral[:, 0] != ancestral[:, 1]).float().mean())
    assert unequal > 0.05, "the ancestral step draws positions decided together independently"
    shared = sample(model, z, steps=1, decoding="first-hitting", noise=noise)
    assert bool((shared.unmask_step == 0).all()), "one step: an even share, both at once"


def seen_inputs(model) -> list[torch.Tensor]:
    """Every input the denoiser receives from now on."""
    seen: list[torch.Tensor] = []
    model.denoiser.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    return seen


def masked_again(seen: list[torch.Tensor]) -> torch.Tensor:
    """Positions [B, N] that the denoiser saw unmasked and then masked in a later input."""
    history = torch.stack(seen) == MASK  # [calls, B, N]
    shown = (~history).long().cumsum(0) > 0
    return (shown[:-1] & history[1:]).any(0)


def test_remask_decides_positions_again_and_never_touches_given_ones():
    model = network_model()
    z, valid = holed_rows(rows=16, n=12)
    seen = seen_inputs(model)
    out = sample(
        model, z, valid, steps=40, decoding="remask", remask_eta=0.2, noise=KeyedNoise(1, torch.arange(16))
    )
    designed = (z == MASK) & valid
    again = masked_again(seen)
    assert int(again.sum()) >= 10, "remasking re-decides positions"
    assert not bool((again & ~designed).any()), "never a given position (nor padding)"
    assert all(torch.equal(x[~designed], z[~designed]) for x in seen)
    assert torch.equal(out.tokens[~designed], z[~designed]) and not bool((out.tokens == MASK).any())
    seen.clear()
    sample(model, z, valid, steps=40, noise=KeyedNoise(1, torch.arange(16)))
    assert not bool(masked_again(seen).any()), "the ancestral sampler never masks again"


def test_remask_cache_is_invalidated_when_z_changes():
    """A context-dependent model: reusing a stale prediction after a re-masking would change the draws."""
    model = network_model()
    z, valid = holed_rows(rows=8, n=12)
    runs = {
        cache: sample(model, z, valid, steps=30, decoding="remask", remask_eta=0.2, use_cache=cache,
                      noise=KeyedNoise(2, torch.arange(8)))
        for cache in (True, False)
    }  # fmt: skip
    assert torch.equal(runs[True].tokens, runs[False].tokens)
    assert torch.equal(runs[True].unmask_step, runs[False].unmask_step)
    assert runs[True].network_calls <= runs[False].network_calls


def test_remask_without_remasking_is_ancestral():
    model = network_model("genmd4")
    z, valid = holed_rows()
    noise = KeyedNoise(3, torch.arange(12))
    a = sample(model, z, valid, steps=20, noise=noise)
    b = sample(model, z, valid, steps=20, noise=noise, decoding="remask", remask_eta=0.0)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.unmask_step, b.unmask_step)


def table_model():
    """Columns: ordered bins (ids 0-3), categories (ids 4-5), ordered bins (0-3); mask id 6."""
    torch.manual_seed(0)
    cfg = DenoiserConfig(
        vocab_size=7, dim=16, n_layers=1, n_heads=2, max_len=3, positions="learned", value_frequencies=4
    )
    spec = ModelSpec(
        cfg, mask_id=6, allowed=[[0, 1, 2, 3], [4, 5], [0, 1, 2, 3]], ordered=[True, False, True]
    )
    model = build_model(spec).eval()
    with torch.no_grad():
        model.denoiser.values.proj.normal_()
    return model


@pytest.mark.parametrize("decoding", DECODINGS)
def test_ordered_values_are_placed_with_every_decoding(decoding):
    model = table_model()
    z = torch.tensor([[2, 6, 6]] + [[6, 6, 6]] * 300)
    within = torch.full(z.shape, math.nan)
    within[0, 0] = 0.25
    out = sample(
        model,
        z,
        steps=6,
        noise=KeyedNoise(4, torch.arange(301)),
        within=within,
        decoding=decoding,
        remask_eta=0.5,
    )
    assert out.within[0, 0] == 0.25 and out.tokens[0, 0] == 2, "a given value keeps its place"
    assert bool(out.within[:, 1].isnan().all()), "a category has no place in a bin"
    placed = out.within[1:][:, [0, 2]]
    assert bool(((placed >= 0) & (placed < 1)).all()), "every decided ordered value is placed"
    assert abs(float(placed.mean()) - 0.5) < 0.05
    allowed = model.allowed[torch.arange(3)[None].expand(301, 3), out.tokens]
    assert bool(allowed.all())


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"grid": "log"}, "grid must be one of cosine, uniform"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"top_p": 1.5}, "top_p must be in (0, 1]"),
        ({"decoding": "greedy"}, "decoding must be one of ancestral, confidence, remask, first-hitting"),
        ({"order_noise": -1.0}, "order_noise must be >= 0"),
        ({"order_noise": math.nan}, "order_noise must be >= 0"),
        ({"remask_eta": 1.5}, "remask_eta must be in [0, 1]"),
    ],
)
def test_bad_settings_raise_one_line(settings, message):
    with pytest.raises(ValueError) as err:
        SamplerSettings(**settings).check()
    assert str(err.value) == message
    with pytest.raises(ValueError, match="^" + message.split(" ")[0]):
        sample(network_model(), torch.full((1, 4), MASK), **settings)
    assert SamplerSettings().problem() is None
