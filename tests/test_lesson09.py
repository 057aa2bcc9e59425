"""Lesson 09 (guidance, inpainting, editing): the exported guidance module, its errors in the learner's
terms, and the checkers fed the mistakes learners make."""
import pytest
import torch
from torch import nn

from deepgen_helpers.checks import lesson09 as chk
from deepgen_helpers.models import diffusion
from deepgen_helpers.models import guidance as lesson
from deepgen_helpers.models import unet


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def _schedule(kind="cosine", T=1000):
    return diffusion.NoiseSchedule(diffusion.ScheduleConfig(T=T, kind=kind))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = unet.UNet(unet.UNetConfig(channels=8, mults=(1, 2), n_classes=10))
    nn.init.normal_(model.out[-1].weight, std=0.05)                  # non-zero outputs
    return model.eval()


class Recorder(nn.Module):
    """A toy eps-model, eps_hat = a * x_t, that counts its calls and records its mode."""

    def __init__(self, a=0.1):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.calls, self.modes = 0, set()

    def forward(self, x_t, t, *args):
        self.calls += 1
        self.modes.add(self.training)
        return self.a * x_t


def _digits(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def _bottom_missing():
    m = torch.ones(28, 28)
    m[14:] = 0
    return m


# ------------------------------------------------------------------------------------- guidance
def test_guided_scale_zero_is_the_conditional_model(net):
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([10, 500, 900]), torch.tensor([3, 1, 8])
    with torch.no_grad():
        assert torch.equal(lesson.Guided(net, y, 0.0)(x, t), net(x, t, y))
        assert torch.equal(lesson.Guided(net, y, 0)(x, t), net(x, t, y))


@pytest.mark.parametrize("w", [0.5, 2.0, 4.0])
def test_guided_is_eq_6_in_one_batched_call(net, w):
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([10, 500, 900]), torch.tensor([3, 1, 8])
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t)
        got = lesson.Guided(net, y, w)(x, t)
    assert torch.allclose(got, (1 + w) * cond - w * uncond, atol=1e-5)
    calls = []
    hook = net.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            lesson.Guided(net, y, w)(x, t)
    finally:
        hook.remove()
    assert calls == [6]                                     # one forward pass of 2B


def test_guiding_v_equals_guiding_eps(net):
    sched = _schedule()
    x, t, y, w = torch.randn(3, 1, 28, 28), torch.tensor([10, 500, 900]), torch.tensor([0, 5, 9]), 3.0
    eps = unet.EpsModel(net, sched, "v", clip_x0=False)
    with torch.no_grad():
        via_v = unet.EpsModel(lesson.Guided(net, y, w), sched, "v", clip_x0=False)(x, t)
        via_eps = (1 + w) * eps(x, t, y) - w * eps(x, t)
    assert torch.allclose(via_v, via_eps, atol=1e-4)


@pytest.mark.parametrize("y, scale, err, match", [
    (torch.tensor([3, 10, 1]), 1.0, ValueError, r"0\.\.9"),
    (torch.tensor([-1, 2, 1]), 1.0, ValueError, r"0\.\.9"),
    (torch.tensor([3.0, 1.0, 8.0]), 1.0, TypeError, "integer"),
    (torch.tensor([[3, 1, 8]]), 1.0, TypeError, "1-D"),
    (torch.tensor([3, 1, 8]), -1.0, ValueError, "w=-1"),
    (torch.tensor([3, 1, 8]), float("inf"), ValueError, ">= 0"),
    (torch.tensor([3, 1, 8]), True, ValueError, ">= 0"),
    (torch.tensor([3, 1, 8]), "2", ValueError, ">= 0"),
])
def test_guided_errors(net, y, scale, err, match):
    with pytest.raises(err, match=match):
        lesson.Guided(net, y, scale)


def test_guided_wrong_length_and_unconditional_network(net):
    with pytest.raises(ValueError, match="one class per image"):
        lesson.Guided(net, torch.tensor([1, 2]), 1.0)(torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="class-conditional"):
        lesson.Guided(unet.UNet(unet.UNetConfig(channels=8, mults=(1,))), torch.tensor([1]), 1.0)


