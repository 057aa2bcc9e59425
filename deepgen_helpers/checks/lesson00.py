"""Checkers for lesson 00 (welcome and setup)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, call_with_time_limit, run_checks, seeded as _g

# --------------------------------------------------------------------------------------------------
def check_count_per_class(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(labels (N,) int64) -> counts (10,) int64``: how many examples of each class 0-9."""
    cases = [
        Case(
            (torch.tensor([0, 1, 1, 9]),),
            torch.tensor([1, 2, 0, 0, 0, 0, 0, 0, 0, 1]),
            "four labels",
        ),
        Case(
            (torch.tensor([3, 3, 3]),),
            torch.tensor([0, 0, 0, 3, 0, 0, 0, 0, 0, 0]),
            "a class-3-only batch (classes 4-9 absent)",
        ),
        Case(
            (torch.randint(0, 10, (500,), generator=_g(1)),),
            torch.bincount(torch.randint(0, 10, (500,), generator=_g(1)), minlength=10),
            "500 random labels",
        ),
    ]
    return run_checks("count_per_class", fn, cases,
                      hint="torch.bincount(labels, minlength=10) counts every class, "
                           "even absent ones.")


def check_to_symmetric(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``fn(x in [0, 1]) -> x in [-1, 1]``, the linear map 0 -> -1, 1 -> 1."""
    x = torch.rand(2, 1, 4, 4, generator=_g(2))
    cases = [
        Case((torch.tensor([0.0, 0.5, 1.0]),), torch.tensor([-1.0, 0.0, 1.0]),
             "the end points and the middle"),
        Case((x,), 2 * x - 1, "a batch of images (shape must be kept)"),
    ]
    return run_checks("to_symmetric", fn, cases,
                      hint="A line through (0, -1) and (1, 1): y = 2x - 1.")


def check_seeded_noise(fn: Callable[[int], torch.Tensor]) -> CheckResult:
    """``fn(seed) -> (16, 2)`` standard-normal noise that depends only on ``seed``.

    Any correct method passes (a local ``torch.Generator``, or NumPy's ``default_rng(seed)`` turned
    into a tensor); what fails is what goes wrong in practice: results that follow the global seed,
    answers that reseed the global random state (``torch.manual_seed`` inside the function silently
    resets everyone else's randomness), the same noise for every seed, or noise that is not standard
    normal.
    """
    import numpy as np

    title = "seeded_noise"
    if not callable(fn):
        print(f"❌ {title}: expected a function, got {type(fn).__name__}. "
              "Pass the function itself.")
        return CheckResult(False)
    hint = ("Make a local generator: g = torch.Generator().manual_seed(seed); then "
            "torch.randn(16, 2, generator=g).")
    saved = torch.get_rng_state(), np.random.get_state()  # restored afterwards: the learner's own
    try:
        return _seeded_noise_verdict(fn, title, hint)
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])


def _seeded_noise_verdict(fn: Callable[[int], torch.Tensor], title: str, hint: str) -> CheckResult:
    import numpy as np

    outputs = {}
    try:
        for s in (0, 1, 123, *range(200, 260)):
            torch.manual_seed(1000 + s)                        # a different global state every call
            np.random.seed(1000 + s)
            before = (torch.get_rng_state(), np.random.get_state()[1].copy())
            got = call_with_time_limit(fn, (s,))
            if not torch.equal(before[0], torch.get_rng_state()) or \
                    not np.array_equal(before[1], np.random.get_state()[1]):
                print(f"❌ {title}: calling it used or changed the global random state (seed {s}). "
                      "Then the noise depends on what ran before, and reseeding globally "
                      "(torch.manual_seed, np.random.seed) resets everyone else's randomness.")
                print(f"   Hint: {hint}")
                return CheckResult(False)
            if (not isinstance(got, torch.Tensor) or got.shape != (16, 2)
                    or not got.is_floating_point()):
                what = (f"shape {tuple(got.shape)} {got.dtype}" if isinstance(got, torch.Tensor)
                        else type(got).__name__)
                print(f"❌ {title}: expected a float tensor of shape (16, 2), got {what}.")
                return CheckResult(False)
            outputs[s] = got.detach().double().cpu().clone()
        torch.manual_seed(7)
        again = call_with_time_limit(fn, (123,))
    except TimeoutError as exc:
        print(f"❌ {title}: one call {exc}. Look for a loop that never ends.")
        return CheckResult(False)
    except Exception as exc:  # the learner's code: report, never raise
        print(f"❌ {title}: raised {type(exc).__name__}: {exc}.")
        print(f"   Hint: {hint}")
        return CheckResult(False)
    if not torch.equal(torch.as_tensor(again).double().cpu(), outputs[123]):
        print(f"❌ {title}: seed 123 gave different noise on a second call; the result must depend "
              "only on the seed, not on the global random state.")
        print(f"   Hint: {hint}")
        return CheckResult(False)
    if torch.equal(outputs[0], outputs[1]):
        print(f"❌ {title}: seeds 0 and 1 give the same noise; the seed must choose the noise.")
        return CheckResult(False)
    pool = torch.cat([outputs[s] for s in range(200, 260)]).flatten()       # 1,920 values
    inside = (pool.abs() < 1).double().mean()                              # N(0, 1): 0.683
    if abs(pool.mean()) > 0.1 or not 0.9 < pool.std() < 1.1 or abs(inside - 0.683) > 0.05:
        print(f"❌ {title}: over 60 seeds the values have mean {pool.mean():.2f}, standard "
              f"deviation {pool.std():.2f} and {inside:.0%} within ±1; standard normal noise "
              "has 0, 1 and 68 %.")
        print("   Hint: torch.randn (or rng.standard_normal), not torch.rand (uniform).")
        return CheckResult(False)
    print(f"✅ {title}: reproducible, depends only on the seed, "
          "leaves the global random state alone.")
    return CheckResult(True)
