"""Bundled datasets: MNIST, Fashion-MNIST, text corpora, music and 2-D toy distributions.

Every file under ``data/`` is checked against the sha256 in ``data/manifest.json`` the first time it
is read, so a truncated or corrupted file gives one clear message instead of a confusing failure
later. Nothing here touches the network.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import operator
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .config import DATA_ENV, data_dir, get_device

__all__ = [
    "DataError", "IMAGE_DATASETS", "TEXT_DATASETS", "TOY_DATASETS", "CLASS_NAMES",
    "sha256_file", "verify_file", "read_idx", "load_images", "load_mnist", "load_fashion_mnist",
    "load_text", "load_names", "make_toy_2d", "as_image_batch",
    "NOTTINGHAM_FILES", "JSB_SPLITS", "load_nottingham", "load_jsb_chorales",
    "TEXT_SPLITS", "SST2_SPLITS", "load_wikitext2", "load_sst2", "load_spa_eng",
    "split_spa_eng",
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
_SPLIT_SIZES = {"train": 60_000, "test": 10_000}


# --------------------------------------------------------------------------------------------------
# Argument checks shared by the helpers (private: errors name the learner's argument and the fix)
# --------------------------------------------------------------------------------------------------
def _whole(
    value: Any, name: str, minimum: Optional[int] = None, maximum: Optional[int] = None
) -> int:
    """``value`` as a Python int (NumPy and 0-d tensor integers accepted; bools and floats
    refused)."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a whole number, got {value!r} ({type(value).__name__})."
        ) from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}.")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {number:,}.")
    return number


def _choice(value: Any, options: Sequence[str], what: str, error: type = ValueError) -> str:
    """``value`` if it is one of ``options``; otherwise an error listing them (and the closest
    one)."""
    if isinstance(value, str) and value in options:
        return value
    import difflib

    close = (
        difflib.get_close_matches(str(value).lower(), list(options), n=1)
        if isinstance(value, str)
        else []
    )
    guess = f" Did you mean {close[0]!r}?" if close else ""
    raise error(f"Unknown {what} {value!r}.{guess} Available: {sorted(options)}.")


def _root_hint(root: Path) -> str:
    """Why ``root`` may be wrong, when ``$DEEPGEN_DATA`` chose it."""
    if os.environ.get(DATA_ENV):
        return (f" {DATA_ENV} is set to {os.environ[DATA_ENV]!r}: point it at a copy of the "
                "course's data folder, or unset it to use the repository's data/.")
    return ""


# --------------------------------------------------------------------------------------------------
# Integrity
# --------------------------------------------------------------------------------------------------
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
    if not root.is_dir():
        raise DataError(f"The data folder {root} does not exist.{_root_hint(root)}")
    if not path.exists():
        raise DataError(f"The data manifest {path} is missing." + (_root_hint(root) or
                        " Restore it with `git checkout -- data` (or clone the repository again)."))
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(v, dict) and "sha256" in v for v in files.values()):
            raise ValueError("an entry lacks its sha256")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise DataError(f"The data manifest {path} is damaged ({type(exc).__name__}: "
                        f"{str(exc)[:80]}); restore it with "
                        "`git checkout -- data/manifest.json`.") from None
    return files


_VERIFIED: set = set()


