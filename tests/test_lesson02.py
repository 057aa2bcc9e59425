"""Lesson 02 (autoencoders): shipped checkpoints in the lesson's own classes, the lesson's loss and loop, checkers."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints, data
from deepgen_helpers.checks import lesson02 as chk
from deepgen_helpers.classifier import load_classifier
from deepgen_helpers.models import autoencoders as lesson

NAMES = ("ae02_conv", "ae02_mlp2d", "ae02_denoise")


@pytest.fixture(scope="module")
def x_test():
    x, _ = data.load_mnist("test")
    return x[:2000]  # (2000, 1, 28, 28): the same digits the lesson evaluates on in default mode


def _load(name):
    """Build the lesson's own model from the checkpoint's config and load the shipped weights into it."""
    payload = checkpoints.load_checkpoint(checkpoints.shipped_path(name))
    classes = {"ConvAutoencoder": ("ConvAutoencoder", "ConvAEConfig"), "MLPAutoencoder": ("MLPAutoencoder", "MLPAEConfig")}
    model_name, cfg_name = classes[payload["arch"]]
    model = getattr(lesson, model_name)(getattr(lesson, cfg_name)(**payload["config"]))
    checkpoints.load_into(model, payload)
    return model.eval()


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", NAMES)
def test_manifest_entry(name):
    entry = checkpoints.read_manifest()[name]
    assert entry["lesson"] == "02_autoencoders"
    assert entry["command"].startswith("python scripts/train_lesson02.py")
    assert entry["bytes"] <= 5_000_000
    assert checkpoints.shipped_path(name).exists()  # also verifies the sha256


def test_conv_checkpoint_quality(x_test):
    model = _load("ae02_conv")
    assert model.cfg.latent_dim == 16
    r = lesson.evaluate_reconstruction(model, x_test)
    # shipped: 66.1 nats and 0.0080 per pixel on these 2000 digits (66.7 and 0.0079 on the full test set)
    assert r["bce"] < 80 and r["mse"] < 0.010, r


def test_2d_checkpoint_quality(x_test):
    model = _load("ae02_mlp2d")
    assert model.cfg.latent_dim == 2
    with torch.no_grad():
        assert model.encode(x_test[:5]).shape == (5, 2)
    r = lesson.evaluate_reconstruction(model, x_test)
    # shipped: 132.9 nats and 0.037 per pixel here; the mean training image scores about 206 nats and 0.067
    assert r["bce"] < 150 and r["mse"] < 0.045, r


def test_denoising_checkpoint_beats_plain_on_noisy_inputs(x_test):
    dae, plain = _load("ae02_denoise"), _load("ae02_conv")
    noisy = lesson.add_gaussian_noise(x_test, 0.5, torch.Generator().manual_seed(1))
    mse_noisy = (noisy - x_test).pow(2).mean().item()
    mse_dae = lesson.evaluate_reconstruction(dae, x_test, x_in=noisy)["mse"]
    mse_plain = lesson.evaluate_reconstruction(plain, x_test, x_in=noisy)["mse"]
    assert mse_dae < 0.025 and mse_dae < 0.7 * mse_plain and mse_plain < mse_noisy, (mse_dae, mse_plain, mse_noisy)


def test_holes_random_codes_decode_worse_than_real_codes(x_test):
    """The lesson's claim: decoding Gaussian-fitted random codes gives less confident digits than real codes."""
    model, clf = _load("ae02_conv"), load_classifier("mnist")
    x = x_test[:1000]
    with torch.no_grad():
        z = model.encode(x)
        z_rand = z.mean(0) + z.std(0) * torch.randn(z.shape, generator=torch.Generator().manual_seed(2))
        conf_real = F.softmax(clf(torch.sigmoid(model.decode(z))), 1).max(1).values.mean().item()
        conf_rand = F.softmax(clf(torch.sigmoid(model.decode(z_rand))), 1).max(1).values.mean().item()
    assert conf_real > 0.9 and conf_rand < conf_real - 0.05, (conf_real, conf_rand)


# ------------------------------------------------------------------------------------ the lesson's own code
def test_reconstruction_loss_matches_formula():
    g = torch.Generator().manual_seed(0)
    x, logits = torch.rand(3, 1, 28, 28, generator=g), torch.randn(3, 1, 28, 28, generator=g)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum() / 3
    assert torch.allclose(lesson.reconstruction_loss(logits, x), by_hand, rtol=1e-4)
    # logits of 0 (output 0.5 everywhere) cost 784 ln 2 nats per image whatever the target
    assert math.isclose(lesson.reconstruction_loss(torch.zeros(2, 1, 28, 28), x[:2]).item(), 784 * math.log(2), rel_tol=1e-5)


