"""Checkers for lesson 09 (guidance, inpainting, editing).

Each checker's hidden cases are built from mistakes learners make: a guided combination with the
conditional and unconditional terms swapped, the scale on the wrong term, or the codebases' scale
s = 1 + w read as w; a naive inpainting step that pastes the clean x0 instead of its noised
version, noises it to step t instead of t - 1, inverts the mask, or takes Python's
``alpha_bar[-1]`` (the *last* step) at t = 0; an SDEdit start with alpha_t in place of
alpha_bar_t, without the square roots, without the noise, or at step round(strength T) instead of
round(strength T) - 1; a RePaint jump with alpha_bar (Eq. 4's jump from x0) in place of beta, with
beta_{t-1}, or without the square roots.
"""
from __future__ import annotations

from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g
from ..models.diffusion import NoiseSchedule, ScheduleConfig


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def _schedule(kind: str, T: int = 1000) -> NoiseSchedule:
    return NoiseSchedule(ScheduleConfig(T=T, kind=kind))


# --------------------------------------------------------------------------------------------------
# Exercise 1: the guided combination (Ho & Salimans 2022, Eq. 6)
def _guided(out_cond, out_uncond, w):
    return ((1 + w) * out_cond.double() - w * out_uncond.double()).to(out_cond.dtype)


def check_guided_combination(fn: Callable) -> CheckResult:
    """``fn(out_cond (B, ...), out_uncond (B, ...), w: float) -> (B, ...)``:
    (1 + w) out_cond - w out_uncond."""
    g = _g(91)
    specs = [((4, 1, 28, 28), 2.0, "MNIST-sized outputs, w = 2"),
             ((3, 5), 0.0, "w = 0: the conditional prediction alone"),
             ((3, 5), 1.0, "w = 1 (a codebase's s = 2)"),
             ((2, 1, 3, 3), 0.5, "w = 0.5")]
    cases = []
    for shape, w, description in specs:
        cond, uncond = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        cases.append(Case((cond, uncond, w), _guided(cond, uncond, w), description))
    return run_checks(
        "guided_combination", fn, cases, atol=1e-5, rtol=1e-4,
        hint="(1 + w) * out_cond - w * out_uncond, i.e. out_cond + w * (out_cond - out_uncond): "
             "the conditional term gets 1 + w, and w = 0 must give out_cond itself (the "
             "codebases' s = 1 + w is not this lesson's w).")


# --------------------------------------------------------------------------------------------------
# Exercise 2: the naive inpainting step (replacement of the known region)
def _replace_known(x_prev, x0_known, mask, t, schedule, eps):
    if t == 0:
        known = x0_known.double()
    else:
        ab = schedule.alpha_bar[t - 1].double()
        known = ab.sqrt() * x0_known.double() + (1 - ab).sqrt() * eps.double()
    return torch.where(mask.bool(), known, x_prev.double()).to(x_prev.dtype)


