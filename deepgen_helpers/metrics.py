"""Evaluation metrics the lessons teach: likelihood units, FID, class accuracy and class-histogram
entropy.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", Eq. 6 of the NeurIPS version) fits a Gaussian to the features of each image set and
measures

    d^2 = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2}).

The usual FID uses Inception-v3 features of ImageNet-sized colour images; the course uses the
features of its own small classifier (``deepgen_helpers.classifier``), so its numbers are comparable
within the course only, not with published FIDs.

BLEU and chrF (lesson 15) score translations against reference translations; they are written from
their papers and equal sacreBLEU's default corpus scores (see :func:`bleu` and :func:`chrf`).
"""
from __future__ import annotations

import math
import re
import weakref
from collections import Counter
from typing import Any, Tuple

import numpy as np
import torch

from .classifier import load_classifier
from .data import _to_tensor, _whole, as_image_batch, as_labels

LN2 = math.log(2.0)


def nats_to_bits(nats: float) -> float:
    """Convert a log-likelihood or loss from nats (natural log) to bits (log base 2)."""
    return nats / LN2


def bits_per_dim(nll_nats: float, n_dims: int) -> float:
    """Negative log-likelihood of one example, in nats, expressed as bits per dimension: ``nll / (D
    ln 2)``."""
    n_dims = _whole(n_dims, "n_dims (the number of dimensions, e.g. 784 for MNIST)", 1)
    return nll_nats / (n_dims * LN2)


def _check_images(
    images: Any, name: str = "images", min_count: int = 1, why: str = ""
) -> torch.Tensor:
    """Images for the course classifier: float32 ``(N, 1, 28, 28)`` in [0, 1] (see
    ``data.as_image_batch``)."""
    return as_image_batch(images, name, shape=(1, 28, 28), min_count=min_count, why=why)


def _batches(n: int, batch_size: Any) -> range:
    return range(0, n, _whole(batch_size, "batch_size", 1))


@torch.no_grad()
def classifier_features(
    images: torch.Tensor, dataset: str = "mnist", batch_size: int = 1000
) -> torch.Tensor:
    """Penultimate features ``(N, 128)`` of the course classifier for ``images`` ``(N, 1, 28, 28)``
    in [0, 1]."""
    images = _check_images(images)
    model = load_classifier(dataset)
    return torch.cat([model.features(images[i:i + batch_size].cpu())
                      for i in _batches(len(images), batch_size)])


@torch.no_grad()
def predict(images: torch.Tensor, dataset: str = "mnist", batch_size: int = 1000) -> torch.Tensor:
    """Class predicted by the course classifier for each image: int64 ``(N,)``."""
    images = _check_images(images)
    model = load_classifier(dataset)
    return torch.cat([model(images[i:i + batch_size].cpu()).argmax(1)
                      for i in _batches(len(images), batch_size)])


def _check_features(features: Any, name: str = "features") -> torch.Tensor:
    f = _to_tensor(features, name)
    if f.dim() != 2 or f.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, F) with N >= 2 rows, got {tuple(f.shape)}.")
    if not bool(torch.isfinite(f).all()):
        raise ValueError(f"{name} contains NaN or infinite values; the images or the model that "
                         "made them have diverged.")
    return f


