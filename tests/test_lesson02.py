"""Lesson 02 (autoencoders): shipped checkpoints in the lesson's own classes, the lesson's loss and loop, checkers."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints, data, metrics
from deepgen_helpers.checks import lesson02 as chk
from deepgen_helpers.classifier import load_classifier
from deepgen_helpers.models import autoencoders as lesson

NAMES = ("ae02_conv", "ae02_mlp16", "ae02_mlp2d", "ae02_denoise")


@pytest.fixture(scope="module")
def x_test():
    x, _ = data.load_mnist("test")
    return x[metrics.random_subset(len(x), 2000, seed=0)]  # (2000, 1, 28, 28): the lesson's evaluation digits


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


def test_mlp16_checkpoint_is_the_like_for_like_baseline_of_the_conv_ae(x_test):
    """Same code size, data, seed and budget (12 epochs): the lesson compares them image by image."""
    mlp, conv = _load("ae02_mlp16"), _load("ae02_conv")
    assert mlp.cfg.latent_dim == conv.cfg.latent_dim == 16
    entries = checkpoints.read_manifest()
    assert entries["ae02_mlp16"]["bytes"] < 2_500_000  # stored in float16
    e_mlp, e_conv = (lesson.reconstruction_errors(m, x_test)["bce"] for m in (mlp, conv))
    assert e_mlp.mean() < 80, e_mlp.mean()  # shipped: 69.0 nats on the full test set
    diff, se = metrics.mean_se(e_conv - e_mlp)
    assert diff < -3 * se, (diff, se)


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
    x = x_test[:1000]  # a random subset already
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


def test_target_entropy_is_the_floor_of_the_reconstruction_cost():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 28, 28, generator=g).clamp(1e-4, 1 - 1e-4)
    h = lesson.target_entropy(x)
    assert h.shape == (3,)
    assert torch.allclose(lesson.reconstruction_loss(torch.logit(x), x), h.mean(), rtol=1e-4)
    other = torch.logit(x) + 0.3 * torch.randn(x.shape, generator=g)      # any other output costs more
    assert lesson.reconstruction_loss(other, x) > h.mean()
    assert lesson.target_entropy((x > 0.5).float()).abs().max() < 1e-6    # binary targets: 0


def test_reconstruction_errors_are_per_image_and_average_to_the_loss():
    torch.manual_seed(0)
    model = lesson.MLPAutoencoder(lesson.MLPAEConfig(latent_dim=4, hidden=(32,)))
    x = torch.rand(7, 1, 28, 28)
    e = lesson.reconstruction_errors(model, x, batch_size=3)
    assert e["bce"].shape == (7,) and e["mse"].shape == (7,)
    with torch.no_grad():
        assert math.isclose(e["bce"].mean().item(), lesson.reconstruction_loss(model(x), x).item(), rel_tol=1e-5)
    r = lesson.evaluate_reconstruction(model, x)
    assert math.isclose(r["bce"], e["bce"].mean().item(), rel_tol=1e-5) and r["bce_se"] > 0


def test_code_box_and_measure_holes():
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    lo, hi = lesson.code_box(z)
    inside = ((z >= lo) & (z <= hi)).float().mean(0)
    assert torch.allclose(inside, torch.full((2,), 0.98), atol=0.002)
    blank = lambda codes: torch.full((len(codes), 1, 28, 28), 0.5)         # grey squares: no clear digit
    r = lesson.measure_holes(blank, z[:50], n=40, seed=0)
    assert set(r) == {"box", "data"} and r["box"]["unsure"] == (1.0, 0.0)
    m, se = r["data"]["confidence"]
    assert 0 < m < 0.9 and se >= 0
    assert math.isclose(r["data"]["far"][0], 0.02)           # 1 of 50 real codes is past the 99th percentile


def test_holes_on_the_shipped_2d_autoencoder(x_test):
    """The lesson's measurement: much of the box lies far from every real code."""
    model = _load("ae02_mlp2d")
    with torch.no_grad():
        z = model.encode(x_test[:1000])
    r = lesson.measure_holes(lambda c: torch.sigmoid(model.decode(c)), z, n=1000, seed=3)
    (box, box_se), (real, real_se) = r["box"]["far"], r["data"]["far"]
    assert box - real > 3 * math.hypot(box_se, real_se), r


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


