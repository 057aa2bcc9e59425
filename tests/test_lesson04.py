"""Lesson 04 (GANs from scratch): the lesson's exported code, its remedy's claim, and the checkers fed
the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import metrics
from deepgen_helpers.checks import lesson04 as chk
from deepgen_helpers.models import gan2d as lesson


# ---------------------------------------------------------------------------------------- lesson code
def test_toy_modes_match_the_data():
    for name, k in (("ring", 8), ("grid", 25)):
        centres, sigma = lesson.toy_modes(name)
        x = lesson.sample_toy(name, 5000, seed=0)
        cov = metrics.mode_coverage(x, centres, sigma)
        assert centres.shape == (k, 2) and cov["modes_covered"] == k
        assert abs(cov["high_quality"] - (1 - math.exp(-4.5))) < 0.01


def test_losses_from_logits():
    r, f = torch.randn(32), torch.randn(32)
    bce = (F.binary_cross_entropy_with_logits(r, torch.ones(32))
           + F.binary_cross_entropy_with_logits(f, torch.zeros(32)))
    assert torch.allclose(lesson.d_loss(r, f), bce)
    assert torch.allclose(lesson.g_loss_minimax(f), torch.log1p(-torch.sigmoid(f)).mean(), atol=1e-6)
    assert torch.allclose(lesson.g_loss_nonsaturating(f), -F.logsigmoid(f).mean())
    big = torch.tensor([60.0, -60.0])
    for value in (lesson.d_loss(big, big), lesson.g_loss_minimax(big), lesson.g_loss_nonsaturating(big)):
        assert torch.isfinite(value)


def test_minimax_gradient_vanishes_when_d_wins():
    """d/dl log(1 - sigmoid(l)) = -sigmoid(l) -> 0; d/dl -log sigmoid(l) = sigmoid(l) - 1 -> -1."""
    l = torch.full((4,), -8.0, requires_grad=True)
    g_mm, = torch.autograd.grad(lesson.g_loss_minimax(l), l)
    g_ns, = torch.autograd.grad(lesson.g_loss_nonsaturating(l), l)
    assert torch.allclose(g_mm, -torch.sigmoid(l.detach()) / 4)
    assert torch.allclose(g_ns, (torch.sigmoid(l.detach()) - 1) / 4)
    assert g_mm.abs().max() < 1e-3 * g_ns.abs().min()


def test_gradient_penalty_of_a_linear_critic():
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, 0.8]]))            # ||w|| = 1: no penalty
    critic = lambda x: lin(x).squeeze(1)                        # noqa: E731
    assert lesson.gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2)).item() < 1e-10
    with torch.no_grad():
        lin.weight.mul_(3.0)                                    # ||w|| = 3
    gp = lesson.gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    assert math.isclose(gp.item(), 4.0, rel_tol=1e-5) and gp.requires_grad


def test_steps_touch_only_their_own_player():
    torch.manual_seed(0)
    G, D = lesson.Generator(lesson.GAN2DConfig()), lesson.Discriminator(lesson.GAN2DConfig())
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    x = lesson.sample_toy("ring", 64)
    g_before = [p.clone() for p in G.parameters()]
    for loss in lesson.LOSSES:
        cfg = lesson.GANTrainConfig(loss=loss)
        lesson.discriminator_step(D, G, opt_d, x, torch.randn(64, 2), cfg)
        assert all(p.grad is None for p in G.parameters())
        assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    d_before = [p.clone() for p in D.parameters()]
    lesson.generator_step(D, G, opt_g, torch.randn(64, 2), lesson.GANTrainConfig())
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    with pytest.raises(ValueError, match="cfg.loss"):
        lesson.train_gan(G, D, x, lesson.GANTrainConfig(loss="hinge"))


def test_wgan_gp_covers_every_ring_mode_on_every_seed(one_thread):
    """The lesson's claim at its default budget, with its own code and data: WGAN-GP (1,000 critic
    steps, 200 generator steps) covers all 8 ring modes on seeds 0, 1, 2 (2,500 samples; a mode is
    covered with 10 % of its fair share within 3 sigma). About 20 s on one core."""
    x = lesson.sample_toy("ring", 20_000, seed=0)
    centres, sigma = lesson.toy_modes("ring")
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        G, D = lesson.Generator(lesson.GAN2DConfig()), lesson.Discriminator(lesson.GAN2DConfig())
        lesson.train_gan(G, D, x, lesson.GANTrainConfig(loss="wgan-gp", n_critic=5, steps=200,
                                                          seed=seed))
        samples = G.sample(2500, generator=torch.Generator().manual_seed(1000 + seed))
        cov = metrics.mode_coverage(samples, centres, sigma, min_count=32)
        assert cov["modes_covered"] == 8, (seed, cov)


# ---------------------------------------------------------------------------------------- checkers
def _good_losses(r, f, s):
    return (F.binary_cross_entropy_with_logits(r, torch.full_like(r, s))
            + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)), F.softplus(-f).mean())


def _bce_probs(p, t):
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


SMOOTH_MISTAKES = {
    "sign flipped": lambda r, f, s: (-_good_losses(r, f, s)[0], _good_losses(r, f, s)[1]),
    "labels swapped": lambda r, f, s: (
        F.binary_cross_entropy_with_logits(f, torch.full_like(f, s))
        + F.binary_cross_entropy_with_logits(r, torch.zeros_like(r)), F.softplus(-f).mean()),
    "two-sided smoothing": lambda r, f, s: (
        F.binary_cross_entropy_with_logits(r, torch.full_like(r, s))
        + F.binary_cross_entropy_with_logits(f, torch.full_like(f, 1 - s)), F.softplus(-f).mean()),
    "non-saturating written as -log(1 - D)": lambda r, f, s: (
        _good_losses(r, f, s)[0], -torch.log(1 - torch.sigmoid(f)).mean()),
    "saturating generator loss": lambda r, f, s: (
        _good_losses(r, f, s)[0], torch.log(1 - torch.sigmoid(f)).mean()),
    "probabilities, not logits": lambda r, f, s: (
        _bce_probs(torch.sigmoid(r), s) + _bce_probs(torch.sigmoid(f), 0.0),
        -torch.log(torch.sigmoid(f)).mean()),
    "sum instead of mean": lambda r, f, s: (
        F.binary_cross_entropy_with_logits(r, torch.full_like(r, s), reduction="sum")
        + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f), reduction="sum"),
        F.softplus(-f).sum()),
}


def test_smoothed_gan_losses_checker():
    assert chk.check_smoothed_gan_losses(_good_losses)
    assert chk.check_smoothed_gan_losses(
        lambda r, f, s: (-(s * F.logsigmoid(r) + (1 - s) * F.logsigmoid(-r)).mean()
                         - F.logsigmoid(-f).mean(), -F.logsigmoid(f).mean()))


@pytest.mark.parametrize("mistake", SMOOTH_MISTAKES)
def test_smoothed_gan_losses_checker_rejects(mistake):
    assert not chk.check_smoothed_gan_losses(SMOOTH_MISTAKES[mistake])


def _hinge_step(detach=True, zero_grad=True, sign=1, no_grad=False):
    def step(D, G, opt_d, x_real, z):
        if no_grad:
            with torch.no_grad():
                x_fake = G(z)
        else:
            x_fake = G(z).detach() if detach else G(z)
        loss = F.relu(1 - sign * D(x_real)).mean() + F.relu(1 + sign * D(x_fake)).mean()
        if zero_grad:
            opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss.item()
    return step


def test_hinge_d_step_checker():
    assert chk.check_hinge_d_step(_hinge_step())
    assert chk.check_hinge_d_step(_hinge_step(no_grad=True))


@pytest.mark.parametrize("mistake", [dict(detach=False), dict(zero_grad=False), dict(sign=-1)],
                         ids=["no detach", "no zero_grad", "hinge sign flipped"])
def test_hinge_d_step_checker_rejects(mistake):
    assert not chk.check_hinge_d_step(_hinge_step(**mistake))


def test_hinge_d_step_checker_rejects_a_loss_returned_after_the_step_and_a_g_update():
    def after(D, G, opt_d, x_real, z):
        _hinge_step()(D, G, opt_d, x_real, z)
        return (F.relu(1 - D(x_real)).mean() + F.relu(1 + D(G(z).detach())).mean()).item()

    def moves_g(D, G, opt_d, x_real, z):
        loss = _hinge_step(detach=False)(D, G, opt_d, x_real, z)
        torch.optim.SGD(G.parameters(), lr=0.1).step()
        return loss

    assert not chk.check_hinge_d_step(after)
    assert not chk.check_hinge_d_step(moves_g)


def _r1(points="real", create_graph=True, form="squared"):
    def penalty(D, x_real, x_fake):
        if points == "real":
            x = x_real
        elif points == "fake":
            x = x_fake
        else:
            eps = torch.rand((len(x_real),) + (1,) * (x_real.dim() - 1))
            x = eps * x_real + (1 - eps) * x_fake
        x = x.detach().requires_grad_(True)
        grad, = torch.autograd.grad(D(x).sum(), x, create_graph=create_graph)
        if form == "squared":
            return grad.flatten(1).pow(2).sum(1).mean()
        if form == "gp":
            return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        if form == "dim1":
            return grad.norm(dim=1).pow(2).mean()
        return grad.pow(2).mean()
    return penalty


def test_r1_penalty_checker():
    assert chk.check_r1_penalty(_r1())


@pytest.mark.parametrize("mistake", [dict(points="fake"), dict(points="interpolates"),
                                     dict(create_graph=False), dict(form="gp"), dict(form="dim1"),
                                     dict(form="mean")],
                         ids=["at fakes", "at interpolates", "no create_graph", "(norm - 1)^2",
                              "norm over dim 1 of images", "mean over all elements"])
def test_r1_penalty_checker_rejects(mistake):
    assert not chk.check_r1_penalty(_r1(**mistake))
