"""Checkers for lesson 03 (variational autoencoders)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
def check_reparameterize_full(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> CheckResult:
    """``fn(mu (B, D), L (B, D, D) lower-triangular, eps (B, D)) -> z (B, D)``: z = mu + L eps, so
    z ~ N(mu, L L^T)."""
    g = _g(31)
    mu = torch.randn(4, 3, generator=g)
    L = torch.tril(torch.randn(4, 3, 3, generator=g))
    eps = torch.randn(4, 3, generator=g)
    diag_L = torch.diag_embed(torch.tensor([[2.0, 0.5]]))
    cases = [
        Case(
            (torch.zeros(1, 2), torch.eye(2)[None], torch.tensor([[0.3, -1.0]])),
            torch.tensor([[0.3, -1.0]]),
            "standard normal: z = eps",
        ),
        Case(
            (torch.tensor([[1.0, -1.0]]), diag_L, torch.tensor([[1.0, 1.0]])),
            torch.tensor([[3.0, -0.5]]),
            "diagonal L: the diagonal reparameterisation mu + sigma * eps",
        ),
        Case(
            (mu, L, eps),
            mu + (L @ eps[..., None])[..., 0],
            "a batch of 4 full-covariance " "Gaussians in 3-D",
        ),
    ]
    return run_checks("reparameterize_full", fn, cases, atol=1e-5,
                      hint="Multiply each L[b] by its eps[b] as a column vector: (L @ "
                           "eps.unsqueeze(-1)).squeeze(-1), then add mu.")


def check_kl_diag_gaussians(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """``fn(mu_q, logvar_q, mu_p, logvar_p) -> (B,)``: KL(N(mu_q, var_q) || N(mu_p, var_p)) summed
    over the last dim."""
    g = _g(32)
    mq, lq, mp, lp = (torch.randn(5, 4, generator=g) for _ in range(4))
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mq, (0.5 * lq).exp()),
        torch.distributions.Normal(mp, (0.5 * lp).exp()),
    ).sum(-1)
    z = torch.zeros(1, 3)
    cases = [
        Case((z, z, z, z), torch.zeros(1), "identical Gaussians: KL = 0"),
        Case(
            (torch.tensor([[2.0]]), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1)),
            torch.tensor([2.0]),
            "unit variances, means 2 apart: KL = 2^2/2",
        ),
        Case(
            (mq, lq, torch.zeros(5, 4), torch.zeros(5, 4)),
            0.5 * (mq**2 + lq.exp() - 1 - lq).sum(-1),
            "p = N(0, I): the VAE's closed form",
        ),
        Case((mq, lq, mp, lp), ref, "5 pairs of 4-D diagonal Gaussians"),
    ]
    return run_checks("kl_diag_gaussians", fn, cases, atol=1e-4,
                      hint="Per dimension: 0.5*(logvar_p - logvar_q + (var_q + (mu_q - "
                           "mu_p)**2)/var_p - 1); sum over the last dim.")


def _slerp_ref(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t[:, None]
    cos = ((z0 * z1).sum() / (z0.norm() * z1.norm())).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def check_slerp(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> CheckResult:
    """``fn(z0 (D,), z1 (D,), t (T,)) -> (T, D)``: spherical interpolation (White 2016), linear
    when z0 is parallel to z1."""
    g = _g(33)
    a, b = torch.randn(8, generator=g), torch.randn(8, generator=g)
    t5 = torch.linspace(0, 1, 5)
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    quarter = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)], [0.0, 1.0]])
    cases = [
        Case((e0, e1, torch.tensor([0.0, 0.5, 1.0])), quarter, "a quarter circle: the midpoint "
                                                               "stays on the unit circle"),
        Case((a, b, t5), _slerp_ref(a, b, t5), "two 8-D latent vectors, 5 steps"),
        Case((a, 2 * a, torch.tensor([0.0, 0.5, 1.0])), torch.stack([a, 1.5 * a, 2 * a]),
             "parallel vectors: fall back to linear interpolation (no division by sin 0)"),
    ]
    return run_checks("slerp", fn, cases, atol=1e-4,
                      hint="omega = arccos(z0.z1 / (|z0||z1|)); z(t) = (sin((1-t) omega) z0 + "
                           "sin(t omega) z1) / sin(omega); "
                           "use t[:, None] to broadcast, and lerp when omega is ~0.")


def check_log_mean_exp(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(log_w (K, B)) -> (B,)``: log (1/K) sum_k exp(log_w[k]), computed stably (the IWAE
    bound, Burda et al. 2015, Eq. 8)."""
    g = _g(34)
    lw = 5 * torch.randn(50, 3, generator=g)
    cases = [
        Case(
            (torch.full((4, 2), -1.5),),
            torch.tensor([-1.5, -1.5]),
            "equal weights: the mean of " "equal numbers",
        ),
        Case(
            (torch.tensor([[0.0], [math.log(3.0)]]),),
            torch.tensor([math.log(2.0)]),
            "log((1 + " "3)/2) = " "log 2",
        ),
        Case((lw,), torch.logsumexp(lw, 0) - math.log(50), "K = 50 samples for 3 images"),
        Case(
            (torch.tensor([[-1000.0], [-1001.0]]),),
            torch.tensor([-1000.0 + math.log((1 + math.exp(-1)) / 2)]),
            "log-weights of -1000 nats (exp underflows to 0: use logsumexp)",
        ),
    ]
    return run_checks("log_mean_exp", fn, cases, atol=1e-4,
                      hint="torch.logsumexp(log_w, dim=0) - math.log(K): never exponentiate "
                           "log-weights of images directly.")



