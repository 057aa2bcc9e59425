"""Checkers for lesson 13 (GPT from scratch: next-token batches, causal attention, BPE, KV cache,
bits per character).

Each checker's hidden cases are built from mistakes learners make: targets not shifted by one (the
model is asked to copy its input) or shifted the wrong way; attention without the causal mask (the
model peeks at the future), with the mask on the wrong side of the diagonal, or without the
1/sqrt(d) scaling; BPE pairs counted across word boundaries (as if the corpus were one long
string), counted once per word instead of once per occurrence times the word's frequency, or
merges applied in the wrong order or overlapping ("aaa" is not two "aa"); a KV-cache step that
gives the new tokens positions 0, 1, ... instead of continuing after the cached ones; and losses
per token compared across tokenisers (the mean over tokens, or the mean of per-token ratios,
instead of total nats over total characters).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


def _close(got, expected, atol=1e-5, rtol=1e-4) -> bool:
    if isinstance(expected, torch.Tensor):
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and torch.allclose(got.detach().double(), expected.double(), atol=atol, rtol=rtol))
    if isinstance(expected, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(_close(a, b, atol, rtol) for a, b in zip(got, expected)))
    try:
        return math.isclose(float(got), float(expected), abs_tol=atol, rel_tol=rtol)
    except (TypeError, ValueError, RuntimeError):
        return False


# --------------------------------------------------------------------------------------------------
# Exercise 1: inputs and next-token targets
def check_shifted_batch(fn: Callable) -> CheckResult:
    """``fn(ids (N,), starts (B,), T) -> (x, y)``, each (B, T): x[b] = ids[s : s+T] and
    y[b] = ids[s+1 : s+T+1] for s = starts[b]."""
    g = _g(131)
    cases = []
    for N, B, T, description in ((50, 3, 8, "three windows of 8"), (20, 1, 19, "one window that "
                                 "ends at the last token"), (100, 5, 4, "five short windows")):
        ids = torch.randint(0, 30, (N,), generator=g)
        starts = torch.randint(0, N - T, (B,), generator=g)
        if T == 19:
            starts = torch.tensor([0])
        pos = starts[:, None] + torch.arange(T)
        cases.append(Case((ids, starts, T), (ids[pos], ids[pos + 1]), description))
    return run_checks(
        "shifted_batch", fn, cases, compare=lambda got, exp: _close(got, exp, 0, 0),
        hint="x takes T tokens from each start; the target of position t is the NEXT token, so y "
             "is the same window moved one step right: ids[s+1 : s+T+1]. y = x would teach the "
             "model to copy its input.")


# --------------------------------------------------------------------------------------------------
# Exercise 2: causal attention
def _causal(q, k, v):
    T = q.shape[-2]
    scores = q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return (scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v.double()).to(q.dtype)


def check_causal_attention(fn: Callable) -> CheckResult:
    """``fn(q, k, v)``, each (B, H, T, d) -> (B, H, T, d): softmax(q k^T / sqrt(d)) v where
    query t sees keys 0..t only."""
    g = _g(132)
    cases = []
    for shape, description in (((2, 3, 5, 4), "B = 2, H = 3, T = 5, d = 4"),
                               ((1, 1, 6, 8), "one head, T = 6, d = 8"),
                               ((1, 2, 1, 4), "T = 1: a single token sees only itself")):
        q, k, v = (2 * torch.randn(*shape, generator=g) for _ in range(3))
        cases.append(Case((q, k, v), _causal(q, k, v), description))
    return run_checks(
        "causal_attention", fn, cases, compare=_close,
        hint="scores = q @ k.transpose(-2, -1) / sqrt(d); set the scores ABOVE the diagonal "
             "(key later than query) to -inf, e.g. with torch.ones(T, T, dtype=torch.bool).tril() "
             "as the allowed set; softmax over the last dimension; multiply by v.")


# --------------------------------------------------------------------------------------------------
# Exercise 3: BPE pair counts
def _pairs(words):
    counts = {}
    for word, freq in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] = counts.get(pair, 0) + freq
    return counts


def check_count_pairs(fn: Callable) -> CheckResult:
    """``fn(words: dict mapping a tuple of symbol ids to its frequency) -> dict mapping each
    adjacent pair (a, b) to its total count``, pairs counted inside words only."""
    cases = [Case(({(1, 2, 3): 2, (3, 1): 5},), _pairs({(1, 2, 3): 2, (3, 1): 5}),
                  "two words, frequencies 2 and 5: no pair across the boundary (3, 3)"),
             Case(({(4, 4, 4, 4): 3},), {(4, 4): 9},
                  "(4, 4, 4, 4) seen 3 times: three (4, 4) pairs per occurrence"),
             Case(({(7,): 10, (1, 2): 1, (2, 1, 2): 4},), _pairs({(7,): 10, (1, 2): 1,
                                                               (2, 1, 2): 4}),
                  "a one-symbol word has no pair; (1, 2) in two words")]
    return run_checks(
        "count_pairs", fn, cases, compare=lambda got, exp: dict(got) == exp,
        hint="for each word, for each adjacent pair inside it (zip(word, word[1:])), add the "
             "word's frequency; every occurrence counts, even repeated ones, and a pair never "
             "spans two words.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: encoding a word with learned merges
def _apply(word, merges, base):
    s = list(word)
    for r, pair in enumerate(merges):           # the order of learning
        out, i = [], 0
        while i < len(s):
            if i + 1 < len(s) and (s[i], s[i + 1]) == tuple(pair):
                out.append(base + r)
                i += 2
            else:
                out.append(s[i])
                i += 1
        s = out
    return s


def check_apply_merges(fn: Callable) -> CheckResult:
    """``fn(word: list of base ids, merges: list of pairs, base: int) -> list of ids``: merge r
    makes token ``base + r``; merges apply in the order they were learned, each to every
    non-overlapping occurrence from the left."""
    cases = []
    for word, merges, base, description in (
            ([0, 1, 2], [(0, 1), (1, 2)], 3, "merges (a, b) then (b, c) on 'abc': order matters"),
            ([0, 0, 0], [(0, 0)], 2, "'aaa' with (a, a): one merge and a leftover a"),
            ([1, 2, 1, 2], [(1, 2), (3, 3)], 3, "a merge of merged tokens: 'abab' -> one token"),
            ([2, 1, 0], [(0, 1), (1, 2)], 3, "no learned pair occurs"),
            ([0, 1, 2, 0, 1], [(1, 2), (0, 1), (0, 3)], 3, "a later merge would steal the "
                                                           "first pair")):
        cases.append(Case((word, merges, base), _apply(word, merges, base), description))
    return run_checks(
        "apply_merges", fn, cases, compare=lambda got, exp: list(got) == exp,
        hint="loop over the merges in the order they were learned (rank 0 first); for each, scan "
             "the word left to right replacing the pair by base + rank and skipping both symbols, "
             "so occurrences never overlap.")


# --------------------------------------------------------------------------------------------------
# Exercise 5: the position offset of a KV-cache step
def _tiny_gpt():
    from deepgen_helpers.models.gpt import GPT, GPTConfig

    torch.manual_seed(133)
    return GPT(GPTConfig(vocab_size=11, context=16, n_layer=1, n_head=2, d_model=8)).eval()


def check_cached_embedding(fn: Callable) -> CheckResult:
    """``fn(model, new_ids (B, t), P) -> (B, t, D)``: the input vectors of t new tokens that
    follow P cached ones: token embeddings plus the position embeddings of P .. P+t-1."""
    g = _g(134)
    model = _tiny_gpt()
    cases = []
    for B, t, P, description in ((2, 1, 5, "one new token after 5 cached ones"),
                                 (1, 3, 7, "three new tokens after 7"),
                                 (3, 2, 0, "nothing cached yet")):
        ids = torch.randint(0, 11, (B, t), generator=g)
        with torch.no_grad():
            expected = model.tok_emb(ids) + model.pos_emb.weight[P:P + t]
        cases.append(Case((model, ids, P), expected, description))
    return run_checks(
        "cached_embedding", fn, cases, compare=_close,
        hint="the cached tokens occupy positions 0 .. P-1, so the new ones sit at P .. P+t-1: "
             "model.tok_emb(new_ids) + model.pos_emb.weight[P : P + t]. Positions 0 .. t-1 would "
             "tell the model the new token is at the start of the text.")


# --------------------------------------------------------------------------------------------------
# Exercise 6: bits per character across tokenisers
def check_bits_per_char(fn: Callable) -> CheckResult:
    """``fn(token_nats (N,), token_chars (N,)) -> float``: total nats over all tokens divided by
    the total number of characters they spell, in bits (/ ln 2)."""
    cases = []
    for nats, chars, description in (([2.0, 4.0, 1.0], [1, 3, 2], "three tokens of 1-3 chars"),
                                     ([1.5] * 4, [1] * 4, "characters as tokens: the mean in "
                                                          "bits"),
                                     ([6.0, 0.5], [5, 1], "a long and a short token")):
        n, c = torch.tensor(nats), torch.tensor(chars)
        cases.append(Case((n, c), float(n.double().sum() / c.sum() / math.log(2)), description))
    return run_checks(
        "bits_per_char", fn, cases, compare=_close,
        hint="compare tokenisers per character of the same text: add up the nats of ALL tokens, "
             "divide by the total number of characters (not tokens, not a mean of per-token "
             "ratios), then divide by ln 2 for bits.")