def verify_file(relpath: str, root: Optional[Path] = None) -> Path:
    """Return the path of bundled file ``relpath`` after checking it exists and matches the
    manifest's sha256.

    Raises :class:`DataError` naming the file and the fix when it is missing, unlisted or corrupted.
    """
    root = Path(root) if root is not None else data_dir()
    path = root / relpath
    key = (str(path), path.stat().st_mtime_ns if path.exists() else None)
    if key in _VERIFIED:
        return path
    files = _manifest(root)
    if relpath not in files:
        raise DataError(f"{relpath!r} is not listed in {root / 'manifest.json'}; the course only "
                        "reads files it ships.")
    if not path.exists():
        raise DataError(
            f"Data file {path} is missing. Restore it with `git checkout -- data/{relpath}` "
            "(or clone the repository again); the course never downloads data."
        )
    expected = files[relpath]["sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"Data file {path} is corrupted: its sha256 is {actual[:12]}..., the manifest expects "
            f"{expected[:12]}.... Restore it with `git checkout -- data/{relpath}` (if you use Git "
            "LFS or a partial download, fetch it again)."
        )
    _VERIFIED.add(key)
    return path


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file, the format of MNIST, into a NumPy array.

    The header is 2 zero bytes, a type code, the number of dimensions, then one big-endian uint32
    per dimension (LeCun et al., "The MNIST database", file format section).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(
            f"Could not read IDX file {path}: {exc}. Restore it from the repository."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(f"{path} is truncated: header says {dims} ({expected} bytes), found "
                        f"{len(raw) - offset} bytes.")
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
        n: keep only the first ``n`` images (after a fixed shuffle with ``seed``, so classes stay
        balanced);
            at most the size of the split.
        binarize: ``None`` (grey levels in [0, 1]), ``"threshold"`` (pixel > 0.5) or ``"sample"``
            (each pixel ~ Bernoulli(intensity), drawn once with ``seed``: a fixed binarisation).
        seed: seed of the shuffle and of the ``"sample"`` binarisation.
        device: where to put the tensors (default CPU); ``"cuda"`` or ``"mps"`` only where
        available.

    Returns:
        ``x``: float32 ``(N, 1, 28, 28)`` in [0, 1]; ``y``: int64 ``(N,)`` class labels 0-9.
    """
    _choice(name, IMAGE_DATASETS, "image dataset", DataError)
    if not (isinstance(split, str) and split in _IDX_FILES):
        raise DataError(f"Unknown split {split!r} for {name}. Use 'train' or 'test'.")
    if not (
        binarize is None or (isinstance(binarize, str) and binarize in ("threshold", "sample"))
    ):
        raise ValueError(f"binarize={binarize!r} is not supported; use None, "
                         "'threshold' or 'sample'.")
    seed = _whole(seed, "seed", 0)
    if n is not None:
        n = _whole(n, "n", 1)
        size = _SPLIT_SIZES[split]
        if n > size:
            raise ValueError(f"n={n:,} but the {name} {split} split has only {size:,} images; "
                             f"use n <= {size:,}, or n=None for all of them.")
    if device is not None:
        device = get_device(device)
    images, labels = _load_idx_pair(name, split, str(data_dir()))
    index = np.arange(images.shape[0])
    if n is not None:
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
    """MNIST digits; see :func:`load_images` for the arguments. Returns ``(N,1,28,28)`` floats and
    ``(N,)`` labels."""
    return load_images("mnist", split, **kwargs)


def load_fashion_mnist(split: str = "train", **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST; see :func:`load_images`. Class names are in
    ``CLASS_NAMES['fashion_mnist']``."""
    return load_images("fashion_mnist", split, **kwargs)


def as_image_batch(
    images: Any,
    name: str = "images",
    *,
    shape: Optional[Tuple[int, int, int]] = None,
    value_range: Tuple[float, float] = (0.0, 1.0),
    tolerance: float = 1e-3,
    min_count: int = 1,
    fix: str = "",
    why: str = "",
) -> torch.Tensor:
    """Check a batch of images and return it as a detached float32 ``(N, C, H, W)`` tensor (same
    device).

    The one validation of image batches that the metrics and the plots share. Accepts a tensor or
    NumPy array ``(N, C, H, W)``, ``(N, H, W)`` (one channel) or ``(N, H*W)`` (square images), or a
    list of images (or of batches) of one shape. ``shape`` ``(C, H, W)`` fixes the image size, e.g.
    ``(1, 28, 28)``. Values must lie in ``value_range``, give or take ``tolerance`` times its width;
    ``fix`` is appended to a range error and ``why`` to a too-few-images error. Raises ``TypeError``
    or ``ValueError`` naming ``name`` for channels-last layouts, other sizes, fewer than
    ``min_count`` images, NaN or infinite values, and 0-255 or [-1, 1] pixels.
    """
    x = _to_tensor(images, name)
    original = tuple(x.shape)
    if x.dtype == torch.bool:
        x = x.float()
    if x.is_complex() or not (x.is_floating_point() or x.dtype in _INT_DTYPES):
        raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {x.dtype}.")
    want = " x ".join(str(d) for d in shape) if shape else None
    if x.dim() == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1] or (shape and (1, side, side) != tuple(shape)):
            raise ValueError(f"{name} has shape {original}: flat images of {x.shape[1]} "
                             f"pixels, which is not {'square' if not shape else want}. Pass "
                             "images as (N, C, H, W).")
        x = x.reshape(-1, 1, side, side)
    elif x.dim() == 3:
        x = x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    if x.dim() != 4:
        raise ValueError(f"{name} must be a batch of images (N, C, H, W), got shape {original}.")
    channels_ok = (shape[0],) if shape else (1, 3, 4)
    if x.shape[1] not in channels_ok and x.shape[3] in channels_ok:
        raise ValueError(f"{name} has shape {original}, with the channels last; the helpers expect "
                         f"channels first (N, C, H, W): pass {name}.permute(0, 3, 1, 2).")
    if shape and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}) "
                         f"(or (N, {shape[1]}, {shape[2]}) or "
                         f"(N, {shape[1] * shape[2]})), got {original}.")
    if x.shape[1] not in channels_ok:
        raise ValueError(f"{name} has {x.shape[1]} channels (shape {original}); images need 1 "
                         "(grey), 3 (RGB) or 4 (RGBA) channels in (N, C, H, W).")
    if len(x) < min_count:
        raise ValueError(f"{name} holds {len(x)} image{'s' if len(x) != 1 else ''}; at least "
                         f"{min_count} {'is' if min_count == 1 else 'are'} needed{why}.")
    x = x.float()
    if x.numel():
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = int((~finite).flatten(1).any(1).sum())
            raise ValueError(f"{name} contains NaN or infinite values ({bad} of {len(x)} images): "
                             "whatever made them has diverged (try a lower learning rate; look "
                             "for log(0) or /0).")
        lo, hi = float(value_range[0]), float(value_range[1])
        slack = tolerance * (hi - lo)
        low, high = float(x.min()), float(x.max())
        if low < lo - slack or high > hi + slack:
            hint = ""
            if high > 1.5 and high <= 255 + slack and low >= -slack and hi <= 1:
                hint = " They look like 0-255 pixel values: divide by 255."
            elif -1 - slack <= low < 0 and high <= 1 + slack and lo >= 0:
                hint = " If they are in [-1, 1], pass (x + 1) / 2."
            raise ValueError(f"{name} must hold values in [{lo:g}, {hi:g}], got values in "
                             f"[{low:.3g}, {high:.3g}].{hint}{fix}")
    return x


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_labels(labels: Any, n_classes: int, n: int = -1, name: str = "labels") -> torch.Tensor:
    """Class labels as int64 ``(N,)`` in ``[0, n_classes)``, from a tensor, array, list or number.

    Refuses probabilities, one-hot rows, fractions and out-of-range classes with a message that
    names ``name`` (the learner's argument). ``n >= 0`` also requires exactly ``n`` labels.
    """
    labels = _to_tensor(labels, name).cpu()
    if labels.dim() == 0:
        labels = labels.reshape(1)
    if labels.dim() == 2 and labels.shape[1] == n_classes and labels.shape[0] > 0:
        raise ValueError(f"{name} has shape {tuple(labels.shape)}: that looks like class "
                         f"probabilities or one-hot rows, not class labels; pass {name}.argmax(1).")
    if labels.dim() != 1 or (n >= 0 and labels.shape[0] != n):
        want = f"({n},), one per image" if n >= 0 else "(N,)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(labels.shape)}.")
    if labels.numel() == 0:
        raise ValueError(f"{name} is empty.")
    if labels.is_floating_point():
        if not bool((labels == labels.round()).all()):
            raise ValueError(f"{name} must be whole class numbers, got fractional values such as "
                             f"{labels[labels != labels.round()][0].item():g}; pass class indices "
                             "(for probabilities, probs.argmax(1)).")
    elif labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"{name} must be class numbers, got a tensor of dtype {labels.dtype}.")
    labels = labels.long()
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise ValueError(f"{name} must be classes 0 to {n_classes - 1}, got values "
                         f"from {low} to {high}.")
    return labels


