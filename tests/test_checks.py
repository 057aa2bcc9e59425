"""The exercise checkers accept the reference answers and reject plausible wrong ones."""
import math

import torch

from deepgen_helpers.checks import Case, run_checks
from deepgen_helpers.checks import lesson00, lesson01


def test_framework_reports_exceptions_and_not_implemented(capsys):
    def broken(x):
        raise ZeroDivisionError("oops")

    def todo(x):
        raise NotImplementedError

    cases = [Case((1,), 2)]
    assert run_checks("t", lambda x: x + 1, cases)
    assert not run_checks("t", broken, cases, hint="think")
    assert not run_checks("t", todo, cases)
    assert not run_checks("t", 42, cases)
    out = capsys.readouterr().out
    assert (
        "ZeroDivisionError" in out
        and "Hint: think" in out
        and "not implemented" in out
        and "without ()" in out
    )


def test_lesson00_checkers():
    assert lesson00.check_count_per_class(lambda y: torch.bincount(y, minlength=10))
    assert not lesson00.check_count_per_class(lambda y: torch.bincount(y))  # misses absent classes
    assert lesson00.check_to_symmetric(lambda x: 2 * x - 1)
    assert not lesson00.check_to_symmetric(lambda x: x - 0.5)
    assert lesson00.check_seeded_noise(
        lambda s: torch.randn(16, 2, generator=torch.Generator().manual_seed(s))
    )
    assert not lesson00.check_seeded_noise(lambda s: torch.randn(16, 2))  # ignores the seed


def test_lesson01_checkers():
    def good_logp(x, mu, ls):
        return (-0.5 * math.log(2 * math.pi) - ls - 0.5 * ((x - mu) / ls.exp()) ** 2).sum(-1)

    def forgot_log_sigma(x, mu, ls):
        return (-0.5 * math.log(2 * math.pi) - 0.5 * ((x - mu) / ls.exp()) ** 2).sum(-1)

    assert lesson01.check_diag_gaussian_log_prob(good_logp)
    assert not lesson01.check_diag_gaussian_log_prob(forgot_log_sigma)

    def good_bern(x, p):
        return (torch.xlogy(x, p) + torch.xlogy(1 - x, 1 - p)).sum(-1)

    def naive_bern(x, p):  # 0 * log(0) = nan where p is 0 or 1
        return (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)

    assert lesson01.check_bernoulli_log_likelihood(good_bern)
    assert not lesson01.check_bernoulli_log_likelihood(naive_bern)
    assert not lesson01.check_bernoulli_log_likelihood(lambda x, p: (x * p.log()).sum(-1))
    assert lesson01.check_bits_per_dim(lambda nll, d: nll / (d * math.log(2)))
    assert not lesson01.check_bits_per_dim(lambda nll, d: nll / d)


def test_in_place_answer_fails_and_hidden_cases_stay_intact(capsys):
    assert not lesson00.check_to_symmetric(lambda x: x.mul_(2).sub_(1))
    assert "in place" in capsys.readouterr().out
    assert lesson00.check_to_symmetric(lambda x: 2 * x - 1)


def test_endless_loop_is_reported_after_the_time_limit(capsys):
    def spin(x):
        while True:
            pass

    assert not run_checks("spin", spin, [Case((1,), 1)], time_limit=0.3)
    assert "took longer than 0.3 s" in capsys.readouterr().out
