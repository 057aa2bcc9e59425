"""Checkers for lesson 07 (diffusion fundamentals).

Each checker's hidden cases are built from mistakes learners make with diffusion models: the
forward process with alpha_t instead of alpha_bar_t, with variances instead of standard deviations,
with an alpha_bar that stops one step early, or with a per-example factor that only broadcasts over
2-D points; a loss that compares the network's output with x0 or with x_t, feeds x0 to the
network, or averages over the whole batch; and a reverse step with the wrong coefficient in front
of the predicted noise, sqrt(alpha_bar_t) in place of sqrt(alpha_t), the variance instead of the
standard deviation, beta_t in place of the posterior variance, or Python's ``alpha_bar[-1]`` (the
*last* step) where the first step needs alpha_bar_0 = 1, which adds noise at the last step.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from . import Case, CheckResult, run_checks, seeded as _g
from ..models.diffusion import NoiseSchedule, ScheduleConfig, linear_betas, cosine_betas


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


# --------------------------------------------------------------------------------------------------
# Exercise 1: q(x_t | x_0) from the betas alone (Ho et al. 2020, Eq. 4)
def _q_sample_from_betas(x0, t, eps, betas):
    alpha_bar = torch.cumprod(1 - betas.double(), 0)[t]
    ab = _per_example(alpha_bar, x0)
    return (ab.sqrt() * x0.double() + (1 - ab).sqrt() * eps.double()).to(x0.dtype)


def check_q_sample_from_betas(fn: Callable) -> CheckResult:
    """``fn(x0 (B, ...), t (B,) long, eps (B, ...), betas (T,)) -> x_t (B, ...)``:
    sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps with alpha_bar_t = prod_{s <= t} (1 - beta_s)
    (code indices 0..T-1)."""
    g = _g(71)
    big = torch.tensor([0.1, 0.3, 0.5, 0.7])                 # alpha and alpha_bar differ a lot
    specs = [
        ((torch.randn(6, 2, generator=g), torch.tensor([0, 1, 10, 500, 998, 999]),
          torch.randn(6, 2, generator=g), linear_betas(1000).float()),
         "2-D points, Ho et al.'s linear schedule, t from 0 to T-1"),
        ((torch.randn(4, 2, generator=g), torch.tensor([0, 1, 2, 3]), torch.randn(4, 2, generator=g),
          big), "a 4-step schedule with large betas (0.1, 0.3, 0.5, 0.7)"),
        ((torch.randn(3, 2, generator=g), torch.zeros(3, dtype=torch.long),
          torch.randn(3, 2, generator=g), big), "t = 0 everywhere: alpha_bar_0 = 1 - beta_0, not 1"),
        ((torch.randn(3, 1, 4, 4, generator=g), torch.tensor([0, 20, 49]),
          torch.randn(3, 1, 4, 4, generator=g), cosine_betas(50).float()),
         "images (3, 1, 4, 4) with a 50-step cosine schedule"),
    ]
    cases = [Case(args, _q_sample_from_betas(*args), d) for args, d in specs]
    return run_checks(
        "q_sample_from_betas", fn, cases, atol=1e-5, rtol=1e-4,
        hint="alpha_bar = torch.cumprod(1 - betas, 0) (step t included); ab = alpha_bar[t] "
             "reshaped to (B, 1, ..., 1), e.g. ab.reshape(-1, *[1] * (x0.dim() - 1)); return "
             "ab.sqrt() * x0 + (1 - ab).sqrt() * eps: standard deviations, not variances, and "
             "alpha_bar, not alpha_t = 1 - beta_t.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: the epsilon loss per example, for given t and eps (Ho et al. 2020, Eq. 14)
class _ToyEps(nn.Module):
    """A fixed, deterministic 'network' whose output depends on x_t and on t."""

    def __init__(self, n_in: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(n_in + 1, n_in)

    def forward(self, x_t, t):
        flat = x_t.flatten(1)                                          # (B, D)
        h = torch.cat([flat, (t.float() / 100)[:, None]], dim=1)       # (B, D + 1)
        return torch.tanh(self.lin(h)).reshape(x_t.shape)


def _eps_loss_per_example(model, schedule, x0, t, eps):
    x_t = schedule.q_sample(x0, t, eps)
    return (eps - model(x_t, t)).pow(2).flatten(1).mean(1)


def _loss_case(shape, seed, kind, t):
    rng_state = torch.get_rng_state()
    try:
        model = _ToyEps(math.prod(shape), seed)
        schedule = NoiseSchedule(ScheduleConfig(T=100, kind=kind))
        g = _g(seed)
        x0 = 1.5 * torch.randn((len(t),) + shape, generator=g)
        eps = torch.randn((len(t),) + shape, generator=g)
    finally:
        torch.set_rng_state(rng_state)
    args = (model, schedule, x0, torch.tensor(t), eps)
    with torch.no_grad():
        expected = _eps_loss_per_example(*args)
    return args, expected


def _loss_close(got, expected) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    return torch.allclose(got.detach().double(), expected.double(), atol=1e-5, rtol=1e-4)


def check_eps_loss_per_example(fn: Callable) -> CheckResult:
    """``fn(model, schedule, x0 (B, ...), t (B,), eps (B, ...)) -> (B,)``: the squared error
    between eps and model(x_t, t), x_t from Eq. 4, averaged over each example's elements."""
    specs = [((2,), 0, "linear", [0, 5, 50, 99]), ((2,), 1, "cosine", [3, 3, 60, 90, 99]),
             ((1, 3, 3), 2, "linear", [1, 40, 99])]
    descriptions = ["2-D points, linear schedule (T = 100)", "2-D points, cosine schedule",
                    "images (1, 3, 3): average over each example's pixels, one number per example"]
    cases = [Case(*_loss_case(*spec), d) for spec, d in zip(specs, descriptions)]
    return run_checks(
        "eps_loss_per_example", fn, cases, compare=_loss_close,
        hint="x_t = schedule.q_sample(x0, t, eps); the network predicts the noise from the noisy "
             "point: eps_hat = model(x_t, t) (not model(x0, t)); compare it with eps (not with x0 "
             "or x_t); return (eps - eps_hat).pow(2).flatten(1).mean(1), shape (B,).")