def _to_tensor(value: Any, name: str) -> torch.Tensor:
    """A tensor from a tensor, NumPy array, number or (nested) list of them; detached, never
    shared."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{name} is a NumPy array of Python objects; "
                            "convert it to numbers first.")
        return torch.from_numpy(np.array(value))
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"{name} is an empty {type(value).__name__}.")
        if any(isinstance(v, (torch.Tensor, np.ndarray)) for v in value):
            parts = [_to_tensor(v, f"{name}[{i}]") for i, v in enumerate(value)]
            first = tuple(parts[0].shape)
            for i, part in enumerate(parts):
                if tuple(part.shape) != first:
                    raise ValueError(f"{name}[{i}] has shape {tuple(part.shape)} but "
                                     f"{name}[0] has {first}; every element of the list must "
                                     "have the same shape.")
            if len(first) == 4:  # a list of batches
                return torch.cat([p.to(parts[0].device) for p in parts])
            return torch.stack([p.to(parts[0].device) for p in parts])
        try:
            return torch.tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be numbers of one shape (a tensor, an array or a list of "
                            f"them); could not read the {type(value).__name__} given.") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(value)
    raise TypeError(f"{name} must be a torch.Tensor (or a NumPy array, or a list of tensors), "
                    f"got {type(value).__name__}.")


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------
def load_text(name: str) -> str:
    """The whole text of a bundled corpus: ``"quijote"`` (Spanish), ``"tinyshakespeare"`` or
    ``"names"``."""
    _choice(name, TEXT_DATASETS, "text dataset", DataError)
    return verify_file(TEXT_DATASETS[name]).read_text(encoding="utf-8")


def load_names() -> list:
    """The 32,033 lowercase names of the makemore dataset, one string each."""
    return load_text("names").split()


# --------------------------------------------------------------------------------------------------
# Transformer corpora: WikiText-2 (word level), SST-2 (sentiment), Tatoeba Spanish-English pairs
# --------------------------------------------------------------------------------------------------
TEXT_SPLITS = ("train", "valid", "test")
SST2_SPLITS = ("train", "dev", "test")


def load_wikitext2(split: str = "train") -> list:
    """The lines of one split of WikiText-2 (Merity et al. 2016; the tokenised release, CC BY-SA 3.0:
    see ``wikitext2/NOTICE.txt``): 36,718 / 3,760 / 4,358 lines for train / valid / test, each a
    string of space-separated word tokens (``<unk>`` for rare words, ``@-@`` etc. for split
    punctuation); empty lines come back as empty strings."""
    _choice(split, TEXT_SPLITS, "WikiText-2 split", DataError)
    if split == "train":
        with gzip.open(verify_file("wikitext2/wiki.train.tokens.gz"), "rt", encoding="utf-8") as f:
            text = f.read()
    else:
        text = verify_file(f"wikitext2/wiki.{split}.tokens").read_text(encoding="utf-8")
    return [line.strip() for line in text.split("\n")[:-1]]


def load_sst2(split: str = "train") -> Tuple[list, list]:
    """SST-2 in its GLUE version (Socher et al. 2013; Wang et al. 2018): ``(sentences, labels)``,
    lower-cased, tokenised strings and 0 (negative) / 1 (positive). ``"train"`` holds 67,349
    labelled phrases, ``"dev"`` the 872 sentences every paper reports accuracy on; GLUE hides the
    labels of ``"test"`` (1,821 sentences), so its labels come back as -1."""
    _choice(split, SST2_SPLITS, "SST-2 split", DataError)
    rows = verify_file(f"sst2/{split}.tsv").read_text(encoding="utf-8").split("\n")[1:]
    sentences, labels = [], []
    for row in filter(None, rows):
        a, b = row.split("\t")
        if split == "test":
            sentences.append(b.strip())
            labels.append(-1)
        else:
            sentences.append(a.strip())
            labels.append(int(b))
    return sentences, labels


def load_spa_eng() -> list:
    """The 118,121 Tatoeba English-Spanish pairs of manythings.org (2018-04-07; CC BY 2.0 FR,
    attribution "www.manythings.org/anki and tatoeba.org") as ``(spanish, english)`` tuples, in
    the file's order (sorted by length: split them at random, by source sentence)."""
    import zipfile

    with zipfile.ZipFile(verify_file("spa_eng/spa-eng.zip")) as z:
        lines = z.read("spa.txt").decode("utf-8").split("\n")
    pairs = []
    for line in filter(None, lines):
        english, spanish = line.split("\t")[:2]
        pairs.append((spanish, english))
    return pairs


