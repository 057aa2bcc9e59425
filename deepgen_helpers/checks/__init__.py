"""A tiny framework for exercise checkers.

A checker runs a learner's function on hidden cases, compares with the reference answer, and prints
a friendly pass or fail with a hint. It returns a true or false :class:`CheckResult` and never
raises because
of the learner's code, so a notebook keeps running::

    from deepgen_helpers.checks.lesson01 import check_bits_per_dim
    check_bits_per_dim(my_bits_per_dim)   # prints "✅ ..." or "❌ ... Hint: ..."

The learner's function always gets copies of the inputs, so it cannot corrupt a case; if it changes
its inputs in place, that is reported as a failure (the same function would silently corrupt the
learner's own tensors). Each checker has a time limit (``TIME_LIMIT_S``): an endless loop is
reported and stopped instead of hanging the notebook. Each lesson's checkers live in ``checks/lessonNN.py``;
this module holds the framework.
"""
from __future__ import annotations

import copy
import inspect
import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence

import torch

#: Seconds a checker lets the learner's function run (all its cases together) before reporting it.
TIME_LIMIT_S = 30.0


@dataclass
class Case:
    """One hidden test: call ``fn(*args, **kwargs)`` and compare with ``expected``."""

    args: tuple
    expected: Any
    description: str = ""
    kwargs: dict = field(default_factory=dict)


def _close(got: Any, expected: Any, atol: float, rtol: float) -> bool:
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor) or got.is_complex() != expected.is_complex():
            return False
        return got.shape == expected.shape and torch.allclose(
            got.detach().cpu().double(), expected.double(), atol=atol, rtol=rtol
        )
    if isinstance(expected, (int, float)):
        try:
            return math.isclose(float(got), float(expected), abs_tol=atol, rel_tol=rtol)
        except (TypeError, ValueError, RuntimeError):
            return False
    return got == expected


def _short(value: Any) -> str:
    try:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().flatten()[:4].tolist()
            shown = [round(v, 4) if isinstance(v, float) else v for v in flat]
            return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype} starting {shown}"
        return repr(value)[:120]
    except Exception:  # a learner's object with a broken repr
        return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------------
# Running the learner's code safely: copies of the inputs, a time limit, and where an error happened
# --------------------------------------------------------------------------------------------------
def _copy(value: Any) -> Any:
    """A copy of a case input that the learner's function may modify without harm."""
    if isinstance(value, torch.Tensor):
        twin = value.detach().clone()
        return twin.requires_grad_() if value.requires_grad else twin  # a leaf, as in the case
    if isinstance(value, torch.Generator):
        twin = torch.Generator(device=value.device)
        twin.set_state(value.get_state())
        return twin
    if isinstance(value, (list, tuple)):
        items = [_copy(v) for v in value]
        return (
            items
            if isinstance(value, list)
            else type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
        )
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _changed_inputs(names: Sequence[str], given: Sequence[Any], pristine: Sequence[Any]) -> list:
    """Names of the tensor inputs (also inside lists and dicts) that differ from their pristine
    copies."""
    changed = []

    def walk(name: str, a: Any, b: Any) -> None:
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape or not torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)) \
                    or not torch.equal(a.isnan(), b.isnan()):
                changed.append(name)
        elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            if len(a) != len(b):
                changed.append(name)
            else:
                for i, (x, y) in enumerate(zip(a, b)):
                    walk(f"{name}[{i}]", x, y)
        elif isinstance(a, dict) and isinstance(b, dict):
            for k in b:
                walk(f"{name}[{k!r}]", a.get(k), b[k])

    for name, a, b in zip(names, given, pristine):
        walk(name, a, b)
    return changed


def _arg_names(fn: Callable, n_args: int) -> list:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i + 1}" for i in range(n_args)]


class _StopChecking(BaseException):
    """Raised inside a learner's function that ran past its time limit, to stop it.

    A BaseException, so a learner's ``except Exception`` does not swallow it.
    """


def _stop_thread(thread: threading.Thread, wait: float = 2.0) -> bool:
    """Ask ``thread`` to stop by raising :class:`_StopChecking` in it; True if it has ended.

    Python has no way to kill a thread, but CPython can raise an exception in one at its next
    bytecode (``PyThreadState_SetAsyncExc``). That stops a pure-Python endless loop; a thread
    stuck inside one long C call (a huge torch operation) stops when the call returns. Without
    this, a forgotten loop keeps a core busy and, holding Python's global lock, slows every
    later cell of the notebook many times over.
    """
    import ctypes

    if thread.ident is None or not thread.is_alive():
        return True
    set_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
    if set_exc(thread.ident, _StopChecking) != 1:
        set_exc(thread.ident, None)  # 0: no such thread; >1: undo, as the C API asks
        return not thread.is_alive()
    thread.join(wait)
    return not thread.is_alive()


