"""BLEU and chrF of the helpers against sacreBLEU (Post 2018), the reference implementation whose
default corpus scores the course reports (lesson 15)."""
import random
import re

import pytest

from deepgen_helpers import data, metrics

try:                                        # the reference implementation, in the test extra
    import sacrebleu
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
except ImportError:
    sacrebleu = None
needs_sacrebleu = pytest.mark.skipif(
    sacrebleu is None, reason="needs sacreBLEU: pip install 'sacrebleu>=2.3' (the test extra)")


def _streams(references):
    """The course's layout (one reference or list of references per hypothesis) in sacreBLEU's (one
    list per set of references, None where a hypothesis has fewer references)."""
    per_hyp = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(refs) for refs in per_hyp)
    return [[refs[k] if k < len(refs) else None for refs in per_hyp] for k in range(width)]


def _assert_same_as_sacrebleu(hypotheses, references):
    ours = metrics.bleu(hypotheses, references)
    theirs = sacrebleu.corpus_bleu(hypotheses, _streams(references))
    assert ours["score"] == pytest.approx(theirs.score, abs=1e-9)
    assert ours["precisions"] == pytest.approx(theirs.precisions, abs=1e-9)
    assert ours["brevity_penalty"] == pytest.approx(theirs.bp, abs=1e-12)
    assert (ours["hyp_len"], ours["ref_len"]) == (theirs.sys_len, theirs.ref_len)
    assert ours["matches"] == list(theirs.counts) and ours["totals"] == list(theirs.totals)
    ours_chrf = metrics.chrf(hypotheses, references)
    assert ours_chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, _streams(references)).score,
                                      abs=1e-9)
    return ours, ours_chrf


HAND_CASES = {
    "perfect match": (["The cat sat on the mat."], ["The cat sat on the mat."]),
    "no overlap": (["a b c d e"], ["f g h i j"]),
    "short hypothesis, brevity penalty": (["the cat sat on"], ["the cat sat on the mat today"]),
    "no 4-gram match, exp smoothing": (["the cat is on the mat"], ["the cat sat on the mat"]),
    "multiple references": (["the cat is on the mat", "there is a cat here"],
                            [["the cat sat on the mat", "there is a cat on the mat"],
                             ["a cat is here", "there is a cat over there", "cat"]]),
    "a varying number of references": (["Hello there!", "Good night."],
                                       [["Hello!", "Hi there!"], "Good night, Tom."]),
    "punctuation and apostrophes": (["Don't stop, it's 3.5 km (well-known)!"],
                                    ["Don't stop: it's 3,5 km - well known..."]),
    "numbers, dashes, entities": (["In 1990-2000, 1,000 people paid $5.50 &amp; left."],
                                  ["In 1990 - 2000 , 1,000 people paid $ 5.50 & left ."]),
    "case counts": (["THE CAT SAT ON THE MAT"], ["the cat sat on the mat"]),
    "empty hypothesis in a corpus": (["", "the cat sat on the mat"],
                                     ["a dog", "the cat sat on a mat"]),
    "only an empty hypothesis": ([""], ["hello there"]),
    "hypothesis shorter than 4 tokens": (["the cat"], ["the cat sat on the mat"]),
    "short hypotheses in a corpus": (["Go.", "I see.", "the cat sat on the mat"],
                                     ["Go.", "I see it.", "the cat sat on the mat"]),
    "empty reference": (["something"], [""]),
    "trailing and inner whitespace": (["  the  cat\tsat \n"], ["the cat sat"]),
}


@needs_sacrebleu
@pytest.mark.parametrize("name", list(HAND_CASES))
def test_hand_cases_equal_sacrebleu(name):
    _assert_same_as_sacrebleu(*HAND_CASES[name])


@needs_sacrebleu
def test_hand_cases_have_the_expected_values():
    bleu, chrf = _assert_same_as_sacrebleu(*HAND_CASES["perfect match"])
    assert bleu["score"] == pytest.approx(100) and chrf == pytest.approx(100)
    bleu, chrf = _assert_same_as_sacrebleu(*HAND_CASES["no overlap"])
    assert bleu["score"] == 0 and chrf == 0
    bleu, _ = _assert_same_as_sacrebleu(*HAND_CASES["short hypothesis, brevity penalty"])
    assert bleu["precisions"][0] == 100 and bleu["brevity_penalty"] == pytest.approx(
        2.718281828459045 ** (1 - 7 / 4))                    # exp(1 - r / c), r = 7, c = 4
    bleu, _ = _assert_same_as_sacrebleu(*HAND_CASES["no 4-gram match, exp smoothing"])
    assert bleu["matches"][3] == 0 and bleu["precisions"][3] == pytest.approx(100 / (2 * 3))
    bleu, _ = _assert_same_as_sacrebleu(*HAND_CASES["hypothesis shorter than 4 tokens"])
    assert bleu["score"] == 0 and bleu["totals"][3] == 0      # no 4-gram to count: BLEU is 0
    bleu, chrf = _assert_same_as_sacrebleu(*HAND_CASES["only an empty hypothesis"])
    assert bleu["score"] == 0 and bleu["brevity_penalty"] == 0 and chrf == 0


@needs_sacrebleu
def test_13a_tokenizer_equals_sacrebleu():
    cases = ["Don't stop, it's 3.5 km (well-known)!", "Mr. Smith paid $1,000.50 on 2020-01-02.",
             "a.b,c ... ,, x.5 5.x 5-5 a-b &quot;hi&quot; &lt;tag&gt; 1--2", "¿Qué? ¡Sí! «no»",
             "line one-\nline two\nthree <skipped> four", "", "   ", "[x]{y}|z~`^_\\@#%*+=;:/"]
    for text in cases:
        assert metrics.tokenize_13a(text) == Tokenizer13a()(text.rstrip()).split(), text
    assert metrics.tokenize_13a("Hello, world!") == ["Hello", ",", "world", "!"]
    assert metrics.tokenize_13a("don't, well-known") == ["don't", ",", "well-known"]


