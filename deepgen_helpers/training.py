"""Plumbing for the training loops that lessons write themselves: progress bars, loss history, live
plots, and load-or-train for shipped checkpoints. The loop, the loss and the optimiser step stay in
the lesson."""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np
from torch import nn
from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm

from . import checkpoints

RETRAIN_ENV = "DEEPGEN_RETRAIN"


PLAIN_PROGRESS_ENV = "DEEPGEN_PLAIN_PROGRESS"


class _OneLineBar(plain_tqdm):
    """A progress bar that draws nothing while it runs and prints one line when it closes:
    what ran, how many steps, how long, and its last postfix (e.g. the final loss)."""

    def __init__(self, *args, **kwargs):
        import io

        super().__init__(*args, file=io.StringIO(), mininterval=3600, **kwargs)
        self._reported = False

    def close(self) -> None:
        if not self._reported and not self.disable:
            self._reported = True
            d = self.format_dict
            steps = f"{d['n']:,}" + (f"/{d['total']:,}" if d["total"] and d["total"] != d["n"]
                                     else "")
            tail = f", {d['postfix']}" if d.get("postfix") else ""
            print(f"{self.desc or 'progress'}: {steps} steps in {d['elapsed']:.0f} s{tail}",
                  flush=True)
        super().close()


def progress(iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
             **kwargs):
    """A progress bar (``tqdm.auto``: a widget in notebooks, text in a terminal). Use
    ``bar.set_postfix(loss=...)``.

    In headless runs (``$DEEPGEN_PLAIN_PROGRESS`` set: stored outputs, benchmarks) it prints one
    line when it closes instead, e.g. ``VAE: 4,680 steps in 61 s, neg_elbo=97.9``, so stored
    notebooks hold no floods of text.
    """
    if os.environ.get(PLAIN_PROGRESS_ENV):
        return _OneLineBar(iterable, total=total, desc=desc, **kwargs)
    return tqdm(iterable, total=total, desc=desc, mininterval=0.5, **kwargs)


