"""Lesson 11 (music): the music plumbing (ABC, piano rolls, sound, MIDI), the exported piano-roll
models, the data loaders, and the checkers fed the mistakes learners make."""
import math
import os
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import data, music
from deepgen_helpers.checks import lesson11 as chk
from deepgen_helpers.models import music_rnn as lesson

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

TUNE = """X:1
T:Test
M:6/8
L:1/8
K:G
|:"G"GAB dBG|"D7"A3 F3|"G"G2B "Em"e2g|"Am"a3 "D7"f2d:|
"""


# ------------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def tunes():
    return data.load_nottingham()


def test_nottingham_loads_every_tune(tunes):
    assert len(tunes) == 1034 and all(t.startswith("X:") for t in tunes)


def test_every_shipped_tune_parses_and_nearly_all_are_valid(tunes):
    parsed, unreadable = [], 0
    for t in tunes:
        try:
            parsed.append(music.parse_abc(t))
        except music.AbcError as err:                             # one tune has no M: field
            assert "no M: field" in str(err)
            unreadable += 1
    assert unreadable <= 1 and all(p.notes and p.bars for p in parsed)
    valid = sum(not p.problems for p in parsed)
    assert valid >= 0.96 * len(tunes)


def test_jsb_splits():
    sizes = {s: data.load_jsb_chorales(s) for s in data.JSB_SPLITS}
    assert [len(sizes[s]) for s in data.JSB_SPLITS] == [229, 76, 77]
    assert sum(len(r) for r in sizes["test"]) == 4725
    assert all(r.shape[1] == 88 and r.dtype == np.uint8 for r in sizes["valid"])
    with pytest.raises(data.DataError, match="Did you mean 'test'"):
        data.load_jsb_chorales("tests")


# ------------------------------------------------------------------------------------------- ABC
def test_parse_durations_key_and_bars():
    tune = music.parse_abc(TUNE)
    assert tune.header["K"] == "G" and tune.title == "Test"
    assert tune.notes[0] == (67, Fraction(0), Fraction(1, 8))      # G4, one eighth
    f_sharp = [p for p, _, _ in tune.notes if p is not None and p % 12 == 6]
    assert f_sharp, "K:G makes F sharp"
    assert tune.bars == [Fraction(3, 4)] * 4 and not tune.problems


def test_default_unit_length_depends_on_meter():
    two_four = TUNE.replace("M:6/8\nL:1/8\n", "M:2/4\n").replace("dBG", "d")
    assert music.parse_abc(two_four).notes[0][2] == Fraction(1, 16)
    assert music.default_unit_length(Fraction(3, 4)) == Fraction(1, 8)


def test_accidentals_last_to_the_end_of_the_bar():
    tune = music.parse_abc("X:1\nT:t\nM:4/4\nL:1/4\nK:C\n^F F F F|F4|\n")
    pitches = [p for p, _, _ in tune.notes]
    assert pitches == [66, 66, 66, 66, 65]


@pytest.mark.parametrize("bad, reason", [
    (TUNE.replace("|\"D7\"A3 F3|", "|\"D7\"A3 F2|"), "not the meter"),
    (TUNE.replace("\"Em\"", "\"Hm\""), "chord symbol"),
    (TUNE.replace("GAB", "G&B"), "unexpected symbol"),
    (TUNE.replace("T:Test\n", ""), "no T:"),
    (TUNE.replace("\"D7\"A3", "\"D7A3"), "chord symbol"),          # the quote pairs wrongly
    (TUNE.replace("\"Am\"", "\"Am"), "unclosed chord symbol quote"),
    (TUNE.replace("A3 F3", "A3 F6"), "longer than the meter"),
    ("X:1\nT:t\nM:4/4\nK:C\n", "no notes"),
])
def test_validity_rejects(bad, reason):
    problems = music.abc_problems(bad)
    assert problems and any(reason in p for p in problems), problems


def test_pickup_and_final_bars_may_be_short():
    tune = "X:1\nT:t\nM:6/8\nL:1/8\nK:D\nA|dfa afd|e3 e2:|\n"
    assert music.is_valid_abc(tune), music.abc_problems(tune)


