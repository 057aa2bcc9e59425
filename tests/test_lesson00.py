"""Lesson 00's checkers accept every correct answer and reject the mistakes learners make."""
import numpy as np
import pytest
import torch

from deepgen_helpers.checks import lesson00


def _reseeds_globally(seed):
    torch.manual_seed(seed)                       # same numbers as a local generator, but resets global state
    return torch.randn(16, 2)


def _numpy_global(seed):
    np.random.seed(seed)
    return torch.from_numpy(np.random.randn(16, 2))


@pytest.mark.parametrize("answer", [
    lambda s: torch.randn(16, 2, generator=torch.Generator().manual_seed(s)),
    lambda s: torch.from_numpy(np.random.default_rng(s).standard_normal((16, 2))),   # NumPy is fine too
    lambda s: torch.randn(32, generator=torch.Generator().manual_seed(s + 7)).view(16, 2),
], ids=["torch-generator", "numpy-default-rng", "another-valid-layout"])
def test_seeded_noise_accepts_correct_answers(answer):
    assert lesson00.check_seeded_noise(answer)


@pytest.mark.parametrize("answer", [
    lambda s: torch.randn(16, 2),                                                      # ignores the seed
    _reseeds_globally,
    _numpy_global,
    lambda s: torch.rand(16, 2, generator=torch.Generator().manual_seed(s)),           # uniform, not normal
    lambda s: torch.randn(16, 2, generator=torch.Generator().manual_seed(0)),          # same for every seed
    lambda s: torch.randn(2, 16, generator=torch.Generator().manual_seed(s)),          # wrong shape
    lambda s: np.random.default_rng(s).standard_normal((16, 2)),                       # not a tensor
], ids=["global-rng", "reseeds-torch", "reseeds-numpy", "uniform", "constant", "shape", "ndarray"])
def test_seeded_noise_rejects_real_mistakes(answer, capsys):
    assert not lesson00.check_seeded_noise(answer)
    assert "❌" in capsys.readouterr().out


def test_seeded_noise_checker_restores_the_learners_random_state():
    torch.manual_seed(42)
    np.random.seed(42)
    expected = torch.randn(3), np.random.randn(3)
    torch.manual_seed(42)
    np.random.seed(42)
    lesson00.check_seeded_noise(lambda s: torch.randn(16, 2, generator=torch.Generator().manual_seed(s)))
    assert torch.equal(torch.randn(3), expected[0]) and np.array_equal(np.random.randn(3), expected[1])