class LossHistory:
    """Named series of values logged during training, with an optional live plot in a notebook.

    >>> history = LossHistory()
    >>> history.log(loss=0.7, kl=0.1)
    >>> history.mean("loss")
    0.7
    """

    def __init__(self, live_every: int = 0, smooth: int = 1, title: str = "training loss",
                 logy: bool = False):
        self.values: Dict[str, List[float]] = defaultdict(list)
        self.live_every = _at_least(live_every, "live_every (0 for no live plot)", 0)
        self.smooth = _at_least(smooth, "smooth", 1)
        self.title = title
        self.logy = logy
        self._handle = None
        self._fig = None
        self._count = 0

    def log(self, **values: float) -> None:
        """Append one value per name (one-element tensors are converted with ``float``); refresh the
        live plot if due. Raises ``TypeError``/``ValueError`` for a value that is not one number,
        logging nothing."""
        numbers = {name: _one_number(value, name) for name, value in values.items()}
        for name, value in numbers.items():
            self.values[name].append(value)
        self._count += 1
        if self.live_every and self._count % self.live_every == 0:
            self._draw()

    def mean(self, name: str, last: Optional[int] = None) -> float:
        """Mean of series ``name`` (of its last ``last`` values if given)."""
        if name not in self.values:
            raise KeyError(f"No series {name!r}; logged series are {sorted(self.values)}.")
        if last is not None:
            last = _at_least(last, "last", 1)
        v = self.values[name][-last:] if last else self.values[name]
        return float(np.mean(v))

    def __len__(self) -> int:
        return self._count

    def plot(self, ax=None, names: Optional[List[str]] = None, **kwargs):
        """Plot the series (all, or ``names``) with :func:`deepgen_helpers.plotting.plot_losses`;
        returns the axes."""
        from .plotting import plot_losses

        series = {k: v for k, v in self.values.items() if names is None or k in names}
        kwargs.setdefault("smooth", self.smooth)
        kwargs.setdefault("title", self.title)
        kwargs.setdefault("logy", self.logy)
        return plot_losses(series, ax=ax, **kwargs)

    def _draw(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        from matplotlib.figure import Figure

        if self._fig is None:
            self._fig = Figure(figsize=(6, 3.2))
        self._fig.clear()
        ax = self._fig.add_subplot()
        self.plot(ax=ax)
        self._fig.tight_layout()
        if self._handle is None:
            self._handle = display(self._fig, display_id=True)
        else:
            self._handle.update(self._fig)

    def finish(self) -> None:
        """Draw the final state of the live plot (call once after the loop)."""
        if self.live_every:
            self._draw()


def _at_least(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def _one_number(value: object, name: str) -> float:
    """``value`` (a number, NumPy scalar or one-element tensor) as a float; else a clear error."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numel") and value.numel() != 1:
        raise ValueError(f"log({name}=...) needs one number, got a tensor of shape "
                         f"{tuple(value.shape)}; log {name}.item(), or {name}.mean().item() for "
                         "a batch of values.")
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"log({name}=...) needs a number, got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"log({name}=...) needs a number, got a {type(value).__name__}.") from None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def retrain_requested() -> bool:
    """Whether ``$DEEPGEN_RETRAIN`` asks to retrain: 1/true/yes/on or 0/false/no/off/unset (any
    case).

    Raises ``ValueError`` naming the variable for any other value, rather than guessing.
    """
    raw = os.environ.get(RETRAIN_ENV, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{RETRAIN_ENV}={raw!r} is not understood; set it to 1 (retrain) or 0 "
                     "(load shipped checkpoints), or unset it. Accepted: "
                     f"{', '.join(v for v in _TRUE + _FALSE if v)}.")


def load_or_train(name: str, model: nn.Module, train_fn: Callable[[nn.Module], Optional[dict]],
                  retrain: Optional[bool] = None) -> dict:
    """Load shipped checkpoint ``name`` into ``model`` if there is one; otherwise call
    ``train_fn(model)``.

    Set ``retrain=True`` (or the environment variable ``DEEPGEN_RETRAIN=1``; see
    :func:`retrain_requested`) to train even when a checkpoint exists. Returns
    ``{"source": "checkpoint" | "trained", ...}`` with the checkpoint's metadata or what
    ``train_fn`` returned (a dict, or None).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be the shipped checkpoint's name (a string), got {name!r}.")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not callable(train_fn):
        raise TypeError("train_fn must be a function that trains the model, got "
                        f"{type(train_fn).__name__}; pass the function itself, without ().")
    if retrain is None:
        retrain = retrain_requested()
    elif not isinstance(retrain, (bool, np.bool_)):
        raise TypeError(f"retrain must be True, False or None (read {RETRAIN_ENV}), "
                        f"got {retrain!r}.")
    entries = checkpoints.read_manifest()
    if not retrain and name in entries:
        try:
            payload = checkpoints.load_shipped(name, model)
        except checkpoints.CheckpointError as exc:
            raise checkpoints.CheckpointError(f"{exc}\nTo train from scratch instead, pass "
                                              f"retrain=True (or set {RETRAIN_ENV}=1).") from None
        entry = entries[name]
        size = (f"{entry['bytes'] / 1e6:.1f} MB, " if isinstance(entry.get("bytes"), (int, float))
                else "")
        wall = entry.get("wall_seconds")
        took = f"trained in {wall:.0f} s on {entry.get('device', '?')}; " \
            if isinstance(wall, (int, float)) else ""
        print(f"Loaded shipped checkpoint {name!r} ({size}{took}quality {entry.get('quality')}).")
        metadata = payload.get("metadata", {})
        return {"source": "checkpoint", **metadata, "quality": entry.get("quality")}
    if retrain:
        why = " (retrain requested)."
    else:
        import difflib

        close = difflib.get_close_matches(name, list(entries), n=1)
        why = (f" (no shipped checkpoint named {name!r}; did you mean {close[0]!r}?)." if close
               else " (no shipped checkpoint).")
    print(f"Training {type(model).__name__} from scratch{why}")
    info = train_fn(model)
    if info is not None and not isinstance(info, dict):
        raise TypeError("train_fn should return a dict (e.g. {'history': history}) or None, got "
                        f"{type(info).__name__}; the model itself is trained.")
    return {"source": "trained", **(info or {})}