def test_guided_sampling_deterministic_and_mode_restored(net):
    sched = _schedule()
    guided = unet.EpsModel(lesson.Guided(net, torch.tensor([1, 7]), 2.0), sched, "v")
    guided.train()
    a = unet.ddim_sample(guided, sched, (2, 1, 28, 28), 3, generator=torch.Generator().manual_seed(1))
    b = unet.ddim_sample(guided, sched, (2, 1, 28, 28), 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (2, 1, 28, 28) and guided.training and net.training
    net.eval()


# ---------------------------------------------------------------------------------- the steps
def test_loop_of_reverse_steps_is_lesson_07s_sampler():
    sched, model = _schedule(T=20), Recorder()
    ref = diffusion.ddpm_sample(model, sched, (4, 1, 28, 28), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    x = lesson._noise(torch.empty(4, 1, 28, 28), g)
    for t in range(sched.T - 1, -1, -1):
        x = lesson.reverse_step(model, sched, x, t, g)
    assert torch.equal(x, ref)


def test_forward_step_is_q_of_x_t_given_x_t_minus_1():
    sched = _schedule("linear", T=100)
    x_prev = torch.full((20000, 1), 0.5)
    x_t = lesson.forward_step(sched, x_prev, 60, torch.Generator().manual_seed(0))
    beta = sched.betas[60]
    assert abs(x_t.mean() - (1 - beta).sqrt() * 0.5) < 3e-3
    assert abs(x_t.var() - beta) < 0.1 * beta


# ---------------------------------------------------------------------------------- inpainting
@pytest.mark.parametrize("method, jumps", [("naive", 1), ("repaint", 3)])
def test_inpaint_keeps_known_pixels_exactly_and_counts_calls(method, jumps):
    sched, model, x0 = _schedule(T=8), Recorder(), _digits()
    out = lesson.inpaint(model, sched, x0, _bottom_missing(), method, jumps,
                         generator=torch.Generator().manual_seed(0))
    assert out.shape == x0.shape
    assert torch.equal(out[:, :, :14], x0[:, :, :14])                 # exact, not close
    assert not torch.equal(out[:, :, 14:], x0[:, :, 14:])
    assert model.calls == 1 + (sched.T - 1) * jumps


def test_inpaint_deterministic_and_repaint_with_one_jump_is_naive():
    sched, model, x0, m = _schedule(T=6), Recorder(), _digits(), _bottom_missing()
    runs = [lesson.inpaint(model, sched, x0, m, method, 1, generator=torch.Generator().manual_seed(5))
            for method in ("naive", "naive", "repaint")]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_inpaint_masks_of_every_shape_and_full_mask():
    sched, model, x0 = _schedule(T=4), Recorder(), _digits(2)
    for m in (_bottom_missing(), _bottom_missing()[None, None], _bottom_missing().expand(2, 1, 28, 28),
              _bottom_missing().bool()):
        out = lesson.inpaint(model, sched, x0, m, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[:, :, :14], x0[:, :, :14])
    assert torch.equal(lesson.inpaint(model, sched, x0, torch.ones(28, 28)), x0)


def test_inpaint_eval_mode_inside_and_restored():
    sched, model = _schedule(T=4), Recorder()
    model.train()
    lesson.inpaint(model, sched, _digits(), _bottom_missing(), "repaint", 2)
    assert model.modes == {False} and model.training
    model.eval()
    lesson.sdedit(model, sched, _digits(), 0.5)
    assert not model.training


def test_replace_known_uses_the_level_of_x_t_minus_1():
    sched, x0, x_prev, m = _schedule(), _digits(2), torch.randn(2, 1, 28, 28), _bottom_missing()
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    got = lesson.replace_known(x_prev, x0, m, 400, sched, g)
    ab = sched.alpha_bar[399]
    assert torch.allclose(got[:, :, :14], (ab.sqrt() * x0 + (1 - ab).sqrt() * eps)[:, :, :14])
    assert torch.equal(got[:, :, 14:], x_prev[:, :, 14:])
    assert torch.equal(lesson.replace_known(x_prev, x0, m, 0, sched)[:, :, :14], x0[:, :, :14])


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask=torch.ones(14, 28)), "mask must have shape"),
    (dict(mask=torch.full((28, 28), 0.5)), "only 0"),
    (dict(mask=torch.ones(5, 1, 28, 28)), "mask must have shape"),
    (dict(x0_known=(_digits() + 1) / 2), r"\[0, 1\]"),
    (dict(x0_known=torch.randn(3, 28, 28)), r"\(B, 1, 28, 28\)"),
    (dict(method="repaint", jumps=0), "jumps=0"),
    (dict(method="repaint", jumps=2.5), "whole number"),
    (dict(method="naive", jumps=3), "method='repaint'"),
    (dict(method="repaint_"), "Did you mean 'repaint'"),
])
def test_inpaint_errors_in_the_learners_terms(kwargs, match):
    args = {"x0_known": _digits(), "mask": _bottom_missing(), **kwargs}
    with pytest.raises(ValueError, match=match):
        lesson.inpaint(Recorder(), _schedule(T=4), **args)


# --------------------------------------------------------------------------------------- SDEdit
@pytest.mark.parametrize("strength, T, t0", [(0.5, 1000, 499), (1.0, 1000, 999), (0.1, 50, 4),
                                             (1e-4, 1000, 0), (0.3, 10, 2)])
def test_sdedit_start(strength, T, t0):
    assert lesson.sdedit_start(strength, T) == t0


def test_sdedit_shape_determinism_and_calls():
    sched, model, x = _schedule(T=50), Recorder(), _digits()
    a = lesson.sdedit(model, sched, x, 0.3, torch.Generator().manual_seed(2))
    assert model.calls == lesson.sdedit_start(0.3, 50) + 1 == 15
    b = lesson.sdedit(model, sched, x, 0.3, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b)


