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
