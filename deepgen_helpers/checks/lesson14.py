"""Checkers for lesson 14 (BERT and masked language models).

Each checker's hidden cases are built from mistakes learners make: the 80/10/10 rule applied to every
token instead of the 15 % selected, special tokens ([CLS], [SEP], [PAD]) selected for prediction,
labels left on unselected positions (so the loss is computed on visible tokens too); the masked-LM loss
averaged over every position, or summed, instead of averaged over the selected ones; a causal mask in the
encoder, padding not masked, or the mask convention inverted (True = blocked); the [CLS] vector taken
from the last position (a [SEP] or [PAD]), and mean-pooling that averages the [PAD] outputs in.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from . import Case, CheckResult, run_checks, seeded as _g


def _ref_mask_tokens(ids, mask_id, n_normal, generator):
    """The reference: the draw order of the exercise (selection, fate, random tokens)."""
    u = torch.rand(ids.shape, generator=generator)
    selected = (u < 0.15) & (ids < n_normal)
    v = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(0, n_normal, ids.shape, generator=generator)
    inputs = torch.where(selected & (v < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(selected & (v >= 0.8) & (v < 0.9), random_ids, inputs)
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    return inputs, labels


def _pair_equal(got, expected) -> bool:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return False
    return all(isinstance(a, torch.Tensor) and a.shape == b.shape and torch.equal(a.long(), b)
               for a, b in zip(got, expected))


# --------------------------------------------------------------------------------------------------
# Exercise 1: the 80/10/10 rule
def check_mask_tokens(fn: Callable) -> CheckResult:
    """``fn(ids (B, T), mask_id, n_normal, generator) -> (inputs, labels)``: BERT's 80/10/10 rule on
    the 15 % selected ordinary tokens (ids < n_normal), labels -100 where not selected; draws in the
    order selection, fate, random tokens."""
    g = _g(141)
    cases = []
    n_normal, mask_id = 50, 53                                # 50 ordinary tokens, 4 specials
    ids = torch.randint(0, n_normal, (8, 40), generator=g)
    cases.append(Case((ids, mask_id, n_normal, _g(1)), _ref_mask_tokens(ids, mask_id, n_normal,
                                                                         _g(1)),
                      "8 sequences of 40 ordinary tokens"))
    ids = torch.randint(0, n_normal, (6, 30), generator=g)
    ids[:, 0], ids[:, -1], ids[3:, 20:] = 51, 52, 50          # [CLS] ... [SEP] and [PAD]s
    cases.append(Case((ids, mask_id, n_normal, _g(2)), _ref_mask_tokens(ids, mask_id, n_normal,
                                                                         _g(2)),
                      "[CLS] and [SEP] at the ends, three rows padded with [PAD] (id 50)"))
    ids = torch.randint(0, 1000, (4, 256), generator=g)
    cases.append(Case((ids, 1003, 1000, _g(3)), _ref_mask_tokens(ids, 1003, 1000, _g(3)),
                      "a 1,000-token vocabulary, long sequences"))
    return run_checks(
        "mask_tokens (80/10/10)", fn, cases, compare=_pair_equal,
        hint="first select: selected = (torch.rand(ids.shape, generator=generator) < 0.15) & "
             "(ids < n_normal); the 80/10/10 split applies to the selected positions only "
             "(v < 0.8 -> mask_id, 0.8 <= v < 0.9 -> random token); labels = ids where selected, "
             "-100 everywhere else (otherwise the loss also scores tokens the model can see).")


# --------------------------------------------------------------------------------------------------
# Exercise 2: the masked-LM loss
def check_mlm_loss(fn: Callable) -> CheckResult:
    """``fn(logits (B, T, V), labels (B, T)) -> scalar``: mean cross-entropy over the positions
    whose label is not -100."""
    g = _g(142)
    cases = []
    for B, T, V, p, description in ((2, 10, 7, 0.3, "30 % of positions selected"),
                                    (3, 16, 11, 0.15, "15 % selected, V = 11"),
                                    (1, 20, 5, 0.9, "most positions selected")):
        logits = 2.0 * torch.randn(B, T, V, generator=g)
        labels = torch.randint(0, V, (B, T), generator=g)
        keep = torch.rand(B, T, generator=g) < p
        keep[0, 0] = True
        labels = torch.where(keep, labels, torch.full_like(labels, -100))
        expected = F.cross_entropy(logits[keep], labels[keep])
        cases.append(Case((logits, labels), expected, description))
    return run_checks(
        "mlm_loss", fn, cases,
        hint="only the selected positions count: F.cross_entropy(logits.flatten(0, 1), "
             "labels.flatten(), ignore_index=-100) averages over them (not over all B * T).")


# --------------------------------------------------------------------------------------------------
# Exercise 3: the encoder's attention mask
def check_encoder_mask(fn: Callable) -> CheckResult:
    """``fn(ids (B, T), pad_id) -> bool mask`` broadcastable to (B, H, T, T), True = may attend:
    every query may attend every non-[PAD] key, in both directions."""
    ids1 = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]])
    ids2 = torch.tensor([[9, 3, 4, 5, 6, 7, 8, 10], [9, 3, 10, 11, 11, 11, 11, 11],
                         [9, 4, 4, 4, 10, 11, 11, 11]])
    cases = [Case((ids1, 0), ids1 != 0, "two sentences, the second with 2 [PAD] (id 0)"),
             Case((ids2, 11), ids2 != 11, "three sentences, [PAD] = 11"),
             Case((ids2[:1], 11), ids2[:1] != 11, "one sentence without padding")]

    def compare(got, keys_ok):
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
            return False
        B, T = keys_ok.shape
        try:
            full = got.expand(B, 2, T, T) if got.dim() == 4 else got.expand(B, 2, T, T)
        except RuntimeError:
            return False
        return torch.equal(full, keys_ok[:, None, None, :].expand(B, 2, T, T))

    return run_checks(
        "encoder mask", fn, cases, compare=compare,
        hint="BERT sees both sides: no causal (triangular) part. Only [PAD] keys are hidden, "
             "True = may attend: (ids != pad_id)[:, None, None, :], shape (B, 1, 1, T).")


# --------------------------------------------------------------------------------------------------
# Exercise 4: a sentence vector
def check_sentence_vector(fn: Callable) -> CheckResult:
    """``fn(h (B, T, D), ids (B, T), pad_id, how) -> (B, D)``: the [CLS] output (position 0) for
    how="cls", the mean over the non-[PAD] positions for how="mean"."""
    g = _g(144)
    cases = []
    ids = torch.tensor([[1, 5, 6, 7, 2, 0, 0], [1, 8, 9, 2, 0, 0, 0], [1, 4, 4, 4, 4, 4, 2]])
    h = torch.randn(3, 7, 6, generator=g)
    real = (ids != 0)[..., None].float()
    mean = (h * real).sum(1) / real.sum(1)
    cases.append(Case((h, ids, 0, "cls"), h[:, 0], "how='cls', rows of different lengths"))
    cases.append(Case((h, ids, 0, "mean"), mean, "how='mean', rows padded with [PAD] (id 0)"))
    ids2 = torch.tensor([[7, 3, 3, 8, 9, 9], [7, 8, 9, 9, 9, 9]])
    h2 = torch.randn(2, 6, 4, generator=g) + 3.0
    real2 = (ids2 != 9)[..., None].float()
    cases.append(Case((h2, ids2, 9, "mean"), (h2 * real2).sum(1) / real2.sum(1),
                      "how='mean', [PAD] = 9, outputs far from 0"))
    cases.append(Case((h2, ids2, 9, "cls"), h2[:, 0], "how='cls', [PAD] = 9"))
    return run_checks(
        "sentence vector", fn, cases,
        hint="[CLS] is position 0 of every row: h[:, 0] (the last position is [SEP] or [PAD]). "
             "For the mean, weight by real = (ids != pad_id)[..., None] and divide by "
             "real.sum(1), so [PAD] outputs count neither in the sum nor in the count.")
