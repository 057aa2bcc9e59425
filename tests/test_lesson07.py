"""Lesson 07 (diffusion fundamentals): the exported schedule, forward process, loss and sampler (which
lesson 08 reuses), their errors in the learner's terms, one claim of the lesson, and the checkers fed
the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import metrics
from deepgen_helpers.checks import lesson07 as chk
from deepgen_helpers.models import diffusion as lesson
from deepgen_helpers.models.gan2d import toy_modes


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def _schedule(kind="linear", T=1000):
    return lesson.NoiseSchedule(lesson.ScheduleConfig(T=T, kind=kind))


class ZeroNoise(torch.nn.Module):
    """Predicts eps = 0 for data of any shape (has a parameter, so it has a device and a mode)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t):
        return self.w * x_t


# ------------------------------------------------------------------------------------------ schedules
def test_linear_betas_follow_ho_et_al():
    betas = lesson.linear_betas(1000)
    assert betas.shape == (1000,) and betas.dtype == torch.float64
    assert math.isclose(betas[0].item(), 1e-4) and math.isclose(betas[-1].item(), 0.02)
    assert (betas.diff() > 0).all()


def test_cosine_alpha_bar_endpoints_and_clipped_betas():
    ab = lesson.cosine_alpha_bar(1000)
    f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2   # noqa: E731
    assert math.isclose(ab[0].item(), f(1) / f(0), rel_tol=1e-12)          # the paper's t = 1
    assert 0.9999 < ab[0] < 1 and ab[-1] < 1e-6 and (ab.diff() < 0).all()
    betas = lesson.cosine_betas(1000)
    assert betas.max() <= 0.999 and math.isclose(betas[-1].item(), 0.999)
    sched = _schedule("cosine")
    assert torch.allclose(sched.alpha_bar, torch.cumprod(1 - sched.betas.double(), 0).float())
    # before the clipping the schedule's alpha_bar is Eq. 17 itself
    assert torch.allclose(sched.alpha_bar[:-1].double(), ab[:-1], rtol=1e-5, atol=1e-7)


def test_schedule_buffers_and_snr():
    sched = _schedule()
    assert {n for n, _ in sched.named_buffers()} >= {"betas", "alphas", "alpha_bar"}
    assert sched.T == 1000 and all(b.shape == (1000,) for b in sched.buffers())
    t = torch.tensor([0, 499, 999])
    ab = sched.alpha_bar[t]
    assert torch.allclose(sched.snr(t), ab / (1 - ab))
    assert (sched.snr(torch.arange(1000)).diff() < 0).all()
    moved = sched.to(torch.device("meta"))                     # buffers travel with .to(device)
    assert all(b.device.type == "meta" for b in moved.buffers())


# ---------------------------------------------------------------------------------- forward process
def test_closed_form_matches_the_chain():
    """Eq. 4 against Eq. 2 run step by step: mean and variance of 20,000 chains within 4.5 SE."""
    for kind in ("linear", "cosine"):
        sched = _schedule(kind, T=200)
        x0 = torch.tensor([[1.5, -0.5]])
        n, g = 20_000, torch.Generator().manual_seed(0)
        x = x0.repeat(n, 1)
        for t in range(sched.T):
            x = (1 - sched.betas[t]).sqrt() * x + sched.betas[t].sqrt() * torch.randn(
                x.shape, generator=g)
            if t in (0, 20, 100, 199):
                ab = sched.alpha_bar[t].double()
                mean, var = ab.sqrt() * x0.double(), 1 - ab
                z_mean = (x.double().mean(0) - mean) / (var / n).sqrt()
                z_var = (x.double().var(0) - var) / (var * math.sqrt(2 / (n - 1)))
                assert z_mean.abs().max() < 4.5 and z_var.abs().max() < 4.5, (kind, t)
        # and q_sample draws from that same distribution
        one = sched.q_sample(x0.repeat(n, 1), torch.full((n,), sched.T - 1),
                             torch.randn(n, 2, generator=g))
        assert ((one.mean(0) - x.mean(0)).abs() < 4.5 * math.sqrt(2 / n)).all()


