"""Checkers for lesson 01 (generative modelling basics)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
def check_diag_gaussian_log_prob(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> CheckResult:
    """``fn(x (N, D), mu (D,), log_sigma (D,)) -> (N,)``: log N(x; mu, diag(sigma^2)) summed over
    D."""
    cases = []
    for seed, d in ((3, 2), (4, 5)):
        g = _g(seed)
        x, mu, ls = (
            torch.randn(7, d, generator=g),
            torch.randn(d, generator=g),
            0.3 * torch.randn(d, generator=g),
        )
        ref = torch.distributions.Normal(mu, ls.exp()).log_prob(x).sum(-1)
        cases.append(Case((x, mu, ls), ref, f"{d}-D Gaussian, 7 points"))
    cases.append(
        Case(
            (torch.zeros(1, 1), torch.zeros(1), torch.zeros(1)),
            torch.tensor([-0.5 * math.log(2 * math.pi)]),
            "standard normal at 0: -log(2 pi)/2",
        )
    )
    return run_checks("diag_gaussian_log_prob", fn, cases, atol=1e-4,
                      hint="Per dimension: -0.5*log(2*pi) - log_sigma - 0.5*((x - mu)/sigma)**2, "
                           "then .sum(-1).")


def check_bernoulli_log_likelihood(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> CheckResult:
    """``fn(x (N, D) in {0,1}, p (D,) in (0,1)) -> (N,)``: sum_d x log p + (1-x) log(1-p), in
    nats."""
    g = _g(5)
    x = (torch.rand(6, 10, generator=g) < 0.5).float()
    p = torch.rand(10, generator=g) * 0.9 + 0.05
    ref = (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)
    cases = [
        Case(
            (torch.tensor([[1.0, 0.0]]), torch.tensor([0.5, 0.5])),
            torch.tensor([2 * math.log(0.5)]),
            "two fair coins",
        ),
        Case((x, p), ref, "6 binary vectors of 10 pixels"),
        Case(
            (torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0.9, 0.8, 0.1])),
            torch.tensor([math.log(0.9 * 0.8 * 0.9)]),
            "a likely vector",
        ),
    ]
    return run_checks("bernoulli_log_likelihood", fn, cases, atol=1e-4,
                      hint="Each pixel contributes log p where it is 1 and log(1 - p) where it is "
                           "0; sum over the last dim.")


def check_bits_per_dim(fn: Callable[[float, int], float]) -> CheckResult:
    """``fn(nll_nats, n_dims) -> bits per dimension``."""
    cases = [
        Case((784 * math.log(2), 784), 1.0, "784 nats*ln2 over 784 pixels is 1 bit each"),
        Case((100.0, 784), 100 / (784 * math.log(2)), "100 nats on MNIST"),
        Case((0.0, 10), 0.0, "a perfect model"),
    ]
    return run_checks("bits_per_dim", fn, cases, hint="Divide by the number of dimensions, and by "
                                                      "ln 2 to turn nats into bits.")
