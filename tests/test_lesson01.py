"""Lesson 01's own model code (its cells tagged export, in deepgen_helpers.models.basics) against independent references."""
import math

import pytest
import torch

from deepgen_helpers.models import basics as lesson


def test_gaussian_mixture_matches_torch_distributions():
    torch.manual_seed(0)
    gmm = lesson.GaussianMixture(lesson.GMMConfig(n_components=3))
    with torch.no_grad():
        gmm.logits.copy_(torch.tensor([0.2, -1.0, 0.5]))
        gmm.log_sigma.copy_(0.3 * torch.randn(3, 2))
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=gmm.logits),
        torch.distributions.Independent(torch.distributions.Normal(gmm.mu, gmm.log_sigma.exp()), 1))
    x = torch.randn(50, 2) * 2
    assert torch.allclose(gmm.log_prob(x), reference.log_prob(x), atol=1e-5)


def test_gaussian_mixture_samples_follow_the_weights():
    gmm = lesson.GaussianMixture(lesson.GMMConfig(n_components=2), init_means=torch.tensor([[-5.0, 0.0], [5.0, 0.0]]))
    with torch.no_grad():
        gmm.logits.copy_(torch.tensor([math.log(0.25), math.log(0.75)]))
        gmm.log_sigma.fill_(math.log(0.1))
    x = gmm.sample(20000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20000, 2)
    assert (x[:, 0] > 0).float().mean().item() == pytest.approx(0.75, abs=0.01)
    assert x[x[:, 0] > 0].std(0).mean().item() == pytest.approx(0.1, abs=0.01)


def test_bernoulli_model():
    v = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    p_ml = lesson.fit_independent(v, alpha=0.0)
    assert torch.equal(p_ml, torch.tensor([1.0, 0.5, 0.0]))
    assert torch.allclose(lesson.fit_independent(v, alpha=1.0), torch.tensor([0.75, 0.5, 0.25]))
    logp = lesson.bernoulli_log_prob(v, p_ml)
    assert torch.allclose(logp, torch.tensor([math.log(0.5), math.log(0.5)]))   # 0 log 0 = 0, no nan
    assert lesson.bernoulli_log_prob(torch.tensor([[0.0, 0.0, 1.0]]), p_ml).item() == -math.inf
    ref = torch.distributions.Bernoulli(probs=torch.tensor([0.7, 0.2, 0.4])).log_prob(v).sum(-1)
    assert torch.allclose(lesson.bernoulli_log_prob(v, torch.tensor([0.7, 0.2, 0.4])), ref)


# ----------------------------------------------------------------------------------------------------------
# Exercise checkers: each accepts the reference answer and rejects the mistakes learners actually make
# ----------------------------------------------------------------------------------------------------------
from deepgen_helpers.checks import lesson01 as checks  # noqa: E402


def _component_log_probs(v, p):
    # fast and exact at p = 0 or 1 (the solutions notebook's version)
    log_p = torch.where(p > 0, p.log(), 0.0)
    log_q = torch.where(p < 1, (-p).log1p(), 0.0)
    impossible = (v @ (p == 0).float().T + (1 - v) @ (p == 1).float().T) > 0
    return (v @ log_p.T + (1 - v) @ log_q.T).masked_fill(impossible, -math.inf)


def _e_step(v, log_pi, p):
    log_joint = log_pi + _component_log_probs(v, p)
    return (log_joint - torch.logsumexp(log_joint, 1, keepdim=True)).exp()


def _m_step(v, resp, alpha=1.0):
    n_k = resp.sum(0)
    return (n_k / len(v)).log(), (resp.T @ v + alpha) / (n_k[:, None] + 2 * alpha)


def _fit(e_step=_e_step, m_step=_m_step, start="images", iterate=True):
    def fit(v, k, steps):
        g = torch.Generator().manual_seed(0)
        if start == "images":
            _, p = m_step(v[torch.randperm(len(v), generator=g)[:k]], torch.eye(k))
        else:  # every component the same: EM can never separate them
            p = lesson.fit_independent(v).expand(k, -1).clone()
        log_pi, trace = torch.full((k,), -math.log(k)), []
        for _ in range(steps):
            trace.append(torch.logsumexp(log_pi + _component_log_probs(v, p), 1).mean().item())
            if iterate:
                log_pi, p = m_step(v, e_step(v, log_pi, p))
        return log_pi, p, trace
    return fit


