"""Run mode, device, seeds and the environment report: the one place a lesson's settings come from.

Every lesson's setup cell calls :func:`setup`, which reads the run mode from the ``DEEPGEN_MODE``
environment variable, picks a device, seeds every random number generator and prints a short report.

Run modes (COURSE.md section 5):

* ``fast``: tiny data and a few steps. The test suite uses it; a lesson finishes in seconds.
* ``default``: what a learner runs on a CPU laptop; a few minutes per lesson, recognisable results.

On a GPU the same code path runs with bigger budgets (see :meth:`RunConfig.pick`).
"""
from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

#: The repository's public address. Colab badges and setup cells are generated from it
#: (``python -m deepgen_helpers.publish``), so a fork changes this one line and re-runs that
#: command.
REPO_URL = "https://github.com/deepgen-course/deepgen"
#: The branch Colab badges point at.
REPO_BRANCH = "main"

MODE_ENV = "DEEPGEN_MODE"
DEVICE_ENV = "DEEPGEN_DEVICE"
DATA_ENV = "DEEPGEN_DATA"
BUDGET_ENV = "DEEPGEN_BUDGET"
BUDGETS = ("cpu", "cuda", "mps")
MODES = ("fast", "default")


def repo_root() -> Path:
    """The folder that holds ``deepgen_helpers/``, ``data/`` and ``notebooks/``."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The bundled data folder: ``$DEEPGEN_DATA`` when set, else ``<repo>/data``."""
    override = os.environ.get(DATA_ENV)
    return Path(override).expanduser().resolve() if override else repo_root() / "data"


def get_mode() -> str:
    """The run mode from ``$DEEPGEN_MODE`` (``fast`` or ``default``; unset means ``default``)."""
    mode = os.environ.get(MODE_ENV, "default").strip().lower() or "default"
    if mode not in MODES:
        raise ValueError(
            f"{MODE_ENV}={mode!r} is not a run mode. Use one of {MODES}, "
            f"for example `export {MODE_ENV}=fast`, or unset it for the default mode."
        )
    return mode


def get_device(prefer: Optional[str | torch.device] = None) -> torch.device:
    """Choose the device: ``prefer`` or ``$DEEPGEN_DEVICE`` if given, else CUDA > MPS > CPU.

    ``prefer`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``. Raises
    ``ValueError`` naming the argument (or the environment variable) when the device is unknown or
    not available here.
    """
    import re

    if prefer is not None and not isinstance(prefer, (str, torch.device)):
        raise TypeError("device must be a string such as 'cpu' or 'cuda', or a torch.device; "
                        f"got {prefer!r}.")
    from_env = prefer is None or str(prefer).strip() == ""
    wanted = (os.environ.get(DEVICE_ENV, "") if from_env else str(prefer)).strip().lower()
    if not wanted:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    asked = f"{DEVICE_ENV}={wanted!r}" if from_env else f"device={wanted!r}"
    fix = f"set {DEVICE_ENV}=cpu or unset it" if from_env else "use 'cpu', or leave device unset"
    match = re.fullmatch(r"(cpu|mps|cuda)(?::(\d+))?", wanted)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        hint = " ('cuda' is the NVIDIA GPU)" if wanted.startswith("gpu") else ""
        raise ValueError(f"Unknown device in {asked}{hint}; use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{asked} asks for a GPU, but CUDA is not available here; {fix}.")
    if kind == "cuda" and index is not None and int(index) >= torch.cuda.device_count():
        raise ValueError(f"{asked} asks for GPU {index}, but this machine has "
                         f"{torch.cuda.device_count()} (numbered from 0).")
    if kind == "mps" and not _mps_available():
        raise ValueError(f"{asked} asks for Apple's MPS, but it is not available here; {fix}.")
    return torch.device(wanted)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU ``torch.Generator`` seeded the
    same way.

    ``seed`` is a whole number from 0 to 2**64 - 1 (PyTorch's limit); ``ValueError`` otherwise.
    """
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}.")
    seed = int(seed.__index__())
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed}; "
                         "try a smaller one, such as 0 or 1234.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class RunConfig:
    """What :func:`setup` decided: run mode, device and seed."""

    mode: str
    device: torch.device
    seed: int

    @property
    def fast(self) -> bool:
        return self.mode == "fast"

    @property
    def on_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")

    @property
    def budget(self) -> str:
        """Which budget :meth:`pick` chooses here: ``"fast"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

        Lessons state their expected results for each budget; this says which statement applies to
        this run. ``$DEEPGEN_BUDGET`` (``cpu``, ``cuda`` or ``mps``) overrides the choice, e.g. to
        check a GPU budget's expected results on a CPU (slowly).
        """
        if self.fast:
            return "fast"
        override = os.environ.get(BUDGET_ENV, "").strip().lower()
        if override:
            if override not in BUDGETS:
                raise ValueError(f"{BUDGET_ENV}={override!r} is not a budget. Use one of {BUDGETS} "
                                 "(to run, say, the CUDA budget on a CPU and check its expected "
                                 "results), or unset it.")
            return override
        return self.device.type if self.device.type in ("cuda", "mps") else "cpu"

    def pick(self, fast: Any, default: Any, cuda: Any = None, mps: Any = None) -> Any:
        """Choose a budget by run mode and device kind, each on purpose.

        ``fast`` in fast mode; otherwise ``cuda`` on a CUDA GPU and ``mps`` on Apple silicon when
        given, else ``default`` (the CPU budget). MPS gets the CPU budget unless a lesson chose one
        for it: Apple GPUs are much slower than a CUDA card for these models, and the CPU figures
        are the ones we can check.
        """
        if self.fast:
            return fast
        if self.budget == "cuda" and cuda is not None:
            return cuda
        if self.budget == "mps" and mps is not None:
            return mps
        return default


def environment_report(run: Optional[RunConfig] = None) -> dict:
    """Facts a learner (or a bug report) needs: versions, device, threads, mode, data folder."""
    import matplotlib

    report = {
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "cpu threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
        "mps": "available" if _mps_available() else "not available",
        "data folder": _data_dir_label(),
    }
    if run is not None:
        report.update({"mode": run.mode, "device": str(run.device), "budget": run.budget,
                       "seed": run.seed})
    return report


def _data_dir_label() -> str:
    """The data folder as the report shows it: relative to the course when it is the bundled one, so
    stored notebook outputs do not depend on where the course was cloned."""
    if os.environ.get(DATA_ENV):
        return f"{data_dir()} (from ${DATA_ENV})"
    return "data/ in the course folder (bundled)"


def setup(seed: int = 0, device: Optional[str] = None, quiet: bool = False) -> RunConfig:
    """Read the run mode, choose the device, seed everything and print the environment report.

    Call it once in a lesson's setup cell: ``run = setup(seed=0)``. Re-running it re-seeds.
    """
    run = RunConfig(mode=get_mode(), device=get_device(device), seed=seed)
    seed_everything(seed)
    if not quiet:
        report = environment_report(run)
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}} : {value}")
    return run
