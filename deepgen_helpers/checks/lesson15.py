"""Checkers for lesson 15 (sequence-to-sequence translation: decoder masks, label smoothing, BLEU's
modified precision and brevity penalty, one step of beam search).

Each checker's hidden cases are built from mistakes learners make: a decoder self-attention mask
without its causal part (the decoder reads the word it must predict), the causal part put on the
cross-attention mask too (the decoder then sees only the first source words), the target's padding
used for the cross mask instead of the source's, the mask convention inverted (True = blocked), or
padding masked over queries instead of keys (``ids[:, None, :, None]``, which leaves padded keys
visible and makes rows of -inf); label smoothing that counts the <pad> positions, spreads eps over
the V - 1 wrong classes only (eps / (V - 1) each) instead of over all V, or sums instead of
averaging (and at eps = 0 it must be plain cross-entropy); BLEU's modified precision without
clipping ("the the the the" scores 4/4 against "the cat"), clipped by the sum of an n-gram's counts
over the references instead of its largest count in any one of them, counting the references'
n-grams instead of the hypothesis's, an off-by-one in the number of n-grams (``len - n`` or
``len - n + 2`` windows), and a hypothesis shorter than n (which has no n-grams: (0, 0)); a brevity
penalty of exp(1 - c / r) instead of exp(1 - r / c), one that also penalises long hypotheses, or one
that crashes on an empty hypothesis (c = 0); and a beam-search step that takes the top K of each
beam instead of across the K beams, swaps parent and token (``% V`` and ``// V``), forgets to add
the beams' own log-probabilities, or ranks across the sentences of the batch.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Callable

import torch

from . import Case, CheckResult, run_checks, seeded as _g


def _tensors_equal(got, expected) -> bool:
    """A tuple of tensors of exactly the expected shapes and values (bool or integer)."""
    if not isinstance(got, (tuple, list)) or len(got) != len(expected):
        return False
    return all(isinstance(a, torch.Tensor) and a.shape == b.shape and torch.equal(a.to(b.dtype), b)
               for a, b in zip(got, expected))


# --------------------------------------------------------------------------------------------------
# Exercise 1: the decoder's two masks
def _ref_decoder_masks(src, tgt_in, pad_id):
    """The reference: (B, 1, T, T) causal + target padding, (B, 1, 1, S) source padding."""
    T = tgt_in.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()                  # query t sees keys 0..t
    self_mask = (tgt_in != pad_id)[:, None, None, :] & causal           # (B, 1, T, T)
    cross_mask = (src != pad_id)[:, None, None, :]                      # (B, 1, 1, S)
    return self_mask, cross_mask


def check_decoder_masks(fn: Callable) -> CheckResult:
    """``fn(src (B, S), tgt_in (B, T), pad_id) -> (self_mask, cross_mask)``, bool, True = may
    attend: self_mask broadcastable to (B, H, T, T) (the target's padding keys and the causal
    part), cross_mask broadcastable to (B, H, T, S) (the source's padding keys only)."""
    src1 = torch.tensor([[5, 6, 7, 8, 2, 0, 0], [9, 5, 2, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4, 2]])
    tgt1 = torch.tensor([[1, 11, 12, 13, 14], [1, 15, 0, 0, 0], [1, 16, 17, 0, 0]])
    src2 = torch.tensor([[3, 4, 2, 9], [3, 2, 9, 9]])
    tgt2 = torch.tensor([[1, 5, 6, 7, 8, 5, 6, 2], [1, 5, 6, 9, 9, 9, 9, 9]])
    src3 = torch.tensor([[7, 8, 6, 5, 2, 0], [7, 2, 0, 0, 0, 0]])
    tgt3 = torch.tensor([[1, 3, 4, 3, 0, 0], [1, 3, 4, 5, 6, 4]])
    cases = [Case((src1, tgt1, 0), _ref_decoder_masks(src1, tgt1, 0),
                  "3 sentences padded with <pad> = 0 to different lengths, S = 7, T = 5"),
             Case((src2, tgt2, 9), _ref_decoder_masks(src2, tgt2, 9),
                  "<pad> = 9, a target longer than its source (S = 4, T = 8)"),
             Case((src3, tgt3, 0), _ref_decoder_masks(src3, tgt3, 0),
                  "S = T = 6, the source and the target padded differently"),
             Case((src1[2:], tgt1[:1], 0), _ref_decoder_masks(src1[2:], tgt1[:1], 0),
                  "one sentence without padding")]

    def compare(got, expected):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return False
        for mask, ref in zip(got, expected):
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() > 4:
                return False
            B, T, K = ref.shape[0], expected[0].shape[-1], ref.shape[-1]   # K = T or S
            try:
                full = torch.broadcast_to(mask, (B, 2, T, K))           # 2 heads
            except RuntimeError:
                return False
            if not torch.equal(full, ref.expand(B, 2, T, K)):
                return False
        return True

    return run_checks(
        "decoder masks", fn, cases, compare=compare,
        hint="bool masks, True = may attend, acting on KEYS (the last axis): self_mask = "
             "(tgt_in != pad_id)[:, None, None, :] & torch.ones(T, T, dtype=torch.bool).tril() "
             "(B, 1, T, T); cross_mask = (src != pad_id)[:, None, None, :] (B, 1, 1, S): the "
             "source's padding only, no causal part (every target position may read the whole "
             "source).")


# --------------------------------------------------------------------------------------------------
# Exercise 2: the label-smoothed loss
def _ref_smoothed_loss(logits, targets, pad_id, eps):
    """The reference: (1 - eps) * NLL + eps * mean over all V classes of -log p, averaged over
    the non-pad target positions."""
    logp = logits.float().log_softmax(-1)                               # (B, T, V)
    nll = -logp.gather(-1, targets[..., None])[..., 0]                  # (B, T)
    uniform = -logp.mean(-1)                                            # (B, T)
    real = targets != pad_id
    return ((1 - eps) * nll + eps * uniform)[real].mean()


def check_label_smoothed_loss(fn: Callable) -> CheckResult:
    """``fn(logits (B, T, V), targets (B, T), pad_id, eps) -> scalar``: the mean over the non-pad
    positions of (1 - eps) * (-log p_y) + eps * mean_v (-log p_v) (Szegedy et al. 2016, section 7);
    equal to F.cross_entropy(..., ignore_index=pad_id, label_smoothing=eps)."""
    g = _g(152)
    cases = []
    for lengths, V, pad_id, eps, description in (
            ([6, 3], 9, 0, 0.1, "eps = 0.1, the second row padded, <pad> = 0"),
            ([8, 5, 2], 12, 11, 0.2, "eps = 0.2, <pad> = 11 (the last id), rows of 8, 5, 2"),
            ([5, 4], 7, 0, 0.0, "eps = 0: plain cross-entropy over the real tokens"),
            ([10, 3, 2, 1], 30, 3, 0.1, "V = 30, <pad> = 3, most positions padded")):
        lengths = torch.tensor(lengths)
        B, T = len(lengths), int(lengths.max())
        logits = 2.0 * torch.randn(B, T, V, generator=g)
        targets = torch.randint(0, V, (B, T), generator=g)
        targets = torch.where(targets == pad_id, (targets + 1) % V, targets)   # real tokens
        pad = torch.arange(T)[None, :] >= lengths[:, None]
        targets = targets.masked_fill(pad, pad_id)
        cases.append(Case((logits, targets, pad_id, eps),
                          float(_ref_smoothed_loss(logits, targets, pad_id, eps)), description))
    return run_checks(
        "label-smoothed loss", fn, cases,
        hint="per real token: (1 - eps) * (-log p[y]) + eps * (-log p).mean(-1), the mean over "
             "ALL V classes (the true one included: u is uniform over the K classes); then the "
             "mean over the positions where targets != pad_id only. One line: "
             "F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id, "
             "label_smoothing=eps).")


# --------------------------------------------------------------------------------------------------
# Exercise 3: BLEU's clipped n-gram counts
def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _ref_modified_precision(hyp, refs, n):
    """The reference: (clipped matches, hypothesis n-grams) (Papineni et al. 2002, section 2.1)."""
    counts = _ngrams(hyp, n)
    max_ref = Counter()
    for ref in refs:
        for gram, c in _ngrams(ref, n).items():
            max_ref[gram] = max(max_ref[gram], c)
    return sum(min(c, max_ref[gram]) for gram, c in counts.items()), sum(counts.values())


def check_modified_precision(fn: Callable) -> CheckResult:
    """``fn(hyp: list[str], refs: list[list[str]], n) -> (matches, total)``: the hypothesis's
    n-grams found in the references, each counted at most as often as it occurs in the single
    reference where it is most frequent, and the number of hypothesis n-grams."""
    w = str.split
    guide = w("It is a guide to action which ensures that the military always obeys the commands "
              "of the party")
    guide_refs = [w("It is a guide to action that ensures that the military will forever heed "
                    "Party commands"),
                  w("It is the guiding principle which guarantees the military forces always "
                    "being under the command of the Party"),
                  w("It is the practical guide for the army always to heed the directions of "
                    "the party")]
    the7 = [w("the the the the the the the"),
            [w("the cat is on the mat"), w("there is a cat on the mat")], 1]
    raw = [(the7[0], the7[1], 1, "Papineni's 'the the the the the the the' (unigrams, clipping)"),
           (w("the cat the cat on the mat"), [w("the cat is on the mat"),
                                               w("there is a cat on the mat")], 2,
            "bigrams; 'the cat' twice in the hypothesis, once in each reference"),
           (w("the the the the"), [w("the cat")], 1, "'the the the the' against 'the cat'"),
           (guide, guide_refs, 2, "Papineni's example 1, candidate 1, bigrams, three references"),
           (guide, guide_refs, 4, "the same, 4-grams"),
           (w("a cat sat on a mat"), [w("on a mat a cat sat here and there")], 3,
            "trigrams, a reference longer than the hypothesis; the last trigram matches"),
           (w("hello there"), [w("hello there my friend")], 3,
            "a hypothesis shorter than n: no n-grams at all")]
    cases = [Case((hyp, refs, n), _ref_modified_precision(hyp, refs, n), d)
             for hyp, refs, n, d in raw]

    def compare(got, expected):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return False
        try:
            return all(float(a) == b for a, b in zip(got, expected))
        except (TypeError, ValueError, RuntimeError):
            return False

    return run_checks(
        "modified precision", fn, cases, compare=compare,
        hint="count the hypothesis's n-grams (len(hyp) - n + 1 windows, none if len(hyp) < n); "
             "for each n-gram take its LARGEST count in any single reference (not the sum over "
             "references), and add min(count in hyp, that max). total = the number of hypothesis "
             "n-grams (not the references'). collections.Counter of tuples does the counting.")


# --------------------------------------------------------------------------------------------------
# Exercise 4: the brevity penalty
def _ref_brevity_penalty(c, r):
    """The reference (Papineni et al. 2002, section 2.2.2; metrics.bleu): 1 if c >= r."""
    if c >= r:
        return 1.0
    return math.exp(1 - r / c) if c > 0 else 0.0


def check_brevity_penalty(fn: Callable) -> CheckResult:
    """``fn(c, r) -> float``: BLEU's brevity penalty for a hypothesis length c and reference length
    r: 1 if c >= r, exp(1 - r / c) if 0 < c < r, 0 if c == 0."""
    raw = [(5, 10, "half as long as the reference"),
           (9, 10, "one word short"),
           (12, 10, "longer than the reference: no penalty"),
           (10, 10, "as long as the reference"),
           (0, 7, "an empty hypothesis (c = 0)"),
           (1, 20, "one word against twenty"),
           (4_500, 5_000, "corpus-level lengths"),
           (6_000, 5_000, "a corpus of long translations")]
    cases = [Case((c, r), _ref_brevity_penalty(c, r), d) for c, r, d in raw]
    return run_checks(
        "brevity penalty", fn, cases, atol=1e-12, rtol=1e-9,
        hint="only short hypotheses are penalised: BP = 1 if c >= r, else exp(1 - r / c) (r over "
             "c, so BP < 1), and 0 when c == 0 (check it first: r / 0 divides by zero). Long "
             "hypotheses are already punished by a lower precision.")


# --------------------------------------------------------------------------------------------------
# Exercise 5: one step of beam search
def _ref_beam_step(beam_logp, step_logp, K):
    """The reference: the K best of the K * V extensions of each sentence, best first."""
    B, _, V = step_logp.shape
    cand = beam_logp[..., None] + step_logp                             # (B, K, V)
    new_logp, top = cand.reshape(B, -1).topk(K, dim=-1)                 # (B, K) each
    return new_logp, top // V, top % V


def check_beam_step(fn: Callable) -> CheckResult:
    """``fn(beam_logp (B, K), step_logp (B, K, V), K) -> (new_logp, parent, token)``, each (B, K):
    the K best candidates beam_logp[b, k] + step_logp[b, k, v] of each sentence over all k and v,
    best first; parent = k, token = v."""
    g = _g(155)
    cases = []
    for B, K, V, description in ((2, 3, 7, "2 sentences, 3 beams, V = 7"),
                                 (3, 4, 50, "3 sentences, 4 beams, V = 50, one beam far ahead"),
                                 (1, 1, 10, "one beam (greedy)"),
                                 (2, 4, 6, "first step: only beam 0 alive, the others at -inf")):
        step_logp = (1.5 * torch.randn(B, K, V, generator=g)).log_softmax(-1)
        beam_logp = -3.0 * torch.rand(B, K, generator=g)
        if V == 50:
            beam_logp[:, 0] = -0.05                 # the best extensions all come from beam 0
            beam_logp[:, 1:] -= 4.0
        if V == 6:
            beam_logp = torch.zeros(B, K)
            beam_logp[:, 1:] = -math.inf
        beam_logp = beam_logp.sort(dim=-1, descending=True).values      # beams come best first
        cases.append(Case((beam_logp, step_logp, K), _ref_beam_step(beam_logp, step_logp, K),
                          description))

    def compare(got, expected):
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            return False
        new_logp, parent, token = got
        ref_logp, ref_parent, ref_token = expected
        if not isinstance(new_logp, torch.Tensor) or new_logp.shape != ref_logp.shape:
            return False
        return (torch.allclose(new_logp.detach().double(), ref_logp.double(), atol=1e-5)
                and _tensors_equal((parent, token), (ref_parent, ref_token)))

    return run_checks(
        "beam step", fn, cases, compare=compare,
        hint="add first: cand = beam_logp[..., None] + step_logp (B, K, V); then rank all K * V "
             "candidates of each sentence together: cand.reshape(B, -1).topk(K, dim=-1) (not "
             "per beam, not across sentences); a flat index i is beam i // V, token i % V.")