def test_sdedit_small_strength_stays_close():
    sched, x = _schedule(T=1000), _digits()
    out = lesson.sdedit(Recorder(0.0), sched, x, 0.001, torch.Generator().manual_seed(0))
    assert (out - x).abs().mean() < 0.05


@pytest.mark.parametrize("strength", [0, 0.0, 1.5, -0.2, True, "0.5"])
def test_sdedit_strength_errors(strength):
    with pytest.raises(ValueError, match="strength"):
        lesson.sdedit(Recorder(), _schedule(T=10), _digits(), strength)


def test_sdedit_image_range_error():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lesson.sdedit(Recorder(), _schedule(T=10), (_digits() + 1) / 2, 0.5)


# ------------------------------------------------------------------------------------- checkers
def test_guided_combination_checker():
    assert chk.check_guided_combination(lambda c, u, w: (1 + w) * c - w * u)


@pytest.mark.parametrize("wrong", [
    lambda c, u, w: (1 + w) * u - w * c,                 # conditional and unconditional swapped
    lambda c, u, w: c + w * u,                           # scale on the wrong term
    lambda c, u, w: u + w * (c - u),                     # the codebases' s read as w
    lambda c, u, w: (1 + w) * c,                         # the unconditional term forgotten
    lambda c, u, w: w * c - (1 - w) * u,
])
def test_guided_combination_checker_rejects(wrong):
    assert not chk.check_guided_combination(wrong)


def _known(x0, t, schedule, eps, level):
    ab = schedule.alpha_bar[level]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def test_replace_known_checker():
    def good(x_prev, x0, mask, t, schedule, eps):
        known = x0 if t == 0 else _known(x0, t, schedule, eps, t - 1)
        return torch.where(mask.bool(), known, x_prev)
    assert chk.check_replace_known(good)


@pytest.mark.parametrize("wrong", [
    lambda xp, x0, m, t, s, e: torch.where(m.bool(), x0, xp),                        # clean x0
    lambda xp, x0, m, t, s, e: torch.where(m.bool(), _known(x0, t, s, e, t), xp),    # noised to t
    lambda xp, x0, m, t, s, e: torch.where(m.bool(), _known(x0, t, s, e, t - 1), xp),  # [-1] at 0
    lambda xp, x0, m, t, s, e: torch.where(m.bool(), xp, x0 if t == 0 else _known(x0, t, s, e, t - 1)),
    lambda xp, x0, m, t, s, e: m * (x0 if t == 0 else _known(x0, t, s, e, t - 1)) + m * xp,
])
def test_replace_known_checker_rejects(wrong):
    assert not chk.check_replace_known(wrong)


def test_replace_known_checker_rejects_in_place_changes():
    def in_place(x_prev, x0, mask, t, schedule, eps):
        known = x0 if t == 0 else _known(x0, t, schedule, eps, t - 1)
        x_prev[mask.bool().expand_as(x_prev)] = known[mask.bool().expand_as(x_prev)]
        return x_prev
    assert not chk.check_replace_known(in_place)


def _start(x, strength, s, e, values="alpha_bar", shift=-1, noise=True, roots=True):
    t0 = max(1, round(strength * s.T)) + shift
    a = getattr(s, values)[t0]
    if not roots:
        return a * x + (1 - a) * e
    return a.sqrt() * x + ((1 - a).sqrt() * e if noise else 0)


def test_sdedit_start_checker():
    assert chk.check_sdedit_start(lambda x, st, s, e: _start(x, st, s, e))
    assert chk.check_sdedit_start(
        lambda x, st, s, e: s.q_sample(x, torch.full((x.shape[0],), lesson.sdedit_start(st, s.T)), e))


@pytest.mark.parametrize("wrong", [
    lambda x, st, s, e: _start(x, st, s, e, values="alphas"),      # alpha instead of alpha_bar
    lambda x, st, s, e: _start(x, st, s, e, noise=False),          # forgets the noise
    lambda x, st, s, e: _start(x, st, s, e, roots=False),          # no square roots
    lambda x, st, s, e: _start(x, min(st, 0.99), s, e, shift=0),   # t0 = round(strength T)
])
def test_sdedit_start_checker_rejects(wrong):
    assert not chk.check_sdedit_start(wrong)


def test_repaint_jump_checker():
    assert chk.check_repaint_jump(lambda x, t, s, z: (1 - s.betas[t]).sqrt() * x + s.betas[t].sqrt() * z)


@pytest.mark.parametrize("wrong", [
    lambda x, t, s, z: s.alpha_bar[t].sqrt() * x + (1 - s.alpha_bar[t]).sqrt() * z,   # alpha_bar
    lambda x, t, s, z: (1 - s.betas[t - 1]).sqrt() * x + s.betas[t - 1].sqrt() * z,   # beta_{t-1}
    lambda x, t, s, z: (1 - s.betas[t]) * x + s.betas[t] * z,                         # no roots
    lambda x, t, s, z: (1 - s.betas[t]).sqrt() * x,                                   # no noise
])
def test_repaint_jump_checker_rejects(wrong):
    assert not chk.check_repaint_jump(wrong)
