"""A tiny framework for exercise checkers.

A checker runs a learner's function on hidden cases, compares with the reference answer, and prints a friendly
pass or fail with a hint. It returns ``True`` or ``False`` and never raises because of the learner's code, so a
notebook keeps running::

    from deepgen_helpers.checks.lesson01 import check_bits_per_dim
    check_bits_per_dim(my_bits_per_dim)   # prints "✅ ..." or "❌ ... Hint: ..."

Each lesson's checkers live in ``checks/lessonNN.py``; this module holds the framework they share.
"""
from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch


@dataclass
class Case:
    """One hidden test: call ``fn(*args, **kwargs)`` and compare with ``expected``."""

    args: tuple
    expected: Any
    description: str = ""
    kwargs: dict = field(default_factory=dict)


def _close(got: Any, expected: Any, atol: float, rtol: float) -> bool:
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return False
        return got.shape == expected.shape and torch.allclose(got.double(), expected.double(), atol=atol, rtol=rtol)
    if isinstance(expected, (int, float)):
        try:
            return math.isclose(float(got), float(expected), abs_tol=atol, rel_tol=rtol)
        except (TypeError, ValueError):
            return False
    return got == expected


def _short(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()[:4].tolist()
        return f"tensor of shape {tuple(value.shape)} starting {[round(v, 4) for v in flat]}"
    return repr(value)[:120]


class CheckResult:
    """Pass/fail of a checker: true or false in ``assert`` and ``if``, and shows nothing in a notebook
    (the checker has already printed its verdict)."""

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass


def run_checks(title: str, fn: Callable, cases: Sequence[Case], hint: str = "",
               atol: float = 1e-5, rtol: float = 1e-4, compare: Optional[Callable[[Any, Any], bool]] = None) -> CheckResult:
    """Run ``fn`` on every case; print one line of verdict (and the first failure with a hint); return pass/fail."""
    if not callable(fn):
        print(f"❌ {title}: expected a function, got {type(fn).__name__}. Pass the function itself, without ().")
        return CheckResult(False)
    compare = compare or (lambda got, exp: _close(got, exp, atol, rtol))
    for i, case in enumerate(cases, 1):
        label = case.description or f"case {i}"
        try:
            got = fn(*case.args, **case.kwargs)
        except NotImplementedError:
            print(f"❌ {title}: not implemented yet (the function raises NotImplementedError).")
            return CheckResult(False)
        except Exception as exc:  # the learner's code may raise anything; report it kindly
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"❌ {title}: {label} raised {type(exc).__name__}: {exc} (line {where.lineno}).")
            if hint:
                print(f"   Hint: {hint}")
            return CheckResult(False)
        if not compare(got, case.expected):
            print(f"❌ {title}: {label} failed.\n   expected {_short(case.expected)}\n   got      {_short(got)}")
            if hint:
                print(f"   Hint: {hint}")
            return CheckResult(False)
    print(f"✅ {title}: all {len(cases)} hidden cases pass.")
    return CheckResult(True)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
