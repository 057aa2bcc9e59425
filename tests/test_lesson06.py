"""Lesson 06 (image-to-image GANs: super-resolution, pix2pix, CycleGAN; GANs on text): the lesson's
own classes behave, the shipped models load into them and meet the issue's bars, and every checker
rejects the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints, data, metrics
from deepgen_helpers.checks import lesson06 as checks
from deepgen_helpers.models import image2image as lesson
from deepgen_helpers.models.dcgan import Discriminator, GANConfig


# --------------------------------------------------------------------------------------------------
# The degradation, the model and the objective
# --------------------------------------------------------------------------------------------------
def test_downsample_keeps_block_means_and_bicubic_keeps_constants():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    lr = lesson.downsample(x, 4)
    assert lr.shape == (3, 1, 7, 7)
    assert torch.isclose(lr[0, 0, 1, 2], x[0, 0, 4:8, 8:12].mean())
    flat = torch.full((2, 1, 7, 7), 0.3)
    assert torch.allclose(lesson.bicubic(flat, 4), torch.full((2, 1, 28, 28), 0.3), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 4])
def test_srnet_shapes_starts_as_bicubic_and_learns_detail(scale):
    torch.manual_seed(0)
    G = lesson.SRNet(lesson.SRConfig(scale=scale, channels=8, blocks=1))
    lr = torch.rand(4, 1, 28 // scale, 28 // scale)
    assert torch.allclose(G(lr), lesson.bicubic(lr, scale))          # zero tail
    x = data.load_images("mnist", "train", n=256, seed=0)[0]
    before = F.mse_loss(G(lesson.downsample(x, scale)), x).item()
    out = lesson.train_sr(G, x, lesson.SRTrainConfig(steps=40, batch_size=32, lr=3e-3))
    after = F.mse_loss(G(lesson.downsample(x, scale)), x).item()
    assert after < before and len(out["history"].values["pixel"]) == 40
    up = lesson.upscale(G, lesson.downsample(x[:3], scale))
    assert up.shape == (3, 1, 28, 28) and up.min() >= 0 and up.max() <= 1
    with pytest.raises(ValueError, match="scale"):
        lesson.SRNet(lesson.SRConfig(scale=3))


def test_sr_losses_terms_and_gan_training_step_runs():
    torch.manual_seed(0)
    G = lesson.SRNet(lesson.SRConfig(channels=8, blocks=1))
    D = Discriminator(GANConfig(d_channels=8))
    x = torch.rand(8, 1, 28, 28)
    cfg = lesson.SRTrainConfig(adv_weight=0.5, feat_weight=0.25)
    t = lesson.sr_losses(G, D, x, cfg)
    assert torch.isclose(t["total"], t["pixel"] + 0.5 * t["adv"] + 0.25 * t["feat"])
    assert set(lesson.sr_losses(G, None, x, cfg)) == {"sr", "pixel", "total"}
    out = lesson.train_sr(G, x, lesson.SRTrainConfig(steps=3, batch_size=4, adv_weight=1e-2,
                                                     feat_weight=1e-2), D=D)
    h = out["history"]
    assert all(len(h.values[k]) == 3 for k in ("d", "adv", "feat", "pixel"))


def test_sobel_edges_of_a_step_and_of_a_flat_image():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 14:] = 1.0                                      # a vertical step edge
    e = lesson.sobel_edges(x)
    assert e.shape == x.shape and set(e.unique().tolist()) <= {0.0, 1.0}
    assert e[0, 0, 5:-5, 13:15].eq(1).all() and e[0, 0, 5:-5, :12].eq(0).all()
    assert lesson.sobel_edges(torch.full((2, 1, 28, 28), 0.5))[..., 1:-1, 1:-1].eq(0).all()


def test_unet_shapes_and_its_skip_path_carries_the_input_past_the_bottleneck():
    torch.manual_seed(0)
    G = lesson.UNet(lesson.P2PConfig(channels=8)).eval()
    e = (torch.rand(2, 1, 28, 28) > 0.8).float()
    out = G(e)
    assert out.shape == (2, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    # cut the bottleneck (its output set to zero): the output still depends on the input, via skips
    G.down3.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    e2 = e.clone()
    e2[:, :, 10:18, 10:18] = 1 - e2[:, :, 10:18, 10:18]
    assert not torch.allclose(G(e), G(e2))
    assert G.up2[0].in_channels == 4 * 8 and G.out.in_channels == 2 * 8   # concatenated skips


def test_patchgan_grid_receptive_field_and_eq4_loss():
    cfg = lesson.P2PConfig(channels=8)
    torch.manual_seed(0)
    D = lesson.PatchDiscriminator(cfg).eval()
    e, x = torch.zeros(3, 1, 28, 28), torch.rand(3, 1, 28, 28, requires_grad=True)
    logits = D(e, x)
    assert logits.shape == (3, 1, 7, 7)                   # one logit per patch
    logits[0, 0, 3, 3].backward()
    hit = (x.grad[0, 0] != 0).nonzero()
    assert (hit.max(0).values - hit.min(0).values + 1).tolist() == [18, 18]
    assert x.grad[1:].abs().sum() == 0                    # eval mode: images do not mix
    # Eq. 4 by hand: mean -log sigmoid over the 7x7 grid plus lambda times the mean |y - G(x)|
    y, fake = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    e = torch.zeros(2, 1, 28, 28)
    for lam, d in ((100.0, D), (5.0, D), (100.0, None)):
        terms = lesson.p2p_g_loss(d, e, y, fake, lesson.P2PConfig(l1_weight=lam))
        adv = -F.logsigmoid(D(e, fake)).mean() if d is not None else 0.0
        expected = adv + lam * (y - fake).abs().mean()
        assert torch.isclose(terms["total"], torch.as_tensor(expected), rtol=1e-5)


def test_train_pix2pix_lowers_l1_and_logs_both_players():
    x = data.load_images("fashion_mnist", "train", n=256, seed=0)[0]
    cfg = lesson.P2PConfig(channels=8, steps=30, batch_size=32)
    torch.manual_seed(0)
    G, D = lesson.UNet(cfg), lesson.PatchDiscriminator(cfg)
    e = lesson.sobel_edges(x)
    with torch.no_grad():
        before = (G.eval()(e) - x).abs().mean().item()
    h = lesson.train_pix2pix(G, x, cfg, D)["history"].values
    with torch.no_grad():
        after = (G(e) - x).abs().mean().item()
    assert after < before and len(h["l1"]) == len(h["d"]) == 30 and not G.training


# --------------------------------------------------------------------------------------------------
# Checkers: accept the reference, reject the mistakes learners make
# --------------------------------------------------------------------------------------------------
def _psnr(x, y, L):
    return 10 * torch.log10(L ** 2 / ((x - y) ** 2).flatten(1).mean(1))


def _shuffle(x, r, order=(0, 1, 4, 2, 5, 3)):
    b, c, h, w = x.shape
    return x.view(b, c // r ** 2, r, r, h, w).permute(*order).reshape(b, c // r ** 2, h * r, w * r)


def _shuffle_channel_last(x, r):             # output channel taken as the fastest-moving index
    b, c, h, w = x.shape
    return x.view(b, r, r, c // r ** 2, h, w).permute(0, 3, 4, 1, 5, 2).reshape(
        b, c // r ** 2, h * r, w * r)


def _gauss(size, sigma, two=2.0, centre=None):
    r = torch.arange(size, dtype=torch.float64) - ((size - 1) / 2 if centre is None else centre)
    return torch.exp(-r ** 2 / (two * sigma ** 2))


def _window(size, sigma):
    g = _gauss(size, sigma)
    w = g[:, None] * g[None, :]
    return w / w.sum()


def _window_unnormalised(size, sigma):
    g = _gauss(size, sigma)
    return g[:, None] * g[None, :]


def _window_off_centre(size, sigma):          # centred on pixel size // 2 - 1
    g = _gauss(size, sigma, centre=size // 2 - 1)
    w = g[:, None] * g[None, :]
    return w / w.sum()


def _window_wrong_exponent(size, sigma):      # exp(-r^2 / sigma^2): sigma off by sqrt(2)
    g = _gauss(size, sigma, two=1.0)
    w = g[:, None] * g[None, :]
    return w / w.sum()


def _window_1d_normalised_sum(size, sigma):   # the sum of two 1-D Gaussians, not their product
    g = _gauss(size, sigma)
    w = g[:, None] + g[None, :]
    return w / w.sum()


GOOD_AND_BAD = {
    "check_psnr": (
        _psnr,
        [lambda x, y, L: (10 * torch.log10(L ** 2 / ((x - y) ** 2).mean())).expand(len(x)),  # batch
         lambda x, y, L: 10 * torch.log(L ** 2 / ((x - y) ** 2).flatten(1).mean(1)),        # ln
         lambda x, y, L: 10 * torch.log10(1 / ((x - y) ** 2).flatten(1).mean(1)),           # no L
         lambda x, y, L: 10 * torch.log10(L / ((x - y) ** 2).flatten(1).mean(1)),           # L
         lambda x, y, L: 20 * torch.log10(L / ((x - y) ** 2).flatten(1).mean(1)),           # 20 log
         lambda x, y, L: _psnr(x, y, L).mean()]),                                          # scalar
    "check_pixel_shuffle": (
        _shuffle,
        [lambda x, r: _shuffle(x, r, (0, 1, 4, 3, 5, 2)),        # the two offsets swapped
         lambda x, r: _shuffle(x, r, (0, 1, 2, 4, 3, 5)),        # tiles, not interleaved
         _shuffle_channel_last,
         lambda x, r: x.reshape(x.shape[0], -1, x.shape[2] * r, x.shape[3] * r)]),  # reshape only
    "check_cycle_loss": (
        lambda G, F, a, b: (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean(),
        [lambda G, F, a, b: (F(G(a)) - a).abs().mean(),                       # forward cycle only
         lambda G, F, a, b: ((F(G(a)) - a) ** 2).mean() + ((G(F(b)) - b) ** 2).mean(),  # MSE
         lambda G, F, a, b: (G(F(a)) - a).abs().mean() + (F(G(b)) - b).abs().mean(),  # order
         lambda G, F, a, b: (F(G(a)) - a).abs().sum() + (G(F(b)) - b).abs().sum(),     # sums
         lambda G, F, a, b: (F(G(a)) - a).mean().abs() + (G(F(b)) - b).mean().abs(),   # no |.|
         lambda G, F, a, b: (G(a) - a).abs().mean() + (F(b) - b).abs().mean()]),    # identity
    "check_gaussian_window": (
        _window,
        [_window_unnormalised, _window_off_centre, _window_wrong_exponent,
         _window_1d_normalised_sum]),
}


@pytest.mark.parametrize("name", sorted(GOOD_AND_BAD))
def test_checker_accepts_the_reference_and_rejects_mistakes(name, capsys):
    checker = getattr(checks, name)
    good, bad = GOOD_AND_BAD[name]
    assert checker(good), f"{name} rejected the reference solution"
    for i, wrong in enumerate(bad):
        assert not checker(wrong), f"{name} accepted wrong answer #{i}"


# --------------------------------------------------------------------------------------------------
# Shipped upscalers, loaded into the lesson's own class, and the bars
# --------------------------------------------------------------------------------------------------
def _shipped(kind, dataset, scale):
    G = lesson.SRNet(lesson.SRConfig(scale=scale)).eval()
    payload = checkpoints.load_shipped(f"sr_{kind}_{dataset}_x{scale}", G)
    assert payload["metadata"]["stored_dtype"] == "float16"
    return G


@pytest.fixture(scope="module")
def mnist_x4():
    """Bicubic, pixel CNN and SRGAN on 1,000 random MNIST test digits (another subset than the
    lesson's and the manifest's), with FID against random training digits."""
    x_test, y_test = data.load_images("mnist", "test")
    sub = metrics.random_subset(len(x_test), 1000, seed=11)
    x, y = x_test[sub], y_test[sub]
    x_train, _ = data.load_images("mnist", "train")
    reference = x_train[metrics.random_subset(len(x_train), 4000, seed=12)]
    lr = lesson.downsample(x, 4)
    out = {"bicubic": lesson.bicubic(lr, 4).clamp(0, 1),
           "pixel": lesson.upscale(_shipped("pixel", "mnist", 4), lr),
           "gan": lesson.upscale(_shipped("gan", "mnist", 4), lr)}
    return {k: {"psnr": metrics.psnr(v, x),
                "accuracy": (metrics.predict(v) == y).float().mean().item(),
                "fid": metrics.fid_with_floor(v, reference, n=1000, repeats=3)}
            for k, v in out.items()}


def test_pixel_cnn_beats_bicubic_by_2_db_at_x4_on_mnist(mnist_x4):
    gain, se = metrics.mean_se(mnist_x4["pixel"]["psnr"] - mnist_x4["bicubic"]["psnr"])
    assert gain - 3 * se >= 2.0, f"PSNR gain {gain:.2f} ± {se:.2f} dB"
    assert mnist_x4["pixel"]["psnr"].mean() > mnist_x4["gan"]["psnr"].mean()   # distortion side


def test_srgan_has_the_best_fid_of_the_three(mnist_x4):
    fid = {k: v["fid"] for k, v in mnist_x4.items()}
    spread = max(fid["gan"]["fid_sd"], fid["pixel"]["fid_sd"])
    assert fid["gan"]["fid"] + 2 * spread < fid["pixel"]["fid"] < fid["bicubic"]["fid"], fid


def test_upscaled_7x7_digits_recover_their_class(mnist_x4):
    acc = {k: v["accuracy"] for k, v in mnist_x4.items()}
    assert acc["gan"] >= 0.9 and acc["pixel"] >= 0.9, acc
    assert min(acc["gan"], acc["pixel"]) - acc["bicubic"] >= 0.15, acc


@pytest.mark.parametrize("dataset, scale", [("mnist", 2), ("fashion_mnist", 4),
                                            ("fashion_mnist", 2)])
def test_other_shipped_upscalers_beat_bicubic_on_psnr(dataset, scale):
    x_test, _ = data.load_images(dataset, "test")
    x = x_test[metrics.random_subset(len(x_test), 300, seed=13)]
    lr = lesson.downsample(x, scale)
    bic = metrics.psnr(lesson.bicubic(lr, scale).clamp(0, 1), x)
    for kind in ("pixel", "gan"):
        up = lesson.upscale(_shipped(kind, dataset, scale), lr)
        gain, se = metrics.mean_se(metrics.psnr(up, x) - bic)
        assert gain - 3 * se > 0, f"{kind} {dataset} x{scale}: {gain:.2f} ± {se:.2f} dB"


def test_shipped_upscalers_are_small_and_refuse_another_factor():
    entries = checkpoints.read_manifest()
    names = [n for n in entries if n.startswith("sr_")]
    assert len(names) == 8 and sum(entries[n]["bytes"] for n in names) <= 3_000_000
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load_shipped("sr_pixel_mnist_x4", lesson.SRNet(lesson.SRConfig(scale=2)))


@pytest.mark.parametrize("scale, spreads", [(4, 2), (2, 0)])
def test_srgan_has_the_best_fid_on_fashion_mnist(scale, spreads):
    """Fashion-MNIST's shipped SRGANs (spectrally normalised critic) beat the pixel CNN on FID
    (another test subset than the lesson's): at x4 by more than twice the spread over reference
    sets; at x2, where both are close to the real-vs-real floor, by less than one spread."""
    x_test, _ = data.load_images("fashion_mnist", "test")
    x = x_test[metrics.random_subset(len(x_test), 1000, seed=14)]
    x_train, _ = data.load_images("fashion_mnist", "train")
    reference = x_train[metrics.random_subset(len(x_train), 4000, seed=15)]
    lr = lesson.downsample(x, scale)
    fid = {kind: metrics.fid_with_floor(lesson.upscale(_shipped(kind, "fashion_mnist", scale), lr),
                                        reference, n=1000, repeats=3, dataset="fashion_mnist")
           for kind in ("pixel", "gan")}
    spread = max(fid["gan"]["fid_sd"], fid["pixel"]["fid_sd"])
    assert fid["gan"]["fid"] + spreads * spread < fid["pixel"]["fid"], fid


# --------------------------------------------------------------------------------------------------
# CycleGAN (section 10): the domains, Eq. 2-3, training, and the shipped pair's bars
# --------------------------------------------------------------------------------------------------
def test_thicken_is_a_dilation_by_a_cross():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 0.7
    cross = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0],
                          [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]) * 0.7
    assert torch.allclose(lesson.thicken(x)[0, 0], cross.float())
    digits = data.load_images("mnist", "test", n=64, seed=0)[0]
    thick = lesson.thicken(digits)
    assert thick.shape == digits.shape and (thick >= digits).all()      # nothing gets darker
    assert 1.4 < thick.sum() / digits.sum() < 2.2                      # strokes grow a pixel
    # a dilation, not a blur: flat images stay flat and no new grey levels appear
    assert torch.equal(lesson.thicken(torch.full((1, 1, 6, 6), 0.3)), torch.full((1, 1, 6, 6), 0.3))
    assert set(lesson.thicken(digits).unique().tolist()) <= set(digits.unique().tolist())


def test_patchgan_unconditional_mode_and_its_errors():
    cfg = lesson.P2PConfig(channels=8)
    D = lesson.PatchDiscriminator(cfg, conditional=False)
    assert D(None, torch.rand(2, 1, 28, 28)).shape == (2, 1, 7, 7)
    with pytest.raises(ValueError, match="conditional=False"):
        D(torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="conditional=True"):
        lesson.PatchDiscriminator(cfg)(None, torch.rand(2, 1, 28, 28))


def test_cycle_losses_match_eq_2_3_and_the_identity_term():
    torch.manual_seed(0)
    cfg = lesson.CycleConfig(channels=8, cycle_weight=7.0, identity_weight=0.3)
    pair, critics = lesson.cycle_pair(cfg).eval(), lesson.cycle_critics(cfg).eval()
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    t = lesson.cycle_losses(pair, critics, a, b, cfg)
    G, Fm = pair["G"], pair["F"]
    adv = (-F.logsigmoid(critics["B"](None, G(a))).mean()
           - F.logsigmoid(critics["A"](None, Fm(b))).mean())
    cyc = (Fm(G(a)) - a).abs().mean() + (G(Fm(b)) - b).abs().mean()
    ident = (G(b) - b).abs().mean() + (Fm(a) - a).abs().mean()
    for key, want in (("adv", adv), ("cycle", cyc), ("identity", ident),
                      ("total", adv + 7.0 * cyc + 0.3 * 7.0 * ident)):
        assert torch.isclose(t[key], want, rtol=1e-5), key
    # perfect inverses that are identities have zero cycle and identity terms
    ident_pair = torch.nn.ModuleDict({"G": torch.nn.Identity(), "F": torch.nn.Identity()})
    t0 = lesson.cycle_losses(ident_pair, critics, a, b, cfg)
    assert t0["cycle"] == 0 and t0["identity"] == 0


def test_train_cyclegan_lowers_the_cycle_loss_and_draws_unpaired_batches():
    x = data.load_images("mnist", "train", n=512, seed=0)[0]
    xa, xb = x[:256], lesson.thicken(x[256:])
    cfg = lesson.CycleConfig(channels=8, steps=40, batch_size=16)
    torch.manual_seed(0)
    pair, critics = lesson.cycle_pair(cfg), lesson.cycle_critics(cfg)
    h = lesson.train_cyclegan(pair, critics, xa, xb, cfg)["history"].values
    assert len(h["cycle"]) == len(h["d"]) == 40 and not pair.training
    assert sum(h["cycle"][-10:]) < sum(h["cycle"][:10])


def test_translation_report_of_doing_nothing():
    x, y = data.load_images("mnist", "test", n=200, seed=1)
    nothing = torch.nn.ModuleDict({"G": torch.nn.Identity(), "F": torch.nn.Identity()})
    rep = lesson.translation_report(nothing, x[:100], y[:100], x[100:], y[100:], cycle=False)
    assert "hidden" not in rep
    thick = lesson.thicken(x[:100])
    want = metrics.psnr(x[:100], thick).mean().item()
    assert abs(rep["to_thick"]["psnr"][0] - want) < 1e-4
    ink = (x[:100].flatten(1).sum(1) / thick.flatten(1).sum(1)).mean().item()
    assert abs(rep["to_thick"]["ink"][0] - ink) < 1e-5 and ink < 0.8
    assert rep["to_thin"]["ink"][0] > 1.2                  # thick digits carry too much ink
    assert rep["to_thick"]["accuracy"][0] > 0.95           # unchanged thin digits: still digits


@pytest.fixture(scope="module")
def shipped_cycle():
    """The shipped CycleGAN on 1,000 random test digits each way (other subsets than the lesson's
    and the manifest's)."""
    pair = lesson.cycle_pair(lesson.CycleConfig())
    payload = checkpoints.load_shipped("cyclegan_thin_thick", pair)
    assert payload["metadata"]["stored_dtype"] == "float16"
    x, y = data.load_images("mnist", "test")
    ia, ib = (metrics.random_subset(len(x), 1000, seed=s) for s in (41, 42))
    return lesson.translation_report(pair.eval(), x[ia], y[ia], x[ib], y[ib])


def test_cyclegan_keeps_the_digit_both_ways(shipped_cycle):
    for direction in ("to_thick", "to_thin"):
        acc, se = shipped_cycle[direction]["accuracy"]
        assert acc - 2 * se >= 0.95, f"{direction}: {acc:.3f} ± {se:.3f}"


def test_cyclegan_comes_closer_to_the_truth_than_doing_nothing(shipped_cycle):
    x, _ = data.load_images("mnist", "test")
    a = x[metrics.random_subset(len(x), 1000, seed=41)]
    nothing = metrics.psnr(a, lesson.thicken(a)).mean().item()
    psnr, se = shipped_cycle["to_thick"]["psnr"]
    assert psnr - 3 * se > nothing + 3, (psnr, nothing)
    for direction, (low, high) in (("to_thick", (0.7, 1.1)), ("to_thin", (0.9, 1.5))):
        assert low < shipped_cycle[direction]["ink"][0] < high, direction


def test_cyclegan_hides_information_the_true_thick_digit_lacks(shipped_cycle):
    """Section 10.2's measured failure: F recovers a better from G(a) than from the true thick
    digit, so G(a) carries more than a thick digit does (Chu et al. 2017). Small at this scale
    (about half a dB), but many standard errors above zero."""
    gap, se = shipped_cycle["hidden"]
    assert gap - 3 * se > 0.2, f"{gap:.2f} ± {se:.2f} dB"


# --------------------------------------------------------------------------------------------------
# Text (section 11): Gumbel-softmax, the character GRU, its metrics, training, shipped models
# --------------------------------------------------------------------------------------------------
V = 27


def small_names():
    from deepgen_helpers import data
    return lesson.split_names(data.load_names(), seed=0)


# ---- Gumbel-softmax
def test_gumbel_softmax_matches_torch_in_distribution():
    logits = torch.tensor([1.0, -0.5, 0.3, 2.0, 0.0])
    n, tau = 200_000, 0.5
    ours = lesson.gumbel_softmax(logits.expand(n, 5), tau, generator=torch.Generator()
                                 .manual_seed(0))
    torch.manual_seed(1)
    theirs = F.gumbel_softmax(logits.expand(n, 5), tau=tau)
    for a, b in ((ours, theirs), (ours.argmax(-1), theirs.argmax(-1))):
        if a.dim() == 1:                               # argmax frequencies vs each other
            a, b = F.one_hot(a, 5).float(), F.one_hot(b, 5).float()
        se = (a.var(0) / n + b.var(0) / n).sqrt()
        assert ((a.mean(0) - b.mean(0)).abs() < 5 * se + 1e-6).all()
    # the Gumbel-max trick (Eq. 1): the argmax is an exact sample of softmax(logits)
    freq = F.one_hot(ours.argmax(-1), 5).float().mean(0)
    p = torch.softmax(logits, -1)
    assert ((freq - p).abs() < 5 * (p * (1 - p) / n).sqrt()).all()
    # a different tau changes the relaxed values' spread: the test can tell tau apart
    other = lesson.gumbel_softmax(logits.expand(n, 5), 2.0, generator=torch.Generator()
                                  .manual_seed(0))
    assert (other.max(-1).values.mean() - theirs.max(-1).values.mean()).abs() > 0.05


def test_gumbel_softmax_low_tau_is_nearly_one_hot_and_rejects_bad_tau():
    y = lesson.gumbel_softmax(torch.randn(100, V), 0.01, generator=torch.Generator()
                              .manual_seed(0))
    assert torch.allclose(y.sum(-1), torch.ones(100), atol=1e-5)
    assert (y.max(-1).values > 0.9).float().mean() > 0.95
    with pytest.raises(ValueError, match="tau"):
        lesson.gumbel_softmax(torch.zeros(3), 0.0)


def test_hard_gumbel_is_one_hot_with_the_soft_gradient():
    w = torch.randn(8, V)
    grads = []
    for hard in (False, True):
        logits = torch.randn(8, V, generator=torch.Generator().manual_seed(3)).requires_grad_()
        y = lesson.gumbel_softmax(logits, 0.7, hard, generator=torch.Generator().manual_seed(4))
        if hard:
            assert torch.equal(y.detach(), F.one_hot(y.argmax(-1), V).float())
        (w * y).sum().backward()
        grads.append(logits.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)      # straight-through: soft gradient
    assert grads[1].abs().sum() > 0


def test_discrete_sampling_gives_no_gradient():
    logits = torch.tensor([0.2, 1.0, -0.3], requires_grad=True)
    i = torch.multinomial(torch.softmax(logits, -1), 1, generator=torch.Generator()
                          .manual_seed(0))
    x = F.one_hot(i[0], 3).float()
    assert x.grad_fn is None and not x.requires_grad
    with pytest.raises(RuntimeError):
        (x * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    # the relaxation gives a gradient for the same loss
    y = lesson.gumbel_softmax(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(0))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad.abs().sum() > 0


# ---- data
def test_encode_decode_split():
    tok = lesson.encode(["ab", "z", ""], max_len=4)
    assert torch.equal(tok, torch.tensor([[1, 2, 0, 0], [26, 0, 0, 0], [0, 0, 0, 0]]))
    assert lesson.decode(tok) == ["ab", "z", ""]
    assert lesson.decode(torch.tensor([[1, 1, 1]])) == ["aaa"]         # no end token: all
    with pytest.raises(ValueError, match="max_len"):
        lesson.encode(["abcd"], max_len=4)
    with pytest.raises(ValueError, match="a-z"):
        lesson.encode(["Ab"])
    split = small_names()
    sizes = {k: len(v) for k, v in split.items()}
    assert sizes == {"train": 20645, "ref": 5898, "test": 2951}
    assert not set(split["train"]) & set(split["ref"]) and not set(split["ref"]) & set(
        split["test"])
    assert lesson.split_names(split["train"][:50], seed=1) == lesson.split_names(
        split["train"][:50], seed=1)
    assert lesson.split_names(split["train"][:50], seed=1) != lesson.split_names(
        split["train"][:50], seed=2)


# ---- models
def test_shapes_and_end_token_format():
    cfg = lesson.CharConfig()
    G, D = lesson.CharGRU(cfg), lesson.CharCNN(cfg)
    logits, h = G(torch.zeros(5, 7, V))
    assert logits.shape == (5, 7, V) and h.shape == (1, 5, cfg.hidden)
    x = lesson.generate(G, 64, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 16, V) and D(x).shape == (64,)
    ends = x.argmax(-1) == lesson.END
    assert torch.equal(ends.long().cummax(1).values.bool(), ends)     # only '.' after a '.'
    assert torch.equal(x.sum(-1), torch.ones(64, 16))
    # the generated sequence is differentiable in G's weights
    D(lesson.generate(G, 4, tau=0.5)).sum().backward()
    assert G.embed.weight.grad.abs().sum() > 0 and G.gru.weight_hh_l0.grad.abs().sum() > 0


def test_sampling_is_reproducible_by_seed_and_temperature_sharpens():
    torch.manual_seed(0)
    G = lesson.CharGRU(lesson.CharConfig())
    a, b = lesson.sample_names(G, 300, seed=3), lesson.sample_names(G, 300, seed=3)
    assert a == b and a != lesson.sample_names(G, 300, seed=4)
    with torch.no_grad():            # an untrained net has near-ties; sharpen it first
        G.out.weight.mul_(100)
    cold = lesson.sample_names(G, 300, temperature=1e-3, seed=3)
    greedy = lesson.sample_names(G, 300, temperature=1e-6, seed=4)
    assert len(set(a)) > 250 and len(set(cold)) <= 3 and len(set(greedy)) == 1


def test_name_nll_known_cases():
    torch.manual_seed(0)
    G = lesson.CharGRU(lesson.CharConfig())
    names = ["ab", "zoe", ""]
    # by hand: step by step through the model, -log p of each letter and of the end token
    expected = []
    for name in names:
        ids = [lesson.VOCAB.index(c) for c in name] + [lesson.END]
        x, h, total = lesson.start_token(1, G.cfg), None, 0.0
        for i in ids:
            logits, h = G(x, h)
            total -= torch.log_softmax(logits[0, 0], -1)[i].item()
            x = F.one_hot(torch.tensor([[i]]), V).float()
        expected.append(total / len(ids))
    assert torch.allclose(lesson.name_nll(G, names), torch.tensor(expected), atol=1e-5)
    # padding does not count: the same names in a batch with a long one
    with_long = lesson.name_nll(G, names + ["abcdefghijklmno"])[:3]
    assert torch.allclose(with_long, torch.tensor(expected), atol=1e-5)
    with torch.no_grad():
        G.out.weight.zero_(); G.out.bias.zero_()
    assert torch.allclose(lesson.name_nll(G, names), torch.full((3,), math.log(27)), atol=1e-6)


def test_text_quality_on_a_hand_made_list():
    G = lesson.CharGRU(lesson.CharConfig())
    with torch.no_grad():
        G.out.weight.zero_(); G.out.bias.zero_()              # uniform: ln 27 per character
    names = ["anna", "anna", "bob", "zed"]
    q = lesson.text_quality(names, {"anna"}, ["anna", "bob", "eve"], G, block=2)
    assert q["real"] == pytest.approx((0.75, 0.25))            # [1, 1, 1, 0]: sd 0.5, / sqrt 4
    assert q["novel"][0] == pytest.approx(0.5)
    assert q["distinct"] == pytest.approx((0.75, 0.25))        # blocks: 1/2, 2/2
    assert q["length"][0] == pytest.approx(3.5)
    assert q["nll"][0] == pytest.approx(math.log(27), abs=1e-5) and q["n"] == 4
    with pytest.raises(ValueError, match="block"):
        lesson.text_quality(names, set(), set(), G, block=3)


# ---- training
def test_train_mle_improves_and_keeps_the_best():
    split = small_names()
    tokens, val = lesson.encode(split["train"][:3000]), lesson.encode(split["ref"][:500])
    torch.manual_seed(0)
    G = lesson.CharGRU(lesson.CharConfig())
    before = lesson.mle_loss(G, val).item()
    out = lesson.train_mle(G, tokens, lesson.TextTrainConfig(steps=80, eval_every=20, desc="t"),
                           val=val)
    after = lesson.mle_loss(G, val).item()
    assert before > 3.2 and after < 2.9
    assert after == pytest.approx(min(out["history"].values["val"]), abs=1e-5)


def bigram_nll(train_names, names):
    """Mean NLL per character (end token included) of names under the add-one-smoothed bigram
    counts of train_names: a cheap judge that needs no trained network."""
    counts = torch.ones(V, V)
    for n in train_names:
        ids = [0] + [lesson.VOCAB.index(c) for c in n] + [0]
        for a, b in zip(ids, ids[1:]):
            counts[a, b] += 1
    logp = (counts / counts.sum(1, keepdim=True)).log()
    nll = [-sum(logp[a, b].item() for a, b in zip(ids, ids[1:])) / (len(ids) - 1)
           for ids in ([0] + [lesson.VOCAB.index(c) for c in n] + [0] for n in names)]
    return sum(nll) / len(nll)


def test_bigram_judge_knows_real_from_random():
    split = small_names()
    random_names = ["".join(lesson.VOCAB[1 + (7 * i + 3 * k) % 26] for k in range(6))
                    for i in range(50)]
    assert bigram_nll(split["train"], split["test"][:200]) < 2.6 < bigram_nll(split["train"],
                                                                               random_names)


def test_train_text_gan_makes_samples_more_name_like():
    split = small_names()
    tokens = lesson.encode(split["train"])
    torch.manual_seed(0)
    G, D = lesson.CharGRU(lesson.CharConfig()), lesson.CharCNN(lesson.CharConfig())
    before = bigram_nll(split["train"], lesson.sample_names(G, 300, seed=2))
    out = lesson.train_text_gan(G, D, tokens, lesson.TextTrainConfig(steps=120, desc="t"))
    assert out["history"].values["tau"][0] == 1.0 and out["history"].values["tau"][-1] == 0.5
    after = bigram_nll(split["train"], lesson.sample_names(G, 300, seed=2))
    assert after < before - 0.5, (before, after)


@pytest.mark.parametrize("name, bar", [("text_ref", 2.30), ("text_mle", 2.10)])
def test_shipped_likelihood_models_predict_unseen_names(name, bar):
    model = lesson.CharGRU(lesson.CharConfig())
    payload = checkpoints.load_shipped(name, model)
    assert payload["metadata"]["stored_dtype"] == "float16"
    split = small_names()
    with torch.no_grad():
        assert lesson.mle_loss(model.eval(), lesson.encode(split["test"])).item() < bar


def test_shipped_mle_model_beats_the_gan_on_quality_and_diversity():
    """Section 11's conclusion, on fresh samples (seed 8; the lesson and the manifest use
    others): at T = 1 the MLE model's names are more name-like to the judge and more distinct."""
    models = {}
    for name in ("text_ref", "text_mle", "text_gan"):
        models[name] = lesson.CharGRU(lesson.CharConfig())
        checkpoints.load_shipped(name, models[name])
    names = data.load_names()
    split = lesson.split_names(names, seed=0)
    q = {k: lesson.text_quality(lesson.sample_names(models[k], 2000, 1.0, seed=8),
                                split["train"], names, models["text_ref"])
         for k in ("text_mle", "text_gan")}
    mle, gan = q["text_mle"], q["text_gan"]
    assert mle["nll"][0] + 3 * (mle["nll"][1] + gan["nll"][1]) < gan["nll"][0], (mle, gan)
    assert mle["distinct"][0] - 3 * (mle["distinct"][1] + gan["distinct"][1]) > gan["distinct"][0]
    assert mle["real"][0] > 2 * gan["real"][0]