@pytest.mark.parametrize("latent_dim", [2, 7])
def test_model_shapes(latent_dim):
    x = torch.rand(4, 1, 28, 28)
    for model in (lesson.MLPAutoencoder(lesson.MLPAEConfig(latent_dim=latent_dim)),
                  lesson.ConvAutoencoder(lesson.ConvAEConfig(latent_dim=latent_dim))):
        assert model.encode(x).shape == (4, latent_dim)
        assert model.decode(torch.zeros(4, latent_dim)).shape == (4, 1, 28, 28)
        assert model(x).shape == (4, 1, 28, 28)


def test_add_gaussian_noise():
    x = torch.rand(8, 1, 28, 28)
    a = lesson.add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(3))
    b = lesson.add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    assert torch.equal(lesson.add_gaussian_noise(x, 0.0), x)


def test_training_loop_reduces_the_loss():
    torch.manual_seed(0)
    x, _ = data.load_mnist("train", n=512)
    model = lesson.MLPAutoencoder(lesson.MLPAEConfig(latent_dim=8, hidden=(64,)))
    before = lesson.evaluate_reconstruction(model, x)["bce"]
    history = lesson.train_autoencoder(model, x, lesson.TrainConfig(epochs=3, batch_size=64, lr=3e-3))
    after = lesson.evaluate_reconstruction(model, x)["bce"]
    assert len(history) == 3 * 8 and after < 0.6 * before, (before, after)


# ------------------------------------------------------------------------------------------------ checkers
def test_conv_reference_formulas_match_pytorch():
    for s, k, st, p, d in chk.CONV_CASES:
        out = torch.nn.Conv2d(1, 1, k, stride=st, padding=p, dilation=d)(torch.zeros(1, 1, s, s))
        assert out.shape[-1] == chk._conv2d_out(s, k, st, p, d)
    for s, k, st, p, op, d in chk.CONV_T_CASES:
        layer = torch.nn.ConvTranspose2d(1, 1, k, stride=st, padding=p, output_padding=op, dilation=d)
        assert layer(torch.zeros(1, 1, s, s)).shape[-1] == chk._conv_transpose2d_out(s, k, st, p, op, d)


def test_check_conv2d_out():
    assert chk.check_conv2d_out(chk._conv2d_out)
    # plausible mistakes: true division instead of the floor; forgetting the dilation
    assert not chk.check_conv2d_out(lambda s, k, stride=1, padding=0, dilation=1: (s + 2 * padding - dilation * (k - 1) - 1) / stride + 1)
    assert not chk.check_conv2d_out(lambda s, k, stride=1, padding=0, dilation=1: (s + 2 * padding - k) // stride + 1)


def test_check_conv_transpose2d_out():
    assert chk.check_conv_transpose2d_out(chk._conv_transpose2d_out)
    # plausible mistakes: forgetting output_padding; using the convolution's formula
    assert not chk.check_conv_transpose2d_out(
        lambda s, k, stride=1, padding=0, output_padding=0, dilation=1: (s - 1) * stride - 2 * padding + dilation * (k - 1) + 1)
    assert not chk.check_conv_transpose2d_out(
        lambda s, k, stride=1, padding=0, output_padding=0, dilation=1: chk._conv2d_out(s, k, stride, padding, dilation))


def test_check_mask_pixels():
    assert chk.check_mask_pixels(chk._mask_pixels)

    def dropout_like(x, p, generator):  # rescales the kept pixels by 1/(1-p)
        keep = torch.rand(x.shape, generator=generator) >= p
        return x * keep / (1 - p) if p < 1 else torch.zeros_like(x)

    def inverted(x, p, generator):  # keeps the pixels that should be masked
        return x * (torch.rand(x.shape, generator=generator) < p)

    def in_place(x, p, generator):  # right values, but destroys the clean target
        x[torch.rand(x.shape, generator=generator) < p] = 0
        return x

    for wrong in (dropout_like, inverted, in_place):
        assert not chk.check_mask_pixels(wrong), wrong.__name__


def test_check_interpolate():
    assert chk.check_interpolate(chk._interpolate)

    def no_end(z0, z1, n):  # t = 0, 1/n, ..., (n-1)/n misses z1
        t = torch.arange(n).unsqueeze(1) / n
        return (1 - t) * z0 + t * z1

    def transposed(z0, z1, n):  # (D, n) instead of (n, D)
        return chk._interpolate(z0, z1, n).T

    assert not chk.check_interpolate(no_end)
    assert not chk.check_interpolate(transposed)