@pytest.mark.parametrize("shape", [(4, 2), (4, 1, 28, 28), (4, 3, 8, 8)])
def test_shapes_for_points_and_images(shape):
    sched = _schedule()
    x0, eps, t = torch.randn(shape), torch.randn(shape), torch.tensor([0, 1, 500, 999])
    x_t = sched.q_sample(x0, t, eps)
    assert x_t.shape == shape
    ab = sched.alpha_bar[t].reshape(-1, *[1] * (len(shape) - 1))
    assert torch.allclose(x_t, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    assert torch.allclose(sched.predict_x0(x_t, t, eps), x0, atol=2e-3)
    mean, var = sched.posterior_mean_var(x0, x_t, t)
    assert mean.shape == shape and var.shape == (4,) + (1,) * (len(shape) - 1)
    out = lesson.ddpm_sample(ZeroNoise(), _schedule(T=20), (2,) + shape[1:])
    assert out.shape == (2,) + shape[1:]
    loss = lesson.eps_loss(ZeroNoise(), sched, x0, generator=torch.Generator().manual_seed(0))
    assert loss.dim() == 0


def test_posterior_is_eq_7_and_matches_the_eps_form():
    for kind in ("linear", "cosine"):
        sched = _schedule(kind)
        x0, eps = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
        t = torch.tensor([0, 1, 10, 500, 998])
        x_t = sched.q_sample(x0.float(), t, eps.float()).double()
        mean, var = sched.posterior_mean_var(x0.float(), x_t.float(), t)
        a, b, ab = (v[t].double()[:, None] for v in (sched.alphas, sched.betas, sched.alpha_bar))
        mu_eps = (x_t - b / (1 - ab).sqrt() * eps) / a.sqrt()                   # Eq. 10
        assert torch.allclose(mean.double(), mu_eps, atol=1e-3)
        assert var[0].item() == 0.0                                             # beta_tilde_1 = 0
        ab_prev = sched.alpha_bar[t - 1].double()[:, None]
        assert torch.allclose(var[1:].double(), ((1 - ab_prev) / (1 - ab) * b)[1:], rtol=1e-5)


# ------------------------------------------------------------------------------- loss and network
def test_eps_loss_of_a_zero_predictor_is_one_and_reproducible():
    sched = _schedule()
    x0 = torch.randn(20_000, 2)
    loss = lesson.eps_loss(ZeroNoise(), sched, x0, generator=torch.Generator().manual_seed(0))
    assert abs(loss.item() - 1) < 0.03
    a = lesson.eps_loss(ZeroNoise(), sched, x0[:8], generator=torch.Generator().manual_seed(1))
    b = lesson.eps_loss(ZeroNoise(), sched, x0[:8], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_eps_loss_is_l_simple_for_known_t_and_eps():
    """With t and eps drawn from the same generator, eps_loss equals Eq. 14 written out."""
    torch.manual_seed(0)
    model, sched = lesson.TinyDenoiser(lesson.TinyDenoiserConfig()), _schedule()
    x0 = torch.randn(16, 2)
    got = lesson.eps_loss(model, sched, x0, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t, eps = torch.randint(1000, (16,), generator=g), torch.randn(16, 2, generator=g)
    ab = sched.alpha_bar[t][:, None]
    want = F.mse_loss(model(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t), eps)
    assert torch.allclose(got, want)


def test_timestep_embedding():
    emb = lesson.timestep_embedding(torch.tensor([0, 1, 999]), 32)
    assert emb.shape == (3, 32) and emb.abs().max() <= 1
    assert torch.equal(emb[0], torch.cat([torch.zeros(16), torch.ones(16)]))
    assert lesson.timestep_embedding(torch.arange(4), 7).shape == (4, 7)
    assert torch.allclose(lesson.timestep_embedding(torch.tensor([3]), 8),
                          lesson.timestep_embedding(torch.tensor([3.0]), 8))


# ------------------------------------------------------------------------------------------ sampler
def test_sampler_is_deterministic_with_a_seeded_generator_and_restores_the_mode():
    torch.manual_seed(0)
    model, sched = lesson.TinyDenoiser(lesson.TinyDenoiserConfig()), _schedule(T=50)
    for mode in (True, False):
        model.train(mode)
        a = lesson.ddpm_sample(model, sched, (64, 2), torch.Generator().manual_seed(3))
        b = lesson.ddpm_sample(model, sched, (64, 2), torch.Generator().manual_seed(3))
        assert torch.equal(a, b) and model.training == mode
    c = lesson.ddpm_sample(model, sched, (64, 2), torch.Generator().manual_seed(4))
    assert not torch.equal(a, c)


def test_sampler_restores_the_mode_after_an_error():
    class Broken(ZeroNoise):
        def forward(self, x_t, t):
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        lesson.ddpm_sample(model, _schedule(T=5), (2, 2))
    assert model.training


def test_sampler_uses_eval_mode_inside():
    seen = []

    class Spy(ZeroNoise):
        def forward(self, x_t, t):
            seen.append(self.training)
            return super().forward(x_t, t)

    lesson.ddpm_sample(Spy().train(), _schedule(T=5), (2, 2))
    assert seen == [False] * 5


def test_sampler_is_algorithm_2_and_its_trajectory():
    """With eps_hat = 0 and T = 3 the chain is x_{t-1} = x_t / sqrt(alpha_t) + sqrt(beta_t) z,
    with no noise at the last step."""
    sched = _schedule(T=3)
    x0, traj = lesson.ddpm_sample(ZeroNoise(), sched, (4, 2), torch.Generator().manual_seed(0),
                                  trajectory_every=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, generator=g)
    assert [t for t, _ in traj] == [3, 2, 1, 0] and torch.equal(traj[0][1], x)
    for t in (2, 1, 0):
        x = x / sched.alphas[t].sqrt()
        if t > 0:
            x = x + sched.betas[t].sqrt() * torch.randn(4, 2, generator=g)
        assert torch.allclose(traj[3 - t][1], x)
    assert torch.equal(traj[-1][1], x0)
    _, traj = lesson.ddpm_sample(ZeroNoise(), _schedule(T=1000), (2, 2), trajectory_every=250)
    assert [t for t, _ in traj] == [1000, 750, 500, 250, 0]


def test_ddpm_learns_the_ring():
    """The lesson's recipe (cosine schedule, 3,000 steps, seed 0) on lesson 04's ring: all 8 modes
    and over 90 % high-quality samples (lesson: 0.94 over three seeds); about 12 s on one core."""
    x = lesson_ring_data()
    torch.manual_seed(0)
    model, sched = lesson.TinyDenoiser(lesson.TinyDenoiserConfig()), _schedule("cosine")
    history = lesson.train_denoiser(model, sched, x / 2, lesson.DiffusionTrainConfig(seed=0))
    assert history.mean("loss", last=200) < history.mean("loss")
    samples = 2 * lesson.ddpm_sample(model, sched, (2500, 2), torch.Generator().manual_seed(1000))
    centres, sigma = toy_modes("ring")
    cov = metrics.mode_coverage(samples, centres, sigma, min_count=32)
    assert cov["modes_covered"] == 8 and cov["high_quality"] > 0.9, cov


def lesson_ring_data():
    from deepgen_helpers import data
    return data.make_toy_2d("gaussian_mixture", 20_000, seed=0)


def test_mmd2():
    from deepgen_helpers import data
    a, b = (data.make_toy_2d("moons", 1000, seed=s) for s in (1, 2))
    same, shifted = lesson.mmd2(a, b, 0.2), lesson.mmd2(a, b + 0.3, 0.2)
    assert abs(same) < 1e-3 < shifted
    assert math.isclose(lesson.mmd2(a, b + 0.3, 0.2), lesson.mmd2(b + 0.3, a, 0.2), rel_tol=1e-9)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="cosin"), "Did you mean 'cosine'"),
    (dict(kind="quadratic"), "kind must be one of"),
    (dict(T=0), "T is the number of diffusion steps"),
    (dict(T=10.0), "T is the number of diffusion steps"),
    (dict(beta_1=0.0), "strictly between 0 and 1"),
    (dict(beta_T=1.5), "strictly between 0 and 1"),
    (dict(beta_1=0.05, beta_T=0.02), "beta_1"),
    (dict(s=-0.1), "cosine offset"),
])
def test_schedule_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lesson.ScheduleConfig(**kwargs)


