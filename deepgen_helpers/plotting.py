"""Plot helpers. Each takes an optional ``ax``, draws on it, returns it, and changes no global
matplotlib state. Image batches are checked by :func:`deepgen_helpers.data.as_image_batch`, the same
check the metrics use, so a batch in the wrong layout or value range gets one clear message instead
of a misleading picture.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data import _to_tensor, _whole, as_image_batch

# : How far (as a fraction of [vmin, vmax]) pixels may stray before ``show_images`` calls the range
# wrong:
#: slight overshoot is clipped as usual, 0-255 or [-1, 1] images shown on [0, 1] are refused.
RANGE_SLACK = 0.5


def _new_ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _finite_number(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def make_grid(
    images: torch.Tensor, nrow: int = 8, pad: int = 1, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile ``images`` ``(N, C, H, W)`` (or ``(N, H, W)``, or ``(N, H*W)`` square, or a list of
    images) into one ``(C, H', W')`` image, ``nrow`` images per row, separated by ``pad`` pixels of
    ``pad_value``."""
    nrow, pad = _whole(nrow, "nrow", 1), _whole(pad, "pad", 0)
    pad_value = _finite_number(pad_value, "pad_value")
    images = as_image_batch(images, value_range=(-math.inf, math.inf)).cpu()
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, k = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[:, top: top + h, left: left + w] = images[i]
    return grid