def _fraction(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1), or an error that names ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a fraction of the pairs such as 0.05, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a fraction of the pairs in [0, 1), such as 0.05, "
                         f"got {value!r}.")
    return value


def split_spa_eng(pairs: Sequence[Tuple[str, str]], valid: float = 0.05, test: float = 0.05,
                  seed: int = 0) -> Tuple[list, list, list]:
    """Split sentence pairs into ``(train, valid, test)`` at random, keeping every sentence and all
    its translations on one side of the split.

    Tatoeba has many pairs per sentence: the 118,121 pairs of :func:`load_spa_eng` hold 112,499
    distinct Spanish and 102,323 distinct English sentences ("Go away." has seven Spanish
    translations, and one of them, "Váyase.", is also paired with "Go."). A random split of *pairs*
    would put a test sentence, or its exact translation, in the training set, and a model that has
    memorised it would score a BLEU that says nothing about translating new sentences. So pairs are
    grouped: two pairs are in one group when they share their Spanish sentence **or their English
    one**, and groups are linked in chains (a union-find over sentences). The English link is the
    stricter choice: without it, "Yo estoy cansado." -> "I'm tired." could be tested while "Yo estoy
    cansada." -> "I'm tired." is trained on, and the model would know the reference by heart. It
    costs nothing measurable here: the 97,223 groups hold at most 42 pairs each.

    Groups are shuffled with ``seed`` (never file order: the file is sorted by length) and taken
    in turn into the test set until it holds ``round(test * len(pairs))`` pairs or a few more,
    then into the validation set likewise; the rest is the training set. Each split comes back in
    a random order, so ``test[:500]`` is a fair sample. Sentences are compared as exact strings
    (case and punctuation count).

    Args:
        pairs: ``(spanish, english)`` tuples, as from :func:`load_spa_eng`.
        valid, test: fractions of the pairs for validation and test, each in [0, 1), sum below 1.
        seed: the random seed; the same seed gives the same split.

    Returns:
        ``(train, valid, test)``: three lists of ``(spanish, english)`` tuples.
    """
    valid, test = _fraction(valid, "valid"), _fraction(test, "test")
    if valid + test >= 1:
        raise ValueError(f"valid={valid} and test={test} leave nothing for training; their sum "
                         "must be below 1 (the defaults are 0.05 each).")
    seed = _whole(seed, "seed", 0, 2**32 - 1)
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError("pairs must be a list of (spanish, english) tuples, as from "
                        f"load_spa_eng(), got {type(pairs).__name__}.")
    if len(pairs) == 0:
        raise ValueError("pairs is empty; pass the pairs of load_spa_eng().")
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and isinstance(pair[0], str) and isinstance(pair[1], str)):
            raise TypeError(f"pairs[{i}] must be a (spanish, english) tuple of two strings, got "
                            f"{pair!r:.80}.")

    # union-find over sentences: Spanish ones are nodes 0..S-1, English ones follow
    spanish_id = {}
    for spanish, _ in pairs:
        spanish_id.setdefault(spanish, len(spanish_id))
    english_id = {}
    for _, english in pairs:
        english_id.setdefault(english, len(spanish_id) + len(english_id))
    parent = list(range(len(spanish_id) + len(english_id)))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]          # path halving keeps the trees shallow
            node = parent[node]
        return node

    for spanish, english in pairs:
        a, b = root(spanish_id[spanish]), root(english_id[english])
        if a != b:
            parent[a] = b                                # one group from now on
    by_root = {}                                         # root -> pair indices, in file order
    for i, (spanish, _) in enumerate(pairs):
        by_root.setdefault(root(spanish_id[spanish]), []).append(i)
    groups = list(by_root.values())

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    test_indices, valid_indices = [], []
    position = 0                                         # the next group in the shuffled order
    for indices, fraction in ((test_indices, test), (valid_indices, valid)):
        while len(indices) < round(fraction * len(pairs)) and position < len(order):
            indices.extend(groups[order[position]])
            position += 1
    train_indices = [i for g in order[position:] for i in groups[g]]
    if not train_indices:
        raise ValueError(f"the {len(pairs)} pairs form only {len(groups)} groups of linked "
                         "sentences, too few to leave any for training; pass more pairs or "
                         "smaller fractions.")
    splits = []
    for indices in (train_indices, valid_indices, test_indices):
        shuffled = rng.permutation(len(indices))
        splits.append([tuple(pairs[indices[k]]) for k in shuffled])
    return splits[0], splits[1], splits[2]