def gaussian_stats(features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(F,)`` and unbiased covariance ``(F, F)`` of ``features`` ``(N, F)``, in float64."""
    f = _check_features(features).double()
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    vals, vecs = torch.linalg.eigh(c)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (Dowson & Landau 1982).

    ``Tr((C1 C2)^{1/2})`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix ``C1^{1/2} C2 C1^{1/2}``, which has the same eigenvalues as ``C1 C2`` and
    is numerically safer.
    """
    mu1, cov1, mu2, cov2 = (_to_tensor(v, n) for v, n in
                            ((mu1, "mu1"), (cov1, "cov1"), (mu2, "mu2"), (cov2, "cov2")))
    f = mu1.shape[0] if mu1.dim() == 1 else -1
    if (
        f < 1
        or tuple(mu2.shape) != (f,)
        or tuple(cov1.shape) != (f, f)
        or tuple(cov2.shape) != (f, f)
    ):
        raise ValueError("frechet_distance needs means (F,) and covariances (F, F) of one size F; "
                         f"got mu1 {tuple(mu1.shape)}, cov1 {tuple(cov1.shape)}, mu2 "
                         f"{tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}.")
    if not all(bool(torch.isfinite(v).all()) for v in (mu1, cov1, mu2, cov2)):
        raise ValueError("frechet_distance got NaN or infinite means or covariances.")
    s1 = _sqrtm_psd(cov1.double())
    middle = s1 @ cov2.double() @ s1
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d2 = ((mu1.double() - mu2.double()).pow(2).sum() + cov1.double().trace() + cov2.double().trace()
          - 2 * tr_sqrt)
    return float(d2.clamp_min(0))


def fid_from_features(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two sets of features ``(N_a, F)`` and ``(N_b, F)``."""
    features_a = _check_features(features_a, "features_a")
    features_b = _check_features(features_b, "features_b")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"feature sizes differ: {features_a.shape[1]} vs {features_b.shape[1]}.")
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def fid(images_a: torch.Tensor, images_b: torch.Tensor, dataset: str = "mnist") -> float:
    """FID between two image sets ``(N, 1, 28, 28)`` in [0, 1], on the course classifier's features.

    Use at least a few hundred images per set (the features have 128 dimensions); the estimate is
    biased upwards for small sets, so compare FIDs computed with the same number of images. Raises
    ``ValueError`` for sets of fewer than 2 images, NaN images and images outside [0, 1].
    """
    why = " to fit a Gaussian (use a few hundred for a meaningful FID)"
    images_a = _check_images(images_a, "images_a", min_count=2, why=why)
    images_b = _check_images(images_b, "images_b", min_count=2, why=why)
    return fid_from_features(
        classifier_features(images_a, dataset), classifier_features(images_b, dataset)
    )


def class_accuracy(images: torch.Tensor, labels: torch.Tensor, dataset: str = "mnist") -> float:
    """Fraction of ``images`` that the course classifier assigns to the intended ``labels``
    ``(N,)``.

    For a conditional generator, ``labels`` are the classes it was asked to draw.
    """
    images = _check_images(images)
    labels = as_labels(labels, 10, n=len(images))
    return float((predict(images, dataset) == labels).float().mean())


def class_entropy(labels: torch.Tensor, n_classes: int = 10) -> float:
    """Entropy in nats of the histogram of ``labels`` ``(N,)``: log(n_classes) when every class is
    equally common, 0 when all are the same class (mode collapse). ``labels`` are class numbers 0 to
    n_classes - 1, not probabilities (use ``probs.argmax(1)``)."""
    n_classes = _whole(n_classes, "n_classes", 1)
    labels = as_labels(labels, n_classes)
    p = torch.bincount(labels, minlength=n_classes).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def sample_class_entropy(images: torch.Tensor, dataset: str = "mnist") -> float:
    """Diversity of generated ``images``: the entropy (nats) of the course classifier's
    predicted-class histogram."""
    return class_entropy(predict(images, dataset))


# --------------------------------------------------------------------------------------------------
# Uncertainty: every compared number carries one (COURSE.md section 7)
# --------------------------------------------------------------------------------------------------
def mean_se(values) -> Tuple[float, float]:
    """Mean and its standard error ``std / sqrt(n)`` of per-example values ``(N,)`` (e.g. NLL per
    image).

    Use it for any average over a test set: ``m, se = mean_se(nll)``; print as ``f"{m:.1f} ±
    {se:.1f}"``. A difference between two models evaluated on the *same* examples has a smaller
    standard error than either: pass the per-example differences (``mean_se(nll_a - nll_b)``).
    """
    try:
        v = torch.as_tensor(values).detach().double().flatten().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError("mean_se needs numbers (a tensor, array or list of per-example values), "
                        f"got {type(values).__name__} that cannot be read as numbers.") from None
    if v.numel() < 2:
        raise ValueError("mean_se needs at least 2 values to estimate a standard "
                         f"error, got {v.numel()}.")
    if not torch.isfinite(v).all():
        raise ValueError("mean_se got NaN or infinite values; check the model's outputs first.")
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(v.numel()))


def random_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    """``n`` distinct random indices into a set of ``n_total`` items (int64 ``(n,)``), reproducible
    by ``seed``.

    Reference and evaluation sets are random subsets, never file-order slices: MNIST's test file
    changes writers part-way, so ``x_test[:1000]`` is not a fair sample of it.
    """
    for name, value in (("n_total", n_total), ("n", n), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"random_subset: {name} must be a whole number, got {value!r}.")
    if not 0 < n <= n_total:
        raise ValueError(f"cannot draw {n} items from a set of {n_total}; choose n "
                         f"between 1 and {n_total}.")
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


_REFERENCE = {}   # the last reference set's features: lessons compare many sample sets to one


def _reference_features(reference: torch.Tensor, dataset: str) -> torch.Tensor:
    """classifier_features(reference), reused while the same, unchanged tensor comes back."""
    key = (dataset, tuple(reference.shape), getattr(reference, "_version", None))
    held = _REFERENCE.get("tensor")
    if held is not None and held() is reference and _REFERENCE.get("key") == key:
        return _REFERENCE["features"]
    features = classifier_features(reference, dataset)
    try:
        _REFERENCE.update(tensor=weakref.ref(reference), key=key, features=features)
    except TypeError:                                  # not weak-referenceable: do not cache
        _REFERENCE.clear()
    return features


def fid_with_floor(images: torch.Tensor, reference: torch.Tensor, n: int = 1000, repeats: int = 3,
                   seed: int = 0, dataset: str = "mnist") -> dict:
    """FID of ``images`` against random subsets of ``reference``, with its spread and the
    real-vs-real floor.

    For each of ``repeats`` rounds, ``n`` generated images and two *disjoint* random sets of ``n``
    reference images are drawn; the round gives FID(generated, reference set 1) and the floor
    FID(reference set 1, reference set 2), the value a perfect generator would get at this size (FID
    is biased upwards for small sets, so only FIDs at the same ``n`` compare). Needs ``len(images)
    >= n`` and ``len(reference) >= 2 n``.

    Returns ``{"fid": mean, "fid_sd": spread, "floor": mean, "floor_sd": spread, "n": n, "repeats":
    r}``; the spreads are standard deviations over rounds.
    """
    if repeats < 2:
        raise ValueError(f"repeats must be at least 2 to give a spread, got {repeats}.")
    if len(images) < n or len(reference) < 2 * n:
        raise ValueError(f"fid_with_floor(n={n}) needs at least {n} images and {2 * n} "
                         f"reference images; got {len(images)} and {len(reference)}. Pass "
                         "more, or a smaller n.")
    f_img = classifier_features(images, dataset)
    f_ref = _reference_features(reference, dataset)
    fids, floors = [], []
    for r in range(repeats):
        g = torch.Generator().manual_seed(seed + r)
        ref = torch.randperm(len(f_ref), generator=g)[:2 * n]
        img = torch.randperm(len(f_img), generator=g)[:n]
        fids.append(fid_from_features(f_img[img], f_ref[ref[:n]]))
        floors.append(fid_from_features(f_ref[ref[n:]], f_ref[ref[:n]]))
    t, u = torch.tensor(fids), torch.tensor(floors)
    return {"fid": float(t.mean()), "fid_sd": float(t.std()), "floor": float(u.mean()),
            "floor_sd": float(u.std()), "n": n, "repeats": repeats}


# --------------------------------------------------------------------------------------------------
# Mode coverage on toy mixtures with known modes
# (lesson 04; Metz et al. 2017, Srivastava et al. 2017)
# --------------------------------------------------------------------------------------------------
def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, sigma: float, n_sigma: float = 3.0,
                  min_count: int = 1) -> dict:
    """Modes covered and the fraction of high-quality samples, for a mixture of Gaussians whose
    centres and standard deviation are known (the 2-D ring and grid of the unrolled-GAN and VEEGAN
    papers: Metz et al. 2017, section 3.1; Srivastava et al. 2017, section 5.1).

    A sample is *high quality* if it lies within ``n_sigma * sigma`` (Euclidean distance) of its
    nearest centre; a mode is *covered* if at least ``min_count`` high-quality samples are nearest
    to it (``min_count=1`` is the papers' most lenient reading; a larger count ignores a few
    strays). ``samples``: ``(N, D)``; ``centres``: ``(K, D)``; ``sigma``: the modes' standard
    deviation. Returns ``{"modes_covered": int, "n_modes": K, "high_quality": fraction of the N
    samples, "counts": (K,) int64 high-quality samples per mode}``.
    """
    x = _to_tensor(samples, "samples").detach().double().cpu()
    c = _to_tensor(centres, "centres").detach().double().cpu()
    if x.dim() != 2 or c.dim() != 2 or x.shape[1] != c.shape[1] or len(x) == 0 or len(c) == 0:
        raise ValueError("mode_coverage needs samples (N, D) and centres (K, D) with the same D, "
                         f"got {tuple(x.shape)} and {tuple(c.shape)}.")
    if not torch.isfinite(x).all():
        raise ValueError("mode_coverage got NaN or infinite samples: the generator has diverged; "
                         "look at its training losses first.")
    if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma is the modes' standard deviation, a number > 0; got {sigma!r}.")
    min_count = _whole(min_count, "min_count", 1)
    dist, nearest = torch.cdist(x, c).min(dim=1)                 # (N,) each
    good = dist <= n_sigma * sigma
    counts = torch.bincount(nearest[good], minlength=len(c))     # (K,)
    return {"modes_covered": int((counts >= min_count).sum()), "n_modes": len(c),
            "high_quality": float(good.double().mean()), "counts": counts}


# --------------------------------------------------------------------------------------------------
# Precision and recall of samples: quality and coverage apart (lesson 05; Kynkäänniemi et al. 2019)
# --------------------------------------------------------------------------------------------------
def _feature_rows(features: Any, name: str) -> torch.Tensor:
    return _check_features(features, name).detach().double().cpu()


def knn_radii(features: torch.Tensor, k: int = 3, batch_size: int = 1000) -> torch.Tensor:
    """Distance from each row of ``features`` ``(N, F)`` to its ``k``-th nearest *other* row:
    ``(N,)``, float64.

    The radius of each point's ball in the k-NN estimate of a set's manifold (Kynkäänniemi et al.
    2019, section 2, Eq. 2). Needs ``N > k``.
    """
    f = _feature_rows(features, "features")
    k = _whole(k, "k (the neighbour whose distance sets the radius)", 1)
    if len(f) <= k:
        raise ValueError(f"knn_radii needs more than k={k} points, got {len(f)}; pass more "
                         f"features or a smaller k.")
    out = []
    for i in _batches(len(f), batch_size):
        d = torch.cdist(f[i:i + batch_size], f)                     # (b, N); self at distance 0
        out.append(d.kthvalue(k + 1, dim=1).values)                 # skip the point itself
    return torch.cat(out)


def manifold_membership(query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor,
                        batch_size: int = 1000) -> torch.Tensor:
    """Whether each row of ``query`` ``(M, F)`` lies inside the k-NN manifold of ``support``
    ``(N, F)``: within ``radii[j]`` of some support point ``j``. Returns bool ``(M,)``
    (Kynkäänniemi et al. 2019, Eq. 2: f(phi, Phi))."""
    q = _feature_rows(query, "query")
    s = _feature_rows(support, "support")
    r = _to_tensor(radii, "radii").detach().double().cpu()
    if q.shape[1] != s.shape[1] or tuple(r.shape) != (len(s),):
        raise ValueError(f"manifold_membership needs query (M, F), support (N, F) and radii (N,); "
                         f"got {tuple(q.shape)}, {tuple(s.shape)} and {tuple(r.shape)}.")
    return torch.cat([(torch.cdist(q[i:i + batch_size], s) <= r[None]).any(1)
                      for i in _batches(len(q), batch_size)])


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> dict:
    """Improved precision and recall of generated samples (Kynkäänniemi et al. 2019, Eqs. 1-2).

    *Precision*: the fraction of generated samples inside the k-NN manifold of the real ones (how
    many samples look real: quality). *Recall*: the fraction of real samples inside the k-NN
    manifold of the generated ones (how much of the real data the generator covers: diversity). A
    generator that collapses onto a few good images has precision near 1 and low recall; a blurry
    one that covers everything has high recall and lower precision. ``real_features`` ``(N, F)``
    and ``fake_features`` ``(M, F)`` are features of the two sets (the course uses its classifier's,
    :func:`classifier_features`); use sets of equal size, since both numbers depend on it.

    Returns ``{"precision", "precision_se", "recall", "recall_se", "k", "n_real", "n_fake"}``; the
    standard errors are those of a mean of 0/1 flags over the samples (given the manifolds).
    """
    real = _feature_rows(real_features, "real_features")
    fake = _feature_rows(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} (real) vs {fake.shape[1]} (fake).")
    prec = manifold_membership(fake, real, knn_radii(real, k)).double()     # (M,) 0/1
    rec = manifold_membership(real, fake, knn_radii(fake, k)).double()      # (N,) 0/1
    (p, p_se), (r, r_se) = mean_se(prec), mean_se(rec)
    return {"precision": p, "precision_se": p_se, "recall": r, "recall_se": r_se, "k": k,
            "n_real": len(real), "n_fake": len(fake)}


def sample_precision_recall(images: torch.Tensor, reference: torch.Tensor, n: int = 1000,
                            k: int = 3, seed: int = 0, dataset: str = "mnist") -> dict:
    """:func:`precision_recall` of ``n`` random ``images`` against ``n`` random ``reference``
    images, on the course classifier's features (images ``(N, 1, 28, 28)`` in [0, 1])."""
    n = _whole(n, "n", k + 1)
    if len(images) < n or len(reference) < n:
        raise ValueError(f"sample_precision_recall(n={n}) needs at least {n} images and {n} "
                         f"reference images; got {len(images)} and {len(reference)}.")
    img = _check_images(images)[random_subset(len(images), n, seed)]
    ref = _check_images(reference)[random_subset(len(reference), n, seed + 1)]
    return precision_recall(classifier_features(ref, dataset), classifier_features(img, dataset), k)


# --------------------------------------------------------------------------------------------------
# Distortion between an image and its true counterpart: PSNR and SSIM (lesson 06; Wang et al. 2004)
# --------------------------------------------------------------------------------------------------
def _image_pair(images: Any, reference: Any, data_range: Any, what: str,
                min_side: int = 1) -> Tuple[torch.Tensor, torch.Tensor, float]:
    """Two batches of the same shape as float64 ``(N, C, H, W)``, and ``data_range`` as a float."""
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.number)) \
            or not math.isfinite(float(data_range)) or float(data_range) <= 0:
        raise ValueError(f"{what}: data_range is the width of the pixels' scale (1 for [0, 1] "
                         f"images, 2 for [-1, 1], 255 for bytes), a number > 0; got "
                         f"{data_range!r}.")
    data_range = float(data_range)
    pair = []
    for value, name in ((images, "images"), (reference, "reference")):
        x = _to_tensor(value, name)
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{what}: {name} must hold real numbers, got dtype {x.dtype}.")
        if x.dim() == 2:
            x = x[None, None]                              # one (H, W) image
        elif x.dim() == 3:
            x = x[:, None]                                 # (N, H, W) -> (N, 1, H, W)
        if x.dim() != 4:
            raise ValueError(f"{what}: {name} must be images (N, C, H, W), (N, H, W) or (H, W); "
                             f"got shape {tuple(value.shape) if hasattr(value, 'shape') else '?'}.")
        if x.numel() == 0:
            raise ValueError(f"{what}: {name} is empty.")
        x = x.double().cpu()
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{what}: {name} contains NaN or infinite values.")
        span = float(x.max() - x.min())
        if span > data_range * (1 + 1e-3):
            raise ValueError(f"{what}: {name} spans {span:.4g}, more than data_range={data_range:g}"
                             "; pass the pixels' true range (e.g. data_range=255 for 0-255 "
                             "images, 2 for [-1, 1]) or rescale the images.")
        pair.append(x)
    x, y = pair
    if x.shape != y.shape:
        raise ValueError(f"{what}: images {tuple(x.shape)} and reference {tuple(y.shape)} must "
                         "have the same shape (each image is compared with its own true "
                         "counterpart).")
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"{what}: images of {x.shape[-2]}x{x.shape[-1]} pixels are smaller than "
                         f"the {min_side}x{min_side} window.")
    return x, y, data_range