def _conv(s, k, stride=1, padding=0, dilation=1, floor=lambda v: v // 1, minus_one=1, plus_one=1):
    return int(floor((s + 2 * padding - dilation * (k - 1) - minus_one) / stride)) + plus_one


def test_check_conv2d_out():
    assert chk.check_conv2d_out(chk._conv2d_out)
    assert chk.check_conv2d_out(lambda *a, **k: _conv(*a, **k))            # int() of a float floor: valid
    assert chk.check_conv2d_out(lambda *a, **k: _conv(*a, floor=math.floor, **k))   # math.floor: valid
    wrong = {
        "true division": lambda s, k, stride=1, padding=0, dilation=1:
            (s + 2 * padding - dilation * (k - 1) - 1) / stride + 1,
        "round": lambda *a, **k: _conv(*a, floor=round, **k),
        "ceil": lambda *a, **k: _conv(*a, floor=math.ceil, **k),
        "no dilation": lambda s, k, stride=1, padding=0, dilation=1: (s + 2 * padding - k) // stride + 1,
        "missing - 1": lambda *a, **k: _conv(*a, minus_one=0, **k),
        "missing + 1": lambda *a, **k: _conv(*a, plus_one=0, **k),
        "padding once": lambda s, k, stride=1, padding=0, dilation=1:
            (s + padding - dilation * (k - 1) - 1) // stride + 1,
    }
    for name, fn in wrong.items():
        assert not chk.check_conv2d_out(fn), name


def test_round_differs_from_floor_in_some_conv_case():
    """Python's round() rounds halves to even, so a case with a fraction above one half is needed to catch it."""
    fractions = [((s + 2 * p - d * (k - 1) - 1) / st) % 1 for s, k, st, p, d in chk.CONV_CASES]
    assert any(f > 0.5 for f in fractions)


def test_check_conv_transpose2d_out():
    assert chk.check_conv_transpose2d_out(chk._conv_transpose2d_out)
    wrong = {
        "no output_padding": lambda s, k, stride=1, padding=0, output_padding=0, dilation=1:
            (s - 1) * stride - 2 * padding + dilation * (k - 1) + 1,
        "no dilation": lambda s, k, stride=1, padding=0, output_padding=0, dilation=1:
            (s - 1) * stride - 2 * padding + (k - 1) + output_padding + 1,
        "missing + 1": lambda s, k, stride=1, padding=0, output_padding=0, dilation=1:
            (s - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding,
        "size * stride": lambda s, k, stride=1, padding=0, output_padding=0, dilation=1:
            s * stride - 2 * padding + dilation * (k - 1) + output_padding + 1,
        "the convolution's formula": lambda s, k, stride=1, padding=0, output_padding=0, dilation=1:
            chk._conv2d_out(s, k, stride, padding, dilation),
    }
    for name, fn in wrong.items():
        assert not chk.check_conv_transpose2d_out(fn), name


def test_check_mask_pixels_accepts_valid_alternatives():
    import numpy as np

    def times_mask(x, p, generator):
        return x * (torch.rand(x.shape, generator=generator) >= p)

    def masked_fill(x, p, generator):
        return x.masked_fill(torch.rand(x.shape, generator=generator) < p, 0.0)

    def with_numpy(x, p, generator):  # NumPy arithmetic on the generator's numbers
        u = torch.rand(x.shape, generator=generator).numpy()
        return torch.from_numpy(np.where(u < p, 0.0, x.numpy()).astype(np.float32))

    def numpy_rng_from_generator(x, p, generator):  # its own NumPy generator, seeded from the given one
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        return torch.from_numpy(np.where(rng.random(x.shape) < p, 0.0, x.numpy()).astype(np.float32))

    def bernoulli(x, p, generator):  # keep with probability 1 - p
        return x * torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)

    for fn in (chk._mask_pixels, times_mask, masked_fill, with_numpy, numpy_rng_from_generator, bernoulli):
        assert chk.check_mask_pixels(fn), fn.__name__


def test_check_mask_pixels_rejects_mistakes():
    def dropout_like(x, p, generator):  # rescales the kept pixels by 1/(1-p)
        keep = torch.rand(x.shape, generator=generator) >= p
        return x * keep / (1 - p) if p < 1 else torch.zeros_like(x)

    def inverted(x, p, generator):  # keeps the pixels that should be masked
        return x * (torch.rand(x.shape, generator=generator) < p)

    def in_place(x, p, generator):  # right values, but destroys the clean target
        x[torch.rand(x.shape, generator=generator) < p] = 0
        return x

    def reseeds_global(x, p, generator):  # right distribution, reproducible, but resets everyone's RNG
        torch.manual_seed(generator.initial_seed())
        return torch.where(torch.rand(x.shape) < p, torch.zeros_like(x), x)

    def ignores_generator(x, p, generator):  # the global RNG: not reproducible from the generator
        return torch.where(torch.rand(x.shape) < p, torch.zeros_like(x), x)

    def fixed_seed(x, p, generator):  # its own fixed generator: the same mask whatever it is given
        return chk._mask_pixels(x, p, torch.Generator().manual_seed(0))

    def numpy_global(x, p, generator):
        import numpy as np
        np.random.seed(generator.initial_seed())
        return torch.from_numpy(np.where(np.random.rand(*x.shape) < p, 0.0, x.numpy()).astype(np.float32))

    state = torch.get_rng_state()
    for wrong in (dropout_like, inverted, in_place, reseeds_global, ignores_generator, fixed_seed, numpy_global):
        assert not chk.check_mask_pixels(wrong), wrong.__name__
    torch.set_rng_state(state)


def test_check_contractive_penalty():
    assert chk.check_contractive_penalty(chk._contractive_penalty)

    def with_jacobian(encoder, x):  # another valid answer: the full Jacobian (B, d, B, ...) at once
        J = torch.autograd.functional.jacobian(encoder, x, create_graph=True)
        return J.pow(2).sum() / x.shape[0]

    assert chk.check_contractive_penalty(with_jacobian)

    def one_pass(encoder, x):  # the gradient of z.sum(): the sum of the Jacobian's rows, not their norms
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(encoder(x).sum(), x, create_graph=True)
        return g.pow(2).sum() / x.shape[0]

    def batch_sum(encoder, x):  # forgets to divide by the batch size
        return chk._contractive_penalty(encoder, x) * x.shape[0]

    def not_squared(encoder, x):  # the Frobenius norm instead of its square
        return chk._contractive_penalty(encoder, x).sqrt()

    def no_graph(encoder, x):  # right value, but no gradient reaches the encoder
        return chk._contractive_penalty(encoder, x).detach()

    for wrong in (one_pass, batch_sum, not_squared, no_graph):
        assert not chk.check_contractive_penalty(wrong), wrong.__name__


def test_check_interpolate():
    assert chk.check_interpolate(chk._interpolate)

    def no_end(z0, z1, n):  # t = 0, 1/n, ..., (n-1)/n misses z1
        t = torch.arange(n).unsqueeze(1) / n
        return (1 - t) * z0 + t * z1

    def transposed(z0, z1, n):  # (D, n) instead of (n, D)
        return chk._interpolate(z0, z1, n).T

    assert not chk.check_interpolate(no_end)
    assert not chk.check_interpolate(transposed)