def check_replace_known(fn: Callable) -> CheckResult:
    """``fn(x_prev, x0_known, mask, t: int, schedule, eps) -> x_{t-1}``: the known pixels
    (mask == 1) replaced by x0_known noised to step t - 1 with eps (x0_known itself at t = 0)."""
    specs = [((3, 1, 28, 28), 500, "cosine", "MNIST-sized, bottom half missing, t = 500"),
             ((3, 1, 6, 6), 1, "linear", "t = 1: the known part is noised to step 0"),
             ((3, 1, 6, 6), 0, "cosine", "t = 0, the last step: the known part is x0 itself "
                                         "(alpha_bar[-1] is the LAST step in Python)"),
             ((2, 1, 6, 6), 950, "cosine", "t = 950, very noisy: alpha_bar_{t-1}, not alpha_bar_t")]
    cases = []
    for i, (shape, t, kind, description) in enumerate(specs):
        g = _g(92 + i)
        x_prev, eps = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        x0 = torch.rand(shape, generator=g) * 2 - 1
        mask = torch.zeros(1, 1, shape[-2], shape[-1])
        mask[..., : shape[-2] // 2, :] = 1.0                           # top half known
        args = (x_prev, x0, mask, t, _schedule(kind), eps)
        cases.append(Case(args, _replace_known(*args), description))
    return run_checks(
        "replace_known", fn, cases, atol=1e-5, rtol=1e-4,
        hint="known = x0_known if t == 0 else sqrt(ab) x0_known + sqrt(1 - ab) eps with ab = "
             "schedule.alpha_bar[t - 1] (the level of x_{t-1}, not of x_t); return "
             "torch.where(mask.bool(), known, x_prev): known pixels where mask == 1.")


# --------------------------------------------------------------------------------------------------
# Exercise 3: where SDEdit starts (Meng et al. 2022, Algorithm 1)
def _sdedit_start(x_edit, strength, schedule, eps):
    t0 = max(1, round(strength * schedule.T)) - 1
    ab = schedule.alpha_bar[t0].double()
    return (ab.sqrt() * x_edit.double() + (1 - ab).sqrt() * eps.double()).to(x_edit.dtype)


def check_sdedit_start(fn: Callable) -> CheckResult:
    """``fn(x_edit (B, ...), strength: float, schedule, eps) -> x_t0``: Eq. 4 at the code step
    t0 = round(strength T) - 1."""
    specs = [((3, 1, 28, 28), 0.5, "cosine", 1000, "MNIST-sized, strength 0.5: t0 = 499"),
             ((3, 4), 0.3, "linear", 1000, "linear schedule, where alpha_t and alpha_bar_t differ "
                                           "a lot: strength 0.3"),
             ((3, 4), 0.2, "cosine", 10, "a 10-step schedule: t0 = 1, next to t0 = 2"),
             ((2, 1, 5, 5), 1.0, "cosine", 50, "strength 1: the last step, nearly pure noise")]
    cases = []
    for i, (shape, strength, kind, T, description) in enumerate(specs):
        g = _g(96 + i)
        x = torch.rand(shape, generator=g) * 2 - 1
        eps = torch.randn(shape, generator=g)
        args = (x, strength, _schedule(kind, T), eps)
        cases.append(Case(args, _sdedit_start(*args), description))
    return run_checks(
        "sdedit_start", fn, cases, atol=1e-5, rtol=1e-4,
        hint="t0 = round(strength * schedule.T) - 1 (code steps count from 0); ab = "
             "schedule.alpha_bar[t0]; return ab.sqrt() * x_edit + (1 - ab).sqrt() * eps "
             "(alpha_bar, not alpha; the noise is what hides the edit's flaws).")


# --------------------------------------------------------------------------------------------------
# Exercise 4: RePaint's jump back up one step (q(x_t | x_{t-1}), Ho et al. 2020, Eq. 2)
def _repaint_jump(x_prev, t, schedule, z):
    beta = schedule.betas[t].double()
    return ((1 - beta).sqrt() * x_prev.double() + beta.sqrt() * z.double()).to(x_prev.dtype)


def check_repaint_jump(fn: Callable) -> CheckResult:
    """``fn(x_prev (B, ...), t: int, schedule, z) -> x_t``:
    sqrt(1 - beta_t) x_prev + sqrt(beta_t) z."""
    specs = [((3, 1, 28, 28), 400, "cosine", 1000, "MNIST-sized, t = 400"),
             ((3, 4), 700, "linear", 1000, "linear schedule, t = 700"),
             ((3, 4), 5, "cosine", 10, "a 10-step schedule, t = 5: beta_t and beta_{t-1} differ "
                                       "a lot"),
             ((2, 1, 5, 5), 0, "linear", 1000, "t = 0, the first step")]
    cases = []
    for i, (shape, t, kind, T, description) in enumerate(specs):
        g = _g(100 + i)
        schedule = _schedule(kind, T)
        x_prev, z = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        args = (x_prev, t, schedule, z)
        cases.append(Case(args, _repaint_jump(*args), description))
    return run_checks(
        "repaint_jump", fn, cases, atol=1e-5, rtol=1e-4,
        hint="beta = schedule.betas[t]; return (1 - beta).sqrt() * x_prev + beta.sqrt() * z: one "
             "step of the forward process, not Eq. 4's jump from x0 (which uses alpha_bar).")