def call_with_time_limit(fn: Callable, args: tuple = (), kwargs: Optional[dict] = None,
                         seconds: float = TIME_LIMIT_S) -> Any:
    """Call ``fn(*args, **kwargs)`` in a worker thread and wait at most ``seconds`` for it.

    Returns its result or re-raises its exception. If it is still running at the limit, it is
    stopped (see :func:`_stop_thread`) and ``TimeoutError`` is raised; the error's ``stopped``
    attribute says whether the function has really ended. Waits in short steps, so an interrupt
    (the notebook's stop button) still works on every platform.
    """
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args, **(kwargs or {}))
        except _StopChecking:
            box["stopped"] = True
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="deepgen-check", daemon=True)
    deadline = time.monotonic() + max(0.0, seconds)
    worker.start()
    try:
        while worker.is_alive() and time.monotonic() < deadline:
            worker.join(min(0.1, max(0.0, deadline - time.monotonic())))
    except BaseException:  # the stop button: stop the learner's function too
        _stop_thread(worker)
        raise
    if worker.is_alive():
        stopped = _stop_thread(worker)
        error = TimeoutError(
            f"took longer than {seconds:g} s and was stopped" if stopped else
            f"took longer than {seconds:g} s and could not be stopped: it is still running in "
            "the background, so restart the kernel")
        error.stopped = stopped
        raise error
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _where(exc: BaseException) -> str:
    """ " (line N)" of the learner's code where ``exc`` happened, skipping library and checker
    frames."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = os.path.abspath(frame.filename)
        if path.startswith(here) or "site-packages" in path or "dist-packages" in path \
                or os.sep + "lib" + os.sep + "python" in path:
            continue
        return f" (line {frame.lineno} of your code)"
    return ""


class CheckResult:
    """Pass/fail of a checker: true or false in ``assert`` and ``if``, and shows nothing in a
    notebook (the checker has already printed its verdict)."""

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass


def run_checks(title: str, fn: Callable, cases: Sequence[Case], hint: str = "", atol: float = 1e-5,
               rtol: float = 1e-4, compare: Optional[Callable[[Any, Any], bool]] = None,
               time_limit: float = TIME_LIMIT_S) -> CheckResult:
    """Run ``fn`` on every case; print one line of verdict (and the first failure with a hint).

    ``fn`` gets copies of each case's inputs; changing them in place counts as a failure. All cases
    together may take ``time_limit`` seconds. Nothing the learner's function does makes this raise.
    """
    if not callable(fn):
        print(f"❌ {title}: expected a function, got {type(fn).__name__}. "
              "Pass the function itself, without ().")
        return CheckResult(False)
    compare = compare or (lambda got, exp: _close(got, exp, atol, rtol))
    deadline = time.monotonic() + time_limit

    def fail(message: str) -> CheckResult:
        print(f"❌ {title}: {message}")
        if hint:
            print(f"   Hint: {hint}")
        return CheckResult(False)

    for i, case in enumerate(cases, 1):
        label = case.description or f"case {i}"
        names = _arg_names(fn, len(case.args)) + list(case.kwargs)
        args, kwargs = _copy(list(case.args)), _copy(dict(case.kwargs))
        given = list(args) + list(kwargs.values())
        pristine = _copy(given)
        try:
            got = call_with_time_limit(fn, tuple(args), kwargs, seconds=deadline - time.monotonic())
        except NotImplementedError:
            print(f"❌ {title}: not implemented yet (the function raises NotImplementedError).")
            return CheckResult(False)
        except TimeoutError as exc:
            stop = ("and was stopped" if getattr(exc, "stopped", False) else
                    "and could not be stopped: it is still running in the background, "
                    "so restart the kernel")
            print(f"❌ {title}: {label} (with the cases before it) took longer than "
                  f"{time_limit:g} s {stop}. Look for a loop that never ends.")
            return CheckResult(False)
        except Exception as exc:  # the learner's code may raise anything; report it kindly
            return fail(f"{label} raised {type(exc).__name__}: {exc}{_where(exc)}.")
        changed = _changed_inputs(names, given, pristine)
        if changed:
            return fail(f"{label}: your function changed its input {', '.join(changed)} in place, "
                        "which would silently corrupt your own tensors. Compute a new tensor "
                        "instead (x = x * 2, not x *= 2; torch.where(...), not x[mask] = 0).")
        try:
            ok = bool(compare(got, case.expected))
        except Exception:  # a result of an unexpected type can break a comparison; still wrong
            ok = False
        if not ok:
            return fail(f"{label} failed.\n   expected {_short(case.expected)}\n"
                        f"   got      {_short(got)}")
    print(f"✅ {title}: all {len(cases)} hidden cases pass.")
    return CheckResult(True)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
