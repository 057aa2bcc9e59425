"""Bundled datasets: MNIST, Fashion-MNIST, text corpora and 2-D toy distributions.

Every file under ``data/`` is checked against the sha256 in ``data/manifest.json`` the first time it is
read, so a truncated or corrupted file gives one clear message instead of a confusing failure later.
Nothing here touches the network.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from .config import data_dir

__all__ = [
    "DataError", "IMAGE_DATASETS", "TEXT_DATASETS", "TOY_DATASETS", "CLASS_NAMES",
    "sha256_file", "verify_file", "read_idx", "load_images", "load_mnist", "load_fashion_mnist",
    "load_text", "load_names", "make_toy_2d",
]


class DataError(RuntimeError):
    """A dataset is unknown, missing or corrupted. The message says what to do."""


IMAGE_DATASETS = {
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
TEXT_DATASETS = {
    "quijote": "quijote/quijote.txt",
    "tinyshakespeare": "tinyshakespeare/input.txt",
    "names": "names/names.txt",
}
TOY_DATASETS = ("gaussian_mixture", "rings", "moons", "spirals")


# ----------------------------------------------------------------------------------------------------------
# Integrity
# ----------------------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=None)
def _manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.exists():
        raise DataError(
            f"The data manifest {path} is missing. The course's data folder is incomplete: "
            "restore it with `git checkout -- data` (or clone the repository again)."
        )
    return json.loads(path.read_text())["files"]


_VERIFIED: set = set()


def verify_file(relpath: str, root: Optional[Path] = None) -> Path:
    """Return the path of bundled file ``relpath`` after checking it exists and matches the manifest's sha256.

    Raises :class:`DataError` naming the file and the fix when it is missing, unlisted or corrupted.
    """
    root = Path(root) if root is not None else data_dir()
    path = root / relpath
    key = (str(path), path.stat().st_mtime_ns if path.exists() else None)
    if key in _VERIFIED:
        return path
    files = _manifest(root)
    if relpath not in files:
        raise DataError(f"{relpath!r} is not listed in {root / 'manifest.json'}; the course only reads files it ships.")
    if not path.exists():
        raise DataError(
            f"Data file {path} is missing. Restore it with `git checkout -- data/{relpath}` "
            "(or clone the repository again); the course never downloads data."
        )
    expected = files[relpath]["sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"Data file {path} is corrupted: its sha256 is {actual[:12]}..., the manifest expects {expected[:12]}.... "
            f"Restore it with `git checkout -- data/{relpath}` (if you use Git LFS or a partial download, fetch it again)."
        )
    _VERIFIED.add(key)
    return path


# ----------------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file, the format of MNIST, into a NumPy array.

    The header is 2 zero bytes, a type code, the number of dimensions, then one big-endian uint32 per dimension
    (LeCun et al., "The MNIST database", file format section).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"Could not read IDX file {path}: {exc}. Restore it from the repository.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(f"{path} is truncated: header says {dims} ({expected} bytes), found {len(raw) - offset} bytes.")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)


@lru_cache(maxsize=8)
def _load_idx_pair(name: str, split: str, root: str) -> Tuple[np.ndarray, np.ndarray]:
    folder = IMAGE_DATASETS[name]
    img_file, lbl_file = _IDX_FILES[split]
    images = read_idx(verify_file(f"{folder}/{img_file}", Path(root)))
    labels = read_idx(verify_file(f"{folder}/{lbl_file}", Path(root)))
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{name} {split}: {images.shape[0]} images but {labels.shape[0]} labels.")
    return images, labels


def load_images(
    name: str,
    split: str = "train",
    n: Optional[int] = None,
    binarize: Optional[str] = None,
    seed: int = 0,
    device: Optional[torch.device] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load an image dataset as tensors.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        n: keep only the first ``n`` images (after a fixed shuffle with ``seed``, so classes stay balanced).
        binarize: ``None`` (grey levels in [0, 1]), ``"threshold"`` (pixel > 0.5) or ``"sample"``
            (each pixel ~ Bernoulli(intensity), drawn once with ``seed``: a fixed binarisation).
        seed: seed of the shuffle and of the ``"sample"`` binarisation.
        device: where to put the tensors (default CPU).

    Returns:
        ``x``: float32 ``(N, 1, 28, 28)`` in [0, 1]; ``y``: int64 ``(N,)`` class labels 0-9.
    """
    if name not in IMAGE_DATASETS:
        raise DataError(f"Unknown image dataset {name!r}. Available: {sorted(IMAGE_DATASETS)}.")
    if split not in _IDX_FILES:
        raise DataError(f"Unknown split {split!r} for {name}. Use 'train' or 'test'.")
    if binarize not in (None, "threshold", "sample"):
        raise ValueError(f"binarize={binarize!r} is not supported; use None, 'threshold' or 'sample'.")
    images, labels = _load_idx_pair(name, split, str(data_dir()))
    index = np.arange(images.shape[0])
    if n is not None:
        if not (isinstance(n, int) and 0 < n):
            raise ValueError(f"n must be a positive int, got {n!r}.")
        index = np.random.default_rng(seed).permutation(images.shape[0])[:n]
    x = torch.from_numpy(images[index].astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    y = torch.from_numpy(labels[index].astype(np.int64))  # (N,)
    if binarize == "threshold":
        x = (x > 0.5).float()
    elif binarize == "sample":
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def load_mnist(split: str = "train", **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits; see :func:`load_images` for the arguments. Returns ``(N,1,28,28)`` floats and ``(N,)`` labels."""
    return load_images("mnist", split, **kwargs)


def load_fashion_mnist(split: str = "train", **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST; see :func:`load_images`. Class names are in ``CLASS_NAMES['fashion_mnist']``."""
    return load_images("fashion_mnist", split, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------------------
def load_text(name: str) -> str:
    """The whole text of a bundled corpus: ``"quijote"`` (Spanish), ``"tinyshakespeare"`` or ``"names"``."""
    if name not in TEXT_DATASETS:
        raise DataError(f"Unknown text dataset {name!r}. Available: {sorted(TEXT_DATASETS)}.")
    return verify_file(TEXT_DATASETS[name]).read_text(encoding="utf-8")


def load_names() -> list:
    """The 32,033 lowercase names of the makemore dataset, one string each."""
    return load_text("names").split()


# ----------------------------------------------------------------------------------------------------------
# 2-D toy distributions
# ----------------------------------------------------------------------------------------------------------
def make_toy_2d(name: str, n: int = 1000, seed: int = 0, noise: Optional[float] = None) -> torch.Tensor:
    """Sample ``n`` points of a 2-D toy distribution as a float32 ``(n, 2)`` tensor, roughly within [-4, 4]^2.

    ``name``: ``"gaussian_mixture"`` (8 Gaussians on a circle of radius 3), ``"rings"`` (two concentric circles),
    ``"moons"`` (two interleaved half circles) or ``"spirals"`` (two arms). ``noise`` is the standard deviation
    of the Gaussian jitter (a per-dataset default when ``None``).
    """
    if name not in TOY_DATASETS:
        raise DataError(f"Unknown toy dataset {name!r}. Available: {list(TOY_DATASETS)}.")
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"n must be a positive int, got {n!r}.")
    g = torch.Generator().manual_seed(seed)
    if name == "gaussian_mixture":
        k = torch.randint(0, 8, (n,), generator=g)
        angle = 2 * math.pi * k.float() / 8
        centres = 3.0 * torch.stack([angle.cos(), angle.sin()], dim=1)  # (n, 2)
        x = centres + (0.3 if noise is None else noise) * torch.randn(n, 2, generator=g)
    elif name == "rings":
        radius = torch.where(torch.rand(n, generator=g) < 0.5, 1.5, 3.0)
        angle = 2 * math.pi * torch.rand(n, generator=g)
        x = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        x = x + (0.1 if noise is None else noise) * torch.randn(n, 2, generator=g)
    elif name == "moons":
        upper = torch.rand(n, generator=g) < 0.5
        t = math.pi * torch.rand(n, generator=g)
        x = torch.stack([t.cos(), t.sin()], dim=1)
        lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
        x = torch.where(upper[:, None], x, lower)
        x = 2.0 * (x - torch.tensor([0.5, 0.25]))
        x = x + (0.1 if noise is None else noise) * torch.randn(n, 2, generator=g)
    else:  # spirals
        arm = torch.randint(0, 2, (n,), generator=g)
        t = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi
        angle = t + math.pi * arm.float()
        x = (t / math.pi)[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        x = x + (0.1 if noise is None else noise) * torch.randn(n, 2, generator=g)
    return x.float()
