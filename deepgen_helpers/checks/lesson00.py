"""Checkers for lesson 00 (welcome and setup)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g

# ----------------------------------------------------------------------------------------------------------
def check_count_per_class(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(labels (N,) int64) -> counts (10,) int64``: how many examples of each class 0-9."""
    cases = [
        Case((torch.tensor([0, 1, 1, 9]),), torch.tensor([1, 2, 0, 0, 0, 0, 0, 0, 0, 1]), "four labels"),
        Case((torch.tensor([3, 3, 3]),), torch.tensor([0, 0, 0, 3, 0, 0, 0, 0, 0, 0]), "a class-3-only batch (classes 4-9 absent)"),
        Case((torch.randint(0, 10, (500,), generator=_g(1)),), torch.bincount(torch.randint(0, 10, (500,), generator=_g(1)), minlength=10), "500 random labels"),
    ]
    return run_checks("count_per_class", fn, cases, hint="torch.bincount(labels, minlength=10) counts every class, even absent ones.")


def check_to_symmetric(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(x in [0, 1]) -> x in [-1, 1]``, the linear map 0 -> -1, 1 -> 1."""
    x = torch.rand(2, 1, 4, 4, generator=_g(2))
    cases = [
        Case((torch.tensor([0.0, 0.5, 1.0]),), torch.tensor([-1.0, 0.0, 1.0]), "the end points and the middle"),
        Case((x,), 2 * x - 1, "a batch of images (shape must be kept)"),
    ]
    return run_checks("to_symmetric", fn, cases, hint="A line through (0, -1) and (1, 1): y = 2x - 1.")


def check_seeded_noise(fn: Callable[[int], torch.Tensor]) -> CheckResult:
    """``fn(seed) -> (16, 2)`` standard-normal noise that depends only on ``seed``."""
    def compare(got, exp):
        return isinstance(got, torch.Tensor) and got.shape == (16, 2) and torch.equal(got, exp)

    cases = [Case((s,), torch.randn(16, 2, generator=_g(s)), f"seed {s}") for s in (0, 1, 123)]
    ok = run_checks("seeded_noise", fn, cases, compare=compare,
                    hint="Make a generator: g = torch.Generator().manual_seed(seed); then torch.randn(16, 2, generator=g).")
    if ok:
        # also: the global RNG must not decide the result
        torch.manual_seed(999)
        a = fn(5)
        torch.manual_seed(1000)
        b = fn(5)
        if not torch.equal(a, b):
            print("❌ seeded_noise: the result changes with the global seed; use a local torch.Generator.")
            return CheckResult(False)
    return ok


