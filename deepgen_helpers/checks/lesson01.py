"""Checkers for lesson 01 (generative modelling basics)."""
from __future__ import annotations

import math
import numbers
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
    """``fn(x (N, D) in {0,1}, p (D,) in [0,1]) -> (N,)``: sum_d x log p + (1-x) log(1-p), in
    nats, with 0 log 0 = 0 (so -inf where a pixel is on and its p is 0)."""
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
        # p = 0 or 1, as an unsmoothed fit gives: 0 log 0 = 0 (a plain x * log(p) is 0 * -inf = nan there)
        Case((torch.tensor([[0.0, 1.0, 1.0]]), torch.tensor([0.0, 1.0, 0.5])),
             torch.tensor([math.log(0.5)]), "pixels with p = 0 that are off and p = 1 that are on"),
        # ... and a pixel that is on where p = 0 makes the vector impossible: -inf, not nan
        Case((torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([0.0, 0.5])),
             torch.tensor([-math.inf, math.log(0.5)]), "a pixel on where p = 0 (log-likelihood -inf)"),
    ]
    return run_checks("bernoulli_log_likelihood", fn, cases, compare=_close_with_inf,
                      hint="Each pixel contributes log p where it is 1 and log(1 - p) where it is "
                           "0; sum over the last dim. torch.xlogy(x, p) is x * log(p) with "
                           "0 * log(0) = 0, so p = 0 or 1 gives no nan.")


def _close_with_inf(got, expected) -> bool:
    """Tensors equal to 1e-4, where -inf must meet -inf (torch.allclose treats nan as unequal)."""
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape and
            bool(torch.isclose(got.double(), expected.double(), atol=1e-4, rtol=1e-4).all()))


def check_bits_per_dim(fn: Callable[[float, int], float]) -> CheckResult:
    """``fn(nll_nats, n_dims) -> bits per dimension``."""
    cases = [
        Case((784 * math.log(2), 784), 1.0, "784 nats*ln2 over 784 pixels is 1 bit each"),
        Case((100.0, 784), 100 / (784 * math.log(2)), "100 nats on MNIST"),
        Case((0.0, 10), 0.0, "a perfect model"),
    ]
    return run_checks("bits_per_dim", fn, cases, hint="Divide by the number of dimensions, and by "
                                                      "ln 2 to turn nats into bits.")


