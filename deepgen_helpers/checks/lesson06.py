"""Checkers for lesson 06 (image-to-image GANs: super-resolution)."""
from __future__ import annotations

from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
def _psnr_ref(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def check_psnr(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``fn(images (N, C, H, W), reference (N, C, H, W), data_range) -> (N,)``: the PSNR of each
    image against its own reference, ``10 log10(L^2 / MSE)`` in dB, the MSE taken over that image's
    pixels only."""
    g = _g(61)
    ref = torch.rand(6, 1, 8, 8, generator=g)
    # images with very different errors, so that averaging before the log shows
    noise = torch.tensor([0.01, 0.03, 0.1, 0.2, 0.05, 0.3]).view(6, 1, 1, 1)
    img = ref + noise * torch.randn(6, 1, 8, 8, generator=g)
    cases = [
        Case((torch.zeros(2, 1, 4, 4) + 0.1, torch.zeros(2, 1, 4, 4), 1.0),
             torch.tensor([20.0, 20.0], dtype=torch.float64),
             "an error of 0.1 on every pixel: MSE 0.01, PSNR 20 dB for each image"),
        Case((img, ref, 1.0), _psnr_ref(img, ref, 1.0), "6 images with different noise levels"),
        Case((img * 255, ref * 255, 255.0), _psnr_ref(img, ref, 1.0),
             "the same images on a 0-255 scale with data_range 255: the same PSNR"),
        Case((img[:, :, :5] * 2 - 1, ref[:, :, :5] * 2 - 1, 2.0),
             _psnr_ref(img[:, :, :5], ref[:, :, :5], 1.0),
             "images in [-1, 1] (data_range 2), 5x8 pixels"),
    ]

    def compare(got, expected) -> bool:
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and torch.allclose(got.detach().double(), expected, atol=1e-4, rtol=1e-5))
    return run_checks("psnr", fn, cases, compare=compare,
                      hint="per image: mse = ((images - reference) ** 2).flatten(1).mean(1), then "
                           "10 * torch.log10(data_range ** 2 / mse); log10, not the natural log, "
                           "and no averaging over the batch before the log.")


# --------------------------------------------------------------------------------------------------
def _shuffle_ref(x: torch.Tensor, r: int) -> torch.Tensor:
    return torch.nn.functional.pixel_shuffle(x, r)


def check_pixel_shuffle(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """``fn(x (B, C r^2, H, W), r) -> (B, C, H r, W r)``: the periodic shuffling of Shi et al.
    (2016, Eq. 4), output pixel ``(c, h r + i, w r + j)`` = input channel ``c r^2 + i r + j`` at
    ``(h, w)``: the same layout as ``torch.nn.functional.pixel_shuffle`` (which you may not
    use)."""
    g = _g(62)
    ramp = torch.arange(16.0).view(1, 4, 2, 2)
    x2 = torch.randn(3, 2 * 4, 3, 5, generator=g)
    x3 = torch.randn(2, 3 * 9, 4, 2, generator=g)
    cases = [
        Case((ramp, 2), _shuffle_ref(ramp, 2),
             "4 channels of 2x2, r = 2: channel i r + j fills offset (i, j) of each 2x2 block"),
        Case((x2, 2), _shuffle_ref(x2, 2), "2 output channels, r = 2, a 3x5 input"),
        Case((x3, 3), _shuffle_ref(x3, 3), "3 output channels, r = 3, a 4x2 input"),
    ]
    return run_checks("pixel_shuffle", fn, cases, atol=0.0, rtol=0.0,
                      hint="x.view(B, C, r, r, H, W), then permute to (B, C, H, r, W, r) and "
                           "reshape to (B, C, H * r, W * r); the two r axes must land after H "
                           "and after W respectively.")


# --------------------------------------------------------------------------------------------------
def _window_ref(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-r * r / (2 * sigma * sigma))
    w2 = w[:, None] * w[None, :]
    return w2 / w2.sum()


def check_gaussian_window(fn: Callable[[int, float], torch.Tensor]) -> CheckResult:
    """``fn(size, sigma) -> (size, size)``: SSIM's weighting window (Wang et al. 2004, section
    III.C): a 2-D Gaussian of standard deviation ``sigma`` centred on the middle pixel, normalised
    to sum to 1."""
    cases = [
        Case((11, 1.5), _window_ref(11, 1.5), "SSIM's window: 11x11, sigma 1.5"),
        Case((5, 0.8), _window_ref(5, 0.8), "5x5, sigma 0.8 (a sharp peak)"),
        Case((7, 100.0), _window_ref(7, 100.0), "7x7, sigma 100: nearly uniform, 1/49 each"),
    ]

    def compare(got, expected) -> bool:
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and torch.allclose(got.detach().double(), expected, atol=1e-6, rtol=1e-4))
    return run_checks("gaussian_window", fn, cases, compare=compare,
                      hint="r = torch.arange(size) - (size - 1) / 2 (centred on the middle pixel); "
                           "g = exp(-r^2 / (2 sigma^2)); w = g[:, None] * g[None, :]; then divide "
                           "by w.sum() so that the weights sum to 1.")




# --------------------------------------------------------------------------------------------------
def _cycle_ref(G: Callable, F: Callable, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()


def check_cycle_loss(fn: Callable) -> CheckResult:
    """``fn(G, F, a, b) -> scalar``: the cycle-consistency loss of Zhu et al. (2017, Eq. 2),
    ``mean |F(G(a)) - a| + mean |G(F(b)) - b|``, each mean over all images and pixels (as the
    lesson's ``cycle_losses``), for generators ``G: A -> B`` and ``F: B -> A`` (any callables)."""
    g = _g(63)
    a, b = torch.rand(4, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)

    def darken(x):                                  # a "G" that is not its own inverse
        return x * 0.5 + 0.1

    def square(x):
        return x ** 2
    cases = [
        Case((darken, square, a, b), _cycle_ref(darken, square, a, b),
             "G(x) = x/2 + 0.1, F(x) = x^2, 4 A images and 3 B images of 6x6"),
        Case((square, darken, b, a), _cycle_ref(square, darken, b, a),
             "the roles swapped: G(x) = x^2, F(x) = x/2 + 0.1"),
        Case((lambda x: 1 - x, lambda x: 1 - x, a, b), torch.tensor(0.0),
             "G and F each invert the grey levels: a perfect cycle, loss 0"),
    ]

    def compare(got, expected) -> bool:
        return (isinstance(got, torch.Tensor) and got.dim() == 0
                and torch.allclose(got.detach().double(), expected.double(), atol=1e-5))
    return run_checks("cycle_loss", fn, cases, compare=compare,
                      hint="two terms: the forward cycle (F(G(a)) - a).abs().mean() and the "
                           "backward cycle (G(F(b)) - b).abs().mean(); an L1 distance (not "
                           "squared), each back-translation compared with its own start.")
