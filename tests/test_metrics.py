import math

import pytest
import torch

from deepgen_helpers import metrics
from deepgen_helpers.classifier import CourseClassifier, accuracy, load_classifier
from deepgen_helpers.data import load_images


def test_units():
    assert metrics.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert metrics.bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.bits_per_dim(1.0, 0)


def test_frechet_distance_closed_form():
    # 1-D Gaussians: d^2 = (m1 - m2)^2 + (s1 - s2)^2
    d = metrics.frechet_distance(
        torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[1.0]])
    )
    assert d == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dimensions
    c1, c2 = torch.diag(torch.tensor([1.0, 9.0])), torch.diag(torch.tensor([4.0, 1.0]))
    d = metrics.frechet_distance(torch.zeros(2), c1, torch.zeros(2), c2)
    assert d == pytest.approx((1 - 2) ** 2 + (3 - 1) ** 2)


def test_fid_from_features_properties():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 16, generator=g)
    b = torch.randn(2000, 16, generator=g) * 1.5 + 0.5
    assert metrics.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.fid_from_features(a, b) == pytest.approx(
        metrics.fid_from_features(b, a), rel=1e-6
    )
    assert metrics.fid_from_features(a, b) > 1.0


@pytest.mark.parametrize("dataset,bar", [("mnist", 0.99), ("fashion_mnist", 0.90)])
def test_shipped_classifiers_meet_their_accuracy_bars(dataset, bar):
    x, y = load_images(dataset, "test")
    assert accuracy(load_classifier(dataset), x, y) >= bar


def test_fid_on_images_real_vs_real_small_noise_vs_real_large():
    test, _ = load_images("mnist", "test", n=1000, seed=0)
    train, _ = load_images("mnist", "train", n=1000, seed=1)
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    real_real = metrics.fid(test, train)
    noise_real = metrics.fid(noise, test)
    assert metrics.fid(test, test) == pytest.approx(0.0, abs=1e-3)
    assert real_real < 0.05 * noise_real, (real_real, noise_real)


