"""Masking schedules (md4_spec.md sections 1 and 3).

Every check is in float64 against formulas written out here, not against the schedule's own
methods: endpoints, monotonicity, alpha' against central finite differences, the loss weight
against the closed forms of MD4 Tab. 4, and the GenMD4 schedule's three views (alpha_for,
weight_for, alpha_all) against each other and against 1 - (1 - eps) t^w.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqdiff.core.schedules import (
    EPS,
    CosineSchedule,
    GeometricSchedule,
    LearnableStateSchedule,
    LinearSchedule,
    PolynomialSchedule,
    make_schedule,
)
from seqdiff.errors import SeqdiffError

# name -> (schedule, unshifted a(t) written out independently)
MD4_SCHEDULES = {
    "linear": (LinearSchedule(), lambda t: 1 - t),
    "poly2": (PolynomialSchedule(2.0), lambda t: 1 - t**2),
    "poly3.5": (PolynomialSchedule(3.5), lambda t: 1 - t**3.5),
    "cosine": (CosineSchedule(), lambda t: 1 - torch.cos(math.pi / 2 * (1 - t))),
    "geometric": (GeometricSchedule(1e-5, 20.0), lambda t: torch.exp(-(1e-5 ** (1 - t)) * 20.0**t)),
}
GRID = torch.linspace(0, 1, 2001, dtype=torch.float64)


@pytest.mark.parametrize("name", MD4_SCHEDULES)
def test_md4_schedule_matches_shifted_formula(name):
    schedule, a = MD4_SCHEDULES[name]
    expected = (1 - 2 * EPS) * a(GRID) + EPS
    torch.testing.assert_close(schedule.alpha(GRID), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", MD4_SCHEDULES)
def test_md4_schedule_endpoints_and_monotone(name):
    schedule, _ = MD4_SCHEDULES[name]
    alpha = schedule.alpha(GRID)
    # The eps shift: alpha_0 = 1 - eps and alpha_1 = eps (geometric: up to exp(-beta) at the ends).
    assert abs(float(alpha[0]) - (1 - EPS)) < 2e-5
    assert abs(float(alpha[-1]) - EPS) < 1e-8
    assert bool((alpha.diff() < 0).all()), "alpha_t must be strictly decreasing"
    # alpha' < 0 inside; polynomial has alpha'(0) = 0 and cosine alpha'(1) = 0.
    assert bool((schedule.dalpha(GRID[1:-1]) < 0).all())
    assert bool((schedule.dalpha(GRID) <= 0).all())


@pytest.mark.parametrize("name", MD4_SCHEDULES)
def test_md4_dalpha_matches_finite_differences(name):
    schedule, _ = MD4_SCHEDULES[name]
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    h = 1e-6
    fd = (schedule.alpha(t + h) - schedule.alpha(t - h)) / (2 * h)
    # Central differences: truncation O(h^2 alpha''') ~ 1e-10, rounding ~ 1e-16 / h = 1e-10.
    torch.testing.assert_close(schedule.dalpha(t), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", MD4_SCHEDULES)
def test_md4_weight_is_minus_dalpha_over_one_minus_alpha(name):
    schedule, _ = MD4_SCHEDULES[name]
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    h = 1e-6
    tc = t.clamp(h, 1 - h)
    fd = (schedule.alpha(tc + h) - schedule.alpha(tc - h)) / (2 * h)
    expected = -fd / (1 - schedule.alpha(tc))
    torch.testing.assert_close(schedule.weight(tc), expected, rtol=1e-5, atol=1e-6)
    assert bool((schedule.weight(t[1:-1]) > 0).all())
    assert bool(torch.isfinite(schedule.weight(t)).all()), "the eps shift keeps the weight finite"


def test_md4_weights_match_spec_table_4():
    """Away from the endpoints (t >> eps) the weights are 1/t, k/t and (pi/2) tan(pi/2 (1-t))."""
    t = torch.linspace(0.1, 0.9, 81, dtype=torch.float64)
    # The eps shift changes these by a relative O(eps / (1 - a(t))): <= 1e-4 / 0.1 for linear and
    # cosine on [0.1, 0.9], <= 1e-4 / 0.3**3 = 4e-3 for t^3 on [0.3, 0.9].
    torch.testing.assert_close(LinearSchedule().weight(t), 1 / t, rtol=2e-3, atol=0)
    t3 = torch.linspace(0.3, 0.9, 61, dtype=torch.float64)
    torch.testing.assert_close(PolynomialSchedule(3.0).weight(t3), 3 / t3, rtol=5e-3, atol=0)
    torch.testing.assert_close(
        CosineSchedule().weight(t), math.pi / 2 * torch.tan(math.pi / 2 * (1 - t)), rtol=2e-3, atol=0
    )


@pytest.mark.parametrize("name", MD4_SCHEDULES)
def test_md4_weight_integrates_to_the_schedule_range(name):
    """int_0^1 weight(t) (1 - alpha_t) dt = alpha_0 - alpha_1 (~ 1 - 2 eps) for every schedule."""
    schedule, _ = MD4_SCHEDULES[name]
    t = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    integral = float(torch.trapezoid(schedule.weight(t) * (1 - schedule.alpha(t)), t))
    ends = schedule.alpha(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert integral == pytest.approx(float(ends[0] - ends[1]), abs=1e-7)  # trapezoid error ~ 1e-11
    assert integral == pytest.approx(1 - 2 * EPS, abs=2e-5)  # geometric: exp(-beta_min) ~ 1 - 1e-5


def test_md4_per_token_views_broadcast():
    schedule = CosineSchedule()
    t = torch.tensor([0.2, 0.7], dtype=torch.float64)
    x = torch.randint(0, 5, (2, 4))
    torch.testing.assert_close(schedule.alpha_for(t, x), schedule.alpha(t)[:, None].expand(2, 4))
    torch.testing.assert_close(schedule.weight_for(t, x), schedule.weight(t)[:, None].expand(2, 4))
    assert schedule.alpha_all(t, 6).shape == (2, 6)
    torch.testing.assert_close(schedule.alpha_all(t, 6)[:, 3], schedule.alpha(t))


def genmd4_schedule(rates: list[float]) -> LearnableStateSchedule:
    schedule = LearnableStateSchedule(vocab_size=len(rates)).double()
    with torch.no_grad():
        schedule.w_raw.copy_(torch.log(torch.expm1(torch.tensor(rates, dtype=torch.float64))))
    return schedule


def test_genmd4_rates_initialise_to_linear():
    schedule = LearnableStateSchedule(vocab_size=6)
    torch.testing.assert_close(schedule.rates(), torch.ones(6))
    t = torch.linspace(0, 1, 11)
    x = torch.arange(6).expand(11, 6)
    # 1 - (1 - eps) t versus MD4's (1 - 2 eps)(1 - t) + eps: equal up to eps.
    torch.testing.assert_close(
        schedule.alpha_for(t, x), LinearSchedule().alpha(t)[:, None].expand(11, 6), atol=2e-4, rtol=0
    )


def test_genmd4_schedule_formula_endpoints_monotone():
    rates = [0.3, 1.0, 2.5, 6.0]
    schedule = genmd4_schedule(rates)
    t = GRID
    x = torch.arange(4).expand(len(t), 4)
    alpha = schedule.alpha_for(t, x)  # [T, 4]
    expected = 1 - (1 - EPS) * t[:, None] ** torch.tensor(rates, dtype=torch.float64)
    torch.testing.assert_close(alpha, expected, rtol=1e-10, atol=1e-12)
    assert bool((alpha[0] == 1).all()), "alpha_0 = 1 exactly for GenMD4"
    torch.testing.assert_close(alpha[-1], torch.full((4,), EPS, dtype=torch.float64))
    # Strictly decreasing where float64 resolves t^w (t^6 underflows next to 1 for t < 1e-3).
    inside = GRID >= 0.01
    assert bool((alpha[inside].diff(dim=0) < 0).all())
    assert bool((alpha.diff(dim=0) <= 0).all())
    # A larger rate keeps the token unmasked longer: alpha increases with w at every 0 < t < 1.
    assert bool((alpha[inside][:-1].diff(dim=1) > 0).all())


def test_genmd4_weight_is_minus_dalpha_over_one_minus_alpha():
    schedule = genmd4_schedule([0.3, 1.0, 2.5, 6.0])
    t = torch.linspace(0.02, 0.98, 49, dtype=torch.float64, requires_grad=True)
    x = torch.arange(4).expand(49, 4)
    alpha = schedule.alpha_for(t, x)
    # d alpha / dt per value, by autograd (each column depends on t only through its own row).
    dalpha = torch.stack(
        [torch.autograd.grad(alpha[:, j].sum(), t, retain_graph=True)[0] for j in range(4)], dim=1
    )
    expected = -dalpha / (1 - alpha)
    # 1 - alpha = (1 - eps) t^w cancels digits when t^w is tiny (t = 0.02, w = 6: 6e-11), so
    # -alpha'/(1 - alpha) loses ~1e-16 / 6e-11 relative precision; w/t itself is exact.
    torch.testing.assert_close(schedule.weight_for(t, x), expected.detach(), rtol=1e-5, atol=0)
    h = 1e-6
    with torch.no_grad():
        fd = (schedule.alpha_for(t + h, x) - schedule.alpha_for(t - h, x)) / (2 * h)
    torch.testing.assert_close(dalpha, fd, rtol=1e-5, atol=1e-7)


def test_genmd4_alpha_all_agrees_with_alpha_for():
    schedule = genmd4_schedule([0.3, 1.0, 2.5, 6.0])
    t = torch.tensor([0.05, 0.4, 0.9], dtype=torch.float64)
    x = torch.tensor([[3, 0, 1, 2, 2], [1, 1, 0, 3, 2], [0, 3, 3, 3, 1]])
    all_values = schedule.alpha_all(t, 4)  # [3, 4]
    torch.testing.assert_close(all_values.gather(1, x), schedule.alpha_for(t, x))
    # The sampler's call shape: a [1] time broadcasts to [1, V].
    assert schedule.alpha_all(t[:1], 4).shape == (1, 4)


def test_genmd4_groups_tie_rates_and_carry_gradients():
    groups = torch.tensor([0, 0, 1, 1, 1, 2])
    schedule = LearnableStateSchedule(vocab_size=6, groups=groups)
    assert schedule.w_raw.shape == (3,)
    with torch.no_grad():
        schedule.w_raw.copy_(torch.tensor([-1.0, 0.5, 2.0]))
    rates = schedule.rates()
    torch.testing.assert_close(rates, torch.nn.functional.softplus(torch.tensor([-1.0, 0.5, 2.0]))[groups])
    t = torch.tensor([0.5])
    schedule.alpha_for(t, torch.tensor([[2]])).sum().backward()
    grad = schedule.w_raw.grad
    assert float(grad[1]) > 0, "alpha = 1 - (1-eps) t^w grows with w for t < 1"
    assert float(grad[0]) == 0 and float(grad[2]) == 0


def test_make_schedule():
    assert isinstance(make_schedule("linear", 5), LinearSchedule)
    assert isinstance(make_schedule("polynomial", 5, power=3.0), PolynomialSchedule)
    assert make_schedule("polynomial", 5, power=3.0).power == 3.0
    assert isinstance(make_schedule("genmd4", 5), LearnableStateSchedule)
    with pytest.raises(SeqdiffError, match="unknown schedule"):
        make_schedule("sigmoid", 5)