# ----------------------------------------------------------------------------------------------------------
# EM for a mixture of Bernoulli distributions (Bishop 2006, §9.3.3), exercises 1-3 of lesson 01
# ----------------------------------------------------------------------------------------------------------
def _component_log_probs(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Reference ``(N, K)``: sum_d xlogy(v, p_k) + xlogy(1 - v, 1 - p_k), exact at p = 0 or 1."""
    return (torch.xlogy(v[:, None, :], p) + torch.xlogy(1 - v[:, None, :], 1 - p)).sum(-1)


def _reference_e_step(v: torch.Tensor, log_pi: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    log_joint = log_pi + _component_log_probs(v, p)                       # (N, K)
    return (log_joint - torch.logsumexp(log_joint, 1, keepdim=True)).exp()


def _prototypes(k: int, d: int, seed: int, low: float = 0.1) -> torch.Tensor:
    """``(k, d)`` pixel probabilities of ``low`` or ``1 - low``: well-separated Bernoulli components."""
    return torch.where(torch.rand(k, d, generator=_g(seed)) < 0.3, 1 - low, low)


def check_e_step(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(v (N, D) in {0,1}, log_pi (K,), p (K, D) in [0, 1]) -> responsibilities (N, K)``, rows summing to 1."""
    g = _g(11)
    v = (torch.rand(6, 5, generator=g) < 0.5).float()
    log_pi = torch.log_softmax(torch.randn(3, generator=g), 0)
    p = torch.rand(3, 5, generator=g) * 0.9 + 0.05
    cases = [Case((v, log_pi, p), _reference_e_step(v, log_pi, p), "6 vectors of 5 pixels, 3 components")]
    # 784 pixels: every log p(v | k) is near -300, so exp() underflows to 0 in float32 (and 0/0 = nan)
    p_big = _prototypes(4, 784, 12)
    v_big = torch.bernoulli(p_big[torch.tensor([0, 1, 2, 3, 1, 0])], generator=_g(13))
    lp_big = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    cases.append(Case((v_big, lp_big, p_big), _reference_e_step(v_big, lp_big, p_big),
                      "784-pixel images, where log p(v | k) is about -300 (exp underflows to 0)"))
    # unequal weights: the prior pi_k must enter the responsibilities
    p_w = torch.full((2, 4), 0.5)
    v_w = torch.ones(2, 4)
    lp_w = torch.log(torch.tensor([0.9, 0.1]))
    cases.append(Case((v_w, lp_w, p_w), torch.tensor([[0.9, 0.1], [0.9, 0.1]]),
                      "two identical components with weights 0.9 and 0.1"))
    # p exactly 0 or 1 (an unsmoothed M-step makes them): 0 log 0 = 0, and an impossible component gets 0
    p_edge = torch.tensor([[0.0, 1.0, 0.5], [0.5, 0.5, 0.5]])
    v_edge = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    lp_edge = torch.log(torch.tensor([0.5, 0.5]))
    cases.append(Case((v_edge, lp_edge, p_edge), _reference_e_step(v_edge, lp_edge, p_edge),
                      "probabilities of exactly 0 and 1 (row 2 is impossible under component 1)"))
    return run_checks("e_step", fn, cases, atol=1e-5,
                      hint="Work with logs: log_joint = log_pi + log p(v | k) (N, K), then subtract "
                           "torch.logsumexp(log_joint, 1, keepdim=True) and exponentiate; rows must sum to 1. "
                           "At p = 0 or 1 use torch.xlogy (0 log 0 = 0), as the lesson's bernoulli_log_prob does.")


def _reference_m_step(v: torch.Tensor, resp: torch.Tensor, alpha: float = 1.0):
    n_k = resp.sum(0)                                                      # (K,)
    p = (resp.T @ v + alpha) / (n_k[:, None] + 2 * alpha)                  # (K, D)
    return (n_k / len(v)).log(), p


def _close_pair(got, expected, atol: float = 1e-5) -> bool:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return False
    return all(isinstance(a, torch.Tensor) and a.shape == b.shape and
               torch.allclose(a.double(), b.double(), atol=atol, rtol=1e-4) for a, b in zip(got, expected))


def check_m_step(fn: Callable[..., tuple]) -> CheckResult:
    """``fn(v (N, D), resp (N, K), alpha=1.0) -> (log_pi (K,), p (K, D))`` with Beta(alpha+1, alpha+1) smoothing."""
    g = _g(21)
    v = (torch.rand(8, 6, generator=g) < 0.4).float()
    resp = torch.softmax(torch.randn(8, 3, generator=g), 1)
    hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    v_hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    cases = [
        Case((v, resp, 1.0), _reference_m_step(v, resp, 1.0), "8 vectors, soft responsibilities, alpha=1"),
        Case((v_hard, hard), _reference_m_step(v_hard, hard, 1.0),
             "hard assignments 3 : 1 with the default alpha (a pixel never on in component 2 must not get p = 0)"),
        Case((v, resp, 0.0), _reference_m_step(v, resp, 0.0), "alpha=0: plain maximum likelihood"),
        Case((v_hard, hard, 3.0), _reference_m_step(v_hard, hard, 3.0), "alpha=3"),
    ]
    return run_checks("m_step", fn, cases, compare=_close_pair,
                      hint="N_k = resp.sum(0); log_pi = log(N_k / N); p_k = (sum_n resp[n, k] v_n + alpha) / "
                           "(N_k + 2 alpha). Return (log_pi, p): log weights, not weights.")


def check_fit_bernoulli_mixture(fn: Callable[[torch.Tensor, int, int], tuple]) -> CheckResult:
    """``fn(v (N, D), k, steps) -> (log_pi (K,), p (K, D), trace)``: EM from a random start, ``trace`` the
    average training log-likelihood per image at each of the ``steps`` iterations (nats)."""
    truth = _prototypes(2, 784, 31)                                        # (2, 784)
    log_pi_true = torch.log(torch.tensor([0.6, 0.4]))
    g = _g(32)
    c = torch.multinomial(log_pi_true.exp(), 2000, replacement=True, generator=g)
    v_all = torch.bernoulli(truth[c], generator=g)                           # (2000, 784)
    v, v_new = v_all[:1000], v_all[1000:]
    best = torch.logsumexp(log_pi_true + _component_log_probs(v_new, truth), 1).mean().item()
    reasons = []

    def verdict(got, _expected) -> bool:
        why = _fit_problem(got, v_new, steps=15, best=best)
        if why:
            reasons.append(why)
        return not why

    expected = "a fit within 2 nats per image of the true mixture on new images, with a rising trace"
    ok = run_checks("fit_bernoulli_mixture", fn, [Case((v, 2, 15), expected, "1,000 images from 2 components")],
                    compare=verdict, hint="E-step, then M-step with smoothing, `steps` times; start from k "
                                          "different random images (identical components never separate).")
    if reasons:
        print(f"   Why: {reasons[0]}")
    return ok


def _fit_problem(got, v_new: torch.Tensor, steps: int, best: float) -> str:
    """What is wrong with the output of a learner's EM fit (empty when nothing is)."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return "return three things: (log_pi, p, trace)."
    log_pi, p, trace = got
    if not (isinstance(log_pi, torch.Tensor) and isinstance(p, torch.Tensor)):
        return "log_pi and p must be tensors."
    if log_pi.shape != (2,) or p.shape != (2, v_new.shape[1]):
        return f"expected log_pi (2,) and p (2, 784), got {tuple(log_pi.shape)} and {tuple(p.shape)}."
    if bool(torch.isnan(log_pi).any() or torch.isnan(p).any()):
        return ("log_pi or p holds nan: an E-step without logsumexp underflows to 0 / 0, and an M-step "
                "without smoothing gives p = 0, then 0 * log 0.")
    if not abs(torch.logsumexp(log_pi.double(), 0).item()) < 1e-4:
        return "the weights exp(log_pi) do not sum to 1."
    if not bool(((p > 0) & (p < 1)).all()):
        return "some p is exactly 0 or 1: without smoothing a new image gets log 0 = -inf."
    trace = torch.as_tensor(list(trace), dtype=torch.float64)
    if trace.shape != (steps,) or not bool(torch.isfinite(trace).all()):
        return f"trace must hold {steps} finite numbers (nan means exp() underflowed: use logsumexp)."
    if trace.diff().min().item() < -0.01:
        # EM with smoothing never lowers log-likelihood + log prior; the log-likelihood alone may dip by a hair
        return "the log-likelihood fell during EM; each E-step and M-step can only raise it."
    fitted = torch.logsumexp(log_pi + _component_log_probs(v_new, p), 1).mean().item()
    if fitted < best - 2.0:
        return (f"on new images the fit scores {fitted:.1f} nats per image, the true mixture {best:.1f}; "
                "are the components updated, and did they start different?")
    return ""


def check_smallest_k_within_one_se(fn: Callable[[list, list, list], int]) -> CheckResult:
    """``fn(ks, means, ses) -> K``: the smallest K whose validation NLL is at most the best NLL plus the best
    model's standard error (the one-standard-error rule; Hastie et al. 2009, §7.10)."""
    cases = [
        Case(([2, 4, 8, 16, 32], [4.12, 3.41, 2.53, 2.52, 2.55], [0.02] * 5), 8,
             "K = 16 is best by less than one standard error: choose the smaller K = 8, not the argmin"),
        Case(([1, 2, 3], [5.0, 4.0, 3.0], [0.1, 0.1, 0.1]), 3, "the largest K is clearly best"),
        Case(([2, 4], [2.60, 2.50], [0.20, 0.01]), 4,
             "the bar is the best model's standard error (0.01), not each candidate's own (0.20)"),
        Case(([2, 4, 8], [3.00, 2.95, 2.90], [0.5, 0.5, 0.08]), 4,
             "the smallest K within one standard error, not the first K below the best mean + its own SE"),
    ]
    return run_checks("smallest_k_within_one_se", fn, cases,
                      compare=lambda got, exp: (isinstance(got, numbers.Integral) and not isinstance(got, bool)
                                               and got == exp),
                      hint="best = index of the smallest mean; bar = means[best] + ses[best]; return the first K "
                           "(in increasing order) whose mean <= bar, as a plain int.")