def test_e_step_checker():
    assert checks.check_e_step(_e_step)
    # the lesson's own bernoulli_log_prob in a loop is also right (slow but exact)
    def looped(v, log_pi, p):
        lj = log_pi + torch.stack([lesson.bernoulli_log_prob(v, p[k]) for k in range(len(p))], 1)
        return torch.softmax(lj, 1)
    assert checks.check_e_step(looped)
    def no_logsumexp(v, lp, p):
        joint = lp.exp() * _component_log_probs(v, p).exp()       # underflows to 0 at 784 pixels
        return joint / joint.sum(1, keepdim=True)
    naive_matmul = lambda v, lp, p: torch.softmax(lp + v @ p.log().T + (1 - v) @ (1 - p).log().T, 1)
    unnormalised = lambda v, lp, p: (lp + _component_log_probs(v, p)).exp()
    no_prior = lambda v, lp, p: torch.softmax(_component_log_probs(v, p), 1)
    for wrong in (no_logsumexp, naive_matmul, unnormalised, no_prior):
        assert not checks.check_e_step(wrong)


def test_m_step_checker():
    assert checks.check_m_step(_m_step)
    def no_smoothing(v, resp, alpha=1.0):
        n_k = resp.sum(0)
        return (n_k / len(v)).log(), (resp.T @ v) / n_k[:, None]
    def weights_not_normalised(v, resp, alpha=1.0):
        n_k = resp.sum(0)
        return n_k.log(), (resp.T @ v + alpha) / (n_k[:, None] + 2 * alpha)
    def alpha_once(v, resp, alpha=1.0):
        n_k = resp.sum(0)
        return (n_k / len(v)).log(), (resp.T @ v + alpha) / (n_k[:, None] + alpha)
    def hard_assignments(v, resp, alpha=1.0):
        return _m_step(v, torch.nn.functional.one_hot(resp.argmax(1), resp.shape[1]).float(), alpha)
    for wrong in (no_smoothing, weights_not_normalised, alpha_once, hard_assignments):
        assert not checks.check_m_step(wrong)


def test_fit_bernoulli_mixture_checker(capsys):
    assert checks.check_fit_bernoulli_mixture(_fit())
    def naive_e(v, lp, p):
        joint = lp.exp() * _component_log_probs(v, p).exp()
        return joint / joint.sum(1, keepdim=True)
    def no_smoothing(v, resp, alpha=1.0):
        return _m_step(v, resp, 0.0)
    for wrong in (_fit(e_step=naive_e), _fit(m_step=no_smoothing), _fit(start="same"), _fit(iterate=False)):
        assert not checks.check_fit_bernoulli_mixture(wrong)
    out = capsys.readouterr().out
    assert "Why:" in out and "nan" in out and "did they start different" in out


def test_smallest_k_checker():
    def good(ks, means, ses):
        best = min(range(len(ks)), key=lambda i: means[i])
        return next(k for k, m in zip(ks, means) if m <= means[best] + ses[best])
    assert checks.check_smallest_k_within_one_se(good)
    argmin = lambda ks, means, ses: ks[min(range(len(ks)), key=lambda i: means[i])]
    own_se = lambda ks, means, ses: next(k for k, m, s in zip(ks, means, ses) if m - s <= min(means))
    largest = lambda ks, means, ses: max(k for k, m in zip(ks, means)
                                         if m <= min(means) + ses[means.index(min(means))])
    as_float = lambda ks, means, ses: float(good(ks, means, ses))
    for wrong in (argmin, own_se, largest, as_float):
        assert not checks.check_smallest_k_within_one_se(wrong)


def test_older_lesson01_checkers_reject_wrong_answers():
    """The checkers of the earlier exercises stay importable; each still rejects a real mistake."""
    xlogy = lambda x, p: (torch.xlogy(x, p) + torch.xlogy(1 - x, 1 - p)).sum(-1)
    assert checks.check_bernoulli_log_likelihood(xlogy)
    naive = lambda x, p: (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)          # nan at x = 0, p = 0
    clamped = lambda x, p: (x * p.clamp(1e-12).log() + (1 - x) * (1 - p).clamp(1e-12).log()).sum(-1)
    for wrong in (naive, clamped, lambda x, p: (x * p.log()).sum(-1)):
        assert not checks.check_bernoulli_log_likelihood(wrong)
    def good(x, mu, ls):
        return (-0.5 * math.log(2 * math.pi) - ls - 0.5 * ((x - mu) / ls.exp()) ** 2).sum(-1)
    assert checks.check_diag_gaussian_log_prob(good)
    assert not checks.check_diag_gaussian_log_prob(lambda x, mu, ls: good(x, mu, ls) + ls.sum())
    assert checks.check_bits_per_dim(lambda nll, d: nll / (d * math.log(2)))
    assert not checks.check_bits_per_dim(lambda nll, d: nll / d)