def test_abc_without_key_or_meter_is_refused():
    with pytest.raises(music.AbcError, match="no K: field"):
        music.parse_abc("X:1\nT:t\nM:4/4\nABcd|\n")
    with pytest.raises(music.AbcError, match="no M: field"):
        music.parse_abc("X:1\nT:t\nK:G\nABcd|\n")
    assert not music.is_valid_abc("X:1\nT:t\nM:4/4\nABcd|\n")


def test_split_tunes_drops_comments():
    text = "% a comment\nX:1\nT:a\n% inside\nM:4/4\nK:C\nC4|\n\nX:2\nT:b\nM:4/4\nK:C\nD4|\n"
    parts = music.split_tunes(text)
    assert len(parts) == 2 and "%" not in parts[0] and parts[1].startswith("X:2")


# ------------------------------------------------------------------------------------ piano rolls
def test_roll_round_trip():
    frames = [[60, 64, 67], [60, 64, 67], [], [21, 108]]
    roll = music.notes_to_roll(frames)
    assert roll.shape == (4, 88) and music.frames_of_roll(roll) == [sorted(f) for f in frames]
    notes = music.roll_to_notes(roll)
    assert (60, 0, 2) in notes and (21, 3, 1) in notes and (108, 3, 1) in notes


@pytest.mark.parametrize("roll, match", [
    (np.zeros((5, 87)), r"shape \(T, 88\)"),
    (np.zeros((2, 5, 88)), r"\[0\]"),
    (np.full((3, 88), 0.5), "0 \\(key up\\) and 1"),
])
def test_bad_rolls(roll, match):
    with pytest.raises(ValueError, match=match):
        music.check_roll(roll)


@pytest.mark.parametrize("pitch", [20, 109, -1])
def test_pitch_out_of_range(pitch):
    with pytest.raises(ValueError, match="outside the piano"):
        music.notes_to_roll([[pitch]])
    with pytest.raises(ValueError, match="outside the piano"):
        music.synthesize([(pitch, 0, 1)])


# ------------------------------------------------------------------------------------------ sound
def test_midi_to_hz_reference_points():
    assert np.allclose(music.midi_to_hz([69, 60, 57, 81]), [440, 261.6256, 220, 880], atol=1e-3)


def test_synthesis_shape_range_no_clipping():
    notes = [(60, 0, 1), (64, 0, 1), (67, 0, 1), (72, 1, 2)]
    wave = music.synthesize(notes, seconds_per_beat=0.5, sample_rate=8000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - int(1.5 * 8000 + 0.05 * 8000)) <= 1
    assert np.abs(wave).max() <= 0.9 + 1e-6 and np.abs(wave).max() > 0.5
    assert abs(wave[0]) < 1e-3                                  # an attack, not a click
    short = music.synthesize([(60, 0, 100)], seconds_per_beat=1.0, max_seconds=2, sample_rate=8000)
    assert len(short) <= 2.05 * 8000 + 1


def test_audio_player_and_bad_waves():
    player = music.audio(music.synthesize([(69, 0, 1)], 0.2))
    assert player.data[:4] == b"RIFF"
    with pytest.raises(ValueError, match="mono"):
        music.audio(np.zeros((2, 100)))
    with pytest.raises(ValueError, match="clip"):
        music.audio(np.full(100, 1.5))


# ------------------------------------------------------------------------------------------- MIDI
def test_midi_written_and_read_back(tmp_path):
    notes = [(60, 0.0, 1.0), (64, 0.0, 1.0), (67, 1.0, 0.5), (72, 1.5, 2.0)]
    path = music.write_midi(notes, path=tmp_path / "x.mid")
    assert path.exists() and path.read_bytes()[:4] == b"MThd"
    assert music.read_midi(path) == sorted(notes, key=lambda n: (n[1], n[0]))


def test_midi_default_folder_is_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGEN_OUTPUTS", str(tmp_path / "out"))
    path = music.write_midi([(60, 0, 1)], name="a.mid")
    assert path == tmp_path / "out" / "a.mid" and path.exists()


def test_midi_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        music.write_midi([(60, 0, 1)], path=tmp_path / "missing" / "x.mid")
    with pytest.raises(ValueError, match=r"\.mid"):
        music.write_midi([(60, 0, 1)], path=tmp_path / "x.wav")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):                        # root can write anywhere
            with pytest.raises(PermissionError, match="not writable"):
                music.write_midi([(60, 0, 1)], path=locked / "x.mid")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("tau", [0, -1.0, float("nan"), True, "1"])
def test_bad_temperature(tau):
    with pytest.raises(ValueError, match="temperature"):
        music.check_temperature(tau)
    model = lesson.PianoRollLSTM(lesson.RollConfig(hidden=8, made_hidden=16))
    with pytest.raises(ValueError, match="temperature"):
        lesson.sample_rolls(model, torch.zeros(1, 88), 2, temperature=tau)


# ------------------------------------------------------------------------------ exported models
def _batch(lengths=(7, 4, 9), seed=0):
    g = torch.Generator().manual_seed(seed)
    rolls = [torch.bernoulli(torch.full((n, 88), 0.05), generator=g).numpy() for n in lengths]
    return lesson.pad_rolls(rolls)


def test_frame_nll_protocol():
    x, mask = _batch()
    logits = torch.zeros(3, x.shape[1] - 1, 88)
    nll = lesson.frame_nll(logits, x, mask)
    assert nll.shape == (3, x.shape[1] - 1)
    assert torch.allclose(nll.sum() / mask[:, 1:].sum(), torch.tensor(88 * math.log(2)))
    assert (nll[1, 3:] == 0).all()                                  # padding counts nothing


@pytest.mark.parametrize("head", ["independent", "made"])
def test_roll_model_shapes_and_causality(head):
    torch.manual_seed(0)
    model = lesson.PianoRollLSTM(lesson.RollConfig(hidden=16, made_hidden=120, head=head,
                                                   dropout=0.0)).eval()
    if head == "made":
        torch.nn.init.normal_(model.head.V, std=0.3)
    x, mask = _batch()
    logits = model(x)
    assert logits.shape == (3, x.shape[1] - 1, 88)
    x2 = x.clone()
    x2[:, 3, 50] = 1 - x2[:, 3, 50]                                 # change key 50 of frame 4
    with torch.no_grad():
        d = (model(x2) - model(x)).abs()
    assert (d[:, :2] == 0).all()                                    # earlier frames unchanged
    assert (d[:, 2, :51] == 0).all()                                # same frame: keys <= 50
    if head == "made":
        assert (d[:, 2, 51:] > 0).any()
    assert (d[:, 3:] > 0).any()                                     # later frames see it


def test_made_masks_are_autoregressive():
    to_hidden, to_output = lesson.made_masks(88, 300)
    reach = (to_output @ to_hidden) > 0                            # (88, 88): k sees d
    assert not torch.triu(reach).any() and reach[87, :87].all()


def test_training_improves_and_sampling_is_reproducible():
    train = data.load_jsb_chorales("train")[:12]
    valid = data.load_jsb_chorales("valid")[:6]
    torch.manual_seed(0)
    model = lesson.PianoRollLSTM(lesson.RollConfig(hidden=32, made_hidden=64, head="made"))
    before = lesson.roll_frame_nlls(model, valid).mean()
    hist = lesson.train_roll_model(model, train, valid, epochs=3, batch_size=4, seed=0)
    assert lesson.roll_frame_nlls(model, valid).mean() < before and len(hist["valid"]) == 3
    start = torch.from_numpy(valid[0][0]).float()[None]
    a = lesson.sample_rolls(model, start, 5, 0.8, torch.Generator().manual_seed(1))
    b = lesson.sample_rolls(model, start, 5, 0.8, torch.Generator().manual_seed(1))
    assert a.shape == (1, 6, 88) and torch.equal(a, b) and torch.equal(a[0, 0], start[0])
    assert set(a.unique().tolist()) <= {0.0, 1.0}


