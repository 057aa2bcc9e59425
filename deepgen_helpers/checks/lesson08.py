"""Checkers for lesson 08 (diffusion on images).

Each checker's hidden cases are built from mistakes learners make: a velocity target with the
signs or the factors swapped (sqrt(1 - alpha_bar) on the noise), or with alpha_t in place of
alpha_bar_t; a DDIM step with alpha_t in place of alpha_bar_t, noise added when eta = 0, a
direction term sqrt(1 - alpha_bar_prev) that forgets sigma, or Python's ``alpha_bar[-1]`` (the
*last* step) where the final step needs alpha_bar = 1; an EMA update with the decay on the wrong
side or without the warm-up; a residual block that adds the time embedding after the residual sum,
forgets it, or forgets the 1x1 projection of the skip when the number of channels changes.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import Case, CheckResult, run_checks, seeded as _g
from ..models.diffusion import NoiseSchedule, ScheduleConfig


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def _schedule(kind: str, T: int = 1000) -> NoiseSchedule:
    return NoiseSchedule(ScheduleConfig(T=T, kind=kind))


# --------------------------------------------------------------------------------------------------
# Exercise 1: the velocity target (Salimans & Ho 2022, section 4)
def _v_target(schedule, x0, eps, t):
    ab = _per_example(schedule.alpha_bar[t].double(), x0)
    return (ab.sqrt() * eps.double() - (1 - ab).sqrt() * x0.double()).to(x0.dtype)


def check_v_target(fn: Callable) -> CheckResult:
    """``fn(schedule, x0 (B, ...), eps (B, ...), t (B,)) -> v (B, ...)``:
    v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0."""
    g = _g(81)
    specs = [(_schedule("cosine"), (4, 1, 28, 28), [0, 10, 500, 999],
              "MNIST-sized images, cosine schedule, t from 0 to T-1"),
             (_schedule("linear"), (3, 2), [100, 400, 700],
              "2-D points, linear schedule: alpha_bar_t and alpha_t differ a lot here"),
             (_schedule("cosine", T=10), (3, 1, 3, 3), [2, 5, 7],
              "a 10-step cosine schedule at middle steps, where both factors are far from 0 and 1")]
    cases = []
    for schedule, shape, t, description in specs:
        x0, eps = torch.randn(shape, generator=g).clamp(-1, 1), torch.randn(shape, generator=g)
        args = (schedule, x0, eps, torch.tensor(t))
        cases.append(Case(args, _v_target(*args), description))
    return run_checks(
        "v_target", fn, cases, atol=1e-5, rtol=1e-4,
        hint="ab = schedule.alpha_bar[t] reshaped to (B, 1, ..., 1); v = ab.sqrt() * eps - "
             "(1 - ab).sqrt() * x0: the noise gets sqrt(alpha_bar), the image sqrt(1 - alpha_bar) "
             "and a minus sign (alpha_bar, not alpha_t = 1 - beta_t).")


# --------------------------------------------------------------------------------------------------
# Exercise 2: one DDIM step (Song, Meng & Ermon 2021, Eq. 12 and 16)
def _ddim_step(x_t, eps_hat, t, t_prev, schedule, eta, z):
    ab = schedule.alpha_bar[t].double()
    ab_prev = schedule.alpha_bar[t_prev].double() if t_prev >= 0 else torch.tensor(1.0).double()
    x0 = (x_t.double() - (1 - ab).sqrt() * eps_hat.double()) / ab.sqrt()
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
    out = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).sqrt() * eps_hat.double()
    return (out + sigma * z.double()).to(x_t.dtype)


def check_ddim_step(fn: Callable) -> CheckResult:
    """``fn(x_t, eps_hat, t: int, t_prev: int, schedule, eta: float, z) -> x_{t_prev}``:
    Eq. 12 with sigma from Eq. 16; t_prev = -1 is the final step (alpha_bar_prev = 1)."""
    specs = [((4, 1, 5, 5), 999, 979, 0.0, "cosine", "a first DDIM step, 999 -> 979, eta = 0"),
             ((4, 1, 5, 5), 500, 250, 0.0, "linear", "a big jump 500 -> 250, eta = 0 (z ignored)"),
             ((4, 2), 600, 400, 1.0, "cosine", "eta = 1: DDPM-like noise"),
             ((4, 2), 300, 200, 0.5, "linear", "eta = 0.5"),
             ((4, 1, 5, 5), 20, -1, 1.0, "cosine",
              "the final step, t_prev = -1: alpha_bar_prev = 1, so sigma = 0 (no noise)")]
    cases = []
    for i, (shape, t, t_prev, eta, kind, description) in enumerate(specs):
        g = _g(82 + i)
        x_t, eps_hat, z = (torch.randn(shape, generator=g) for _ in range(3))
        args = (x_t, eps_hat, t, t_prev, _schedule(kind), eta, z)
        cases.append(Case(args, _ddim_step(*args), description))
    return run_checks(
        "ddim_step", fn, cases, atol=1e-3, rtol=1e-3,
        hint="ab = schedule.alpha_bar[t]; ab_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else "
             "1 (alpha_bar, not alpha_t; in Python alpha_bar[-1] is the LAST step); "
             "x0_hat = (x_t - "
             "sqrt(1 - ab) eps_hat) / sqrt(ab); sigma = eta sqrt((1 - ab_prev) / (1 - ab)) "
             "sqrt(1 - ab / ab_prev); return sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) "
             "eps_hat + sigma z (with eta = 0 no noise at all).")


# --------------------------------------------------------------------------------------------------
# Exercise 3: the EMA update with its warm-up
def _ema_update(shadow, params, decay, n):
    d = min(decay, (1 + n) / (10 + n))
    return [d * s + (1 - d) * p for s, p in zip(shadow, params)]


def _ema_close(got, expected) -> bool:
    if not isinstance(got, (list, tuple)) or len(got) != len(expected):
        return False
    return all(isinstance(a, torch.Tensor) and a.shape == b.shape
               and torch.allclose(a.detach().double(), b.double(), atol=1e-6, rtol=1e-5)
               for a, b in zip(got, expected))


def check_ema_update(fn: Callable) -> CheckResult:
    """``fn(shadow: list of tensors, params: list of tensors, decay: float, n: int) -> list``:
    the new shadow tensors d * shadow + (1 - d) * params, d = min(decay, (1 + n) / (10 + n))."""
    g = _g(88)
    specs = [(0.995, 5000, "late in training (n = 5000): d = decay = 0.995"),
             (0.995, 0, "the first update (n = 0): the warm-up gives d = 0.1"),
             (0.9, 30, "n = 30: (1 + n) / (10 + n) = 0.775 is below the decay 0.9"),
             (0.5, 100, "a small decay 0.5 at n = 100")]
    cases = []
    for decay, n, description in specs:
        shadow = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
        params = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
        cases.append(Case((shadow, params, decay, n), _ema_update(shadow, params, decay, n),
                          description))
    return run_checks(
        "ema_update", fn, cases, compare=_ema_close,
        hint="d = min(decay, (1 + n) / (10 + n)); return [d * s + (1 - d) * p for s, p in "
             "zip(shadow, params)]: the shadow keeps the large share d, the new weights get 1 - d.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: a residual block with the time embedding (Ho et al. 2020, App. B)
class _RefBlock(nn.Module):
    def __init__(self, c_in, c_out, emb_dim, groups=8):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.emb(nn.functional.silu(emb))[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


def _block_state(c_in, c_out, emb_dim, seed):
    rng_state = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        ref = _RefBlock(c_in, c_out, emb_dim)
        with torch.no_grad():                    # GroupNorm's affine terms away from 1 and 0
            for norm in (ref.norm1, ref.norm2):
                norm.weight.uniform_(0.5, 1.5); norm.bias.uniform_(-0.5, 0.5)
    finally:
        torch.set_rng_state(rng_state)
    return ref


def check_res_block(block_class: Callable) -> CheckResult:
    """``block_class(c_in, c_out, emb_dim, groups)`` builds a module with the lesson's ResBlock
    layers (norm1, conv1, emb, norm2, conv2, skip); ``block(x (B, c_in, H, W), emb (B, emb_dim))
    -> (B, c_out, H, W)``. The checker loads fixed weights into it and compares outputs."""
    specs = [(8, 8, 16, "same channels in and out (the skip is the identity)"),
             (8, 16, 16, "8 -> 16 channels: the skip needs a 1x1 conv to 16 channels"),
             (16, 8, 32, "16 -> 8 channels, a 32-dimensional embedding")]
    cases = []
    for i, (c_in, c_out, emb_dim, description) in enumerate(specs):
        g = _g(90 + i)
        x, emb = torch.randn(2, c_in, 6, 6, generator=g), 2 * torch.randn(2, emb_dim, generator=g)
        ref = _block_state(c_in, c_out, emb_dim, 90 + i)
        with torch.no_grad():
            expected = ref(x, emb)
        state = {k: v.clone() for k, v in ref.state_dict().items()}
        cases.append(Case((c_in, c_out, emb_dim, state, x, emb), expected, description))

    def run_block(c_in, c_out, emb_dim, state, x, emb):
        if not isinstance(block_class, type):
            raise TypeError("pass the class itself (e.g. MyResBlock), not an instance")
        block = block_class(c_in, c_out, emb_dim, 8)
        block.load_state_dict(state)                     # names: norm1, conv1, emb, ...
        with torch.no_grad():
            return block(x, emb)

    run_block.__name__ = getattr(block_class, "__name__", "ResBlock")
    return run_checks(
        "ResBlock", run_block, cases, atol=1e-4, rtol=1e-4,
        hint="h = conv1(silu(norm1(x))); h = h + emb(silu(emb_in))[:, :, None, None] (before the "
             "second conv, not after the residual sum); h = conv2(silu(norm2(h))); return h + "
             "skip(x), with skip = nn.Conv2d(c_in, c_out, 1) when c_in != c_out, else "
             "nn.Identity().")