def show_images(
    images: torch.Tensor,
    nrow: int = 8,
    ax=None,
    title: Optional[str] = None,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    figsize: Tuple[float, float] = None,
):
    """Show a grid of images ``(N, C, H, W)`` with values in [vmin, vmax]; returns the axes.

    Raises ``ValueError`` for images far outside [vmin, vmax] (0-255 pixels shown on [0, 1] would be
    a white grid), NaN images and channels-last layouts; slight overshoot is clipped.
    """
    vmin, vmax = _finite_number(vmin, "vmin"), _finite_number(vmax, "vmax")
    if vmin >= vmax:
        raise ValueError(f"vmin must be below vmax, got vmin={vmin:g}, vmax={vmax:g}.")
    images = as_image_batch(images, value_range=(vmin, vmax), tolerance=RANGE_SLACK,
                            fix=" Or pass vmin and vmax to show another range.")
    grid = make_grid(images, nrow=nrow, pad_value=vmax)
    if figsize is None:
        aspect = grid.shape[1] / grid.shape[2]
        cols = min(nrow, len(images))
        figsize = (min(10, 1.0 * cols + 1), min(10, 1.0 * cols * aspect + 1))
    ax = _new_ax(ax, figsize)
    if grid.shape[0] == 1:
        ax.imshow(grid[0].numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    else:  # imshow ignores vmin/vmax for colour images and wants [0, 1]: rescale here
        rgb = ((grid - vmin) / (vmax - vmin)).clamp(0, 1).permute(1, 2, 0)
        ax.imshow(rgb.numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_losses(history: Mapping[str, Sequence[float]], ax=None, title: str = "training loss",
                smooth: int = 1, logy: bool = False, xlabel: str = "step"):
    """Plot one curve per key of ``history`` (name -> values), optionally smoothed by a moving
    average.

    ``history`` is a dict such as ``{"loss": losses}`` (values may be numbers or one-element
    tensors) or a
    :class:`deepgen_helpers.training.LossHistory`.
    """
    if not isinstance(history, Mapping) and isinstance(getattr(history, "values", None), Mapping):
        history = history.values  # a LossHistory
    if not isinstance(history, Mapping):
        raise TypeError("history must be a dict of name -> list of values, e.g. {'loss': losses}, "
                        f"got {type(history).__name__}.")
    smooth = _whole(smooth, "smooth", 1)
    series = {name: _series(values, f"history[{name!r}]") for name, values in history.items()}
    ax = _new_ax(ax, (6, 3.5))
    for name, v in series.items():
        if v.size == 0:
            continue
        if smooth > 1 and v.size >= smooth:
            v = np.convolve(v, np.ones(smooth) / smooth, mode="valid")
            x = np.arange(smooth - 1, smooth - 1 + v.size)
        else:
            x = np.arange(v.size)
        ax.plot(x, v, label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if len(history) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


def _series(values: Any, name: str) -> np.ndarray:
    """A 1-D float array from a list of numbers or one-element tensors (detached, on the CPU)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}.")
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().flatten().tolist()
    out = []
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(f"{name}[{i}] is a tensor of shape {tuple(v.shape)}; log one "
                                 "number per step (loss.item()).")
            v = v.detach().cpu().item()
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
            raise TypeError(f"{name}[{i}] must be a number, got {v!r}.")
        out.append(float(v))
    return np.asarray(out, dtype=float)


def scatter_2d(
    points: torch.Tensor,
    ax=None,
    title: Optional[str] = None,
    lim: float = 4.5,
    c=None,
    s: float = 3,
    alpha: float = 0.5,
    label: Optional[str] = None,
    cmap: str = "tab10",
):
    """Scatter plot of 2-D points ``(N, 2)`` on a square ``[-lim, lim]^2`` window.

    Raises ``ValueError`` for NaN or infinite points (matplotlib would silently leave them out).
    """
    pts = _to_tensor(points, "points").cpu().double()
    if pts.dim() != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {tuple(pts.shape)}.")
    bad = int((~torch.isfinite(pts)).any(1).sum())
    if bad:
        raise ValueError(f"{bad} of {len(pts)} points are NaN or infinite: whatever made them has "
                         "diverged (try a lower learning rate).")
    lim = _finite_number(lim, "lim")
    if lim <= 0:
        raise ValueError(f"lim is the half-width of the window and must be positive, got {lim:g}.")
    if isinstance(c, torch.Tensor):
        c = c.detach().cpu().numpy()
    ax = _new_ax(ax, (4, 4))
    ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=s, alpha=alpha, c=c, label=label,
               cmap=cmap if c is not None else None)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def density_2d(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    ax=None,
    lim: float = 4.5,
    n: int = 150,
    title: Optional[str] = None,
    cmap: str = "viridis",
):
    """Colour a ``[-lim, lim]^2`` window by ``exp(log_prob(points))``; ``log_prob`` maps ``(M, 2)``
    to ``(M,)``.

    The colours are relative (the largest density is the brightest), so very large or small
    log-densities do not overflow.
    """
    if not callable(log_prob):
        raise TypeError("log_prob must be a function from points (M, 2) to log-densities (M,), "
                        f"got {type(log_prob).__name__}.")
    n = _whole(n, "n", 2)
    lim = _finite_number(lim, "lim")
    if lim <= 0:
        raise ValueError(f"lim is the half-width of the window and must be positive, got {lim:g}.")
    xs = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    with torch.no_grad():
        logp = log_prob(torch.stack([gx.flatten(), gy.flatten()], dim=1))
    logp = _to_tensor(logp, "log_prob(points)").cpu().double()
    if logp.numel() != n * n:
        raise ValueError("log_prob must map points (M, 2) to one log-density each, shape (M,); for "
                         f"M = {n * n} points it returned shape {tuple(logp.shape)}.")
    logp = logp.reshape(n, n)
    if bool(torch.isnan(logp).any() | torch.isposinf(logp).any()) or not bool(
        torch.isfinite(logp).any()
    ):
        raise ValueError("log_prob returned NaN or +inf (or no finite value) on the plotting "
                         "window; check the model's log-density, for example for log(0) or a "
                         "diverged training run.")
    dens = (logp - logp[torch.isfinite(logp)].max()).exp()  # relative density in [0, 1]
    ax = _new_ax(ax, (4, 4))
    ax.imshow(dens.numpy(), extent=(-lim, lim, -lim, lim), origin="lower", cmap=cmap)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax
