"""Music plumbing: ABC notation, piano rolls, sound and MIDI files, with nothing to install.

One place for each concern of lesson 11:

- **ABC** (the text format of the Nottingham folk tunes): :func:`split_tunes` cuts a file into tunes,
  :func:`parse_abc` reads one tune into notes with exact durations (``fractions.Fraction`` of a whole
  note) and reports every problem it meets; :func:`abc_problems` / :func:`is_valid_abc` are the strict
  validity test the lesson uses on generated tunes (:data:`VALIDITY_RULES` says what it checks).
- **piano rolls**: binary ``(T, 88)`` arrays, key 0 = MIDI note 21 (A0) ... key 87 = MIDI 108 (C8);
  :func:`notes_to_roll`, :func:`roll_to_notes`, :func:`check_roll`.
- **sound**: :func:`midi_to_hz` (12-tone equal temperament around A4 = 440 Hz, MIDI 69),
  :func:`synthesize` (NumPy additive synthesis with an envelope: a mono float waveform in [-1, 1]) and
  :func:`audio` (an ``IPython.display.Audio`` player of 16-bit PCM at a low sample rate, so stored
  notebooks stay small). Works in JupyterLab, Colab and VS Code with no system package.
- **pictures**: :func:`show_roll` draws a piano roll (optional ``ax``, no global matplotlib state).
- **MIDI files**: :func:`write_midi` and :func:`read_midi`, through the pure-Python ``mido`` library;
  files go to :func:`output_dir` (``outputs/`` in the course folder, ignored by Git) unless the reader
  names another folder.

Notes everywhere are ``(pitch, start, duration)`` with ``pitch`` a MIDI number (``None`` for a rest
only inside :class:`AbcTune`), ``start`` and ``duration`` in beats of the caller's choosing (whole
notes for ABC, frames for piano rolls).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "AbcError", "AbcTune", "VALIDITY_RULES", "split_tunes", "parse_abc", "abc_problems",
    "is_valid_abc", "abc_notes", "LOWEST_KEY", "N_KEYS", "check_roll", "notes_to_roll",
    "roll_to_notes", "midi_to_hz", "synthesize", "audio", "show_roll", "output_dir",
    "write_midi", "read_midi", "check_temperature",
]

LOWEST_KEY = 21     #: MIDI number of the piano's lowest key, A0
N_KEYS = 88         #: keys of a piano: MIDI 21 (A0) to 108 (C8)
SAMPLE_RATE = 8_000  #: default audio sample rate (Hz): telephone quality, plenty for these tones


class AbcError(ValueError):
    """An ABC tune that cannot be read; the message names the problem and where it is."""


# --------------------------------------------------------------------------------------------------
# ABC notation (abcnotation.com, standard v2.1): header fields, then the tune body
# --------------------------------------------------------------------------------------------------
VALIDITY_RULES = """A tune is valid ABC when all of these hold:
1. header: it starts with X:<number>, has T: (title), M: (meter, like 6/8, C or C|) and K: (a key
   such as G, Am, Bb or Dm), in that order of X first and K last;
2. L: (unit note length), where given, is a fraction 1/n; without it the standard default holds
   (1/16 if the meter is below 3/4, else 1/8);