# --------------------------------------------------------------------------------------------------
# Music
# --------------------------------------------------------------------------------------------------
#: The Nottingham Music Database in ABC (Jukedeck's cleaned version, GPL-3.0: nottingham/LICENSE.md).
NOTTINGHAM_FILES = ("ashover", "hpps", "jigs", "morris", "playford", "reelsa-c", "reelsd-g",
                    "reelsh-l", "reelsm-q", "reelsr-t", "reelsu-z", "slip", "waltzes", "xmas")
JSB_SPLITS = ("train", "valid", "test")
_JSB_FILE = "jsb_chorales/jsb-chorales-quarter.json"


def load_nottingham() -> list:
    """The 1,034 Nottingham folk tunes as ABC text, one string per tune (from its ``X:`` line,
    comment lines dropped), in file order: ashover, hpps, jigs, ... xmas."""
    from .music import split_tunes

    tunes = []
    for name in NOTTINGHAM_FILES:
        tunes += split_tunes(verify_file(f"nottingham/{name}.abc").read_text(encoding="utf-8"))
    return tunes


@lru_cache(maxsize=2)
def _jsb_json(root: str) -> dict:
    return json.loads(verify_file(_JSB_FILE, Path(root)).read_text(encoding="utf-8"))


def load_jsb_chorales(split: str = "train") -> list:
    """The JSB Chorales of one split of Boulanger-Lewandowski et al. (2012) on their quarter-note
    grid, as piano rolls: a list of uint8 arrays ``(T_i, 88)``, key k = MIDI note 21 + k (A0..C8).

    ``split``: ``"train"`` (229 chorales), ``"valid"`` (76) or ``"test"`` (77).
    """
    from .music import notes_to_roll

    _choice(split, JSB_SPLITS, "JSB Chorales split", DataError)
    return [notes_to_roll(chorale) for chorale in _jsb_json(str(data_dir()))[split]]


# --------------------------------------------------------------------------------------------------
# 2-D toy distributions
# --------------------------------------------------------------------------------------------------
def make_toy_2d(
    name: str, n: int = 1000, seed: int = 0, noise: Optional[float] = None
) -> torch.Tensor:
    """Sample ``n`` points of a 2-D toy distribution as a float32 ``(n, 2)`` tensor, roughly within
    [-4, 4]^2.

    ``name``: ``"gaussian_mixture"`` (8 Gaussians on a circle of radius 3), ``"rings"`` (two
    concentric circles), ``"moons"`` (two interleaved half circles) or ``"spirals"`` (two arms).
    ``noise`` is the standard deviation of the Gaussian jitter (a per-dataset default when
    ``None``).
    """
    _choice(name, TOY_DATASETS, "toy dataset", DataError)
    n = _whole(n, "n", 1)
    seed = _whole(seed, "seed", 0, 2**64 - 1)
    if noise is not None:
        if (
            isinstance(noise, bool)
            or not isinstance(noise, (int, float))
            or not math.isfinite(noise)
            or noise < 0
        ):
            raise ValueError("noise is the standard deviation of the jitter: a number >= 0, "
                             f"got {noise!r}.")
        noise = float(noise)
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
