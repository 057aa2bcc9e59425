"""Checkers for lesson 12 (attention and the Transformer block).

Each checker's hidden cases are built from mistakes learners make: attention with the softmax over the
queries instead of the keys, the scores divided by d instead of sqrt(d) (or not at all), the mask
applied after the softmax (weights zeroed but not renormalised) or with the inverted convention (True
= blocked, as nn.MultiheadAttention); heads split by viewing (B, T, D) directly as (B, H, T, D/H), or
with the last two factors in the wrong order; sinusoidal encodings with sine and cosine swapped, the
frequency base 1000 instead of 10000, the exponent i/d instead of 2i/d, or the sines and cosines in two
halves instead of interleaved; the post-LN block (LayerNorm after the residual sum) instead of pre-LN,
the LayerNorm applied to the residual stream itself, one LayerNorm used for both sublayers, or the
mask not passed on to the attention.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


def _tensor_close(got, expected, atol=1e-5, rtol=1e-4) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape
            and bool(torch.isfinite(got).all())
            and torch.allclose(got.detach().double(), expected.double(), atol=atol, rtol=rtol))


def _attention_ref(q, k, v, mask=None):
    """Eq. 1 in float64, the checkers' reference."""
    scores = q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) @ v.double()).float()


# --------------------------------------------------------------------------------------------------
# Exercise 1: scaled dot-product attention with a mask
def check_attention(fn: Callable) -> CheckResult:
    """``fn(q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv), mask=None) -> out (..., Tq, dv)``:
    softmax(q k^T / sqrt(d)) v over the keys, mask True = may attend. A returned ``(out, weights)``
    pair is accepted too."""
    g = _g(121)
    cases = []
    q, k, v = (torch.randn(2, 4, 8, generator=g), torch.randn(2, 6, 8, generator=g),
               torch.randn(2, 6, 5, generator=g))
    cases.append(Case((q, k, v), _attention_ref(q, k, v), "4 queries, 6 keys, d = 8, no mask"))
    q, k, v = (0.5 * torch.randn(3, 5, 64, generator=g) for _ in range(3))
    cases.append(Case((q, k, v), _attention_ref(q, k, v), "d = 64: the scaling matters"))
    q, k, v = (torch.randn(2, 3, 5, 16, generator=g) for _ in range(3))
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    cases.append(Case((q, k, v, causal), _attention_ref(q, k, v, causal),
                      "a causal mask (5, 5), True = may attend, 2 x 3 heads"))
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0]])
    pad = (ids != 0)[:, None, None, :]                                  # (2, 1, 1, 6)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=g) for _ in range(3))
    cases.append(Case((q, k, v, pad), _attention_ref(q, k, v, pad),
                      "a padding mask (B, 1, 1, Tk): the second sequence has 3 pads"))

    def compare(got, expected):
        if isinstance(got, (tuple, list)) and len(got) == 2:
            got = got[0]
        return _tensor_close(got, expected)

    return run_checks(
        "attention", fn, cases, compare=compare,
        hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d) with d = q.shape[-1]; set the "
             "scores to -inf where the mask is False (masked_fill(~mask, float('-inf'))) BEFORE "
             "the softmax; softmax over the last dimension (the keys); then @ v.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: splitting the heads
def check_split_heads(fn: Callable) -> CheckResult:
    """``fn(x (B, T, D), n_heads) -> (B, H, T, D / H)``, head h holding features h*D/H .. (h+1)*D/H-1
    of every position."""
    g = _g(122)
    cases = []
    for B, T, D, H, description in ((2, 5, 12, 3, "B = 2, T = 5, D = 12, 3 heads"),
                                    (1, 4, 8, 2, "one sequence, 2 heads"),
                                    (3, 7, 16, 4, "B = 3, T = 7, D = 16, 4 heads")):
        x = torch.randn(B, T, D, generator=g)
        cases.append(Case((x, H), x.view(B, T, H, D // H).transpose(1, 2), description))
    return run_checks(
        "split_heads", fn, cases, compare=_tensor_close,
        hint="first cut the features: x.view(B, T, H, D // H), THEN move the head axis forward "
             "with .transpose(1, 2). Viewing x directly as (B, H, T, D // H) gives the right shape "
             "but mixes positions into heads.")


# --------------------------------------------------------------------------------------------------
# Exercise 3: sinusoidal position encodings
def _sinusoids(T: int, d: int) -> torch.Tensor:
    t = torch.arange(T, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe = torch.zeros(T, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(t * freq), torch.cos(t * freq)
    return pe.float()


def check_sinusoidal(fn: Callable) -> CheckResult:
    """``fn(T, d) -> (T, d)``: PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...)."""
    cases = [Case((T, d), _sinusoids(T, d), description)
             for T, d, description in ((10, 16, "T = 10, d = 16"), (50, 64, "T = 50, d = 64"),
                                       (7, 2, "d = 2: one sine and one cosine"))]
    return run_checks(
        "sinusoidal positions", fn, cases, compare=lambda got, exp: _tensor_close(got, exp, 1e-4),
        hint="even columns 0, 2, 4, ... hold sin(t * w_i), odd columns 1, 3, 5, ... cos(t * w_i), "
             "with w_i = 1 / 10000 ** (2i / d) for i = 0 .. d/2 - 1 (so the exponent steps "
             "through 0, 2/d, 4/d, ...).")


# --------------------------------------------------------------------------------------------------
# Exercise 4: the pre-LN block
def _pre_ln(x, ln1, attn, ln2, mlp, mask):
    x = x + attn(ln1(x), mask=mask)
    return x + mlp(ln2(x))


def check_pre_ln_block(fn: Callable) -> CheckResult:
    """``fn(x (B, T, D), ln1, attn, ln2, mlp, mask) -> (B, T, D)``: the pre-LN block,
    x + attn(ln1(x), mask=mask), then + mlp(ln2(.))."""
    from deepgen_helpers.models.transformer import MLP, MultiHeadAttention, causal_mask

    torch.manual_seed(123)
    cases = []
    for B, T, D, masked, description in ((2, 6, 16, True, "a causal mask, D = 16"),
                                         (1, 5, 8, False, "no mask (mask=None), D = 8")):
        ln1, ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        with torch.no_grad():                                  # two different LayerNorms
            for ln in (ln1, ln2):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.normal_(0.0, 0.3)
        attn, mlp = MultiHeadAttention(D, 2), MLP(D, 4 * D)
        x = 2.0 * torch.randn(B, T, D) + 1.0                    # not already normalised
        mask = causal_mask(T) if masked else None
        with torch.no_grad():
            expected = _pre_ln(x, ln1, attn, ln2, mlp, mask)
        cases.append(Case((x, ln1, attn, ln2, mlp, mask), expected, description))
    return run_checks(
        "pre-LN block", fn, cases, compare=_tensor_close,
        hint="normalise only what goes INTO each sublayer and add its output to the un-normalised "
             "x: x = x + attn(ln1(x), mask=mask); then x + mlp(ln2(x)). LN(x + attn(x)) is the "
             "post-LN block.")