def test_class_accuracy_entropy_and_input_checks():
    x, y = load_images("mnist", "test", n=500)
    assert metrics.class_accuracy(x, y) > 0.97
    assert metrics.class_accuracy(x, (y + 1) % 10) < 0.05
    assert metrics.class_entropy(torch.arange(10)) == pytest.approx(math.log(10))
    assert metrics.class_entropy(torch.zeros(50, dtype=torch.long)) == 0.0
    assert metrics.sample_class_entropy(x) > 0.95 * math.log(10)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        metrics.fid(torch.rand(10, 3, 32, 32), torch.rand(10, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.predict(x * 2 - 1)
    with pytest.raises(ValueError, match="labels"):
        metrics.class_accuracy(x, y[:10])


def test_classifier_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="view"):
        CourseClassifier()(torch.rand(4, 784))


def test_mean_se_matches_the_formula_and_refuses_too_few():
    v = torch.tensor([1.0, 2.0, 3.0, 4.0])
    m, se = metrics.mean_se(v)
    assert m == 2.5 and abs(se - math.sqrt(5 / 3) / 2) < 1e-12
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mean_se(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.mean_se(torch.tensor([1.0, float("nan")]))


def test_random_subset_is_random_distinct_and_reproducible():
    a = metrics.random_subset(10_000, 1000, seed=3)
    assert len(set(a.tolist())) == 1000 and torch.equal(
        a, metrics.random_subset(10_000, 1000, seed=3)
    )
    assert not torch.equal(a.sort().values, torch.arange(1000))      # not a file-order slice
    with pytest.raises(ValueError, match="cannot draw"):
        metrics.random_subset(10, 11, seed=0)


def test_fid_with_floor_real_data_sits_at_its_floor():
    from deepgen_helpers import data

    x, _ = data.load_mnist("test")
    r = metrics.fid_with_floor(x[metrics.random_subset(10_000, 1000, 1)], x, n=500, repeats=2)
    assert r["floor"] > 0 and r["fid_sd"] >= 0 and r["n"] == 500
    assert abs(r["fid"] - r["floor"]) < 3 * max(r["fid_sd"], r["floor_sd"], 0.5)
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert metrics.fid_with_floor(noise, x, n=500, repeats=2)["fid"] > 10 * r["floor"]


def test_fid_with_floor_reuses_reference_features_only_while_unchanged(monkeypatch):
    x, _ = load_images("mnist", "test", n=1200)
    ref, img = x[:800].clone(), x[800:1100]
    first = metrics.fid_with_floor(img, ref, n=300, repeats=2)
    calls = []
    real = metrics.classifier_features
    monkeypatch.setattr(metrics, "classifier_features",
                        lambda a, d: calls.append(len(a)) or real(a, d))
    assert metrics.fid_with_floor(img, ref, n=300, repeats=2) == first   # cached: same numbers
    assert calls == [300]                                                 # only the samples
    ref[:400] = 0                                                         # changed in place
    changed = metrics.fid_with_floor(img, ref, n=300, repeats=2)
    assert calls == [300, 300, 800] and changed["fid"] != first["fid"]
    assert metrics.fid_with_floor(img, x[:800].clone(), n=300, repeats=2) == first   # new tensor


def test_class_entropy_refuses_a_probability_matrix():
    # the review's silent-wrong case: probabilities flattened into "labels" gave entropy 0.0
    probs = torch.softmax(torch.randn(50, 10, generator=torch.Generator().manual_seed(0)), 1)
    with pytest.raises(ValueError, match=r"argmax\(1\)"):
        metrics.class_entropy(probs)
    assert metrics.class_entropy(probs.argmax(1)) > 0


@pytest.mark.parametrize("bad,pattern", [
    (torch.full((5, 1, 28, 28), float("nan")), "NaN"),
    (torch.rand(1, 1, 28, 28), "at least 2"),
    (torch.rand(5, 28, 28, 1), "channels last"),
])
def test_fid_refuses_sets_it_cannot_measure(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.fid(bad, torch.rand(5, 1, 28, 28))


def _ring(k=8, radius=3.0):
    angle = 2 * math.pi * torch.arange(k) / k
    return radius * torch.stack([angle.cos(), angle.sin()], 1)


def test_mode_coverage_known_answers():
    centres = _ring()
    exact = metrics.mode_coverage(centres.repeat(5, 1), centres, sigma=0.3)
    assert exact["modes_covered"] == 8 and exact["high_quality"] == 1.0
    assert exact["counts"].tolist() == [5] * 8
    # a collapsed generator: everything on one mode, plus far-away junk
    one = torch.cat([centres[:1] + 0.1, torch.full((3, 2), 10.0)])
    r = metrics.mode_coverage(one, centres, sigma=0.3)
    assert r["modes_covered"] == 1 and r["high_quality"] == 0.25 and r["n_modes"] == 8
    # min_count ignores a few strays: 1 point on mode 1, 10 on mode 0
    strays = torch.cat([centres[:1].repeat(10, 1), centres[1:2]])
    assert metrics.mode_coverage(strays, centres, 0.3, min_count=2)["modes_covered"] == 1
    assert metrics.mode_coverage(strays, centres, 0.3, min_count=1)["modes_covered"] == 2


def test_mode_coverage_of_the_true_mixture_matches_the_chi_distribution():
    """In 2-D, P(|x - c| <= 3 sigma) = 1 - exp(-9/2) = 0.9889 for a Gaussian mode."""
    from deepgen_helpers.data import make_toy_2d
    x = make_toy_2d("gaussian_mixture", 20_000, seed=0)       # ring of 8, radius 3, sigma 0.3
    r = metrics.mode_coverage(x, _ring(), sigma=0.3)
    se = math.sqrt(0.9889 * 0.0111 / 20_000)
    assert r["modes_covered"] == 8 and abs(r["high_quality"] - (1 - math.exp(-4.5))) < 4 * se
    assert r["counts"].sum() == round(r["high_quality"] * 20_000)


@pytest.mark.parametrize("samples, centres, sigma, pattern", [
    (torch.zeros(5, 3), torch.zeros(8, 2), 0.3, "same D"),
    (torch.full((5, 2), float("nan")), torch.zeros(8, 2), 0.3, "diverged"),
    (torch.zeros(5, 2), torch.zeros(8, 2), 0.0, "sigma"),
])
def test_mode_coverage_refuses_what_it_cannot_measure(samples, centres, sigma, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.mode_coverage(samples, centres, sigma)


@pytest.mark.parametrize("call, error", [
    (lambda: metrics.mean_se(["a", "b"]), "needs numbers"),
    (lambda: metrics.random_subset(100, 10.5, 0), "n must be a whole number"),
    (lambda: metrics.random_subset(100, 10, "0"), "seed must be a whole number"),
])
def test_uncertainty_helpers_name_a_bad_argument(call, error):
    with pytest.raises((TypeError, ValueError), match=error):
        call()


# --------------------------------------------------------------------------------------------------
# Precision and recall (Kynkäänniemi et al. 2019), lesson 05
# --------------------------------------------------------------------------------------------------
def test_knn_radii_known_answers():
    line = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert metrics.knn_radii(line, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert metrics.knn_radii(line, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="more than k"):
        metrics.knn_radii(line, k=4)


def test_precision_recall_known_answers():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])               # k = 1 radii: 1 each
    # one fake inside the real manifold, one far outside; the fakes' own radii (9.5) cover all reals
    out = metrics.precision_recall(real, torch.tensor([[0.5], [10.0]]), k=1)
    assert out["precision"] == 0.5 and out["recall"] == 1.0
    # identical sets: perfect on both
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    same = metrics.precision_recall(x, x.clone(), k=3)
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    # disjoint clouds far apart: neither looks real nor covers anything
    far = metrics.precision_recall(x, x + 100.0, k=3)
    assert far["precision"] == 0.0 and far["recall"] == 0.0


def test_precision_recall_separates_collapse_from_blur():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(1000, 2, generator=g)
    collapsed = real[:10].repeat(100, 1) + 1e-3 * torch.randn(1000, 2, generator=g)  # 10 templates
    blurry = 2.0 * torch.randn(1000, 2, generator=g)                                   # too wide
    c = metrics.precision_recall(real, collapsed, k=3)
    b = metrics.precision_recall(real, blurry, k=3)
    assert c["precision"] == 1.0 and c["recall"] < 0.05            # sharp but covers almost nothing
    assert b["recall"] > 0.95 and b["precision"] < 0.9             # covers everything, a fifth junk
    # a single repeated point: its radius is 0, so it covers exactly the real point it copies
    one = metrics.precision_recall(real, real[:1].repeat(50, 1), k=3)
    assert one["precision"] == 1.0 and one["recall"] == pytest.approx(1 / 1000)


def test_sample_precision_recall_real_vs_real_is_high():
    x, _ = load_images("mnist", "test")
    out = metrics.sample_precision_recall(x[:5000], x[5000:], n=500, seed=0)
    assert out["precision"] > 0.6 and out["recall"] > 0.6 and out["n_real"] == 500


# --------------------------------------------------------------------------------------------------
# PSNR and SSIM (lesson 06), against scikit-image on the same images
# --------------------------------------------------------------------------------------------------
def _distorted_pairs():
    """Real test digits and garments, with blur, noise and a shift: (images, reference) pairs."""
    x, _ = load_images("mnist", "test", n=6, seed=3)
    f, _ = load_images("fashion_mnist", "test", n=6, seed=4)
    g = torch.Generator().manual_seed(0)
    ref = torch.cat([x, f])                                                  # (12, 1, 28, 28)
    blur = torch.nn.functional.avg_pool2d(ref, 3, stride=1, padding=1, count_include_pad=False)
    noisy = (ref + 0.15 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    shifted = torch.roll(ref, 2, dims=-1)
    low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(ref, 4), scale_factor=4,
                                          mode="bicubic", align_corners=False).clamp(0, 1)
    return [(d, ref) for d in (blur, noisy, shifted, low)]


@pytest.mark.parametrize("k", range(4), ids=["blur", "noise", "shift", "bicubic_x4"])
def test_psnr_and_ssim_match_scikit_image(k):
    skm = pytest.importorskip("skimage.metrics")
    images, ref = _distorted_pairs()[k]
    ours_ssim, ours_psnr = metrics.ssim(images, ref), metrics.psnr(images, ref)
    for i in range(len(ref)):
        a, b = ref[i, 0].double().numpy(), images[i, 0].double().numpy()
        want = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1)
        assert ours_ssim[i].item() == pytest.approx(want, abs=1e-6)
        assert ours_psnr[i].item() == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=1),
                                                    abs=1e-6)


