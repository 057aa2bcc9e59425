"""Checkers for lesson 10 (character language models, recurrent cells, sampling).

Each checker's hidden cases are built from mistakes learners make: an LSTM cell that returns the cell
state and the hidden state swapped, forgets the tanh on the output (h = o * c), reads PyTorch's
gates in the order i, f, o, g, or applies tanh to the forget gate; temperature applied after the
softmax (probabilities divided by T) or as a multiplication of the logits; a nucleus that drops the
token crossing the threshold, forgets to renormalise, or keeps the least likely tokens; add-alpha
smoothing forgotten (zero rows then give NaN), or the denominator missing the factor V; bits per
character computed with the natural logarithm, perplexity as 2 ** nats, or as the mean of per-character
perplexities.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


def _tensors_close(got, expected, atol=1e-5, rtol=1e-4) -> bool:
    if isinstance(expected, torch.Tensor):
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and torch.allclose(got.detach().double(), expected.double(), atol=atol, rtol=rtol))
    if isinstance(expected, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(_tensors_close(a, b, atol, rtol) for a, b in zip(got, expected)))
    try:
        return math.isclose(float(got), float(expected), abs_tol=atol, rel_tol=rtol)
    except (TypeError, ValueError, RuntimeError):
        return False


# --------------------------------------------------------------------------------------------------
# Exercise 1: an LSTM cell (PyTorch's gate order i, f, g, o)
def _lstm(x, state, W_ih, W_hh, b_ih, b_hh):
    cell = torch.nn.LSTMCell(W_ih.shape[1], W_hh.shape[1])
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
                        (W_ih, W_hh, b_ih, b_hh)):
            p.copy_(w)
        return cell(x, state)


def check_lstm_cell(fn: Callable) -> CheckResult:
    """``fn(x (B, D), (h, c) each (B, H), W_ih (4H, D), W_hh (4H, H), b_ih (4H,), b_hh (4H,))
    -> (h', c')``, equal to ``nn.LSTMCell`` with these weights."""
    g = _g(101)
    cases = []
    for B, D, H, scale, description in ((3, 5, 4, 1.0, "a batch of 3, D = 5, H = 4"),
                                        (2, 3, 6, 2.0, "large weights: saturated gates"),
                                        (1, 4, 3, 0.5, "one sequence")):
        x = torch.randn(B, D, generator=g)
        h, c = torch.randn(B, H, generator=g), 2 * torch.randn(B, H, generator=g)
        W_ih = scale * torch.randn(4 * H, D, generator=g) / math.sqrt(D)
        W_hh = scale * torch.randn(4 * H, H, generator=g) / math.sqrt(H)
        b_ih, b_hh = torch.randn(4 * H, generator=g), torch.randn(4 * H, generator=g)
        args = (x, (h, c), W_ih, W_hh, b_ih, b_hh)
        cases.append(Case(args, tuple(_lstm(*args)), description))
    return run_checks(
        "lstm_cell", fn, cases, compare=_tensors_close,
        hint="gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, split in the order i, f, g, o; sigmoid "
             "on i, f, o and tanh on g; c' = f * c + i * g; h' = o * tanh(c'); return (h', c') in "
             "that order.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: temperature
def check_temperature(fn: Callable) -> CheckResult:
    """``fn(logits (B, V), temperature: float) -> probabilities (B, V)``: softmax(logits / T)."""
    g = _g(102)
    cases = []
    for T, description in ((0.5, "T = 0.5: sharper"), (2.0, "T = 2: flatter"),
                           (1.0, "T = 1: the model itself"), (0.1, "T = 0.1: nearly greedy")):
        logits = 2 * torch.randn(3, 7, generator=g)
        cases.append(Case((logits, T), torch.softmax(logits.double() / T, -1).float(), description))
    return run_checks(
        "temperature", fn, cases, compare=_tensors_close,
        hint="divide the logits by T, then softmax over the last dimension; T acts on the logits, "
             "before the softmax, and T < 1 must sharpen the distribution.")


# --------------------------------------------------------------------------------------------------
# Exercise 3: nucleus (top-p) filtering of a distribution
def _top_p(probs, p):
    sorted_p, order = probs.double().sort(-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, before < p)
    kept = torch.where(keep, probs.double(), 0.0)
    return (kept / kept.sum(-1, keepdim=True)).to(probs.dtype)


def check_top_p(fn: Callable) -> CheckResult:
    """``fn(probs (B, V), p: float) -> probs (B, V)``: the smallest set of most likely tokens whose
    total reaches ``p`` (Holtzman et al. 2020, Eq. 3), renormalised; zeros elsewhere."""
    g = _g(103)
    cases = [Case((torch.tensor([[0.5, 0.3, 0.15, 0.05]]), 0.7),
                  torch.tensor([[0.625, 0.375, 0.0, 0.0]]),
                  "p = 0.7 on [0.5, 0.3, 0.15, 0.05]: the token that crosses 0.7 is kept"),
             Case((torch.tensor([[0.1, 0.6, 0.05, 0.25]]), 0.5),
                  torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
                  "the first token alone exceeds p, and it is not in position 0")]
    for p in (0.9, 0.3, 1.0):
        probs = torch.softmax(2 * torch.randn(4, 9, generator=g), -1)
        cases.append(Case((probs, p), _top_p(probs, p), f"random rows, p = {p}"))
    return run_checks(
        "top_p", fn, cases, compare=_tensors_close,
        hint="sort descending, take the cumulative sum, keep every token whose cumulative probability "
             "*before* it is below p (so the one that crosses p is kept), zero the rest, then divide "
             "by the kept total so each row sums to 1.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: add-alpha smoothed n-gram probabilities
def check_add_alpha(fn: Callable) -> CheckResult:
    """``fn(counts (C, V), alpha: float) -> probs (C, V)``: (N(c, v) + alpha) / (N(c) + alpha V)."""
    g = _g(104)
    cases = []
    for alpha, description in ((1.0, "alpha = 1 (Laplace)"), (0.1, "alpha = 0.1"),
                               (0.5, "alpha = 0.5 with a context never seen")):
        counts = torch.randint(0, 5, (4, 6), generator=g).float()
        counts[2] = 0                                       # an unseen context
        expected = (counts + alpha) / (counts.sum(1, keepdim=True) + alpha * counts.shape[1])
        cases.append(Case((counts, alpha), expected, description))
    return run_checks(
        "add_alpha", fn, cases, compare=_tensors_close,
        hint="add alpha to every count (also the zeros), and divide by the row total plus alpha "
             "times the vocabulary size V, so each row sums to 1; an unseen context is uniform.")


# --------------------------------------------------------------------------------------------------
# Exercise 5: bits per character and perplexity
def check_bits_and_perplexity(fn: Callable) -> CheckResult:
    """``fn(nats (N,)) -> (bits_per_char, perplexity)`` from per-character losses in nats."""
    cases = []
    for values, description in (([1.2, 0.4, 2.9, 1.5], "four characters"),
                                ([math.log(65)] * 3, "uniform over 65 characters: perplexity 65"),
                                ([0.1, 3.0], "very unequal losses")):
        nats = torch.tensor(values)
        mean = float(nats.double().mean())
        cases.append(Case((nats,), (mean / math.log(2), math.exp(mean)), description))
    return run_checks(
        "bits_and_perplexity", fn, cases, compare=_tensors_close,
        hint="average the nats first; bits = nats / ln 2; perplexity = exp(mean nats) = 2 ** bits "
             "(not the mean of exp(loss) per character).")
