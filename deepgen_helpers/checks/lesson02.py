"""Checkers for lesson 02 (autoencoders)."""
from __future__ import annotations

from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


# ----------------------------------------------------------------------------------------------------------
# Reference formulas (PyTorch documentation of nn.Conv2d and nn.ConvTranspose2d, "Shape" section)
def _conv2d_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _conv_transpose2d_out(size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                          dilation: int = 1) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


#: (size, kernel, stride, padding, dilation) for Conv2d; the last ones do not divide evenly (the floor matters).
CONV_CASES = [(28, 4, 2, 1, 1), (28, 3, 1, 1, 1), (14, 4, 2, 1, 1), (28, 5, 1, 0, 1), (29, 3, 2, 0, 1),
              (28, 3, 2, 1, 2), (7, 3, 3, 0, 1)]
#: (size, kernel, stride, padding, output_padding, dilation) for ConvTranspose2d.
CONV_T_CASES = [(7, 4, 2, 1, 0, 1), (14, 4, 2, 1, 0, 1), (7, 3, 2, 1, 1, 1), (4, 5, 1, 0, 0, 1), (5, 3, 2, 0, 0, 2),
                (3, 3, 3, 1, 2, 1)]


def check_conv2d_out(fn: Callable[..., int]) -> CheckResult:
    """``fn(size, kernel, stride=1, padding=0, dilation=1) -> int``: the output height of ``nn.Conv2d``."""
    cases = [Case((s, k), _conv2d_out(s, k, st, p, d), f"size={s}, kernel={k}, stride={st}, padding={p}, dilation={d}",
                  kwargs={"stride": st, "padding": p, "dilation": d})
             for s, k, st, p, d in CONV_CASES]
    return run_checks("conv2d_out", fn, cases, compare=lambda got, exp: isinstance(got, int) and got == exp,
                      hint="floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1, as an int "
                           "(use // for the floor).")


def check_conv_transpose2d_out(fn: Callable[..., int]) -> CheckResult:
    """``fn(size, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> int``: output of ``nn.ConvTranspose2d``."""
    cases = [Case((s, k), _conv_transpose2d_out(s, k, st, p, op, d),
                  f"size={s}, kernel={k}, stride={st}, padding={p}, output_padding={op}, dilation={d}",
                  kwargs={"stride": st, "padding": p, "output_padding": op, "dilation": d})
             for s, k, st, p, op, d in CONV_T_CASES]
    return run_checks("conv_transpose2d_out", fn, cases, compare=lambda got, exp: isinstance(got, int) and got == exp,
                      hint="(size - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1: "
                           "the transposed convolution undoes the size arithmetic of a convolution.")


# ----------------------------------------------------------------------------------------------------------
def _mask_pixels(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator)
    return torch.where(u < p, torch.zeros_like(x), x)


def check_mask_pixels(fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]) -> CheckResult:
    """``fn(x, p, generator) -> x_tilde``: masking noise; every pixel whose ``u = torch.rand(x.shape, generator)``
    is below ``p`` is set to 0, the others are kept unchanged (no rescaling); ``x`` itself is not modified."""
    x1 = torch.rand(4, 1, 28, 28, generator=_g(11))
    x2 = torch.rand(2, 1, 5, 5, generator=_g(12)) + 0.1
    cases = [
        Case((x1.clone(), 0.25, _g(1)), _mask_pixels(x1, 0.25, _g(1)), "4 images, p = 0.25"),
        Case((x2.clone(), 0.5, _g(2)), _mask_pixels(x2, 0.5, _g(2)), "2 small images, p = 0.5"),
        Case((x2.clone(), 0.0, _g(3)), x2.clone(), "p = 0 keeps every pixel"),
        Case((x2.clone(), 1.0, _g(4)), torch.zeros_like(x2), "p = 1 masks every pixel"),
    ]

    def compare(got, exp):
        return isinstance(got, torch.Tensor) and got.shape == exp.shape and torch.allclose(got.float(), exp.float())

    ok = run_checks("mask_pixels", fn, cases, compare=compare,
                    hint="u = torch.rand(x.shape, generator=generator); zero the pixels where u < p; keep the others "
                         "as they are (unlike dropout, do not divide by 1 - p).")
    if ok:  # the learner's function must not corrupt its input in place: the clean image is the training target
        x = x2.clone()
        try:
            fn(x, 0.5, _g(5))
        except Exception:  # already reported above if it fails; here only the side effect matters
            return CheckResult(False)
        if not torch.equal(x, x2):
            print("❌ mask_pixels: your function changed its input x in place; the clean image is the target the "
                  "denoising AE must reconstruct. Build a new tensor (torch.where or x * mask).")
            return CheckResult(False)
    return ok


# ----------------------------------------------------------------------------------------------------------
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
                      hint="t = torch.linspace(0, 1, n) includes both ends; return (1 - t) z0 + t z1 with t as a "
                           "column (n, 1) so that it broadcasts against (D,) to give (n, D).")