def test_q_sample_errors_in_the_learners_terms():
    sched = _schedule()
    x0 = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"0\.\.999 .*paper's t = 1\.\.T"):
        sched.q_sample(x0, torch.tensor([0, 1, 2, 1000]), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"0\.\.999"):
        sched.q_sample(x0, torch.tensor([-1, 1, 2, 3]), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"one step per example, shape \(4,\)"):
        sched.q_sample(x0, torch.zeros(3, dtype=torch.long), torch.randn(4, 2))
    with pytest.raises(TypeError, match="integer tensor"):
        sched.q_sample(x0, torch.zeros(4), torch.randn(4, 2))
    with pytest.raises(TypeError, match="integer tensor"):
        sched.q_sample(x0, 5, torch.randn(4, 2))
    with pytest.raises(ValueError, match="eps must have the shape of x0"):
        sched.q_sample(x0, torch.zeros(4, dtype=torch.long), torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"schedule\.to\(device\)"):
        _schedule().to(torch.device("meta")).q_sample(x0, torch.zeros(4, dtype=torch.long), x0)


def test_other_errors():
    with pytest.raises(ValueError, match="1-D tensor"):
        lesson.timestep_embedding(torch.zeros(2, 3), 8)
    with pytest.raises(ValueError, match="dim must be"):
        lesson.timestep_embedding(torch.zeros(2), 1)
    with pytest.raises(ValueError, match="trajectory_every"):
        lesson.ddpm_sample(ZeroNoise(), _schedule(T=5), (2, 2), trajectory_every=-1)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 2\)"):
        lesson.TinyDenoiser(lesson.TinyDenoiserConfig())(torch.zeros(3, 3), torch.zeros(3).long())


