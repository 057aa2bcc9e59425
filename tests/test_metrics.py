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
