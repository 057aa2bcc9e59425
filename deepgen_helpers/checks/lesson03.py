"""Checkers for lesson 03 (variational autoencoders)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


# ----------------------------------------------------------------------------------------------------------
def check_reparameterize_full(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(mu (B, D), L (B, D, D) lower-triangular, eps (B, D)) -> z (B, D)``: z = mu + L eps, so z ~ N(mu, L L^T)."""
    g = _g(31)
    mu = torch.randn(4, 3, generator=g)
    L = torch.tril(torch.randn(4, 3, 3, generator=g))
    eps = torch.randn(4, 3, generator=g)
    diag_L = torch.diag_embed(torch.tensor([[2.0, 0.5]]))
    cases = [
        Case((torch.zeros(1, 2), torch.eye(2)[None], torch.tensor([[0.3, -1.0]])), torch.tensor([[0.3, -1.0]]),
             "standard normal: z = eps"),
        Case((torch.tensor([[1.0, -1.0]]), diag_L, torch.tensor([[1.0, 1.0]])), torch.tensor([[3.0, -0.5]]),
             "diagonal L: the diagonal reparameterisation mu + sigma * eps"),
        Case((mu, L, eps), mu + (L @ eps[..., None])[..., 0], "a batch of 4 full-covariance Gaussians in 3-D"),
    ]
    return run_checks("reparameterize_full", fn, cases, atol=1e-5,
                      hint="Multiply each L[b] by its eps[b] as a column vector: (L @ eps.unsqueeze(-1)).squeeze(-1), then add mu.")


def check_kl_diag_gaussians(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """``fn(mu_q, logvar_q, mu_p, logvar_p) -> (B,)``: KL(N(mu_q, var_q) || N(mu_p, var_p)) summed over the last dim."""
    g = _g(32)
    mq, lq, mp, lp = (torch.randn(5, 4, generator=g) for _ in range(4))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, (0.5 * lq).exp()),
                                            torch.distributions.Normal(mp, (0.5 * lp).exp())).sum(-1)
    z = torch.zeros(1, 3)
    cases = [
        Case((z, z, z, z), torch.zeros(1), "identical Gaussians: KL = 0"),
        Case((torch.tensor([[2.0]]), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1)), torch.tensor([2.0]),
             "unit variances, means 2 apart: KL = 2^2/2"),
        Case((mq, lq, torch.zeros(5, 4), torch.zeros(5, 4)),
             0.5 * (mq ** 2 + lq.exp() - 1 - lq).sum(-1), "p = N(0, I): the VAE's closed form"),
        Case((mq, lq, mp, lp), ref, "5 pairs of 4-D diagonal Gaussians"),
    ]
    return run_checks("kl_diag_gaussians", fn, cases, atol=1e-4,
                      hint="Per dimension: 0.5*(logvar_p - logvar_q + (var_q + (mu_q - mu_p)**2)/var_p - 1); sum over the last dim.")


def _slerp_ref(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t[:, None]
    cos = ((z0 * z1).sum() / (z0.norm() * z1.norm())).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def check_slerp(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(z0 (D,), z1 (D,), t (T,)) -> (T, D)``: spherical interpolation (White 2016), linear when z0 is parallel to z1."""
    g = _g(33)
    a, b = torch.randn(8, generator=g), torch.randn(8, generator=g)
    t5 = torch.linspace(0, 1, 5)
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    quarter = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)], [0.0, 1.0]])
    cases = [
        Case((e0, e1, torch.tensor([0.0, 0.5, 1.0])), quarter, "a quarter circle: the midpoint stays on the unit circle"),
        Case((a, b, t5), _slerp_ref(a, b, t5), "two 8-D latent vectors, 5 steps"),
        Case((a, 2 * a, torch.tensor([0.0, 0.5, 1.0])), torch.stack([a, 1.5 * a, 2 * a]),
             "parallel vectors: fall back to linear interpolation (no division by sin 0)"),
    ]
    return run_checks("slerp", fn, cases, atol=1e-4,
                      hint="omega = arccos(z0.z1 / (|z0||z1|)); z(t) = (sin((1-t) omega) z0 + sin(t omega) z1) / sin(omega); "
                           "use t[:, None] to broadcast, and lerp when omega is ~0.")


def check_log_mean_exp(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(log_w (K, B)) -> (B,)``: log (1/K) sum_k exp(log_w[k]), computed stably (the IWAE bound, Burda et al. 2015, Eq. 8)."""
    g = _g(34)
    lw = 5 * torch.randn(50, 3, generator=g)
    cases = [
        Case((torch.full((4, 2), -1.5),), torch.tensor([-1.5, -1.5]), "equal weights: the mean of equal numbers"),
        Case((torch.tensor([[0.0], [math.log(3.0)]]),), torch.tensor([math.log(2.0)]), "log((1 + 3)/2) = log 2"),
        Case((lw,), torch.logsumexp(lw, 0) - math.log(50), "K = 50 samples for 3 images"),
        Case((torch.tensor([[-1000.0], [-1001.0]]),), torch.tensor([-1000.0 + math.log((1 + math.exp(-1)) / 2)]),
             "log-weights of -1000 nats (exp underflows to 0: use logsumexp)"),
    ]
    return run_checks("log_mean_exp", fn, cases, atol=1e-4,
                      hint="torch.logsumexp(log_w, dim=0) - math.log(K): never exponentiate log-weights of images directly.")