def psnr(images: Any, reference: Any, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image against its true counterpart, in dB: float64
    ``(N,)``.

    ``PSNR = 10 log10(L^2 / MSE)`` with ``L = data_range`` and the MSE over an image's pixels (and
    channels). Higher is better; +6.02 dB halves the root-mean-square error. ``images`` and
    ``reference``: ``(N, C, H, W)``, ``(N, H, W)`` or one ``(H, W)`` image, of the same shape. An
    image identical to its reference has infinite PSNR (as in scikit-image).
    """
    x, y, L = _image_pair(images, reference, data_range, "psnr")
    mse = (x - y).pow(2).flatten(1).mean(1)                              # (N,)
    return 10 * torch.log10(L * L / mse)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-r * r / (2 * sigma * sigma))
    return w / w.sum()                                                   # (size,), sums to 1


def ssim(images: Any, reference: Any, data_range: float = 1.0, window: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean structural similarity of each image with its true counterpart: float64 ``(N,)``.

    Wang, Bovik, Sheikh & Simoncelli (2004), "Image Quality Assessment: From Error Visibility to
    Structural Similarity", Eq. 13 with local statistics weighted by an 11x11 Gaussian window of
    standard deviation 1.5 (their section III.C), averaged over the window positions that lie
    inside the image (Eq. 17, the MSSIM) and over channels:

        SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 +
        sigma_y^2 + C2)),  C1 = (K1 L)^2, C2 = (K2 L)^2, L = data_range.

    1 for identical images, lower for less similar ones (it can be negative). Matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L)``. Images must be at least ``window`` pixels wide.
    """
    window = _whole(window, "window (an odd window size, e.g. 11)", 1)
    if window % 2 == 0:
        raise ValueError(f"ssim: window must be odd, got {window}.")
    for name, v in (("sigma", sigma), ("k1", k1), ("k2", k2)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"ssim: {name} must be a number > 0, got {v!r}.")
    x, y, L = _image_pair(images, reference, data_range, "ssim", min_side=window)
    n, c, h, w = x.shape
    g = _gaussian_window(window, sigma)
    kernel = (g[:, None] * g[None, :]).expand(5 * c, 1, window, window)  # separable Gaussian

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        # 'valid' filtering: only windows fully inside the image (scikit-image crops the rest)
        return torch.nn.functional.conv2d(t, kernel, groups=5 * c)

    stats = local_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1))   # (N, 5C, H-w+1, W-w+1)
    mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
         / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))      # Eq. 13, per position
    return s.flatten(1).mean(1)                                          # (N,)