# --------------------------------------------------------------------------------------------------
# Exercise 3: one reverse step with sigma_t^2 = beta_tilde_t (Ho et al. 2020, Eq. 7, 11, section 3.2)
def _ddpm_step_tilde(x_t, eps_hat, t, schedule, z):
    beta, alpha, ab = (v[t].double() for v in (schedule.betas, schedule.alphas, schedule.alpha_bar))
    ab_prev = schedule.alpha_bar[t - 1].double() if t > 0 else torch.tensor(1.0, dtype=torch.float64)
    mean = (x_t.double() - beta / (1 - ab).sqrt() * eps_hat.double()) / alpha.sqrt()
    var = (1 - ab_prev) / (1 - ab) * beta
    return (mean + var.sqrt() * z.double()).to(x_t.dtype)


def _step_case(shape, t, kind, seed):
    g = _g(seed)
    schedule = NoiseSchedule(ScheduleConfig(T=1000, kind=kind))
    x_t, eps_hat, z = (torch.randn(shape, generator=g) for _ in range(3))
    return (x_t, eps_hat, t, schedule, z)


def check_ddpm_step_tilde(fn: Callable) -> CheckResult:
    """``fn(x_t, eps_hat, t: int, schedule, z) -> x_{t-1}``: Eq. 11's mean plus sqrt(beta_tilde_t) z,
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t, alpha_bar_{t-1} = 1 at t = 0."""
    specs = [((5, 2), 999, "linear", 0, "the first reverse step, t = T - 1 = 999"),
             ((5, 2), 500, "linear", 1, "a middle step, t = 500"),
             ((5, 2), 1, "linear", 2, "t = 1, the second-to-last step"),
             ((5, 2), 0, "linear", 3, "t = 0, the last step: beta_tilde is 0 there, so no noise"),
             ((2, 1, 3, 3), 300, "cosine", 4, "images (2, 1, 3, 3), cosine schedule, t = 300")]
    cases = []
    for shape, t, kind, seed, description in specs:
        args = _step_case(shape, t, kind, seed)
        cases.append(Case(args, _ddpm_step_tilde(*args), description))
    return run_checks(
        # float32 answers differ from this float64 reference by up to ~3e-4 near t = 0, where
        # 1 - alpha_bar_t cancels; every mistake listed above misses by far more
        "ddpm_step_tilde", fn, cases, atol=1e-3, rtol=1e-3,
        hint="mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps_hat) / sqrt(alpha_t) (alpha_t, not "
             "alpha_bar_t); alpha_bar_prev = schedule.alpha_bar[t - 1] if t > 0 else 1 (in Python "
             "alpha_bar[-1] is the LAST step); beta_tilde = (1 - alpha_bar_prev) / (1 - alpha_bar_t) "
             "* beta_t; return mean + beta_tilde.sqrt() * z (a standard deviation).")
