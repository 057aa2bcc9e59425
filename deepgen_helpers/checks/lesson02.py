"""Checkers for lesson 02 (autoencoders)."""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
# Reference formulas (PyTorch documentation of nn.Conv2d and nn.ConvTranspose2d, "Shape" section)
def _conv2d_out(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _conv_transpose2d_out(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


# : (size, kernel, stride, padding, dilation) for Conv2d. Several do not divide evenly, and three
# leave a
# : fraction above one half ((29,3,3): 8.67; (30,3,4): 6.75; (10,5,4,1): 1.75), so ``round`` or
# ``ceil`` in place
# : of the floor fails; (28,3,1,1) and (7,3,3) catch a missing ``- 1`` or ``+ 1``; dilation 2 a
# missing dilation.
CONV_CASES = [
    (28, 4, 2, 1, 1),
    (28, 3, 1, 1, 1),
    (14, 4, 2, 1, 1),
    (28, 5, 1, 0, 1),
    (29, 3, 2, 0, 1),
    (28, 3, 2, 1, 2),
    (7, 3, 3, 0, 1),
    (29, 3, 3, 0, 1),
    (30, 3, 4, 0, 1),
    (10, 5, 4, 1, 1),
]
#: (size, kernel, stride, padding, output_padding, dilation) for ConvTranspose2d; the last combines
#: output_padding with dilation.
CONV_T_CASES = [
    (7, 4, 2, 1, 0, 1),
    (14, 4, 2, 1, 0, 1),
    (7, 3, 2, 1, 1, 1),
    (4, 5, 1, 0, 0, 1),
    (5, 3, 2, 0, 0, 2),
    (3, 3, 3, 1, 2, 1),
    (4, 3, 2, 1, 1, 2),
]


def check_conv2d_out(fn: Callable[..., int]) -> CheckResult:
    """``fn(size, kernel, stride=1, padding=0, dilation=1) -> int``: the output height of ``nn.Conv2d``."""
    cases = [Case((s, k), _conv2d_out(s, k, st, p, d), f"size={s}, kernel={k}, stride={st}, "
                                                       f"padding={p}, dilation={d}",
                  kwargs={"stride": st, "padding": p, "dilation": d})
             for s, k, st, p, d in CONV_CASES]
    return run_checks(
        "conv2d_out",
        fn,
        cases,
        compare=lambda got, exp: isinstance(got, int) and got == exp,
        hint="floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1, as "
        "an int "
        "(use // for the floor).",
    )


def check_conv_transpose2d_out(fn: Callable[..., int]) -> CheckResult:
    """``fn(size, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> int``: output of ``nn.ConvTranspose2d``."""
    cases = [Case((s, k), _conv_transpose2d_out(s, k, st, p, op, d),
                  f"size={s}, kernel={k}, stride={st}, padding={p}, output_padding={op}, "
                  f"dilation={d}",
                  kwargs={"stride": st, "padding": p, "output_padding": op, "dilation": d})
             for s, k, st, p, op, d in CONV_T_CASES]
    return run_checks(
        "conv_transpose2d_out",
        fn,
        cases,
        compare=lambda got, exp: isinstance(got, int) and got == exp,
        hint="(size - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding "
        "+ 1: "
        "the transposed convolution undoes the size arithmetic of a "
        "convolution.",
    )


# --------------------------------------------------------------------------------------------------
def _mask_pixels(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator)
    return torch.where(u < p, torch.zeros_like(x), x)


class _MaskedCopy:
    """What a masking-noise answer must be: x with about a fraction p of its pixels set to 0."""

    def __init__(self, x: torch.Tensor, p: float):
        self.x, self.p = x, p

    def __repr__(self) -> str:
        return f"x with about {self.p:.0%} of its pixels set to 0 and the others unchanged"


def _is_masked_copy(got, exp: _MaskedCopy) -> bool:
    """Every pixel is 0 or unchanged, and the masked fraction is p within 5 standard errors."""
    try:
        got = torch.as_tensor(got).detach().cpu().float()
    except Exception:
        return False
    if got.shape != exp.x.shape:
        return False
    masked, kept = got == 0, torch.isclose(got, exp.x)
    if not bool((masked | kept).all()):
        return False
    tol = 5 * (exp.p * (1 - exp.p) / exp.x.numel()) ** 0.5
    return abs(masked.float().mean().item() - exp.p) <= tol


def _global_rng_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _rng_problem(fn: Callable, x: torch.Tensor) -> str:
    """Why ``fn`` does not draw its randomness from the given generator alone ("" if it does)."""
    before = _global_rng_states()
    a, b, c = (torch.as_tensor(fn(x.clone(), 0.5, _g(s))) for s in (7, 7, 8))
    after = _global_rng_states()
    if not (
        torch.equal(before[0], after[0])
        and np.array_equal(before[1], after[1])
        and before[2] == after[2]
    ):
        return ("it changed the global random state (torch.manual_seed, torch.rand without "
                "generator=, "
                "np.random.seed ...): draw every random number from the generator you are given")
    if not torch.equal(a, b):
        return "two generators with the same seed gave different masks: draw u from the generator you are given"
    if torch.equal(a, c):
        return "generators with different seeds gave the same mask: draw u from the generator you are given"
    return ""


def check_mask_pixels(
    fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor],
) -> CheckResult:
    """``fn(x, p, generator) -> x_tilde``: masking noise; each pixel is set to 0 with probability
    ``p`` and kept unchanged otherwise (no rescaling), drawing its random numbers from ``generator``
    only.

    Any correct answer passes (``torch.where``, ``x * mask``, ``masked_fill``, NumPy), whatever
    random numbers it draws from the generator: the cases check the masked fraction, not one
    particular mask.
    """
    x = torch.rand(64, 1, 28, 28, generator=_g(11)) * 0.9 + 0.1  # no zero pixels: every 0 is a mask
    x2 = torch.rand(2, 1, 5, 5, generator=_g(12)) + 0.1
    cases = [
        Case((x, p, _g(i)), _MaskedCopy(x, p), f"64 images, p = {p}")
        for i, p in ((1, 0.25), (2, 0.6))
    ]
    cases += [Case((x2, 0.0, _g(3)), _MaskedCopy(x2, 0.0), "p = 0 keeps every pixel"),
              Case((x2, 1.0, _g(4)), _MaskedCopy(x2, 1.0), "p = 1 masks every pixel")]
    hint = ("u = torch.rand(x.shape, generator=generator); zero the pixels where u < p; keep the "
            "others as "
            "they are (unlike dropout, do not divide by 1 - p), in a new tensor: the clean x is "
            "the target "
            "the denoising AE must reconstruct.")
    # run_checks also fails a function that changes x in place: the clean image is the denoising
    # target
    if not run_checks("mask_pixels", fn, cases, compare=_is_masked_copy, hint=hint):
        return CheckResult(False)
    try:
        problem = _rng_problem(fn, x2)
    except Exception as exc:  # it passed the cases, so this is unlikely; report it kindly
        problem = f"it raised {type(exc).__name__}: {exc}"
    if problem:
        print(f"❌ mask_pixels: right values, but {problem}.")
        return CheckResult(False)
    return CheckResult(True)


# --------------------------------------------------------------------------------------------------
def _interpolate(z0: torch.Tensor, z1: torch.Tensor, n: int) -> torch.Tensor:
    t = torch.linspace(0, 1, n).unsqueeze(1)  # (n, 1)
    return (1 - t) * z0 + t * z1  # (n, D)


def check_interpolate(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """``fn(z0 (D,), z1 (D,), n) -> (n, D)``: ``n`` evenly spaced points from ``z0`` to ``z1``, both ends included."""
    g = _g(21)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    cases = [
        Case((torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]), 3),
             torch.tensor([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0]]), "2-D, 3 points"),
        Case((a, b, 8), _interpolate(a, b, 8), "16-D, 8 points"),
        Case((b, a, 2), torch.stack([b, a]), "n = 2 gives just the two end points"),
    ]
    return run_checks("interpolate", fn, cases, atol=1e-5,
                      hint="t = torch.linspace(0, 1, n) includes both ends; return (1 - t) z0 + t "
                           "z1 with t as a "
                           "column (n, 1) so that it broadcasts against (D,) to give (n, D).")