# ----------------------------------------------------------------------------------------- checkers
def _q_good(x0, t, eps, betas):
    ab = torch.cumprod(1 - betas, 0)[t].reshape(-1, *[1] * (x0.dim() - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def _q_loop(x0, t, eps, betas):
    out = []
    for i in range(len(t)):
        ab = torch.prod(1 - betas[: int(t[i]) + 1])
        out.append(ab.sqrt() * x0[i] + (1 - ab).sqrt() * eps[i])
    return torch.stack(out)


def _q_mistake(kind):
    def fn(x0, t, eps, betas):
        shape = (-1,) + (1,) * (x0.dim() - 1)
        if kind == "alpha_t":
            ab = (1 - betas)[t]
        elif kind == "exclusive cumprod":
            ab = torch.cat([torch.ones(1), torch.cumprod(1 - betas, 0)[:-1]])[t]
        elif kind == "one minus cumsum":
            ab = 1 - torch.cumsum(betas, 0)[t]
        elif kind == "paper index":
            ab = torch.cumprod(1 - betas, 0)[(t + 1).clamp(max=len(betas) - 1)]
        else:
            ab = torch.cumprod(1 - betas, 0)[t]
        if kind == "2-D only":                        # works for points, not for images
            ab = ab[:, None]
            return ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        ab = ab.reshape(shape)
        if kind == "variance":
            return ab * x0 + (1 - ab) * eps
        if kind == "swapped":
            return (1 - ab).sqrt() * x0 + ab.sqrt() * eps
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    return fn


def test_q_sample_from_betas_checker():
    assert chk.check_q_sample_from_betas(_q_good)
    assert chk.check_q_sample_from_betas(_q_loop)
    assert chk.check_q_sample_from_betas(                      # computed in float64
        lambda x0, t, eps, betas: _q_good(x0.double(), t, eps.double(), betas.double()).float())


@pytest.mark.parametrize("mistake", ["alpha_t", "variance", "exclusive cumprod", "one minus cumsum",
                                     "paper index", "2-D only", "swapped"])
def test_q_sample_from_betas_checker_rejects(mistake):
    assert not chk.check_q_sample_from_betas(_q_mistake(mistake))


def _loss_good(model, schedule, x0, t, eps):
    return (eps - model(schedule.q_sample(x0, t, eps), t)).pow(2).flatten(1).mean(1)


def _loss_manual(model, schedule, x0, t, eps):
    ab = schedule.alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    err = F.mse_loss(model(x_t, t), eps, reduction="none")
    return err.mean(dim=tuple(range(1, x0.dim())))


def _loss_mistake(kind):
    def fn(model, schedule, x0, t, eps):
        x_t = schedule.q_sample(x0, t, eps)
        if kind == "alpha_t":
            a = schedule.alphas[t].reshape(-1, *[1] * (x0.dim() - 1))
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        inp = x0 if kind == "model sees x0" else x_t
        tt = t + 1 if kind == "t + 1" else t
        pred = model(inp, tt)
        target = {"target x0": x0, "target x_t": x_t}.get(kind, eps)
        err = (target - pred).pow(2).flatten(1)
        if kind == "batch mean":
            return err.mean()
        if kind == "sum over elements":
            return err.sum(1)
        if kind == "no reduction":
            return (target - pred).pow(2)
        return err.mean(1)
    return fn


def test_eps_loss_per_example_checker():
    assert chk.check_eps_loss_per_example(_loss_good)
    assert chk.check_eps_loss_per_example(_loss_manual)


@pytest.mark.parametrize("mistake", ["target x0", "target x_t", "model sees x0", "t + 1",
                                     "alpha_t", "batch mean", "sum over elements", "no reduction"])
def test_eps_loss_per_example_checker_rejects(mistake):
    assert not chk.check_eps_loss_per_example(_loss_mistake(mistake))


def _step_good(x_t, eps_hat, t, schedule, z):
    beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    ab_prev = schedule.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = (x_t - beta / (1 - ab).sqrt() * eps_hat) / alpha.sqrt()
    return mean + ((1 - ab_prev) / (1 - ab) * beta).sqrt() * z


def _step_posterior(x_t, eps_hat, t, schedule, z):
    """Through the lesson's own posterior: predict x0, then q(x_{t-1} | x_t, x0_hat)."""
    tt = torch.full((len(x_t),), t)
    mean, var = schedule.posterior_mean_var(schedule.predict_x0(x_t, tt, eps_hat), x_t, tt)
    return mean + var.sqrt() * z


def _step_mistake(kind):
    def fn(x_t, eps_hat, t, schedule, z):
        beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
        ab_prev = schedule.alpha_bar[t - 1] if (t > 0 or kind == "wraps to the last step") \
            else torch.tensor(1.0)
        coef = {"sqrt(1 - alpha_bar)": (1 - ab).sqrt(),
                "beta / sqrt(1 - alpha)": beta / (1 - alpha).sqrt(),
                "no coefficient": torch.tensor(1.0)}.get(kind, beta / (1 - ab).sqrt())
        root = ab.sqrt() if kind == "sqrt(alpha_bar)" else alpha.sqrt()
        mean = x_t - coef * eps_hat if kind == "no 1/sqrt(alpha)" else (x_t - coef * eps_hat) / root
        var = (1 - ab_prev) / (1 - ab) * beta
        if kind == "beta, as in Algorithm 2":
            var = beta
        if kind == "variance as std":
            return mean + var * z
        return mean + var.sqrt() * z
    return fn


def test_ddpm_step_tilde_checker():
    assert chk.check_ddpm_step_tilde(_step_good)
    assert chk.check_ddpm_step_tilde(_step_posterior)


@pytest.mark.parametrize("mistake", ["sqrt(1 - alpha_bar)", "beta / sqrt(1 - alpha)", "no coefficient",
                                     "sqrt(alpha_bar)", "no 1/sqrt(alpha)", "beta, as in Algorithm 2",
                                     "variance as std", "wraps to the last step"])
def test_ddpm_step_tilde_checker_rejects(mistake):
    assert not chk.check_ddpm_step_tilde(_step_mistake(mistake))
