"""Lesson 08 (diffusion on images): the exported U-Net, targets, loss, EMA and samplers (which lesson 09
reuses), their errors in the learner's terms, and the checkers fed the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepgen_helpers.checks import lesson08 as chk
from deepgen_helpers.models import diffusion
from deepgen_helpers.models import unet as lesson


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def _schedule(kind="cosine", T=1000):
    return diffusion.NoiseSchedule(diffusion.ScheduleConfig(T=T, kind=kind))


def _net(seed=0, **cfg):
    torch.manual_seed(seed)
    net = lesson.UNet(lesson.UNetConfig(**cfg))
    nn.init.normal_(net.out[-1].weight, std=0.05)            # non-zero outputs
    return net


class ZeroNoise(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t, *args):
        return self.w * x_t


# ------------------------------------------------------------------------------------------------ U-Net
@pytest.mark.parametrize("B", [1, 3])
def test_unet_shapes_and_zero_output_at_init(B):
    torch.manual_seed(0)
    net = lesson.UNet(lesson.UNetConfig())
    out = net(torch.randn(B, 1, 28, 28), torch.randint(0, 1000, (B,)))
    assert out.shape == (B, 1, 28, 28) and torch.equal(out, torch.zeros_like(out))


def test_unet_with_classes_and_attention():
    net = _net(n_classes=10, attention=True)
    x, t = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999])
    with_y = net(x, t, torch.tensor([1, 2, 10]))               # 10 = "no class"
    assert with_y.shape == (3, 1, 28, 28)
    assert torch.allclose(net(x, t), net(x, t, torch.full((3,), 10)))   # y=None is "no class"
    assert not torch.allclose(net(x, t, torch.tensor([1, 1, 1])), net(x, t, torch.tensor([2, 2, 2])))
    assert net.class_emb.num_embeddings == 11


def test_unet_time_embedding_matters_and_parameter_count():
    net = _net()
    x = torch.randn(2, 1, 28, 28)
    assert (net(x, torch.tensor([10, 10])) - net(x, torch.tensor([900, 900]))).abs().mean() > 1e-3
    n = sum(p.numel() for p in lesson.UNet(lesson.UNetConfig()).parameters())
    assert 500_000 < n < 700_000


def test_unet_levels_and_skips():
    for mults in [(1,), (1, 2), (1, 2, 4)]:
        net = _net(mults=mults)
        assert net(torch.randn(2, 1, 28, 28), torch.tensor([3, 4])).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mults=(1, 2, 4, 8)), "28 is not divisible by 8"),
    (dict(mults=()), "one whole number"),
    (dict(channels=12), "GroupNorm"),
    (dict(n_res=0), "n_res"),
])
def test_unet_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lesson.UNetConfig(**kwargs)


def test_unet_input_errors():
    net = _net()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        net(torch.randn(2, 28, 28), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="no classes"):
        net(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), torch.tensor([1, 2]))


def test_resblock_skip_projection_and_attention_equivariance():
    block = lesson.ResBlock(8, 16, 32)
    assert isinstance(block.skip, nn.Conv2d) and isinstance(lesson.ResBlock(8, 8, 32).skip, nn.Identity)
    assert block(torch.randn(2, 8, 6, 6), torch.randn(2, 32)).shape == (2, 16, 6, 6)
    attn, h, perm = lesson.SelfAttention(16), torch.randn(2, 16, 4, 4), torch.randperm(16)
    moved = attn(h.flatten(2)[:, :, perm].reshape(2, 16, 4, 4)).flatten(2)
    assert torch.allclose(moved, attn(h).flatten(2)[:, :, perm], atol=1e-5)


# -------------------------------------------------------------------------------- targets and loss
def test_prediction_round_trips():
    sched = _schedule()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(5, 1, 28, 28, generator=g) * 2 - 1, torch.randn(5, 1, 28, 28, generator=g)
    t = torch.tensor([1, 100, 500, 900, 990])
    x_t = sched.q_sample(x0, t, eps)
    for pred, out in (("eps", eps), ("x0", x0), ("v", lesson.v_target(sched, x0, eps, t))):
        x0_hat, eps_hat = lesson.x0_eps_from_prediction(sched, x_t, t, out, pred)
        assert torch.allclose(x0_hat, x0, atol=2e-3) and torch.allclose(eps_hat, eps, atol=2e-3), pred
    v = lesson.v_target(sched, x0, eps, t)                     # a rotation keeps the norm
    assert torch.allclose(x_t.pow(2).sum((1, 2, 3)) + v.pow(2).sum((1, 2, 3)),
                          x0.pow(2).sum((1, 2, 3)) + eps.pow(2).sum((1, 2, 3)), rtol=1e-4)


def test_loss_is_lesson_07s_eps_loss_when_unweighted():
    net, sched = _net(), _schedule()
    x0 = torch.rand(6, 1, 28, 28) * 2 - 1
    mine = lesson.diffusion_loss(net, sched, x0, pred="eps", min_snr=None,
                                 generator=torch.Generator().manual_seed(4))
    theirs = diffusion.eps_loss(net, sched, x0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(mine, theirs)


def test_min_snr_weights_make_the_three_targets_one_objective():
    """With min-SNR weights, eps, x0 and v losses of the same implied x0 error are equal."""
    sched = _schedule()
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    x0_err = 0.1 * torch.randn(64, 1, 28, 28, generator=g)          # the network's x0 error

    class Fixed(nn.Module):
        """Outputs, for any target, the prediction implied by x0_hat = x0 + x0_err."""

        def __init__(self, pred):
            super().__init__()
            self.pred, self.w = pred, nn.Parameter(torch.zeros(()))

        def forward(self, x_t, t):
            ab = sched.alpha_bar[t][:, None, None, None]
            x0_hat = x0 + x0_err
            eps_hat = (x_t - ab.sqrt() * x0_hat) / (1 - ab).sqrt()
            return {"eps": eps_hat, "x0": x0_hat, "v": ab.sqrt() * eps_hat - (1 - ab).sqrt() * x0_hat}[
                self.pred]

    losses = [lesson.diffusion_loss(Fixed(p), sched, x0, pred=p, min_snr=5.0,
                                    generator=torch.Generator().manual_seed(2)) for p in lesson.PREDICTIONS]
    assert all(math.isclose(a.item(), losses[0].item(), rel_tol=1e-3) for a in losses)


def test_loss_errors_in_the_learners_terms():
    net, sched = _net(), _schedule()
    x0 = torch.rand(2, 1, 28, 28) * 2 - 1
    with pytest.raises(ValueError, match="Did you mean 'eps'"):
        lesson.diffusion_loss(net, sched, x0, pred="eps_")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lesson.diffusion_loss(net, sched, (x0 + 1) / 2)
    with pytest.raises(ValueError, match="parameterisation"):
        lesson.EpsModel(net, sched, "velocity")


# ---------------------------------------------------------------------------------------------- EMA
def test_ema_warm_up_and_decay():
    model = nn.Linear(2, 2)
    ema = lesson.EMA(model, decay=0.9)
    start = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)                                            # d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.model.weight, start + 0.9)
    for _ in range(200):
        ema.update(model)
    assert torch.allclose(ema.model.weight, model.weight, atol=1e-6)
    assert not ema.model.training and not any(p.requires_grad for p in ema.model.parameters())
    with pytest.raises(ValueError):
        lesson.EMA(model, decay=1.0)


# ------------------------------------------------------------------------------------------ samplers
def test_eps_model_clips_the_predicted_x0():
    sched = _schedule()

    class Overshoot(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x_t, t):
            return torch.full_like(x_t, 3.0)                      # x0_hat = 3 for pred="x0"

    x_t, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 700])
    clipped = lesson.EpsModel(Overshoot(), sched, "x0", clip_x0=True)(x_t, t)
    raw = lesson.EpsModel(Overshoot(), sched, "x0", clip_x0=False)(x_t, t)
    assert torch.allclose(sched.predict_x0(x_t, t, clipped), torch.ones_like(x_t), atol=1e-3)
    assert torch.allclose(sched.predict_x0(x_t, t, raw), torch.full_like(x_t, 3.0), atol=1e-3)


def test_ddim_with_eta_1_and_all_steps_is_the_ddpm_posterior_step():
    """By construction: with t' = t - 1 and eta = 1, Eq. 12's mean and sigma^2 are the posterior
    q(x_{t-1} | x_t, x0_hat) of Ho et al. Eq. 6-7 (mean and beta tilde). Checked for one step."""
    sched = _schedule("linear", T=50)
    t = 30
    taus = lesson.ddim_timesteps(50, 50)
    assert torch.equal(taus, torch.arange(49, -1, -1))
    g = torch.Generator().manual_seed(0)
    x_t, eps_hat = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    ab, ab_prev = sched.alpha_bar[t], sched.alpha_bar[t - 1]
    x0_hat = (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
    mean, var = sched.posterior_mean_var(x0_hat, x_t, torch.full((4,), t))
    z = torch.randn(4, 2, generator=g)
    assert chk._ddim_step(x_t, eps_hat, t, t - 1, sched, 1.0, z).shape == (4, 2)
    step = chk._ddim_step(x_t.double(), eps_hat.double(), t, t - 1, sched, 1.0, z.double())
    assert torch.allclose(step, mean.double() + var.double().sqrt() * z.double(), atol=1e-4)


class _OneStep(nn.Module):
    """Records the (x_t, t) it was called with and predicts a fixed eps."""

    def __init__(self, eps):
        super().__init__()
        self.eps, self.calls, self.w = eps, [], nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t):
        self.calls.append((x_t.clone(), t.clone(), self.training))
        return self.eps.expand_as(x_t)


def test_ddim_sample_is_eq_12_step_by_step():
    sched = _schedule("cosine", T=100)
    model = _OneStep(torch.randn(1, 2, generator=torch.Generator().manual_seed(3)))
    for eta in (0.0, 1.0):
        model.calls.clear()
        g = torch.Generator().manual_seed(7)
        out, traj = lesson.ddim_sample(model, sched, (3, 2), steps=5, eta=eta, generator=g,
                                       trajectory_every=1)
        taus = lesson.ddim_timesteps(100, 5).tolist()
        assert [int(c[1][0]) for c in model.calls] == taus and taus[0] == 99 and taus[-1] == 0
        assert not any(c[2] for c in model.calls)                     # eval mode inside
        g = torch.Generator().manual_seed(7)
        x = torch.randn(3, 2, generator=g)
        for i, t in enumerate(taus):
            t_prev = taus[i + 1] if i + 1 < len(taus) else -1
            z = torch.randn(3, 2, generator=g) if eta > 0 and t_prev >= 0 else torch.zeros(3, 2)
            x = chk._ddim_step(x, model.eps.expand(3, 2), t, t_prev, sched, eta, z)
        assert torch.allclose(out, x, atol=1e-4)
        assert [s[0] for s in traj] == [100] + [tp + 1 for tp in taus[1:]] + [0]
        assert torch.equal(traj[-1][1], out)


def test_ddim_determinism_and_mode_restoration():
    sched, net = _schedule(T=100), _net()
    net.train()
    eps_model = lesson.EpsModel(net, sched, "v")
    a = lesson.ddim_sample(eps_model, sched, (2, 1, 28, 28), 3, generator=torch.Generator().manual_seed(1))
    b = lesson.ddim_sample(eps_model, sched, (2, 1, 28, 28), 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and net.training and eps_model.training
    assert a.min() >= -1 - 1e-4 and a.max() <= 1 + 1e-4              # clipped x0 at the last step

    class Broken(ZeroNoise):
        def forward(self, x_t, t):
            raise RuntimeError("boom")

    broken = Broken().train()
    with pytest.raises(RuntimeError):
        lesson.ddim_sample(broken, sched, (1, 2), 2)
    assert broken.training


@pytest.mark.parametrize("steps", [0, 1001, 2.5, True])
def test_ddim_steps_errors(steps):
    with pytest.raises(ValueError, match="steps"):
        lesson.ddim_sample(ZeroNoise(), _schedule(), (1, 2), steps)


def test_ddim_eta_error():
    with pytest.raises(ValueError, match="eta"):
        lesson.ddim_sample(ZeroNoise(), _schedule(), (1, 2), 5, eta=2.0)


def test_respace_and_lesson_07_sampler():
    sched = _schedule()
    same, taus = lesson.respace(sched, 1000)
    assert torch.equal(taus, torch.arange(1000))
    assert torch.allclose(same.betas, sched.betas, atol=1e-6)
    short, taus = lesson.respace(sched, 10)
    assert torch.allclose(short.alpha_bar, sched.alpha_bar[taus])
    assert torch.allclose(short.alpha_bar, torch.cumprod(short.alphas.double(), 0).float(), rtol=1e-4)
    model = _OneStep(torch.zeros(1, 2))
    out = diffusion.ddpm_sample(lesson.Respaced(model, taus), short, (2, 2),
                                generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 2) and [int(c[1][0]) for c in model.calls] == taus.flip(0).tolist()


def test_training_loop_runs_and_learns_a_little():
    torch.manual_seed(0)
    net, sched = lesson.UNet(lesson.UNetConfig(channels=8, mults=(1, 2))), _schedule()
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    cfg = lesson.UNetTrainConfig(steps=6, batch_size=8, warmup=2, snapshots=1, desc="test")
    result = lesson.train_unet(net, sched, x, cfg)
    assert len(result["history"]) == 6 and len(result["snapshots"]) == 1
    assert result["snapshots"][0][1].shape == (16, 1, 28, 28) and not net.training
    assert result["ema"].updates == 6
    with pytest.raises(ValueError, match="Did you mean 'v'"):
        lesson.train_unet(net, sched, x, lesson.UNetTrainConfig(pred="vv", steps=1))


# ----------------------------------------------------------------------------------------- checkers
def test_v_target_checker():
    assert chk.check_v_target(lambda s, x0, eps, t: lesson.v_target(s, x0, eps, t))


def _v_mistake(kind):
    def fn(schedule, x0, eps, t):
        ab = schedule.alpha_bar[t].reshape(-1, *[1] * (x0.dim() - 1))
        a = schedule.alphas[t].reshape(-1, *[1] * (x0.dim() - 1))
        return {"signs": (1 - ab).sqrt() * x0 - ab.sqrt() * eps,
                "factors swapped": (1 - ab).sqrt() * eps - ab.sqrt() * x0,
                "alpha_t": a.sqrt() * eps - (1 - a).sqrt() * x0,
                "variances": ab * eps - (1 - ab) * x0,
                "plus": ab.sqrt() * eps + (1 - ab).sqrt() * x0}[kind]
    return fn


@pytest.mark.parametrize("mistake", ["signs", "factors swapped", "alpha_t", "variances", "plus"])
def test_v_target_checker_rejects(mistake):
    assert not chk.check_v_target(_v_mistake(mistake))


def _ddim_good(x_t, eps_hat, t, t_prev, schedule, eta, z):
    ab = schedule.alpha_bar[t]
    ab_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
    x0 = (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).sqrt() * eps_hat + sigma * z


def _ddim_mistake(kind):
    def fn(x_t, eps_hat, t, t_prev, schedule, eta, z):
        if kind == "alpha_t":
            ab, ab_prev = schedule.alphas[t], schedule.alphas[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        elif kind == "wraps to the last step":
            ab, ab_prev = schedule.alpha_bar[t], schedule.alpha_bar[t_prev]
        else:
            ab = schedule.alpha_bar[t]
            ab_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        x0 = (x_t - (1 - ab).sqrt() * eps_hat) / ab.sqrt()
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        direction = (1 - ab_prev - sigma ** 2).sqrt() * eps_hat
        noise = sigma * z
        if kind == "noise with eta = 0":
            noise = (sigma if eta > 0 else 0.1) * z
        if kind == "direction without sigma":
            direction = (1 - ab_prev).sqrt() * eps_hat
        if kind == "direction with alpha_bar_t":
            direction = (1 - ab).sqrt() * eps_hat
        return ab_prev.sqrt() * x0 + direction + noise
    return fn


def test_ddim_step_checker():
    assert chk.check_ddim_step(_ddim_good)


@pytest.mark.parametrize("mistake", ["alpha_t", "wraps to the last step", "noise with eta = 0",
                                     "direction without sigma", "direction with alpha_bar_t"])
def test_ddim_step_checker_rejects(mistake):
    assert not chk.check_ddim_step(_ddim_mistake(mistake))


def _ema_good(shadow, params, decay, n):
    d = min(decay, (1 + n) / (10 + n))
    return [s.lerp(p, 1 - d) for s, p in zip(shadow, params)]


def test_ema_update_checker():
    assert chk.check_ema_update(_ema_good)


def _ema_mistake(kind):
    def fn(shadow, params, decay, n):
        d = min(decay, (1 + n) / (10 + n))
        if kind == "decay on the wrong side":
            return [(1 - d) * s + d * p for s, p in zip(shadow, params)]
        if kind == "no warm-up":
            return [decay * s + (1 - decay) * p for s, p in zip(shadow, params)]
        if kind == "max instead of min":
            d = max(decay, (1 + n) / (10 + n))
            return [d * s + (1 - d) * p for s, p in zip(shadow, params)]
        for s, p in zip(shadow, params):                      # "in place"
            s.mul_(d).add_((1 - d) * p)
        return shadow
    return fn


@pytest.mark.parametrize("mistake", ["decay on the wrong side", "no warm-up", "max instead of min",
                                     "in place"])
def test_ema_update_checker_rejects(mistake):
    assert not chk.check_ema_update(_ema_mistake(mistake))


def test_res_block_checker():
    assert chk.check_res_block(lesson.ResBlock)


def _block_mistake(kind):
    class Block(lesson.ResBlock):
        def __init__(self, c_in, c_out, emb_dim, groups=8):
            super().__init__(c_in, c_out, emb_dim, groups)
            if kind == "no skip projection":
                self.skip = nn.Identity()

        def forward(self, x, emb):
            h = self.conv1(F.silu(self.norm1(x)))
            shift = self.emb(F.silu(emb))[:, :, None, None]
            if kind != "embedding after the sum" and kind != "no embedding":
                h = h + shift
            h = self.conv2(F.silu(self.norm2(h)))
            if kind == "no residual":
                return h
            out = h + self.skip(x) if kind != "no skip projection" else h + x[:, :h.shape[1]]
            return out + shift if kind == "embedding after the sum" else out
    return Block


@pytest.mark.parametrize("mistake", ["embedding after the sum", "no embedding", "no residual",
                                     "no skip projection"])
def test_res_block_checker_rejects(mistake):
    assert not chk.check_res_block(_block_mistake(mistake))


def test_ddim_sample_with_all_steps_and_eta_1_is_ancestral_sampling_with_beta_tilde():
    """The whole sampler, steps = T, eta = 1: each step is mean + sqrt(beta tilde) z of the posterior
    q(x_{t-1} | x_t, x0_hat) (Ho et al. Eq. 6-7), the noise drawn from the same generator."""
    sched = _schedule("linear", T=20)
    model = _OneStep(torch.randn(1, 2, generator=torch.Generator().manual_seed(9)))
    out = lesson.ddim_sample(model, sched, (5, 2), steps=20, eta=1.0,
                             generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(8)
    x = torch.randn(5, 2, generator=g)
    for t in range(19, -1, -1):
        tt = torch.full((5,), t)
        x0_hat = sched.predict_x0(x, tt, model.eps.expand(5, 2))
        mean, var = sched.posterior_mean_var(x0_hat, x, tt)
        x = mean + (var.sqrt() * torch.randn(5, 2, generator=g) if t > 0 else 0)
    # float32: the two routes round differently near t = 0 (up to ~5e-4); a wrong variance or a
    # missing noise term misses by far more
    assert torch.allclose(out, x, atol=2e-3)


# --------------------------------------------------------------------------------------------------
# Shipped models (scripts/train_lesson08.py) and the benchmark script
# --------------------------------------------------------------------------------------------------
SHIPPED = {"ddpm_mnist": ("mnist", 0.95), "ddpm_fashion_mnist": ("fashion_mnist", 0.75)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_manifest_entry(name):
    from deepgen_helpers import checkpoints

    entry = checkpoints.read_manifest()[name]
    assert entry["lesson"] == "08_diffusion_on_images"
    assert entry["command"].startswith("python scripts/train_lesson08.py ddpm")
    assert f"--dataset {SHIPPED[name][0]}" in entry["command"] and "--half" in entry["command"]
    assert entry["bytes"] < 1_500_000                     # 0.62 M parameters in float16
    assert checkpoints.shipped_path(name).exists()        # also verifies the sha256


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_draws_the_classes_asked_for(name):
    """100 samples (10 per class, 10 DDIM steps) are mostly of the class asked for: a quick check that
    the file, the config and WithLabels fit together (the manifest holds the 1,000-sample quality)."""
    from deepgen_helpers import checkpoints, metrics

    dataset, bar = SHIPPED[name]
    model = lesson.UNet(lesson.UNetConfig(n_classes=10))
    checkpoints.load_shipped(name, model)
    y = torch.arange(100) % 10
    eps_model = lesson.WithLabels(lesson.EpsModel(model, _schedule(), "v"), y)
    x = lesson.ddim_sample(eps_model, _schedule(), (100, 1, 28, 28), 10,
                           generator=torch.Generator().manual_seed(0))
    accuracy = (metrics.predict((x + 1) / 2, dataset) == y).float().mean().item()
    assert accuracy >= bar, accuracy


def test_bench_script_trains_both_recipes_for_the_budget(capsys):
    import json
    import sys

    from deepgen_helpers.config import repo_root

    sys.path.insert(0, str(repo_root() / "scripts"))
    import bench_diffusion_baseline as bench

    model, schedule, info = bench.train("textbook", seed=0, seconds=0.5, threads=1)
    assert info["cpu_seconds"] >= 0.5 and info["steps"] >= 1
    assert schedule.T == 1000 and schedule.betas[0].item() == pytest.approx(1e-4)   # linear
    _, schedule, info = bench.train("recipe", seed=0, seconds=0.5, threads=1)
    assert schedule.betas[0].item() < 1e-4                                          # cosine
    with pytest.raises(SystemExit):
        bench.main(["--n", "300"])                     # not a multiple of 250: a clear error
    assert "multiple of 250" in capsys.readouterr().err