# --------------------------------------------------------------------------------------------------
def _contractive_penalty(
    encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    z = encoder(x)  # (B, d)
    total = x.new_zeros(())
    for k in range(z.shape[1]):  # one backward pass per code unit: row k of every image's Jacobian
        (g,) = torch.autograd.grad(z[:, k].sum(), x, create_graph=True)
        total = total + g.pow(2).sum()
    return total / x.shape[0]


def _encoders() -> dict:
    state = (
        torch.get_rng_state()
    )  # building layers draws from the global RNG: restore it afterwards
    g = _g(31)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 4))
    with torch.no_grad():
        for p in [*linear.parameters(), *mlp.parameters()]:
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    torch.set_rng_state(state)
    return {"linear": linear, "mlp": mlp}


def check_contractive_penalty(fn: Callable[[Callable, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(encoder, x) -> scalar``: the batch mean of ||d encoder(x_i) / d x_i||_F^2 (Rifai et al.
    2011, Eq. 1; GBC Eq. 14.18), differentiable with respect to the encoder's parameters."""
    enc = _encoders()
    g = _g(32)
    x5, x3 = torch.rand(5, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    w = enc["linear"][1].weight.detach()
    cases = [
        Case((enc["linear"], x5), w.pow(2).sum(), "linear encoder, 3 code units: the penalty is "
                                                  "||W||_F^2"),
        Case((enc["mlp"], x3), _contractive_penalty(enc["mlp"], x3).detach(), "tanh MLP, 3 images"),
        Case((enc["mlp"], x3[:1]), _contractive_penalty(enc["mlp"], x3[:1]).detach(), "tanh MLP, 1 "
                                                                                      "image"),
    ]

    def compare(got, exp):
        return (
            isinstance(got, torch.Tensor)
            and got.numel() == 1
            and torch.allclose(
                got.detach().double().reshape(()), exp.double(), rtol=1e-4, atol=1e-6
            )
        )

    hint = ("for each code unit k, torch.autograd.grad(z[:, k].sum(), x, create_graph=True) gives "
            "row k of "
            "every image's Jacobian; square, sum over k and the pixels, and divide by the batch "
            "size. "
            "(z.sum() in one pass gives the sum of the rows, not their squared norms.)")
    if not run_checks("contractive_penalty", fn, cases, compare=compare, hint=hint):
        return CheckResult(False)
    mlp = _encoders()["mlp"]
    try:
        got = fn(mlp, x3)
        ok = isinstance(got, torch.Tensor) and got.requires_grad
        if ok:
            params = list(mlp.parameters())
            mine = torch.autograd.grad(got.sum(), params, allow_unused=True)
            ref = torch.autograd.grad(_contractive_penalty(mlp, x3), params, allow_unused=True)
            zero = torch.zeros(
                ()
            )  # the last bias does not move the Jacobian: its gradient is None or 0
            ok = any(a is not None for a in mine) and all(
                torch.allclose(
                    zero if a is None else a, zero if b is None else b, rtol=1e-3, atol=1e-6
                )
                for a, b in zip(mine, ref)
            )
    except Exception:
        ok = False
    if not ok:
        print("❌ contractive_penalty: right value, but the encoder cannot be trained with it: "
              "gradients must "
              "flow from the penalty to the encoder's weights. Pass create_graph=True to "
              "torch.autograd.grad.")
        return CheckResult(False)
    return CheckResult(True)
