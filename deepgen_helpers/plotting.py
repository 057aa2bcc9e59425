"""Plot helpers. Each takes an optional ``ax``, draws on it, returns it, and changes no global matplotlib state."""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import torch


def _new_ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``images`` ``(N, C, H, W)`` (or ``(N, H, W)`` or ``(N, H*W)`` square) into one ``(C, H', W')`` image."""
    images = torch.as_tensor(images).detach().float().cpu()
    if images.dim() == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            raise ValueError(f"Flat images of {images.shape[1]} pixels are not square; pass (N, C, H, W).")
        images = images.view(-1, 1, side, side)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}.")
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i]
    return grid


def show_images(images: torch.Tensor, nrow: int = 8, ax=None, title: Optional[str] = None,
                cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0, figsize: Tuple[float, float] = None):
    """Show a grid of images ``(N, C, H, W)`` with values in [vmin, vmax]; returns the axes."""
    grid = make_grid(images, nrow=nrow, pad_value=vmax)
    if figsize is None:
        aspect = grid.shape[1] / grid.shape[2]
        figsize = (min(10, 1.0 * min(nrow, len(images)) + 1), min(10, 1.0 * min(nrow, len(images)) * aspect + 1))
    ax = _new_ax(ax, figsize)
    img = grid[0] if grid.shape[0] == 1 else grid.permute(1, 2, 0)
    ax.imshow(img.numpy(), cmap=cmap if grid.shape[0] == 1 else None, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_losses(history: Mapping[str, Sequence[float]], ax=None, title: str = "training loss",
                smooth: int = 1, logy: bool = False, xlabel: str = "step"):
    """Plot one curve per key of ``history`` (name -> values), optionally smoothed by a moving average."""
    ax = _new_ax(ax, (6, 3.5))
    for name, values in history.items():
        v = np.asarray(values, dtype=float)
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


def scatter_2d(points: torch.Tensor, ax=None, title: Optional[str] = None, lim: float = 4.5,
               c=None, s: float = 3, alpha: float = 0.5, label: Optional[str] = None, cmap: str = "tab10"):
    """Scatter plot of 2-D points ``(N, 2)`` on a square ``[-lim, lim]^2`` window."""
    pts = torch.as_tensor(points).detach().cpu()
    if pts.dim() != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {tuple(pts.shape)}.")
    ax = _new_ax(ax, (4, 4))
    ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), s=s, alpha=alpha, c=c, label=label, cmap=cmap if c is not None else None)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def density_2d(log_prob: Callable[[torch.Tensor], torch.Tensor], ax=None, lim: float = 4.5, n: int = 150,
               title: Optional[str] = None, cmap: str = "viridis"):
    """Colour a ``[-lim, lim]^2`` window by ``exp(log_prob(points))``; ``log_prob`` maps ``(M, 2)`` to ``(M,)``."""
    ax = _new_ax(ax, (4, 4))
    xs = torch.linspace(-lim, lim, n)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    with torch.no_grad():
        logp = log_prob(torch.stack([gx.flatten(), gy.flatten()], dim=1))
    dens = logp.detach().cpu().exp().view(n, n)
    ax.imshow(dens.numpy(), extent=(-lim, lim, -lim, lim), origin="lower", cmap=cmap)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax
