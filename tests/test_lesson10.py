"""Lesson 10 (character language models): the exported rnn module (vocabulary, n-gram, cells by hand,
CharRNN, training, evaluation, sampling), its errors in the learner's terms, and the checkers fed the
mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepgen_helpers.checks import lesson10 as chk
from deepgen_helpers.models import rnn

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

TEXT = "to be, or not to be: that is the question.\n" * 20


@pytest.fixture(scope="module")
def vocab():
    return rnn.CharVocab.from_text(TEXT)


@pytest.fixture(scope="module")
def tiny(vocab):
    torch.manual_seed(0)
    return rnn.CharRNN(rnn.CharRNNConfig(len(vocab), embed=8, hidden=16))


# --------------------------------------------------------------------------------------------------
# Vocabulary
def test_vocab_round_trip_sorted_and_storable(vocab):
    assert vocab.chars == "".join(sorted(set(TEXT))) and isinstance(vocab.chars, str)
    ids = vocab.encode(TEXT)
    assert ids.dtype == torch.long and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT and vocab.decode(ids.tolist()) == TEXT
    assert len(rnn.CharVocab(vocab.chars)) == len(vocab)


def test_vocab_errors_name_the_problem(vocab):
    with pytest.raises(ValueError, match="'Z'"):
        vocab.encode("to Zed")
    with pytest.raises(ValueError, match=r"\[0, "):
        vocab.decode([0, len(vocab)])
    with pytest.raises(ValueError, match="distinct"):
        rnn.CharVocab("abca")
    with pytest.raises(TypeError):
        rnn.CharVocab("")


# --------------------------------------------------------------------------------------------------
# Cells by hand equal the built-ins
def test_hand_cells_equal_builtins():
    torch.manual_seed(0)
    x, h0, c0 = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    for layer, fn in ((nn.RNN(5, 4), rnn.rnn_cell), (nn.GRU(5, 4), rnn.gru_cell)):
        w = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
        _, ref = layer(x[None], h0[None])
        assert torch.allclose(fn(x, h0, *w), ref[0], atol=1e-6)
    lstm = nn.LSTM(5, 4)
    w = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    _, (h1, c1) = lstm(x[None], (h0[None], c0[None]))
    h, c = rnn.lstm_cell(x, (h0, c0), *w)
    assert torch.allclose(h, h1[0], atol=1e-6) and torch.allclose(c, c1[0], atol=1e-6)


# --------------------------------------------------------------------------------------------------
# n-gram
def test_ngram_counts_smoothing_and_unseen_context():
    ids = torch.tensor([0, 1, 0, 1, 0, 2])
    bigram = rnn.NGram(2, 3, alpha=1.0).fit(ids)
    # after 0: 1 twice, 2 once -> (0+1)/(3+3), (2+1)/6, (1+1)/6
    nll = bigram.nll(torch.tensor([0, 1, 0, 2, 0, 0]))
    assert torch.allclose(nll[:3], -torch.log(torch.tensor([3 / 6, 3 / 5, 2 / 6])), atol=1e-6)
    # context 2 was never followed by anything: uniform
    assert torch.allclose(rnn.NGram(2, 3, 1.0).fit(ids).nll(torch.tensor([2, 1])),
                          torch.tensor([math.log(3)]))
    mask = torch.tensor([True, False, True, False, True])
    masked = rnn.NGram(2, 3, 0.0).fit(ids, mask)            # counts only 0->1, 0->1, 0->2
    assert masked.counts.sum() == 3


# --------------------------------------------------------------------------------------------------
# The model
def test_charrnn_shapes_and_state_continuation(tiny, vocab):
    ids = vocab.encode(TEXT[:40]).view(2, 20)
    logits, (h, c) = tiny(ids)
    assert logits.shape == (2, 20, len(vocab)) and h.shape == c.shape == (1, 2, 16)
    # reading in two halves with the carried state equals reading at once
    a, state = tiny(ids[:, :10])
    b, _ = tiny(ids[:, 10:], state)
    assert torch.allclose(torch.cat([a, b], 1), logits, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_and_layers(cell, vocab):
    m = rnn.CharRNN(rnn.CharRNNConfig(len(vocab), embed=4, hidden=6, layers=2, cell=cell,
                                      dropout=0.1))
    logits, h = m(torch.zeros(3, 5, dtype=torch.long))
    assert logits.shape == (3, 5, len(vocab)) and h.shape == (2, 3, 6)


def test_model_and_config_errors(tiny, vocab):
    with pytest.raises(ValueError, match="cell"):
        rnn.CharRNNConfig(10, cell="transformer")
    with pytest.raises(ValueError, match="hidden"):
        rnn.CharRNNConfig(10, hidden=0)
    with pytest.raises(ValueError, match=r"\[0, "):
        tiny(torch.tensor([[0, len(vocab)]]))
    with pytest.raises(ValueError, match="batch, time"):
        tiny(torch.zeros(5, dtype=torch.long))


# --------------------------------------------------------------------------------------------------
# Training and evaluation
def test_training_lowers_loss_deterministically_and_restores_mode(vocab):
    ids = vocab.encode(TEXT)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = rnn.CharRNN(rnn.CharRNNConfig(len(vocab), embed=8, hidden=32))
        m.eval()
        out = rnn.train_char_model(m, ids, steps=60, batch_size=8, seq_len=16, lr=1e-2,
                                   warmup=5, valid_ids=ids[:200], eval_every=30, seed=3)
        assert not m.training                                # the caller's mode is restored
        runs.append(out)
    a, b = runs
    assert a["history"].values["loss"] == b["history"].values["loss"]
    assert a["valid_step"] == [30, 60] and a["valid_nll"][-1] < math.log(len(vocab)) - 0.5
    assert len(a["history"]) == 60 and max(a["history"].values["lr"]) <= 1e-2


def test_lr_schedule():
    assert rnn.lr_at(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert rnn.lr_at(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert rnn.lr_at(100, 100, 1.0, warmup=10, min_lr=0.1) == pytest.approx(0.1)


def test_training_errors(tiny, vocab):
    ids = vocab.encode(TEXT[:30])
    with pytest.raises(ValueError, match="seq_len longer than the data"):
        rnn.train_char_model(tiny, ids, steps=1, batch_size=2, seq_len=64, lr=1e-3)
    with pytest.raises(ValueError, match="1-D integer"):
        rnn.train_char_model(tiny, ids.float(), steps=1, batch_size=2, seq_len=4, lr=1e-3)


def test_char_losses_cover_every_character_with_carried_state(tiny, vocab):
    ids = vocab.encode(TEXT[:301])
    losses = rnn.char_losses(tiny, ids, seq_len=7, batch_size=4)
    assert losses.shape == (300,)
    # one stream read at once gives the same losses for the first stream's characters
    tiny.eval()
    with torch.no_grad():
        logits, _ = tiny(ids[None, :-1])
    ref = F.cross_entropy(logits[0], ids[1:], reduction="none")
    assert torch.allclose(losses[:75], ref[:75], atol=1e-5)
    assert rnn.evaluate_nll(tiny, ids, seq_len=7, batch_size=4) == pytest.approx(
        losses.mean().item(), rel=1e-6)


def test_evaluation_restores_training_mode(tiny, vocab):
    tiny.train()
    rnn.evaluate_nll(tiny, vocab.encode(TEXT[:50]))
    assert tiny.training
    tiny.eval()


# --------------------------------------------------------------------------------------------------
# Sampling
def test_filter_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert torch.allclose(rnn.filter_logits(logits, 0.5), logits / 0.5)
    assert rnn.filter_logits(logits, top_k=2).isfinite().sum() == 2
    p = logits.softmax(-1)[0]                                 # 0.644, 0.237, ...
    kept = rnn.filter_logits(logits, top_p=0.7).isfinite()[0]
    assert kept.tolist() == [True, True, False, False]         # the crossing token is kept
    assert p[0] < 0.7
    assert rnn.filter_logits(logits, top_p=0.5).isfinite().sum() == 1
    for bad in (dict(temperature=0), dict(temperature=-1.0), dict(top_k=0), dict(top_p=0.0),
                dict(top_p=1.5)):
        with pytest.raises(ValueError):
            rnn.filter_logits(logits, **bad)


def test_sample_is_seeded_stops_and_restores_mode(tiny, vocab):
    tiny.train()
    a = rnn.sample(tiny, vocab, "to be", 50, generator=torch.Generator().manual_seed(0))
    b = rnn.sample(tiny, vocab, "to be", 50, generator=torch.Generator().manual_seed(0))
    assert a == b and len(a) == 50 and set(a) <= set(vocab.chars)
    assert tiny.training
    s = rnn.sample(tiny, vocab, "to", 400, temperature=2.0, stop=" ",
                   generator=torch.Generator().manual_seed(1))
    assert " " not in s and len(s) < 400
    batch = rnn.generate(tiny, vocab.encode("to"), 12, 5, top_k=3,
                         generator=torch.Generator().manual_seed(0))
    assert batch.shape == (5, 12)
    tiny.eval()


def test_sample_errors(tiny, vocab):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="non-empty"):
        rnn.sample(tiny, vocab, "", 10, generator=g)
    with pytest.raises(ValueError, match="'Z'"):
        rnn.sample(tiny, vocab, "Zed", 10, generator=g)
    with pytest.raises(ValueError, match="temperature"):
        rnn.sample(tiny, vocab, "to", 10, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        rnn.sample(tiny, vocab, "to", 10, top_p=1.2)
    with pytest.raises(ValueError, match="top_k"):
        rnn.sample(tiny, vocab, "to", 10, top_k=0)


# --------------------------------------------------------------------------------------------------
# Checkers: the reference passes, the mistakes fail
def _lstm_variant(mistake):
    def cell(x, state, W_ih, W_hh, b_ih, b_hh):
        h, c = state
        gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        if mistake == "order_ifog":
            i, f, o, g = gates.chunk(4, 1)
        else:
            i, f, g, o = gates.chunk(4, 1)
        i, o, g = torch.sigmoid(i), torch.sigmoid(o), torch.tanh(g)
        f = torch.tanh(f) if mistake == "tanh_forget" else torch.sigmoid(f)
        c = f * c + i * g
        h = o * c if mistake == "no_tanh" else o * torch.tanh(c)
        return (c, h) if mistake == "swapped" else (h, c)
    return cell


def test_check_lstm_cell():
    assert chk.check_lstm_cell(rnn.lstm_cell)
    for mistake in ("swapped", "no_tanh", "order_ifog", "tanh_forget"):
        assert not chk.check_lstm_cell(_lstm_variant(mistake)), mistake


def test_check_temperature():
    assert chk.check_temperature(lambda z, T: torch.softmax(z / T, -1))
    assert chk.check_temperature(lambda z, T: rnn.filter_logits(z, T).softmax(-1))
    # p ** (1 / T) renormalised is the same distribution: accepted
    assert chk.check_temperature(lambda z, T: (p := z.softmax(-1) ** (1 / T)) / p.sum(-1, True))
    assert not chk.check_temperature(lambda z, T: torch.softmax(z, -1) / T)     # after softmax
    assert not chk.check_temperature(lambda z, T: torch.softmax(z * T, -1))     # multiplied
    assert not chk.check_temperature(lambda z, T: torch.softmax(z / T, 0))      # wrong axis


def _nucleus(mistake):
    def fn(probs, p):
        s, order = probs.sort(-1, descending=mistake != "ascending")
        cum = s.cumsum(-1)
        keep_sorted = cum <= p if mistake == "drops_crossing" else (cum - s) < p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        kept = torch.where(keep, probs, torch.zeros_like(probs))
        return kept if mistake == "no_renorm" else kept / kept.sum(-1, keepdim=True)
    return fn


def test_check_top_p():
    assert chk.check_top_p(_nucleus(None))
    assert chk.check_top_p(lambda q, p: rnn.filter_logits(q.log(), top_p=p).softmax(-1))
    for mistake in ("drops_crossing", "no_renorm", "ascending"):
        assert not chk.check_top_p(_nucleus(mistake)), mistake


def test_check_add_alpha():
    V = lambda c: c.shape[1]                                              # noqa: E731
    assert chk.check_add_alpha(lambda c, a: (c + a) / (c.sum(1, keepdim=True) + a * V(c)))
    assert not chk.check_add_alpha(lambda c, a: c / c.sum(1, keepdim=True))   # no smoothing
    assert not chk.check_add_alpha(lambda c, a: (c + a) / (c.sum(1, keepdim=True) + a))
    assert not chk.check_add_alpha(lambda c, a: c / (c.sum(1, keepdim=True) + a * V(c)))


def test_check_bits_and_perplexity():
    assert chk.check_bits_and_perplexity(
        lambda n: (n.mean().item() / math.log(2), math.exp(n.mean().item())))
    assert not chk.check_bits_and_perplexity(                                # log base e
        lambda n: (n.mean().item(), math.exp(n.mean().item())))
    assert not chk.check_bits_and_perplexity(                                # 2 ** nats
        lambda n: (n.mean().item() / math.log(2), 2 ** n.mean().item()))
    assert not chk.check_bits_and_perplexity(                                # mean of exp
        lambda n: (n.mean().item() / math.log(2), n.exp().mean().item()))
    assert not chk.check_bits_and_perplexity(                                # log10
        lambda n: (n.mean().item() / math.log(10), math.exp(n.mean().item())))


# --------------------------------------------------------------------------------------------------
# The shipped checkpoints load into the lesson's model and meet their bars
@pytest.mark.parametrize("name, corpus, bar", [("char_lstm_shakespeare", "tinyshakespeare", 1.50),
                                               ("char_lstm_quijote", "quijote", None)])
def test_shipped_checkpoints(name, corpus, bar):
    from deepgen_helpers import checkpoints, data

    payload = checkpoints.load_checkpoint(checkpoints.shipped_path(name))
    text = data.load_text(corpus)
    vocab = rnn.CharVocab(payload["metadata"]["vocab"])
    assert vocab.chars == rnn.CharVocab.from_text(text).chars
    model = rnn.CharRNN(rnn.CharRNNConfig(**payload["config"]))
    checkpoints.load_shipped(name, model)
    ids = vocab.encode(text)
    nll = rnn.evaluate_nll(model, ids[int(0.9 * len(ids)):])
    recorded = checkpoints.read_manifest()[name]["quality"]["valid_nats_per_char"]
    assert nll == pytest.approx(recorded, abs=2e-4)
    if bar is not None:
        assert nll <= bar