# --------------------------------------------------------------------------------------------------
# Translation: corpus BLEU and chrF, equal to sacreBLEU's defaults (lesson 15)
# --------------------------------------------------------------------------------------------------
# The "13a" tokenisation of mteval-v13a.pl (the WMT scoring script), the default of sacreBLEU (Post
# 2018, "A Call for Clarity in Reporting BLEU Scores"). Four substitutions, applied in this order,
# then the text is split on whitespace:
#   1. every symbol below becomes a token of its own (the apostrophe and the hyphen are absent, so
#      "don't" and "well-known" stay whole);
#   2. a period or comma after a non-digit is split off;
#   3. a period or comma before a non-digit is split off (so "3.5" and "1,000" stay whole);
#   4. a hyphen after a digit is split off ("1990-2000" -> "1990 - 2000").
_13A_SYMBOLS = "!\"#$%&()*+/:;<=>?@[\\]^_`{|}~"
_13A_RULES = (
    (re.compile("([" + re.escape(_13A_SYMBOLS) + "])"), r" \1 "),
    (re.compile(r"([^0-9])([.,])"), r"\1 \2 "),
    (re.compile(r"([.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_13A_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))

BLEU_MAX_ORDER = 4      # n-grams of 1 to 4 words, uniform weights (Papineni et al. 2002, 2.3)
CHRF_CHAR_ORDER = 6     # character n-grams of 1 to 6 characters (Popovic 2015, section 2)
CHRF_BETA = 2.0         # recall weighs beta times as much as precision (Popovic 2016; sacreBLEU)


def tokenize_13a(text: str) -> list[str]:
    """Split one sentence into the word tokens that BLEU counts, by the "13a" rules of mteval-v13a
    (sacreBLEU's default; no lowercasing).

    Punctuation becomes separate tokens (``"Hello, world!"`` -> ``["Hello", ",", "world", "!"]``);
    apostrophes and hyphens inside words are kept (``"don't"``, ``"well-known"``), and so are the
    period and comma inside numbers (``"3.5"``). The HTML entities ``&quot; &amp; &lt; &gt;`` are
    decoded and the marker ``<skipped>`` is dropped first, as mteval does.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize_13a needs a string, got {type(text).__name__}.")
    text = text.rstrip()                        # sacreBLEU strips the end before tokenising
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _13A_ENTITIES:
        text = text.replace(entity, char)
    text = f" {text} "
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def _check_corpus(hypotheses: Any, references: Any, metric: str) -> Tuple[list, list]:
    """``hypotheses`` as a list of strings and ``references`` as one non-empty list of strings per
    hypothesis, or a ``TypeError`` / ``ValueError`` in the caller's terms."""
    if isinstance(hypotheses, str) or not isinstance(hypotheses, (list, tuple)):
        raise TypeError(f"{metric}: hypotheses must be a list of strings (one translation per "
                        f"sentence), got {type(hypotheses).__name__}; for one sentence pass "
                        "[translation].")
    if isinstance(references, str) or not isinstance(references, (list, tuple)):
        raise TypeError(f"{metric}: references must be a list with one reference string (or one "
                        "list of reference strings) per hypothesis, got "
                        f"{type(references).__name__}.")
    if len(hypotheses) == 0:
        raise ValueError(f"{metric}: hypotheses is empty; score at least one sentence.")
    for i, hyp in enumerate(hypotheses):
        if not isinstance(hyp, str):
            raise TypeError(f"{metric}: hypotheses[{i}] is of type {type(hyp).__name__}, not a "
                            "string; decode token ids to text first (an empty translation is "
                            "\"\").")
    if len(references) != len(hypotheses):
        hint = ""
        if references and all(isinstance(r, (list, tuple)) and len(r) == len(hypotheses)
                              for r in references):
            hint = (" They look like sacreBLEU's layout (one list per set of references); pass "
                    "list(zip(*references)) to get one list per hypothesis.")
        raise ValueError(f"{metric}: {len(hypotheses)} hypotheses but {len(references)} "
                         f"references; give one reference (or one list of references) per "
                         f"hypothesis, in the same order.{hint}")
    per_hypothesis = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, (list, tuple)) or len(refs) == 0:
            what = "an empty list" if isinstance(refs, (list, tuple)) else type(refs).__name__
            raise ValueError(f"{metric}: references[{i}] must be a string or a non-empty list of "
                             f"strings (the reference translations of hypotheses[{i}]), got "
                             f"{what}.")
        for j, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise TypeError(f"{metric}: references[{i}][{j}] is of type "
                                f"{type(ref).__name__}, not a string; each hypothesis needs a "
                                "string or a flat list of strings as its references.")
        per_hypothesis.append(list(refs))
    return list(hypotheses), per_hypothesis


def _word_ngrams(tokens: list, max_order: int) -> Counter:
    """Counts of every n-gram (as a tuple of words) of ``tokens``, for n = 1..max_order."""
    return Counter(tuple(tokens[i:i + n])
                   for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1))


def _closest_length(hyp_len: int, ref_lens: list) -> int:
    """The reference length closest to the hypothesis length, the shorter one on a tie (the
    "effective reference length" of Papineni et al. 2002, section 2.2.2, as mteval computes it)."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def bleu(hypotheses: list[str], references: list[str] | list[list[str]]) -> dict:
    """Corpus BLEU of translations against their references, 0 to 100, equal to sacreBLEU's
    default ``corpus_bleu`` (13a tokens, case-sensitive, "exp" smoothing, n = 1..4).

    BLEU (Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of Machine Translation")
    multiplies a brevity penalty by the geometric mean of the modified n-gram precisions:

        BLEU = BP * exp(sum_{n=1..4} (1/4) log p_n)                                 (section 2.3)

    * p_n, the modified n-gram precision (sections 2.1, 2.1.1): over the whole corpus, the number of
      hypothesis n-grams that also occur in a reference, each n-gram counted at most as often as
      it occurs in the one reference where it is most frequent ("clipped"), divided by the number
      of hypothesis n-grams.
    * BP, the brevity penalty (section 2.2.2): ``exp(1 - r / c)`` if the hypotheses' total length
      c (in tokens) is below r, the sum over sentences of the reference length closest to each
      hypothesis (the shorter one on a tie); 1 otherwise. Without it, translating only the words
      one is sure of would score high precision.

    Precision is pooled over the corpus before the logarithm (section 2.1.1), so corpus BLEU is
    not the mean of sentence BLEUs. Conventions of sacreBLEU (Post 2018, "A Call for Clarity in
    Reporting BLEU Scores") reproduced here: sentences are split by :func:`tokenize_13a` without
    lowercasing; an order with no match at all gets p_n = 1 / (2^k * total_n), k counting such
    orders so far (the "exp" smoothing of mteval-v13a; Chen & Cherry 2014, method 3); BLEU is 0
    when nothing matches at all, and when the hypotheses hold fewer than 4 tokens in all (p_4 has
    no n-gram to count).

    Args:
        hypotheses: the system's translations, one string per sentence (``""`` for an empty one).
        references: for each hypothesis, its reference translation (a string) or several of them
            (a list of strings). Note the layout: one entry per hypothesis, unlike sacreBLEU's
            ``corpus_bleu``, which takes one list per *set* of references.

    Returns:
        ``{"score": BLEU in 0..100, "precisions": [p_1, ..., p_4] in percent (after smoothing),
        "brevity_penalty": BP, "hyp_len": c, "ref_len": r, "matches": clipped matches per order,
        "totals": hypothesis n-grams per order}``.
    """
    hypotheses, references = _check_corpus(hypotheses, references, "bleu")
    return _bleu_from_stats(_sum_stats(_bleu_stats(h, r) for h, r in zip(hypotheses, references)))


def _bleu_stats(hyp: str, refs: list) -> list:
    """One sentence's BLEU statistics: matches (4), totals (4), hypothesis and reference length.
    Corpus BLEU sums these over the sentences before combining them (section 2.1.1)."""
    n_max = BLEU_MAX_ORDER
    matches, totals = [0] * n_max, [0] * n_max
    hyp_tokens = tokenize_13a(hyp)
    ref_tokens = [tokenize_13a(ref) for ref in refs]
    max_ref_counts = Counter()                  # each n-gram's largest count in one reference
    for tokens in ref_tokens:
        for ngram, count in _word_ngrams(tokens, n_max).items():
            max_ref_counts[ngram] = max(max_ref_counts[ngram], count)
    for ngram, count in _word_ngrams(hyp_tokens, n_max).items():
        order = len(ngram) - 1
        totals[order] += count
        matches[order] += min(count, max_ref_counts[ngram])          # clipped count (2.1)
    ref_len = _closest_length(len(hyp_tokens), [len(t) for t in ref_tokens])
    return matches + totals + [len(hyp_tokens), ref_len]


def _sum_stats(rows) -> list:
    total = None
    for row in rows:
        total = list(row) if total is None else [a + b for a, b in zip(total, row)]
    return total


def _bleu_from_stats(stats) -> dict:
    """Corpus BLEU from summed statistics (see ``_bleu_stats``), with sacreBLEU's smoothing."""
    n_max = BLEU_MAX_ORDER
    matches, totals = [int(v) for v in stats[:n_max]], [int(v) for v in stats[n_max:2 * n_max]]
    hyp_len, ref_len = int(stats[2 * n_max]), int(stats[2 * n_max + 1])
    if hyp_len >= ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0
    precisions = [0.0] * n_max               # in percent; an undefined p_n stays 0
    if any(matches):
        halvings = 1
        for n in range(n_max):
            if totals[n] == 0:                  # no hypothesis has n + 1 tokens
                break
            if matches[n] > 0:
                precisions[n] = 100.0 * matches[n] / totals[n]
            else:                               # "exp" smoothing: 1/2, 1/4, ... of one match
                halvings *= 2
                precisions[n] = 100.0 / (halvings * totals[n])
    if all(p > 0 for p in precisions):
        score = bp * math.exp(sum(math.log(p) for p in precisions) / n_max)
    else:
        score = 0.0
    return {"score": score, "precisions": precisions, "brevity_penalty": bp,
            "hyp_len": hyp_len, "ref_len": ref_len, "matches": matches, "totals": totals}


def _char_ngrams(text: str, max_order: int) -> list:
    """Counts of the character n-grams of ``text`` with its whitespace removed: one Counter per
    order n = 1..max_order."""
    chars = "".join(text.split())
    return [Counter(chars[i:i + n] for i in range(len(chars) - n + 1))
            for n in range(1, max_order + 1)]


def _chrf_from_counts(counts: list, beta: float = CHRF_BETA) -> float:
    """chrF in 0..100 from ``counts``, one ``(hyp_ngrams, ref_ngrams, matches)`` triple per order.

    ChrP and ChrR are the n-gram precision and recall averaged over the orders where both the
    hypothesis and the reference have n-grams (Popovic 2015, section 2); an order that one of them
    is too short for is left out rather than counted as 0, as sacreBLEU does.
    """
    precisions, recalls = [], []
    for n_hyp, n_ref, n_match in counts:
        if n_hyp > 0 and n_ref > 0:
            precisions.append(n_match / n_hyp)
            recalls.append(n_match / n_ref)
    if not precisions:
        return 0.0
    chr_p, chr_r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if chr_p + chr_r == 0:
        return 0.0
    return 100.0 * (1 + beta ** 2) * chr_p * chr_r / (beta ** 2 * chr_p + chr_r)


def chrf(hypotheses: list[str], references: list[str] | list[list[str]]) -> float:
    """Corpus chrF in 0..100, equal to sacreBLEU's default ``corpus_chrf`` (chrF2: character
    n-grams of 1 to 6 characters, whitespace removed, case-sensitive, no word n-grams).

    chrF (Popovic 2015, "chrF: character n-gram F-score for automatic MT evaluation", section 2)
    compares characters rather than words, so a translation with the right stem but the wrong
    ending ("translate" for "translated") earns partial credit that BLEU gives only for whole
    words, and it needs no tokeniser:

        chrF_beta = (1 + beta^2) ChrP ChrR / (beta^2 ChrP + ChrR),   beta = 2

    where ChrP (ChrR) is the character n-gram precision (recall), averaged over n = 1..6; beta = 2
    weighs recall twice as much as precision (Popovic 2016, "chrF deconstructed", the value
    sacreBLEU adopted). Matches are clipped counts, as in BLEU. The counts are summed over the
    corpus before the averages are taken; with several references, each sentence contributes the
    counts of the reference that gives it the highest chrF on its own (the first one on a tie).

    Args:
        hypotheses: the system's translations, one string per sentence.
        references: for each hypothesis, one reference string or a list of them (one entry per
            hypothesis, unlike sacreBLEU's layout of one list per set of references).

    Returns:
        chrF as a float in 0..100.
    """
    hypotheses, references = _check_corpus(hypotheses, references, "chrf")
    rows = (_chrf_stats(h, r) for h, r in zip(hypotheses, references))
    return _chrf_from_counts(_as_triples(_sum_stats(rows)))


def _chrf_stats(hyp: str, refs: list) -> list:
    """One sentence's chrF counts, flat: (hyp n-grams, ref n-grams, matches) for n = 1..6, of the
    reference that gives the sentence its highest chrF (the first one on a tie)."""
    order = CHRF_CHAR_ORDER
    hyp_ngrams = _char_ngrams(hyp, order)
    best, best_score = None, -1.0
    for ref in refs:
        counts = []
        for h, r in zip(hyp_ngrams, _char_ngrams(ref, order)):
            n_match = sum(min(c, r[g]) for g, c in h.items())
            # sacreBLEU counts no hypothesis n-grams of an order the reference is too short
            # for, so that order drops out of the averages instead of scoring 0
            n_hyp = sum(h.values()) if r else 0
            counts.append((n_hyp, sum(r.values()), n_match))
        score = _chrf_from_counts(counts)
        if score > best_score:
            best, best_score = counts, score
    return [v for triple in best for v in triple]


def _as_triples(flat) -> list:
    return [tuple(int(v) for v in flat[3 * n:3 * n + 3]) for n in range(len(flat) // 3)]


def paired_bootstrap(systems: dict, references: list, n_resamples: int = 1000,
                     seed: int = 0) -> dict:
    """BLEU and chrF of several systems on the same sentences, with their spread under bootstrap
    resampling of the sentences (Koehn 2004, "Statistical Significance Tests for Machine
    Translation Evaluation": bootstrap and paired bootstrap resampling).

    Corpus BLEU is not a mean of per-sentence values, so it has no plain standard error. Instead,
    draw the test sentences with replacement ``n_resamples`` times and recompute each corpus score
    on each draw: the standard deviation of the draws estimates the standard error of the score.
    The draws are **paired**: every system is scored on the same resampled sentences, so the
    spread of the *differences* between two systems' draws is the standard error of their
    difference, smaller than either alone because sentence difficulty cancels out.

    Args:
        systems: name -> list of translations, every list aligned with ``references``.
        references: one reference string (or list of strings) per sentence.
        n_resamples: bootstrap draws; seed: their random seed.

    Returns:
        ``{"bleu": {name: score}, "chrf": {name: score}, "bleu_draws": {name: array (R,)},
        "chrf_draws": {name: array (R,)}}``; the full-corpus scores equal :func:`bleu` and
        :func:`chrf`.
    """
    if not isinstance(systems, dict) or not systems:
        raise TypeError("systems must be a dict: name -> list of translations, e.g. "
                        "{'greedy': greedy_outputs, 'beam 4': beam_outputs}.")
    n_resamples = int(n_resamples)
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}.")
    out = {"bleu": {}, "chrf": {}, "bleu_draws": {}, "chrf_draws": {}}
    rng = np.random.default_rng(seed)
    draws = None
    for name, hypotheses in systems.items():
        hyps, refs = _check_corpus(hypotheses, references, f"paired_bootstrap[{name!r}]")
        if draws is None:
            draws = rng.integers(0, len(hyps), size=(n_resamples, len(hyps)))
        b = np.array([_bleu_stats(h, r) for h, r in zip(hyps, refs)], dtype=np.int64)
        c = np.array([_chrf_stats(h, r) for h, r in zip(hyps, refs)], dtype=np.int64)
        out["bleu"][name] = _bleu_from_stats(b.sum(0))["score"]
        out["chrf"][name] = _chrf_from_counts(_as_triples(c.sum(0)))
        b_sums = np.stack([b[d].sum(0) for d in draws])              # (R, 10) summed stats
        c_sums = np.stack([c[d].sum(0) for d in draws])              # (R, 18)
        out["bleu_draws"][name] = np.array([_bleu_from_stats(s)["score"] for s in b_sums])
        out["chrf_draws"][name] = np.array([_chrf_from_counts(_as_triples(s)) for s in c_sums])
    return out