def test_ssim_matches_scikit_image_on_colour_and_other_ranges():
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(3, 3, 32, 40, generator=g) * 255
    img = (ref + 20 * torch.randn(ref.shape, generator=g)).clamp(0, 255)
    ours = metrics.ssim(img, ref, data_range=255)
    for i in range(3):
        want = skm.structural_similarity(ref[i].double().numpy(), img[i].double().numpy(),
                                         gaussian_weights=True, sigma=1.5, channel_axis=0,
                                         use_sample_covariance=False, data_range=255)
        assert ours[i].item() == pytest.approx(want, abs=1e-6)
    x = torch.rand(2, 1, 16, 16, generator=g) * 2 - 1                     # [-1, 1]: range 2
    assert torch.allclose(metrics.ssim(x, x, data_range=2), torch.ones(2, dtype=torch.float64))


def test_psnr_and_ssim_known_values():
    ref = torch.zeros(2, 1, 12, 12)
    # a constant error of 0.1 everywhere: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB
    assert torch.allclose(metrics.psnr(ref + 0.1, ref), torch.full((2,), 20.0, dtype=torch.float64))
    assert metrics.psnr(ref, ref).isinf().all()                   # identical images, as skimage
    # two constant images: sigma terms vanish, SSIM = (2 a b + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    got = metrics.ssim(torch.full((1, 12, 12), a, dtype=torch.float64),
                       torch.full((1, 12, 12), b, dtype=torch.float64))
    assert got.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-9)
    # one (H, W) image and (N, H, W) batches are accepted
    assert metrics.ssim(torch.rand(20, 20), torch.rand(20, 20)).shape == (1,)


@pytest.mark.parametrize("call, pattern", [
    (lambda: metrics.ssim(torch.rand(2, 1, 28, 28), torch.rand(3, 1, 28, 28)), "same shape"),
    (lambda: metrics.psnr(torch.rand(2, 28, 28) * 255, torch.rand(2, 28, 28)), "data_range=255"),
    (lambda: metrics.ssim(torch.rand(2, 1, 7, 7), torch.rand(2, 1, 7, 7)), "smaller than"),
    (lambda: metrics.psnr(torch.full((1, 8, 8), float("nan")), torch.rand(1, 8, 8)), "NaN"),
    (lambda: metrics.ssim(torch.rand(1, 12, 12), torch.rand(1, 12, 12), data_range=0), "> 0"),
    (lambda: metrics.ssim(torch.rand(1, 12, 12), torch.rand(1, 12, 12), window=10), "odd"),
    (lambda: metrics.psnr(torch.rand(2, 1, 1, 8, 8), torch.rand(2, 1, 1, 8, 8)), "N, C, H, W"),
])
def test_psnr_and_ssim_refuse_what_they_cannot_compare(call, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        call()
