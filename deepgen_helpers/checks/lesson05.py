"""Checkers for lesson 05 (DCGAN and conditional GANs)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g
from .. import metrics


# --------------------------------------------------------------------------------------------------
def _pair_close(atol: float):
    def compare(got, expected) -> bool:
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False
        return all(isinstance(g, torch.Tensor) and g.shape == e.shape
                   and torch.allclose(g.detach().double(), e.double(), atol=atol, rtol=1e-4)
                   for g, e in zip(got, expected))
    return compare


def _hinge_ref(real, fake):
    d = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    return d, -fake.mean()


def check_hinge_losses(fn: Callable[[torch.Tensor, torch.Tensor], tuple]) -> CheckResult:
    """``fn(real_logits (B,), fake_logits (B,)) -> (d_loss, g_loss)``, two scalars: the hinge
    loss of Lim & Ye (2017) and Miyato et al. (2018, Eq. 16): ``mean(relu(1 - D(x))) +
    mean(relu(1 + D(G(z))))`` for the discriminator and ``-mean(D(G(z)))`` for the generator."""
    g = _g(51)
    real, fake = 2 * torch.randn(64, generator=g), 2 * torch.randn(64, generator=g)
    sure_real, sure_fake = torch.tensor([3.0, 1.0]), torch.tensor([-2.0, -1.0])
    cases = [
        Case((torch.zeros(4), torch.zeros(4)), (torch.tensor(2.0), torch.tensor(0.0)),
             "an undecided discriminator (all logits 0): d_loss = 1 + 1, g_loss = 0"),
        Case((sure_real, sure_fake), (torch.tensor(0.0), torch.tensor(1.5)),
             "a discriminator beyond the margin on every image: d_loss = 0, g_loss = 1.5"),
        Case((torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0])),
             (torch.tensor(1.25 + 2.0), torch.tensor(-1.0)),
             "inside the margins: relu(1 - [0.5, -1]) = [0.5, 2], relu(1 + [2, 0]) = [3, 1]"),
        Case((real, fake), _hinge_ref(real, fake), "64 random logits"),
        Case((real[:8], fake), _hinge_ref(real[:8], fake),
             "8 real and 64 fake logits (average each term over its own batch)"),
    ]
    return run_checks("hinge_losses", fn, cases, compare=_pair_close(1e-5),
                      hint="d_loss = relu(1 - real_logits).mean() + relu(1 + fake_logits).mean(); "
                           "the generator's loss is not a hinge: g_loss = -fake_logits.mean().")


# --------------------------------------------------------------------------------------------------
def _truncated_std(psi: float) -> float:
    """Standard deviation of N(0, 1) conditioned on |z| <= psi."""
    phi = math.exp(-psi * psi / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    return math.sqrt(1 - 2 * psi * phi / mass)


def check_truncated_noise(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """``fn(n, dim, psi, generator) -> (n, dim)``: draws of N(0, 1) with every value outside
    ``[-psi, psi]`` redrawn until it falls inside (the truncation trick, Brock et al. 2019, §3.1),
    using only the given ``torch.Generator``.

    Judged by its distribution (range, spread, no pile-up at the edges), its shape, and its
    reproducibility from the generator alone (global reseeding or the global RNG fail)."""
    def summary(n, dim, psi, seed):
        """What the checker judges, in words that a failure message can show."""
        outs = []
        saved = torch.get_rng_state()
        try:
            for global_seed in (1000, 2000):                   # the global RNG must not matter
                torch.manual_seed(global_seed)
                outs.append(fn(n, dim, psi, torch.Generator().manual_seed(seed)))
        finally:
            torch.set_rng_state(saved)
        a, b = outs
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return {"returned": type(a).__name__}
        out = {"shape": tuple(a.shape), "same seed, same draws": bool(torch.equal(a, b))}
        if a.is_floating_point() and a.numel() > 1 and bool(torch.isfinite(a).all()):
            a = a.double()
            out.update({"max |z|": round(float(a.abs().max()), 3), "std": round(float(a.std()), 3),
                        "mean": round(float(a.mean()), 3),
                        "share at +-psi": round(float((a.abs() > psi * 0.999).double().mean()), 3)})
        return out

    def compare(got, expected) -> bool:
        n, dim, psi = expected["shape"][0], expected["shape"][1], expected["max |z|"]
        if not isinstance(got, dict) or got.get("shape") != (n, dim) or "std" not in got:
            return False
        se = expected["std"] / math.sqrt(2 * n * dim)
        return (got["same seed, same draws"] and got["max |z|"] <= psi + 1e-3
                and abs(got["std"] - expected["std"]) < 5 * se + 0.01 and abs(got["mean"]) < 0.03
                and got["share at +-psi"] < 0.01)

    def want(n, dim, psi):
        return {"shape": (n, dim), "same seed, same draws": True, "max |z|": psi,
                "std": round(_truncated_std(psi), 3), "mean": 0.0, "share at +-psi": 0.0}

    cases = [
        Case((20000, 4, 1.0, 0), want(20000, 4, 1.0), "psi = 1: std 0.54, nothing piled at +-1"),
        Case((5000, 8, 0.5, 1), want(5000, 8, 0.5), "psi = 0.5: a narrow window"),
        Case((4000, 16, 3.0, 2), want(4000, 16, 3.0), "psi = 3: nearly a standard normal"),
    ]
    return run_checks("truncated_noise", summary, cases, compare=compare,
                      hint="z = torch.randn(n, dim, generator=generator); then, while any "
                           "|z| > psi, redraw just those entries with the same generator. "
                           "Clamping or rescaling z changes the distribution; the same seed must "
                           "give the same draws whatever the global RNG does.")


# --------------------------------------------------------------------------------------------------
def check_knn_precision(fn: Callable[[torch.Tensor, torch.Tensor, int], float]) -> CheckResult:
    """``fn(real (N, F), fake (M, F), k) -> float``: the fraction of fake points within the k-NN
    ball of *some* real point (Kynkäänniemi et al. 2019, Eqs. 1-2), the radius of a real point
    being the distance to its k-th nearest *other* real point."""
    g = _g(53)
    real = torch.randn(300, 3, generator=g)
    fake = 1.3 * torch.randn(200, 3, generator=g) + 0.3
    line = torch.tensor([[0.0], [1.0], [3.0], [10.0]])     # k = 1 radii 1, 1, 2, 7
    probe = torch.tensor([[2.0], [5.5], [17.5], [-1.5]])
    cases = [
        Case((line, probe, 1), 0.5,
             "1-D, k = 1: 2.0 is inside; 5.5 is outside the ball of its nearest real point (3) but "
             "inside the ball of 10; 17.5 and -1.5 are outside"),
        Case((line, probe, 2), 1.0, "1-D, k = 2 (radii 3, 2, 3, 9): all four are inside"),
        Case((real, fake, 3), metrics.precision_recall(real, fake, 3)["precision"],
             "300 real and 200 fake points in 3-D, k = 3"),
        Case((real, real[:50].clone(), 5), 1.0, "real points themselves are all inside"),
    ]
    return run_checks("knn_precision", fn, cases, atol=1e-6,
                      hint="radii = torch.cdist(real, real).kthvalue(k + 1, dim=1).values "
                           "(k + 1: each point is its own nearest neighbour at distance 0); a "
                           "fake point counts if (torch.cdist(fake, real) <= radii).any(1).")


# --------------------------------------------------------------------------------------------------
def _mbstd_ref(x: torch.Tensor) -> torch.Tensor:
    sd = (x.var(0, unbiased=False) + 1e-8).sqrt().mean()               # one number
    return torch.cat([x, sd.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


def check_minibatch_stddev(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(x (B, C, H, W)) -> (B, C + 1, H, W)``: ``x`` with one more channel holding, everywhere,
    the average over features and positions of the standard deviation over the batch (Karras et al.
    2018, §3; population std, ``sqrt(var + 1e-8)``)."""
    g = _g(54)
    x = torch.randn(8, 3, 4, 4, generator=g)
    same = torch.randn(1, 2, 3, 3, generator=g).expand(5, 2, 3, 3).clone()
    two = torch.tensor([0.0, 2.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2).clone()
    cases = [
        Case((same,), _mbstd_ref(same), "a collapsed batch (5 identical images): the new "
                                       "channel is ~0"),
        Case((two,), torch.cat([two, torch.ones(2, 1, 2, 2)], 1),
             "two images, all 0 and all 2: population std 1 (not the unbiased 1.41)"),
        Case((x,), _mbstd_ref(x), "8 random 3-channel 4x4 feature maps"),
    ]
    return run_checks("minibatch_stddev", fn, cases, atol=1e-4,
                      hint="sd = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(): the std over "
                           "the batch (dim 0), averaged to one number; expand it to (B, 1, H, W) "
                           "and torch.cat([x, that], dim=1).")