def _perturb(sentence, vocabulary, rng):
    """The sentence with each word dropped, swapped with the next one or replaced by a random word
    of the corpus, each with probability 0.1."""
    words = sentence.split()
    out = []
    i = 0
    while i < len(words):
        u = rng.random()
        if u < 0.1:                                             # drop
            pass
        elif u < 0.2 and i + 1 < len(words):                    # swap with the next word
            out += [words[i + 1], words[i]]
            i += 1
        elif u < 0.3:                                           # replace
            out.append(rng.choice(vocabulary))
        else:
            out.append(words[i])
        i += 1
    return " ".join(out)


@pytest.fixture(scope="module")
def english_corpus():
    english = sorted({en for _, en in data.load_spa_eng()})
    rng = random.Random(0)
    sentences = rng.sample(english, 1000)
    vocabulary = sorted({w for s in sentences for w in s.split()})
    hypotheses = [_perturb(s, vocabulary, rng) for s in sentences]
    second_references = [_perturb(s, vocabulary, rng) for s in sentences]
    return hypotheses, sentences, second_references


@needs_sacrebleu
def test_realistic_corpus_equals_sacrebleu(english_corpus):
    hypotheses, references, second_references = english_corpus
    assert sum(h != r for h, r in zip(hypotheses, references)) > 500   # most were perturbed
    bleu, chrf = _assert_same_as_sacrebleu(hypotheses, references)
    assert 30 < bleu["score"] < 90 and 30 < chrf < 95                   # neither trivial nor 0
    _assert_same_as_sacrebleu(hypotheses, [list(pair) for pair in
                                           zip(references, second_references)])
    for text in references + hypotheses:
        assert metrics.tokenize_13a(text) == Tokenizer13a()(text.rstrip()).split()


def test_references_may_be_tuples_and_hypotheses_a_tuple():
    a = metrics.bleu(("the cat sat", "hello there"), [("the cat sat",), "hello there you"])
    b = metrics.bleu(["the cat sat", "hello there"], [["the cat sat"], ["hello there you"]])
    assert a == b


@pytest.mark.parametrize("metric", [metrics.bleu, metrics.chrf])
@pytest.mark.parametrize("hypotheses, references, error, pattern", [
    (["a", "b"], ["a"], ValueError, r"2 hypotheses but 1 references"),
    ([], [], ValueError, r"hypotheses is empty"),
    ("the cat", ["the cat"], TypeError, r"list of strings.*\[translation\]"),
    (["the cat", 3], ["the cat", "x"], TypeError, r"hypotheses\[1\] is of type int"),
    (["the cat", None], ["the cat", "x"], TypeError, r"hypotheses\[1\] is of type NoneType"),
    (["the cat"], "the cat", TypeError, r"references must be a list"),
    (["the cat"], [[]], ValueError, r"references\[0\] must be a string or a non-empty list"),
    (["the cat"], [None], ValueError, r"references\[0\] must be a string.*got NoneType"),
    (["the cat"], [["a", ["b"]]], TypeError, r"references\[0\]\[1\] is of type list"),
    (["a", "b", "c"], [["a", "b", "c"]], ValueError, r"sacreBLEU's layout.*zip"),
])
def test_bad_inputs_give_clear_errors(metric, hypotheses, references, error, pattern):
    with pytest.raises(error, match=pattern):
        metric(hypotheses, references)


def test_the_package_does_not_import_sacrebleu():
    with open(metrics.__file__, encoding="utf-8") as fh:
        source = fh.read()
    assert not re.search(r"^\s*(import|from)\s+sacrebleu", source, re.MULTILINE)


# --------------------------------------------------------------------------------------------------
# paired bootstrap (Koehn 2004)
def test_paired_bootstrap_scores_equal_corpus_metrics_and_pairs_the_draws():
    refs = ["The cat is on the mat.", "I don't like it.", "Tom is hungry.", "We are late.",
            "She has two dogs.", "It is raining again."]
    a = ["The cat sits on the mat.", "I do not like it.", "Tom is hungry.", "We're late.",
         "She has two dog.", "It rains again."]
    b = ["A cat on a mat.", "I like it.", "Tom hungry.", "We are late.", "She has dogs.",
         "Raining."]
    out = metrics.paired_bootstrap({"a": a, "b": b, "a again": list(a)}, refs, 200, seed=3)
    assert out["bleu"]["a"] == metrics.bleu(a, refs)["score"]
    assert out["chrf"]["b"] == metrics.chrf(b, refs)
    for key in ("bleu_draws", "chrf_draws"):
        assert out[key]["a"].shape == (200,)
        assert (out[key]["a"] == out[key]["a again"]).all()      # same sentences in every draw
        assert out[key]["a"].std() > 0                           # resampling changes the score
        assert (out[key]["a"] - out[key]["b"]).mean() > 0        # a is the better system here
    again = metrics.paired_bootstrap({"a": a}, refs, 200, seed=3)
    assert (again["bleu_draws"]["a"] == out["bleu_draws"]["a"]).all()   # seeded


def test_paired_bootstrap_errors_name_the_argument():
    with pytest.raises(TypeError, match="systems must be a dict"):
        metrics.paired_bootstrap(["a"], ["a"])
    with pytest.raises(ValueError, match="n_resamples"):
        metrics.paired_bootstrap({"x": ["a b c d"]}, ["a b c d"], n_resamples=1)
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metrics.paired_bootstrap({"x": ["a", "b"]}, ["a"])