3. body: every symbol is one of: notes (accidental ^ _ = , letter A-G a-g, octave marks , and ',
   length like 2, 3/2, /2 or /), rests z, chords [CEG], chord symbols "Am7/e" (root A-G, optional #
   or b, quality, optional /bass), bar lines | || |] :| |: ::, endings [1 [2, triplets (3,
   ties -, slurs ( ), broken rhythm > <, decorations ~ . !word!, field lines (K: M: L: P: ...);
4. structure: quotes, chords [..], decorations !..! and slurs ( ) are closed;
5. music: every bar lasts exactly one measure of the meter M in force, except the first bar of a
   section (a pickup), the last bar before a repeat sign, double bar or the end, and bars inside
   endings, which may be shorter but never longer; the tune has at least one note, and every note
   lies on the piano (MIDI 21-108).
"""

_CHORD_SYMBOL = re.compile(
    r"\(?[A-G][#b]?(?:m|min|maj|M|d|dim|a|aug|sus)?(?:\d+|[#b]\d+)*"
    r"(?:/[A-Ga-g][#b+]?b?)?\)?")
_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)(\d*)(/*)(\d*)")
_REST = re.compile(r"([zx])(\d*)(/*)(\d*)")
_BAR = re.compile(r"(:*\|+\]?:*|:{2,}|\[\|)(\[?[12](?:,[12])*)?")
_FIELD = re.compile(r"^([A-Za-z]):(.*)$")
_KEY_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7,
               "F": -1, "Bb": -2, "Eb": -3, "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7}
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}


@dataclass
class AbcTune:
    """One parsed tune. ``notes``: ``(pitch or None for a rest, start, duration)`` in whole notes;
    ``bars``: the duration of every bar in whole notes; ``problems``: why it is not valid ABC
    (empty when it is)."""

    header: Dict[str, str] = field(default_factory=dict)
    notes: List[Tuple[Optional[int], Fraction, Fraction]] = field(default_factory=list)
    bars: List[Fraction] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.header.get("T", "")


def split_tunes(text: str) -> List[str]:
    """Cut an ABC file into tunes: each starts at a line ``X:`` and runs to the next one; comment
    lines (``%``) and trailing blank lines are dropped. Returns the tunes' texts, in file order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be the ABC file's text (str), got {type(text).__name__}.")
    tunes, current = [], None
    for line in text.splitlines():
        if line.startswith("X:"):
            if current:
                tunes.append("\n".join(current).strip() + "\n")
            current = [line]
        elif current is not None and not line.startswith("%"):
            current.append(line.rstrip())
    if current:
        tunes.append("\n".join(current).strip() + "\n")
    return tunes


def _meter(value: str) -> Optional[Fraction]:
    value = value.strip()
    if value in ("C", "C|"):
        return Fraction(1) if value == "C" else Fraction(1)
    m = re.fullmatch(r"(\d+)/(\d+)", value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        return None
    return Fraction(int(m.group(1)), int(m.group(2)))


def _unit(value: str) -> Optional[Fraction]:
    m = re.fullmatch(r"1/(\d+)", value.strip())
    return Fraction(1, int(m.group(1))) if m and int(m.group(1)) > 0 else None


def _key_signature(value: str) -> Optional[Dict[str, int]]:
    """{letter: +1/-1} of a key such as ``G``, ``Am``, ``Bb``, ``Dmix``; None if unknown."""
    m = re.fullmatch(r"([A-G][#b]?)\s*(m|min|minor|maj|major|mix|dor|phr|lyd|loc|aeo|ion)?\s*",
                     value.strip(), re.IGNORECASE)
    if not m or m.group(1) not in _KEY_FIFTHS and m.group(1) not in ("D#", "G#", "A#", "Db"):
        return None
    shift = {"m": -3, "min": -3, "minor": -3, "aeo": -3, "mix": -1, "dor": -2, "phr": -4,
             "lyd": 1, "loc": -5}.get((m.group(2) or "").lower(), 0)
    fifths = {"D#": 9, "G#": 8, "A#": 10}.get(m.group(1), _KEY_FIFTHS.get(m.group(1), 0)) + shift
    if fifths > 7 or fifths < -7:
        return None
    if fifths >= 0:
        return {c: 1 for c in _SHARP_ORDER[:fifths]}
    return {c: -1 for c in _FLAT_ORDER[:-fifths]}


def default_unit_length(meter: Fraction) -> Fraction:
    """The ABC standard's default L: 1/16 when the meter is below 3/4, else 1/8 (v2.1, 3.1.7)."""
    return Fraction(1, 16) if meter < Fraction(3, 4) else Fraction(1, 8)


def _length(digits: str, slashes: str, denom: str) -> Fraction:
    if denom and int(denom) == 0 or digits and int(digits) == 0:
        raise AbcError(f"a note length {digits}{slashes}{denom} is zero or divides by zero")
    num = int(digits) if digits else 1
    if not slashes:
        return Fraction(num)
    if denom:
        return Fraction(num, int(denom) * 2 ** (len(slashes) - 1))
    return Fraction(num, 2 ** len(slashes))


def _pitch(acc: str, letter: str, octave: str, key: Dict[str, int], bar_acc: Dict) -> int:
    base = 60 + _STEP[letter.upper()] + (12 if letter.islower() else 0)
    base += 12 * octave.count("'") - 12 * octave.count(",")
    name = (letter.upper(), base // 12)
    if acc:
        bar_acc[name] = _ACCIDENTAL[acc]
    shift = bar_acc.get(name, key.get(letter.upper(), 0))
    return base + shift


def parse_abc(text: str, strict: bool = True) -> AbcTune:
    """Read one ABC tune into an :class:`AbcTune` (header, notes with exact durations, bars).

    Every departure from :data:`VALIDITY_RULES` is recorded in ``.problems`` (with ``strict``)
    instead of raised; a tune whose header lacks K: or M: cannot be read at all and raises
    :class:`AbcError`. Repeats are not unfolded: notes follow the text, once.
    """
    if not isinstance(text, str):
        raise TypeError(f"an ABC tune is text (str), got {type(text).__name__}.")
    tune = AbcTune()
    problems = tune.problems
    lines = [ln.rstrip() for ln in text.strip().splitlines() if not ln.startswith("%")]
    if not lines or not lines[0].startswith("X:") or not lines[0][2:].strip().isdigit():
        problems.append("the tune must start with a line X:<number>")
    body_start = None
    for i, line in enumerate(lines):
        m = _FIELD.match(line)
        if not m:
            problems.append(f"header line {i + 1} is not a field (like T:Title): {line[:30]!r}")
            continue
        tune.header.setdefault(m.group(1), m.group(2).strip())
        if m.group(1) == "K":
            body_start = i + 1
            break
    if body_start is None:
        raise AbcError("the tune has no K: field (key), which ends the ABC header; add a line "
                       "such as K:G before the music.")
    if "M" not in tune.header:
        raise AbcError("the tune has no M: field (meter) in its header; add one such as M:6/8.")
    if "T" not in tune.header:
        problems.append("the header has no T: field (title)")
    meter = _meter(tune.header["M"])
    key = _key_signature(tune.header["K"])
    if meter is None:
        problems.append(f"meter M:{tune.header['M']} is not a fraction such as 6/8 (or C)")
        meter = Fraction(1)
    if key is None:
        problems.append(f"key K:{tune.header['K']} is not a key such as G, Am or Bb")
        key = {}
    unit = _unit(tune.header["L"]) if "L" in tune.header else default_unit_length(meter)
    if unit is None:
        problems.append(f"unit length L:{tune.header['L']} is not a fraction 1/n")
        unit = default_unit_length(meter)
    try:
        _parse_body(lines[body_start:], tune, meter, unit, key)
    except AbcError as err:                 # a zero length: nothing after it can be timed
        problems.append(str(err))
    if not any(p is not None for p, _, _ in tune.notes):
        problems.append("the tune has no notes")
    return tune


def _parse_body(lines: List[str], tune: AbcTune, meter: Fraction, unit: Fraction,
                key: Dict[str, int]) -> None:
    problems, notes = tune.problems, tune.notes
    t = Fraction(0)
    bar_len, bar_acc = Fraction(0), {}
    bar_start_kind = "start"          # what opened the bar: start, section, plain, ending
    tuplet_left, tuplet_scale = 0, Fraction(1)
    slurs, broken = 0, None
    bar_records: List[Tuple[Fraction, str, str, Fraction]] = []  # (length, opened, closed, meter)

    def close_bar(closing: str) -> None:
        nonlocal bar_len, bar_acc, bar_start_kind
        if bar_len > 0:
            bar_records.append((bar_len, bar_start_kind, closing, meter))
        bar_len, bar_acc = Fraction(0), {}

    def add(pitch: Optional[int], dur: Fraction) -> None:
        nonlocal t, bar_len, tuplet_left, tuplet_scale
        if pitch is not None and not LOWEST_KEY <= pitch < LOWEST_KEY + N_KEYS:
            problems.append(f"note {pitch} is outside the piano (MIDI 21-108)")
            pitch = min(max(pitch, LOWEST_KEY), LOWEST_KEY + N_KEYS - 1)
        if tuplet_left:
            dur = dur * tuplet_scale
            tuplet_left -= 1
        notes.append((pitch, t, dur))
        t += dur
        bar_len += dur

    for raw in lines:
        line = raw[:-1] if raw.endswith("\\") else raw
        if "%" in line:
            line = line[: line.index("%")]
        field_m = _FIELD.match(line)
        if field_m and not line.startswith("|"):
            name, value = field_m.group(1), field_m.group(2).strip()
            if name == "M":
                new = _meter(value)
                if new is None:
                    problems.append(f"meter M:{value} is not a fraction such as 6/8")
                else:
                    meter = new
            elif name == "L":
                new = _unit(value)
                if new is None:
                    problems.append(f"unit length L:{value} is not a fraction 1/n")
                else:
                    unit = new
            elif name == "K":
                new = _key_signature(value)
                if new is None:
                    problems.append(f"key K:{value} is not a key such as G, Am or Bb")
                else:
                    key = new
            elif name == "P" and bar_len == 0:
                bar_start_kind = "section"
            continue
        i = 0
        while i < len(line):
            c = line[i]
            if c in " \t":
                i += 1
                continue
            if c == '"':
                j = line.find('"', i + 1)
                if j < 0:
                    problems.append(f"an unclosed chord symbol quote: {line[i:i + 12]!r}")
                    break
                symbol = line[i + 1: j]
                if not _CHORD_SYMBOL.fullmatch(symbol):
                    problems.append(f"chord symbol {symbol!r} is not a chord name like Am7/e")
                i = j + 1
                continue
            if c == "!":
                j = line.find("!", i + 1)
                if j < 0 or not re.fullmatch(r"[A-Za-z]+", line[i + 1: j]):
                    problems.append(f"a decoration !...! is not closed or not a word: "
                                    f"{line[i:i + 10]!r}")
                    break
                i = j + 1
                continue
            if c in "~.":
                i += 1
                continue
            m = _BAR.match(line, i)
            if m and (c in "|:" or line.startswith("[|", i)):
                sym, ending = m.group(1), m.group(2)
                closing = ("repeat_end" if sym.startswith(":") else
                           "double" if sym in ("||", "|]", "[|") else
                           "repeat_start" if sym.endswith(":") else "plain")
                close_bar(closing)
                bar_start_kind = ("ending" if ending else
                                  "section" if closing != "plain" else "plain")
                i = m.end()
                continue
            if c == "[" and i + 1 < len(line) and line[i + 1] in "12":
                bar_start_kind = "ending"
                i += 2
                while i < len(line) and line[i] in ",12":
                    i += 1
                continue
            if c == "[":
                j = line.find("]", i + 1)
                if j < 0:
                    problems.append(f"an unclosed chord [ ... at {line[i:i + 10]!r}")
                    break
                inner = line[i + 1: j].replace("-", "")         # ties inside a chord
                chord = list(_NOTE.finditer(inner))
                if not chord or "".join(x.group(0) for x in chord) != inner.replace(" ", ""):
                    problems.append(f"chord [{inner}] is not a list of notes")
                    i = j + 1
                    continue
                k = j + 1
                after = _length_suffix(line, k)
                dur = _length(*chord[0].groups()[3:]) * unit * after[0]
                pitches = [_pitch(x.group(1) or "", x.group(2), x.group(3), key, bar_acc)
                           for x in chord]
                start = t
                add(pitches[0], dur)
                for p in pitches[1:]:
                    notes.append((p, start, notes[-1][2]))
                i = after[1]
                continue
            if c == "(":
                m2 = re.match(r"\((\d)", line[i:])
                if m2:
                    n = int(m2.group(1))
                    if n not in (2, 3, 4, 5, 6, 7, 9):
                        problems.append(f"tuplet ({n} is not one ABC defines")
                    else:
                        q = {2: 3, 3: 2, 4: 3, 6: 2}.get(n, 3 if meter.numerator % 3 == 0 and
                                                         meter.numerator > 3 else 2)
                        tuplet_left, tuplet_scale = n, Fraction(q, n)
                    i += 2
                else:
                    slurs += 1
                    i += 1
                continue
            if c == ")":
                slurs -= 1
                if slurs < 0:
                    problems.append("a slur ) closes without an opening (")
                    slurs = 0
                i += 1
                continue
            if c == "-":
                if not notes:
                    problems.append("a tie - before any note")
                i += 1
                continue
            if c in "<>":
                j = i
                while j < len(line) and line[j] == c:
                    j += 1
                if not notes:
                    problems.append("broken rhythm > or < before any note")
                broken = (c, j - i)
                i = j
                continue
            m = _NOTE.match(line, i)
            if m:
                p = _pitch(m.group(1) or "", m.group(2), m.group(3), key, bar_acc)
                dur = _length(m.group(4), m.group(5), m.group(6)) * unit
                if broken:
                    dur = _apply_broken(notes, broken, dur)
                    broken = None
                add(p, dur)
                i = m.end()
                continue
            m = _REST.match(line, i)
            if m:
                add(None, _length(m.group(2), m.group(3), m.group(4)) * unit)
                i = m.end()
                continue
            problems.append(f"unexpected symbol {c!r} in {line[max(0, i - 6):i + 6]!r}")
            break
    if slurs:
        problems.append("a slur ( is never closed")
    close_bar("end")
    tune.bars = [length for length, _, _, _ in bar_records]
    _check_bars(bar_records, problems)


def _length_suffix(line: str, k: int) -> Tuple[Fraction, int]:
    m = re.match(r"(\d*)(/*)(\d*)", line[k:])
    if m and m.group(0):
        return _length(m.group(1), m.group(2), m.group(3)), k + m.end()
    return Fraction(1), k


def _apply_broken(notes: list, broken: Tuple[str, int], dur: Fraction) -> Fraction:
    """a>b: a dotted, b halved (and the other way round for <); the previous note is stretched."""
    kind, n = broken
    factor = Fraction(2 ** (n + 1) - 1, 2 ** n)           # > : 3/2, >> : 7/4
    if not notes:
        return dur
    p, start, prev = notes[-1]
    total = prev + dur
    first = prev * (factor if kind == ">" else (2 - factor))
    notes[-1] = (p, start, first)
    return total - first


def _check_bars(records, problems: List[str]) -> None:
    """Rule 5 of :data:`VALIDITY_RULES`: full bars match the meter; pickups and final bars may be
    short, never long."""
    n = len(records)
    for idx, (length, opened, closed, meter) in enumerate(records):
        if length == 0:
            continue
        if length > meter:
            problems.append(f"bar {idx + 1} lasts {length} of a whole note, longer than the "
                            f"meter {meter}")
            continue
        if length == meter:
            continue
        may_be_short = (idx == 0 or opened in ("section", "ending", "start")
                        or closed in ("repeat_end", "double", "end", "repeat_start")
                        or idx == n - 1)
        if not may_be_short:
            problems.append(f"bar {idx + 1} lasts {length} of a whole note, not the meter "
                            f"{meter}")


def abc_problems(text: str) -> List[str]:
    """Every reason why ``text`` is not a valid tune under :data:`VALIDITY_RULES` (empty: valid)."""
    try:
        return parse_abc(text).problems
    except AbcError as exc:
        return [str(exc)]


def is_valid_abc(text: str) -> bool:
    """True when ``text`` is one valid ABC tune (:data:`VALIDITY_RULES`)."""
    return not abc_problems(text)


def abc_notes(text: str, beats_per_whole: int = 4) -> List[Tuple[int, float, float]]:
    """The sounding notes of a tune as ``(midi pitch, start, duration)`` in beats (quarter notes
    by default), rests dropped; for :func:`synthesize` and :func:`write_midi`."""
    tune = parse_abc(text)
    return [(p, float(s) * beats_per_whole, float(d) * beats_per_whole)
            for p, s, d in tune.notes if p is not None]


# --------------------------------------------------------------------------------------------------
# Piano rolls: (T, 88) binary arrays, key k = MIDI note 21 + k
# --------------------------------------------------------------------------------------------------
def check_roll(roll, name: str = "roll") -> np.ndarray:
    """``roll`` as a ``(T, 88)`` uint8 NumPy array of 0/1, from a tensor or array; a clear error
    for another number of keys, a missing time axis or values other than 0 and 1."""
    if hasattr(roll, "detach"):
        roll = roll.detach().cpu().numpy()
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise ValueError(f"{name} must be a piano roll of shape (T, {N_KEYS}) (time steps x keys "
                         f"A0..C8), got shape {roll.shape}" + (
                             f"; for one piece of a batch pass {name}[0]" if roll.ndim == 3
                             else ""))
    if roll.dtype == bool:
        roll = roll.astype(np.uint8)
    if roll.size and not np.isin(roll, (0, 1)).all():
        raise ValueError(f"{name} must hold 0 (key up) and 1 (key down) only, got values such as "
                         f"{roll[~np.isin(roll, (0, 1))].flat[0]!r}; for probabilities, sample "
                         "them (torch.bernoulli) or threshold them first.")
    return roll.astype(np.uint8)


def _check_pitch(pitch, what: str = "pitch") -> int:
    if isinstance(pitch, bool) or not isinstance(pitch, (int, np.integer)):
        raise TypeError(f"{what} must be a whole MIDI note number, got {pitch!r}.")
    if not LOWEST_KEY <= int(pitch) < LOWEST_KEY + N_KEYS:
        raise ValueError(f"{what} {pitch} is outside the piano: MIDI notes run from "
                         f"{LOWEST_KEY} (A0) to {LOWEST_KEY + N_KEYS - 1} (C8).")
    return int(pitch)


def notes_to_roll(frames: Sequence[Iterable[int]]) -> np.ndarray:
    """A piano roll ``(T, 88)`` from a list of time steps, each a collection of sounding MIDI
    pitches (the JSB Chorales' format)."""
    roll = np.zeros((len(frames), N_KEYS), dtype=np.uint8)
    for t, pitches in enumerate(frames):
        for p in pitches:
            roll[t, _check_pitch(p, f"pitch at step {t}") - LOWEST_KEY] = 1
    return roll


def roll_to_notes(roll, merge: bool = True) -> List[Tuple[int, int, int]]:
    """Notes ``(pitch, start frame, length in frames)`` of a piano roll. With ``merge`` a key held
    over consecutive frames is one long note; without it, one note per frame (a chorale's repeated
    quarter notes are indistinguishable from held ones in this encoding)."""
    roll = check_roll(roll)
    notes = []
    for k in range(N_KEYS):
        col = roll[:, k]
        t = 0
        while t < len(col):
            if col[t]:
                end = t + 1
                while merge and end < len(col) and col[end]:
                    end += 1
                notes.append((LOWEST_KEY + k, t, end - t))
                t = end
            else:
                t += 1
    return sorted(notes, key=lambda n: (n[1], n[0]))


def frames_of_roll(roll) -> List[List[int]]:
    """The inverse of :func:`notes_to_roll`: the sounding MIDI pitches of each frame."""
    roll = check_roll(roll)
    return [[LOWEST_KEY + int(k) for k in np.flatnonzero(row)] for row in roll]


# --------------------------------------------------------------------------------------------------
# Sound
# --------------------------------------------------------------------------------------------------
def midi_to_hz(pitch) -> np.ndarray:
    """Frequency of MIDI note(s) in 12-tone equal temperament, A4 = MIDI 69 = 440 Hz:
    f = 440 * 2 ** ((pitch - 69) / 12). Middle C (60) is 261.63 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def synthesize(notes: Sequence[Tuple[int, float, float]], seconds_per_beat: float = 0.25,
               sample_rate: int = SAMPLE_RATE, max_seconds: float = 8.0,
               harmonics: Sequence[float] = (1.0, 0.5, 0.25, 0.12)) -> np.ndarray:
    """A mono waveform (float32 in [-1, 1]) of ``notes`` ``(midi pitch, start, duration)`` in beats.

    Additive synthesis: each note is a sum of harmonics ``sin(2 pi n f t) * a_n`` under an envelope
    (5 ms attack, exponential decay, 20 ms release), so notes start and stop without clicks. The
    mix is scaled to a peak of 0.9 (never clipped). Notes after ``max_seconds`` are cut.
    """
    if not (isinstance(sample_rate, int) and 2000 <= sample_rate <= 96_000):
        raise ValueError(f"sample_rate must be a whole number of Hz in 2,000..96,000, "
                         f"got {sample_rate!r}.")
    if not (isinstance(seconds_per_beat, (int, float)) and seconds_per_beat > 0):
        raise ValueError(f"seconds_per_beat must be > 0, got {seconds_per_beat!r}.")
    notes = list(notes)
    end = max((s + d for _, s, d in notes), default=0.0) * seconds_per_beat
    n = int(round(min(end, max_seconds) * sample_rate)) + int(0.05 * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    attack, release = int(0.005 * sample_rate), int(0.02 * sample_rate)
    for pitch, start, dur in notes:
        _check_pitch(pitch)
        if dur <= 0:
            raise ValueError(f"note {pitch} at {start} has duration {dur}; durations must be > 0.")
        a = int(round(start * seconds_per_beat * sample_rate))
        if a >= n:
            continue
        length = min(int(round(dur * seconds_per_beat * sample_rate)), n - a)
        if length <= 0:
            continue
        t = np.arange(length) / sample_rate
        f = float(midi_to_hz(pitch))
        wave = sum(amp * np.sin(2 * np.pi * (h + 1) * f * t)
                   for h, amp in enumerate(harmonics) if (h + 1) * f < sample_rate / 2)
        env = np.exp(-3.0 * t)
        env[:attack] *= np.linspace(0.0, 1.0, attack) if attack else 1
        r = min(release, length)
        env[length - r:] *= np.linspace(1.0, 0.0, r)
        out[a: a + length] += wave * env
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)


def audio(wave: np.ndarray, sample_rate: int = SAMPLE_RATE):
    """An ``IPython.display.Audio`` player for a mono waveform in [-1, 1] (stored as 16-bit WAV
    at ``sample_rate``: 16 kB per second at 8,000 Hz, so a few seconds stay small)."""
    from IPython.display import Audio

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"wave must be mono, a 1-D array of samples, got shape {wave.shape}.")
    if wave.size and (not np.isfinite(wave).all() or np.abs(wave).max() > 1.0 + 1e-6):
        raise ValueError("wave must hold finite samples in [-1, 1] (16-bit audio would clip); "
                         "scale it by 0.9 / abs(wave).max().")
    return Audio(wave, rate=sample_rate, normalize=False)


def roll_sound(roll, seconds_per_frame: float = 0.3, **kwargs) -> np.ndarray:
    """The waveform of a piano roll (keys held over frames become long notes)."""
    notes = roll_to_notes(roll)
    return synthesize(notes, seconds_per_beat=seconds_per_frame, **kwargs)


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------
def show_roll(roll, ax=None, title: str = "", frame_label: str = "time step (quarter note)"):
    """Draw a piano roll ``(T, 88)``: time across, pitch up, only the range that sounds (with a
    margin); returns the axes."""
    import matplotlib.pyplot as plt

    roll = check_roll(roll)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2))
    keys = np.flatnonzero(roll.any(0))
    lo, hi = (keys.min() - 2, keys.max() + 3) if keys.size else (39, 76)
    lo, hi = max(lo, 0), min(hi, N_KEYS)
    ax.imshow(roll[:, lo:hi].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(-0.5, roll.shape[0] - 0.5, LOWEST_KEY + lo - 0.5, LOWEST_KEY + hi - 0.5))
    for c in range(LOWEST_KEY + lo, LOWEST_KEY + hi):
        if c % 12 == 0:
            ax.axhline(c - 0.5, color="tab:blue", lw=0.4, alpha=0.5)
    ax.set_xlabel(frame_label, fontsize=11)
    ax.set_ylabel("MIDI pitch (60 = middle C)", fontsize=11)
    if title:
        ax.set_title(title, fontsize=12)
    return ax


# --------------------------------------------------------------------------------------------------
# MIDI files (standard MIDI file, type 0, through mido)
# --------------------------------------------------------------------------------------------------
def output_dir() -> Path:
    """Where the lessons write files unless told otherwise: ``outputs/`` in the course folder
    (ignored by Git), or ``$DEEPGEN_OUTPUTS``."""
    from .config import repo_root

    return Path(os.environ.get("DEEPGEN_OUTPUTS") or repo_root() / "outputs")


def _midi_path(path: Union[str, Path, None], name: str) -> Path:
    if path is None:
        folder = output_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"MIDI files end in .mid; got {str(path)!r}. Pass a file name such as "
                         "'chorale.mid'.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"the folder {str(folder)!r} does not exist; create it first "
                                "(Path(folder).mkdir(parents=True)) or pass path=None to write to "
                                "the course's outputs/ folder.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"the folder {str(folder)!r} is not writable; choose another "
                              "folder, or pass path=None for the course's outputs/ folder.")
    return path


def write_midi(notes: Sequence[Tuple[int, float, float]], path: Union[str, Path, None] = None,
               name: str = "piece.mid", seconds_per_beat: float = 0.5,
               velocity: int = 80, program: int = 0) -> Path:
    """Write ``notes`` ``(midi pitch, start, duration)`` in beats to a standard MIDI file and return
    its path. ``path=None`` writes ``name`` into :func:`output_dir`; a path must end in ``.mid`` and
    its folder must exist and be writable (never anywhere else unasked)."""
    import mido

    target = _midi_path(path, name)
    ticks = 480
    events = []
    for pitch, start, dur in notes:
        _check_pitch(pitch)
        if dur <= 0:
            raise ValueError(f"note {pitch} at {start} has duration {dur}; durations must be > 0.")
        on, off = int(round(start * ticks)), int(round((start + dur) * ticks))
        events += [(on, 1, pitch), (max(off, on + 1), 0, pitch)]
    events.sort()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=int(seconds_per_beat * 1e6), time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for tick, kind, pitch in events:
        msg = "note_on" if kind else "note_off"
        track.append(mido.Message(msg, note=pitch, velocity=velocity if kind else 0,
                                  time=tick - now))
        now = tick
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(str(target))
    return target


def read_midi(path: Union[str, Path]) -> List[Tuple[int, float, float]]:
    """The notes ``(midi pitch, start, duration)`` in beats of a MIDI file written by
    :func:`write_midi` (or any simple one), sorted by start and pitch."""
    import mido

    midi = mido.MidiFile(str(path))
    per_beat = midi.ticks_per_beat
    notes, held, now = [], {}, 0
    for msg in mido.merge_tracks(midi.tracks):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            held[msg.note] = now
        elif msg.type in ("note_off", "note_on") and msg.note in held:
            start = held.pop(msg.note)
            notes.append((msg.note, start / per_beat, (now - start) / per_beat))
    return sorted(notes, key=lambda n: (n[1], n[0]))


def check_temperature(temperature) -> float:
    """The sampling temperature as a float, if it is a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0 (1 samples the model as trained, "
                         f"lower is more conservative), got {temperature!r}.")
    return float(temperature)
