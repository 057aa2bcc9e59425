"""Checkers for lesson 04 (GANs from scratch).

Each checker's hidden cases are built from mistakes learners make with adversarial losses: the wrong
sign or swapped labels in the discriminator's loss, the "non-saturating" loss written as
-log(1 - D), log(sigmoid(...)) that overflows for a confident discriminator, a discriminator step
that sends gradients into the generator (no ``.detach()``) or keeps stale gradients (no
``zero_grad``), and a gradient penalty taken at the wrong points or without ``create_graph=True``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
# Exercise 1: one-sided label smoothing and the non-saturating generator loss
def _smoothed_gan_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor, smooth: float):
    d = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, smooth))
         + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    return d, F.softplus(-fake_logits).mean()


def _pair_close(got, expected) -> bool:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return False
    for g, e in zip(got, expected):
        g = torch.as_tensor(g).detach().double()
        if g.numel() != 1 or not torch.isfinite(g).all():
            return False
        if not math.isclose(g.item(), e.item(), abs_tol=1e-4, rel_tol=1e-4):
            return False
    return True


def check_smoothed_gan_losses(fn: Callable) -> CheckResult:
    """``fn(real_logits (B,), fake_logits (B,), smooth) -> (d_loss, g_loss)``, two scalar tensors.

    d_loss: binary cross-entropy of D with target ``smooth`` for real points and 0 for fakes
    (one-sided label smoothing, Salimans et al. 2016, section 3.4), averaged over each batch and
    summed; g_loss: the non-saturating -E log D(G(z)). Both from logits.
    """
    g = _g(41)
    r, f = torch.randn(16, generator=g), torch.randn(16, generator=g)
    confident = (torch.tensor([35.0, 40.0, 25.0, 30.0]), torch.tensor([-40.0, -35.0, 40.0, 30.0]))
    specs = [
        ((torch.zeros(4), torch.zeros(4), 1.0), "smooth = 1 (no smoothing), all logits 0: D says 1/2"),
        ((r, f, 1.0), "no smoothing, 16 random logits"),
        ((r, f, 0.9), "smooth = 0.9, 16 random logits"),
        ((2 + r, f - 1, 0.8), "smooth = 0.8, different batches"),
        ((confident[0], confident[1], 0.9),
         "a confident discriminator (logits up to 40): log(sigmoid(l)) must not overflow"),
    ]
    cases = [Case(args, _smoothed_gan_losses(*args), d) for args, d in specs]
    return run_checks(
        "smoothed_gan_losses", fn, cases, compare=_pair_close,
        hint="d_loss = BCE(real_logits, smooth) + BCE(fake_logits, 0), only the real labels are "
             "smoothed; g_loss = -E log D(G(z)) = softplus(-fake_logits).mean(), not "
             "-log(1 - D). Work from logits (F.binary_cross_entropy_with_logits, F.softplus or "
             "F.logsigmoid): 1 - sigmoid(40) is exactly 0 in float32.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: one discriminator step with the hinge loss
def _tiny_mlp(n_in: int, n_out: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, n_out))


class _HingeD(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        self.net = _tiny_mlp(2, 1, seed)

    def forward(self, x):
        return self.net(x).squeeze(1)


def _hinge_d_step(D, G, opt_d, x_real, z):
    x_fake = G(z).detach()
    loss = F.relu(1 - D(x_real)).mean() + F.relu(1 + D(x_fake)).mean()
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


class _Record(dict):
    """A checker's record of what the learner's code did, shown in one readable line."""

    def __repr__(self) -> str:
        return ", ".join(f"{k} {round(v, 6) if isinstance(v, float) else v}"
                         for k, v in self.items() if k in self.shown and v != "")


class _StepRecord(_Record):
    shown = ("loss", "gradient reaching G", "G moved", "D's first weights after the step")


class _PenaltyRecord(_Record):
    shown = ("value", "why")


def _run_d_step(step_fn: Callable, seed: int) -> dict:
    """Build D, G, an SGD optimiser for D (with stale gradients in D and G) and a batch; run the step."""
    rng_state = torch.get_rng_state()
    try:
        D, G = _HingeD(seed), _tiny_mlp(3, 2, seed + 100)
        g = _g(seed)
        x_real = 2 * torch.randn(32, 2, generator=g)
        z = torch.randn(32, 3, generator=g)
    finally:
        torch.set_rng_state(rng_state)
    for p in D.parameters():          # stale gradients from an earlier step
        p.grad = torch.full_like(p, 0.5)
    g_before = [p.detach().clone() for p in G.parameters()]
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
    loss = step_fn(D, G, opt_d, x_real, z)
    g_grad = sum(float(p.grad.abs().sum()) for p in G.parameters() if p.grad is not None)
    g_moved = any(not torch.equal(a, p.detach()) for a, p in zip(g_before, G.parameters()))
    d_params = torch.cat([p.detach().flatten() for p in D.parameters()])
    return _StepRecord({"d_params": d_params, "g_grad": g_grad, "g_moved": g_moved, "loss": loss,
                        "gradient reaching G": round(g_grad, 4), "G moved": g_moved,
                        "D's first weights after the step": [round(v, 4) for v in
                                                             d_params[:3].tolist()]})


def _d_step_ok(got, expected) -> bool:
    if not isinstance(got, dict):
        return False
    try:
        loss = float(got["loss"])
    except (TypeError, ValueError, RuntimeError):
        return False
    return (got["g_grad"] == 0 and not got["g_moved"]
            and math.isclose(loss, expected["loss"], abs_tol=1e-4, rel_tol=1e-4)
            and torch.allclose(got["d_params"], expected["d_params"], atol=1e-5, rtol=1e-4))


def check_hinge_d_step(fn: Callable) -> CheckResult:
    """``fn(D, G, opt_d, x_real, z) -> float``: one discriminator update with the hinge loss
    E relu(1 - D(x)) + E relu(1 + D(G(z))), returning the loss before the update.

    Hidden cases: D's gradients hold stale values from an earlier step (so ``opt_d.zero_grad()``
    is needed), and G must receive no gradient and not move (so the fakes must be detached).
    """
    cases = [Case((seed,), _run_d_step(_hinge_d_step, seed), f"a D step (seed {seed})")
             for seed in (0, 1, 2)]

    def run(seed):
        return _run_d_step(fn, seed)

    result = run_checks(
        "hinge_d_step", run, cases, compare=_d_step_ok,
        hint="x_fake = G(z).detach() (D's step must not send gradients into G); loss = "
             "relu(1 - D(x_real)).mean() + relu(1 + D(x_fake)).mean(); then opt_d.zero_grad(), "
             "loss.backward(), opt_d.step(), and return loss.item().")
    return result


# --------------------------------------------------------------------------------------------------
# Exercise 3: the R1 gradient penalty (Mescheder et al. 2018, Eq. 9)
class _FlatD(nn.Module):
    def __init__(self, n_in: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 16), nn.Softplus(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def _r1(D, x_real, x_fake):
    x = x_real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def _run_r1(fn: Callable, shape: tuple, seed: int) -> dict:
    rng_state = torch.get_rng_state()
    try:
        D = _FlatD(math.prod(shape), seed)
        g = _g(seed)
        x_real, x_fake = torch.randn((8,) + shape, generator=g), torch.randn((8,) + shape, generator=g)
    finally:
        torch.set_rng_state(rng_state)
    out = fn(D, x_real, x_fake)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return _PenaltyRecord({"value": None, "grads": None, "why": "not a one-number tensor"})
    value = float(out.detach())
    if not out.requires_grad:
        return _PenaltyRecord({"value": value, "grads": None,
                               "why": "it does not depend on D's weights (create_graph=True?)"})
    grads = torch.autograd.grad(out, list(D.parameters()), allow_unused=True)
    flat = torch.cat([(torch.zeros_like(p) if gr is None else gr).flatten()
                      for gr, p in zip(grads, D.parameters())])
    return _PenaltyRecord({"value": round(value, 6), "grads": flat, "why": ""})


def _r1_ok(got, expected) -> bool:
    if not isinstance(got, dict) or got.get("grads") is None or got.get("value") is None:
        return False
    return (math.isclose(got["value"], expected["value"], rel_tol=1e-3, abs_tol=1e-6)
            and torch.allclose(got["grads"], expected["grads"], rtol=1e-3, atol=1e-6))


def check_r1_penalty(fn: Callable) -> CheckResult:
    """``fn(D, x_real, x_fake) -> scalar tensor``: E_real ||grad_x D(x)||^2 (without gamma / 2),
    the squared norm per example over all of its dimensions, averaged over the batch; it must be
    differentiable with respect to D's weights (``create_graph=True``)."""
    specs = [((2,), 0, "2-D points"), ((2,), 1, "2-D points, another D"),
             ((1, 4, 4), 2, "4x4 images: the norm is over all of an example's pixels")]
    cases = [Case((shape, seed), _run_r1(_r1, shape, seed), d) for shape, seed, d in specs]

    def run(shape, seed):
        return _run_r1(fn, shape, seed)

    return run_checks(
        "r1_penalty", run, cases, compare=_r1_ok,
        hint="R1 penalises the gradient at the real points only: x = x_real.detach()."
             "requires_grad_(True); grad, = torch.autograd.grad(D(x).sum(), x, "
             "create_graph=True); return grad.flatten(1).pow(2).sum(1).mean(). Not "
             "(norm - 1)^2 (that is WGAN-GP's), not at fakes or interpolates, and without "
             "create_graph=True the penalty cannot train D.")