# --------------------------------------------------------------------------------------- checkers
def _nll_ref(logits, x, mask):
    nll = F.binary_cross_entropy_with_logits(logits, x[:, 1:], reduction="none").sum(-1)
    return (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()


def test_frame_nll_checker():
    assert chk.check_frame_nll(_nll_ref)
    assert chk.check_frame_nll(lesson.frame_nll and (
        lambda lg, x, m: lesson.frame_nll(lg, x, m).sum() / m[:, 1:].sum()))


def _mean_over_keys(logits, x, mask):
    nll = F.binary_cross_entropy_with_logits(logits, x[:, 1:], reduction="none").mean(-1)
    return (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()


def _first_frame_target(logits, x, mask):                          # targets not shifted
    nll = F.binary_cross_entropy_with_logits(logits, x[:, :-1], reduction="none").sum(-1)
    return (nll * mask[:, :-1]).sum() / mask[:, :-1].sum()


def _mean_of_means(logits, x, mask):
    nll = F.binary_cross_entropy_with_logits(logits, x[:, 1:], reduction="none").sum(-1)
    return ((nll * mask[:, 1:]).sum(1) / mask[:, 1:].sum(1)).mean()


def _padding_counted(logits, x, mask):
    return F.binary_cross_entropy_with_logits(logits, x[:, 1:], reduction="none").sum(-1).mean()


@pytest.mark.parametrize("wrong", [_mean_over_keys, _first_frame_target, _mean_of_means,
                                   _padding_counted])
def test_frame_nll_checker_rejects(wrong):
    assert not chk.check_frame_nll(wrong)


def test_midi_to_hz_checker():
    assert chk.check_midi_to_hz(lambda p: 440.0 * 2.0 ** ((p.double() - 69) / 12))
    assert chk.check_midi_to_hz(lambda p: torch.as_tensor(music.midi_to_hz(p.numpy())))


@pytest.mark.parametrize("wrong", [
    lambda p: 880.0 * 2.0 ** ((p.double() - 69) / 12),             # an octave up
    lambda p: 440.0 * 2.0 ** ((p.double() - 60) / 12),             # 440 Hz at middle C
    lambda p: 440.0 * 2.0 ** ((p.double() - 69) / 11),             # 11 steps per octave
    lambda p: 440.0 * 2.0 ** ((p - 69) // 12),                     # integer division
])
def test_midi_to_hz_checker_rejects(wrong):
    assert not chk.check_midi_to_hz(wrong)


def test_made_masks_checker():
    def good(deg, n):
        keys = torch.arange(n)
        return (keys[None] <= deg[:, None]).float(), (deg[None] < keys[:, None]).float()
    assert chk.check_made_masks(good)


@pytest.mark.parametrize("wrong", [
    lambda deg, n: ((torch.arange(n)[None] <= deg[:, None]).float(),
                    (deg[None] <= torch.arange(n)[:, None]).float()),    # k sees itself
    lambda deg, n: ((torch.arange(n)[None] < deg[:, None]).float(),
                    (deg[None] < torch.arange(n)[:, None]).float()),     # strict on input side
    lambda deg, n: ((torch.arange(n)[None] <= deg[:, None]).float().T,
                    (deg[None] < torch.arange(n)[:, None]).float().T),   # transposed
])
def test_made_masks_checker_rejects(wrong):
    assert not chk.check_made_masks(wrong)


def _abc_good(token, unit):
    return music._length(*music._NOTE.fullmatch(token).groups()[3:]) * unit \
        if token[0] not in "zx" else music._length(*music._REST.fullmatch(token).groups()[1:]) * unit


def test_abc_duration_checker():
    assert chk.check_abc_duration(_abc_good)


def _ignores_unit(token, unit):
    return _abc_good(token, Fraction(1, 8))


def _slash_is_nothing(token, unit):
    return _abc_good(token.replace("//", "").replace("/", "") if token.endswith("/") else token,
                     unit)


def _accidental_as_length(token, unit):
    return _abc_good(token, unit) * (2 if token[0] in "^_=" else 1)


@pytest.mark.parametrize("wrong", [_ignores_unit, _slash_is_nothing, _accidental_as_length])
def test_abc_duration_checker_rejects(wrong):
    assert not chk.check_abc_duration(wrong)