# --------------------------------------------------------------------------------------------------
def _pair_close(atol: float):
    def compare(got, expected) -> bool:
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False
        return all(isinstance(g, torch.Tensor) and g.shape == e.shape
                   and torch.allclose(g.double(), e.double(), atol=atol, rtol=1e-4)
                   for g, e in zip(got, expected))
    return compare


def _score_ref(f, z, mu, logvar):
    var = logvar.exp()
    return f[:, None] * (z - mu) / var, f[:, None] * 0.5 * ((z - mu) ** 2 / var - 1)


def check_score_function_grad(fn: Callable[..., tuple]) -> CheckResult:
    """``fn(f_values (N,), z (N, D), mu (D,), logvar (D,)) -> (g_mu, g_logvar)``, each ``(N, D)``:
    the per-sample score-function (REINFORCE) estimates ``f(z) d log q(z) / d mu`` and
    ``f(z) d log q(z) / d logvar`` for ``q = N(mu, diag(exp(logvar)))``."""
    g = _g(35)
    mu, logvar = torch.randn(3, generator=g), torch.randn(3, generator=g)      # sigma != 1
    z = mu + (0.5 * logvar).exp() * torch.randn(6, 3, generator=g)
    f = torch.randn(6, generator=g)
    one = torch.ones(1)
    cases = [
        Case((one, torch.tensor([[1.0]]), torch.zeros(1), torch.zeros(1)),
             (one[:, None], torch.zeros(1, 1)),
             "standard normal, z = 1, f = 1: d/dmu = 1, d/dlogvar = 0"),
        Case((one, torch.tensor([[2.0]]), torch.tensor([1.0]), torch.tensor([math.log(0.25)])),
             (torch.tensor([[4.0]]), torch.tensor([[1.5]])),
             "mu = 1, sigma = 0.5, z = 2: d/dmu = (z - mu)/sigma^2 = 4, "
             "d/dlogvar = ((z - mu)^2/sigma^2 - 1)/2 = 1.5"),
        Case((f, z, mu, logvar), _score_ref(f, z, mu, logvar),
             "6 samples of a 3-D Gaussian, random f"),
    ]
    return run_checks("score_function_grad", fn, cases, compare=_pair_close(1e-4),
                      hint="log q = -0.5 * sum(logvar + (z - mu)**2 / exp(logvar)) + const; "
                           "differentiate by mu and by logvar (not by sigma), then multiply by "
                           "f_values[:, None].")


def check_gaussian_nll(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """``fn(x_hat (B, ...), x (B, ...), logvar) -> (B,)``: -log N(x; x_hat, exp(logvar) I), summed
    over each image."""
    g = _g(36)
    x_hat, x = torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g)
    lv = math.log(0.05)
    ref = -torch.distributions.Normal(x_hat, math.exp(0.5 * lv)).log_prob(x).flatten(1).sum(1)
    lv_t = torch.randn(1, 1, 4, 4, generator=g)
    ref_t = -torch.distributions.Normal(x_hat, (0.5 * lv_t).exp()).log_prob(x).flatten(1).sum(1)
    z = torch.zeros(1, 1, 2, 2)
    cases = [
        Case((z, z, 0.0), torch.tensor([2 * math.log(2 * math.pi)]),
             "perfect reconstruction, sigma = 1: 4 pixels x 0.5 log(2 pi)"),
        Case((x_hat, x, lv), ref, "3 images of 16 pixels, sigma^2 = 0.05"),
        Case((x_hat, x, lv_t), ref_t, "a different variance per pixel (a tensor logvar)"),
    ]
    return run_checks("gaussian_nll", fn, cases, atol=1e-3,
                      hint="0.5 * ((x - x_hat)**2 / exp(logvar) + logvar + log(2 pi)), summed over "
                           "every dimension but the first; accept logvar as a float or a tensor "
                           "(torch.as_tensor).")


def check_free_bits_rate(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``fn(kl_per_dim (B, J), lam) -> scalar``: sum_j max(lam, mean_b kl_per_dim[b, j]) (free
    bits, Kingma et al. 2016)."""
    g = _g(37)
    kl = torch.rand(8, 5, generator=g) * torch.tensor([0.05, 0.2, 1.0, 3.0, 0.0])
    spread = torch.tensor([[0.0, 2.0], [1.0, 0.0]])   # unit means 0.5 and 1.0; images either side
    cases = [
        Case((torch.zeros(4, 3), 0.5), torch.tensor(1.5), "all units inactive: each costs lam"),
        Case((spread, 0.6), torch.tensor(1.6), "clamp each unit's batch *mean*, not each image"),
        Case((kl, 0.25), torch.clamp(kl.mean(0), min=0.25).sum(), "8 images, 5 units"),
        Case((kl, 0.0), kl.mean(0).sum(), "lam = 0: the ordinary rate of the minibatch"),
    ]
    return run_checks("free_bits_rate", fn, cases, atol=1e-5,
                      hint="kl_per_dim.mean(0) is each unit's rate over the batch; clamp it at lam "
                           "(torch.clamp(..., min=lam)) and sum over the units.")
