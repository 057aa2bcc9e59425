"""Checkers for lesson 11 (music generation: ABC tunes and piano-roll chorales).

Each checker's hidden cases are built from mistakes learners make: a frame NLL averaged over the
88 keys instead of summed, with the first frame treated as a target (targets not shifted), padding
counted, or a mean of per-chorale means instead of the pooled mean over frames; a MIDI-to-frequency
map an octave off, around the wrong reference (440 Hz at MIDI 60) or with 11 or 13 steps per
octave; MADE masks that let output k see key k itself, transposed masks, or a strict comparison on
the wrong side; an ABC duration parser that ignores the tune's unit length L:, reads "/" as
nothing, or reads the accidental or octave mark as part of the length.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Callable

import torch
import torch.nn.functional as F

from . import Case, CheckResult, run_checks, seeded as _g


# --------------------------------------------------------------------------------------------------
# Exercise 1: the frame-level NLL (Bai et al. 2018, protocol of §5)
def _frame_nll(logits, x, mask):
    target = x[:, 1:].double()
    nll = F.binary_cross_entropy_with_logits(logits.double(), target, reduction="none").sum(-1)
    m = mask[:, 1:].double()
    return (nll * m).sum() / m.sum()


def _rolls(lengths, keys, g):
    t_max = max(lengths)
    x = torch.zeros(len(lengths), t_max, keys)
    mask = torch.zeros(len(lengths), t_max)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.bernoulli(torch.full((n, keys), 0.06), generator=g)
        mask[i, :n] = 1
    logits = torch.randn(len(lengths), t_max - 1, keys, generator=g) * 2 - 2
    return logits, x, mask


def check_frame_nll(fn: Callable) -> CheckResult:
    """``fn(logits (B, T-1, 88), x (B, T, 88), mask (B, T)) -> 0-d tensor``: the NLL of frames
    2..T summed over keys, pooled over all predicted frames."""
    specs = [([12, 5, 9], 88, "three chorales of different lengths, padded"),
             ([6, 6], 88, "two chorales of equal length"),
             ([20, 3], 88, "a long and a short chorale: pooled over frames, not a mean of means"),
             ([4, 7, 2, 5], 10, "10 keys instead of 88")]
    cases = []
    for i, (lengths, keys, description) in enumerate(specs):
        logits, x, mask = _rolls(lengths, keys, _g(110 + i))
        cases.append(Case((logits, x, mask), _frame_nll(logits, x, mask).float(), description))
    return run_checks(
        "frame_nll", fn, cases, atol=1e-4, rtol=1e-4,
        hint="targets are x[:, 1:] (the first frame is given), BCE with logits summed over the "
             "keys (not averaged), multiplied by mask[:, 1:], then the total divided by "
             "mask[:, 1:].sum() (pooled over all predicted frames).")


# --------------------------------------------------------------------------------------------------
# Exercise 2: MIDI note number to frequency (12-TET, A4 = MIDI 69 = 440 Hz)
def _hz(pitch):
    return 440.0 * 2.0 ** ((pitch.double() - 69.0) / 12.0)


def check_midi_to_hz(fn: Callable) -> CheckResult:
    """``fn(pitch (N,) tensor) -> (N,) float``: 440 * 2 ** ((pitch - 69) / 12)."""
    specs = [(torch.tensor([69, 60, 57, 81]), "A4, middle C, A3, A5"),
             (torch.tensor([21, 108]), "the piano's lowest and highest keys"),
             (torch.tensor([60.0, 61.0, 72.0]), "float pitches: C4, C#4, C5"),
             (torch.arange(40, 52), "one octave, semitone by semitone")]
    cases = [Case((p,), _hz(p), d) for p, d in specs]
    return run_checks(
        "midi_to_hz", fn, cases, atol=1e-3, rtol=1e-5,
        compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
        and torch.allclose(got.double(), exp, atol=1e-3, rtol=1e-5),
        hint="f = 440 * 2 ** ((pitch - 69) / 12): A4 is MIDI 69 (not 60), twelve semitones double "
             "the frequency, and middle C (60) is about 261.6 Hz.")


# --------------------------------------------------------------------------------------------------
# Exercise 3: MADE's masks (Germain et al. 2015, Eqs. 12-13), one fixed order of the keys
def _masks(degrees, n_keys):
    keys = torch.arange(n_keys)
    return ((keys[None, :] <= degrees[:, None]).float(),
            (degrees[None, :] < keys[:, None]).float())


def check_made_masks(fn: Callable) -> CheckResult:
    """``fn(degrees (H,) long, n_keys) -> (to_hidden (H, n_keys), to_output (n_keys, H))``."""
    specs = [(torch.arange(300) % 87, 88, "88 keys, 300 hidden units with cycling degrees"),
             (torch.tensor([0, 1, 2, 0, 1, 2]), 4, "4 keys, 6 hidden units"),
             (torch.tensor([3, 0, 2, 2, 1]), 5, "5 keys, unsorted degrees")]
    cases = [Case((d, n), _masks(d, n), desc) for d, n, desc in specs]

    def compare(got, exp):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return False
        return all(isinstance(a, torch.Tensor) and a.shape == b.shape
                   and torch.equal(a.float(), b) for a, b in zip(got, exp))

    return run_checks(
        "made_masks", fn, cases, compare=compare,
        hint="to_hidden[j, d] = 1 when d <= degrees[j] (shape (H, n_keys)); to_output[k, j] = 1 "
             "when degrees[j] < k, strictly, so that output k never sees key k itself "
             "(shape (n_keys, H)).")


# --------------------------------------------------------------------------------------------------
# Exercise 4: the length of an ABC note (standard v2.1, §4.3), given the unit length L:
def _abc_duration(token, unit):
    import re

    m = re.fullmatch(r"(?:\^\^|\^|__|_|=)?[A-Ga-gzx][,']*(\d*)(/*)(\d*)", token)
    digits, slashes, denom = m.groups()
    num = int(digits) if digits else 1
    if not slashes:
        return Fraction(num) * unit
    if denom:
        return Fraction(num, int(denom) * 2 ** (len(slashes) - 1)) * unit
    return Fraction(num, 2 ** len(slashes)) * unit


def check_abc_duration(fn: Callable) -> CheckResult:
    """``fn(token: str, unit: Fraction) -> Fraction``: the token's length in whole notes."""
    specs = [("A", Fraction(1, 4), "a bare letter lasts one unit: L:1/4 here"),
             ("c2", Fraction(1, 8), "two units of 1/8"),
             ("G3/2", Fraction(1, 4), "three halves of a unit, L:1/4"),
             ("e/2", Fraction(1, 8), "half a unit"),
             ("B/", Fraction(1, 8), "a lone slash also halves"),
             ("^f//", Fraction(1, 8), "two slashes quarter; the sharp is not a length"),
             ("z4", Fraction(1, 16), "a rest of four units of 1/16"),
             ("C,3", Fraction(1, 8), "an octave mark, then the length"),
             ("a'", Fraction(1, 4), "an octave up, one unit of 1/4")]
    cases = [Case((tok, unit), _abc_duration(tok, unit), d) for tok, unit, d in specs]

    def compare(got, exp):
        try:
            return Fraction(got) == exp if not isinstance(got, float) else abs(got - exp) < 1e-12
        except (TypeError, ValueError):
            return False

    return run_checks(
        "abc_duration", fn, cases, compare=compare,
        hint="length = (number before the slash, default 1) / (number after it, default 2 per "
             "slash) times the unit length L: of the tune; a bare note lasts one unit.")
