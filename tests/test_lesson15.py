"""Lesson 15 (sequence-to-sequence translation): the exported seq2seq module (encoder-decoder
Transformer, masks, padding, length-bucketed batches, the label-smoothed loss, teacher-forced
training, greedy and beam search, translate), its errors in the learner's terms, the shipped
checkpoint, and the checkers fed the mistakes learners make."""
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints
from deepgen_helpers.checks import lesson15 as chk
from deepgen_helpers.models import gpt, seq2seq

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

# A made-up copy task: Spanish number words -> English ones, word by word.
ES = "uno dos tres cuatro cinco seis siete ocho".split()
EN = "one two three four five six seven eight".split()


def _pairs(n=30, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(ES)) for _ in range(rng.choice([2, 3]))]
        out.append((" ".join(ES[i] for i in idx), " ".join(EN[i] for i in idx)))
    return out


PAIRS = _pairs()
TEXT = ("\n".join(s + "\n" + e for s, e in PAIRS)
        + "\nTengo hambre. I am hungry.\nEl gato negro duerme. The black cat sleeps.")


@pytest.fixture(scope="module")
def tok():
    return gpt.BPE.train(TEXT, 40, specials=seq2seq.SPECIALS)


def _model(tok, **kw):
    torch.manual_seed(0)
    sizes = dict(context=32, n_layer=1, n_head=2, d_model=32, dropout=0.0)
    sizes.update(kw)
    return seq2seq.Seq2Seq(seq2seq.Seq2SeqConfig.for_tokenizer(tok, **sizes))


def _batch(tok, sources, targets=None):
    pad = tok.special_ids["<pad>"]
    if targets is None:
        return seq2seq.pad_batch([seq2seq.encode_pair(tok, s) for s in sources], pad)
    pairs = [seq2seq.encode_pair(tok, s, t) for s, t in zip(sources, targets)]
    return (seq2seq.pad_batch([s for s, _ in pairs], pad),
            seq2seq.pad_batch([t for _, t in pairs], pad))


@pytest.fixture(scope="module")
def trained(tok):
    """A 1-layer model trained for 200 steps on the copy task (about a second on one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    model = _model(tok)
    ids = [seq2seq.encode_pair(tok, s, e) for s, e in PAIRS]
    out = seq2seq.train_seq2seq(model, ids, epochs=50, batch_size=8, lr=3e-3, warmup=10,
                                smoothing=0.0, seed=0)
    torch.set_num_threads(before)
    return model, out


# --------------------------------------------------------------------------------------------------
# The model
def test_shapes_parameters_and_tied_output(tok):
    model = _model(tok).eval()
    V = len(tok)
    src, tgt = _batch(tok, ["uno dos", "tres cuatro cinco seis"], ["one two", "three"])
    memory, src_mask = model.encode(src)
    assert memory.shape == (2, src.shape[1], 32) and src_mask.shape == (2, 1, 1, src.shape[1])
    logits = model.decode(tgt[:, :-1], memory, src_mask)
    assert logits.shape == (2, tgt.shape[1] - 1, V)
    assert torch.equal(model(src, tgt[:, :-1]), logits)
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(_model(tok, n_layer=2)) > n(model) > n(_model(tok, n_layer=1, d_model=16))
    # the output layer is the embedding: one (V, D) matrix, and it gets the gradient of a token
    # that appears in no input (only the output layer can use its row)
    assert [k for k, p in model.named_parameters() if p.shape == (V, 32)] == ["embed.weight"]
    unused = sorted(set(range(V)) - set(src.flatten().tolist()) - set(tgt.flatten().tolist()))[0]
    model.zero_grad()
    model(src, tgt[:, :-1])[..., unused].sum().backward()
    assert model.embed.weight.grad[unused].abs().sum() > 0


def test_decoder_is_causal_and_reads_the_source(tok):
    model = _model(tok).eval()
    src, tgt = _batch(tok, ["uno dos tres"], ["one two three"])
    tgt_in = tgt[:, :-1]
    with torch.no_grad():
        base = model(src, tgt_in)
        t = 2
        changed = tgt_in.clone()
        changed[0, t + 1:] = tok.encode(" eight")[0]                  # the future of position t
        after = model(src, changed)
        assert (after[0, :t + 1] - base[0, :t + 1]).abs().max() < 1e-5
        assert (after[0, t + 1:] - base[0, t + 1:]).abs().max() > 1e-4
        src2 = src.clone()
        src2[0, 0] = tok.encode("ocho")[0]                            # another first word
        assert (model(src2, tgt_in) - base).abs().max() > 1e-4       # cross-attention is used


def test_padding_does_not_change_real_positions(tok):
    model = _model(tok, dropout=0.1).eval()                           # eval: dropout off
    src, tgt = _batch(tok, ["uno dos tres"], ["one two three"])
    pad = torch.full((1, 5), model.config.pad_id)
    with torch.no_grad():
        base = model(src, tgt[:, :-1])
        assert (model(torch.cat([src, pad], 1), tgt[:, :-1]) - base).abs().max() < 1e-5
        padded_tgt = torch.cat([tgt[:, :-1], pad], 1)
        assert (model(src, padded_tgt)[:, :tgt.shape[1] - 1] - base).abs().max() < 1e-5
        # the same sentence in a batch with a longer one
        src_b, tgt_b = _batch(tok, ["uno dos tres", "cuatro cinco seis siete ocho uno"],
                              ["one two three", "four five six seven eight one"])
        both = model(src_b, tgt_b[:, :-1])[:1, :tgt.shape[1] - 1]
        assert (both - base).abs().max() < 1e-5


# --------------------------------------------------------------------------------------------------
# Data: pairs, padding, batches of similar length, the loss
def test_encode_pair_and_pad_batch(tok):
    s = tok.special_ids
    src, tgt = seq2seq.encode_pair(tok, "uno dos", "one two")
    assert src[-1] == s["<eos>"] and tgt[0] == s["<bos>"] and tgt[-1] == s["<eos>"]
    assert tok.decode(src[:-1]) == "uno dos" and tok.decode(tgt[1:-1]) == "one two"
    assert torch.equal(seq2seq.encode_pair(tok, "uno dos"), src)
    batch = seq2seq.pad_batch([torch.tensor([5, 6, 7]), torch.tensor([8])], 0)
    assert batch.dtype == torch.long and torch.equal(batch, torch.tensor([[5, 6, 7], [8, 0, 0]]))


def _padding_fraction(batches, lengths):
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - sum(int(lengths[b].sum()) for b in batches) / padded


def test_length_batches_cover_everything_with_little_padding():
    g = torch.Generator().manual_seed(0)
    lengths = (torch.distributions.Exponential(0.1).sample((2000,)).long() + 2)   # skewed
    epoch1 = seq2seq.length_batches(lengths, 32, g)
    epoch2 = seq2seq.length_batches(lengths, 32, g)
    for batches in (epoch1, epoch2):
        flat = torch.cat(batches)
        assert torch.equal(flat.sort().values, torch.arange(2000))  # every index exactly once
        assert max(len(b) for b in batches) == 32
    assert not all(torch.equal(a, b) for a, b in zip(epoch1, epoch2))      # new batches each epoch
    random_batches = list(torch.randperm(2000, generator=g).split(32))
    bucketed, shuffled = (_padding_fraction(epoch1, lengths),
                          _padding_fraction(random_batches, lengths))
    assert bucketed < 0.2 * shuffled, (bucketed, shuffled)
    starts = [int(b[0]) for b in epoch1[:10]]
    assert sorted(lengths[starts].tolist()) != lengths[starts].tolist()   # no global length order


def test_translation_loss_by_hand_and_ignores_pads():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, generator=g)
    targets = torch.tensor([[3, 1, 4, 0], [5, 2, 0, 0]])               # <pad> = 0
    logp = logits.log_softmax(-1)
    real = [(b, t) for b in range(2) for t in range(4) if targets[b, t] != 0]
    nll = torch.stack([-logp[b, t, targets[b, t]] for b, t in real])
    smooth = torch.stack([-logp[b, t].mean() for b, t in real])
    assert torch.allclose(seq2seq.translation_loss(logits, targets, 0), nll.mean(), atol=1e-6)
    assert torch.allclose(seq2seq.translation_loss(logits, targets, 0, smoothing=0.1),
                          (0.9 * nll + 0.1 * smooth).mean(), atol=1e-6)
    noisy = logits.clone()
    noisy[targets == 0] = 100 * torch.randn(int((targets == 0).sum()), 6, generator=g)
    assert torch.allclose(seq2seq.translation_loss(noisy, targets, 0, 0.1),
                          seq2seq.translation_loss(logits, targets, 0, 0.1))


# --------------------------------------------------------------------------------------------------
# Training and decoding
def test_training_learns_the_copy_task(tok, trained):
    model, out = trained
    loss = out["history"].values["loss"]
    assert out["steps"] == 200 and len(loss) == 200
    assert sum(loss[-10:]) / 10 < 0.2 * sum(loss[:10]) / 10, (loss[:10], loss[-10:])
    hyps = seq2seq.translate(model, tok, [s for s, _ in PAIRS])
    right = sum(h == e for h, (_, e) in zip(hyps, PAIRS))
    assert right >= 0.8 * len(PAIRS), list(zip(hyps, PAIRS))


def _log_prob(model, src, ids):
    """log P(ids <eos> | src) of one translation under the model (teacher forcing)."""
    c = model.config
    tgt = torch.tensor([[c.bos_id] + ids + [c.eos_id]])
    with torch.no_grad():
        logp = model(src[None], tgt[:, :-1]).log_softmax(-1)[0]      # (T, V)
    return logp.gather(1, tgt[0, 1:, None]).sum().item()


SOURCES = ["uno dos", "ocho siete seis", "tres tres cuatro", "cinco uno", "seis ocho dos",
           "siete", "dos cuatro seis ocho"]


def test_beam_one_is_greedy_and_beam_four_scores_at_least_as_high(tok, trained):
    model, _ = trained
    src = _batch(tok, SOURCES)
    greedy = seq2seq.greedy_decode(model, src)
    assert seq2seq.beam_search(model, src, beam=1, alpha=0.0) == greedy
    beam4 = seq2seq.beam_search(model, src, beam=4, alpha=0.6)
    assert len(beam4) == len(SOURCES)
    lp = lambda ids: seq2seq.length_penalty(torch.tensor(len(ids) + 1.0), 0.6).item()  # + <eos>
    for i, (g_ids, b_ids) in enumerate(zip(greedy, beam4)):
        row = src[i][src[i] != model.config.pad_id]
        g_score = _log_prob(model, row, g_ids) / lp(g_ids)
        b_score = _log_prob(model, row, b_ids) / lp(b_ids)
        assert b_score >= g_score - 1e-4, (SOURCES[i], g_score, b_score)
    assert seq2seq.length_penalty(torch.tensor([1.0, 7.0, 30.0]), 0.0).eq(1).all()
    assert seq2seq.length_penalty(torch.tensor(7.0), 1.0).item() == pytest.approx(2.0)


def test_translate_order_errors_unknowns_and_long_inputs(tok, trained):
    model, _ = trained
    sents = ["dos cuatro seis ocho", "uno", "tres cinco"]              # different lengths
    assert seq2seq.translate(model, tok, sents) == [
        seq2seq.translate(model, tok, [s])[0] for s in sents]
    assert seq2seq.translate(model, tok, sents, beam=3) == [
        seq2seq.translate(model, tok, [s], beam=3)[0] for s in sents]
    with pytest.raises(TypeError, match=r"translate\(model, tok, \[sentence\]\)"):
        seq2seq.translate(model, tok, "uno dos")
    assert tok.special_ids["<unk>"] in seq2seq.encode_pair(tok, "uno ☃ dos").tolist()
    out = seq2seq.translate(model, tok, ["uno ☃ dos", " ".join(ES * 6)])  # unseen, too long
    assert len(out) == 2 and all(isinstance(s, str) for s in out)


# --------------------------------------------------------------------------------------------------
# Errors in the learner's terms
def test_bad_inputs_give_clear_errors(tok):
    with pytest.raises(ValueError, match="divisible"):
        seq2seq.Seq2SeqConfig(vocab_size=40, d_model=30, n_head=4)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        seq2seq.Seq2SeqConfig(vocab_size=40, dropout=1.0)
    with pytest.raises(ValueError, match="SPECIALS"):
        seq2seq.Seq2SeqConfig.for_tokenizer(gpt.BPE.train(TEXT, 5))
    model = _model(tok)
    with pytest.raises(ValueError, match="integer tensor of token ids"):
        model.check_ids(torch.zeros(1, 4), "src")
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model.encode(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside 0..*another tokeniser"):
        model.encode(torch.tensor([[3, len(tok)]]))
    with pytest.raises(ValueError, match="more than the context of 32"):
        model.encode(torch.zeros(1, 40, dtype=torch.long))
    src = _batch(tok, ["uno dos"])
    for beam in (0, True, 2.0):
        with pytest.raises(ValueError, match="beam must be a whole number"):
            seq2seq.beam_search(model, src, beam=beam)
    with pytest.raises(ValueError, match="at least one sequence"):
        seq2seq.pad_batch([], 0)
    with pytest.raises(ValueError, match="pairs_ids is empty"):
        seq2seq.train_seq2seq(model, [], epochs=1, batch_size=4, lr=1e-3)
    ids = [seq2seq.encode_pair(tok, s, e) for s, e in PAIRS[:4]]
    with pytest.raises(ValueError, match="schedule must be 'steps' or 'time'"):
        seq2seq.train_seq2seq(model, ids, epochs=1, batch_size=4, lr=1e-3, schedule="time")


def test_time_schedule_ends_annealed(tok):
    """schedule="time": the cosine runs over max_seconds, so a run cut by time ends near min_lr."""
    model = _model(tok)
    ids = [seq2seq.encode_pair(tok, s, e) for s, e in PAIRS]
    out = seq2seq.train_seq2seq(model, ids, epochs=1000, batch_size=8, lr=1e-3, warmup=0,
                                max_seconds=1.0, schedule="time", min_lr=0.05)
    lrs = out["history"].values["lr"]
    assert 0 < out["steps"] < 4000 and out["seconds"] >= 1.0
    assert lrs[0] > 0.9e-3 and lrs[-1] < 0.2e-3, (lrs[0], lrs[-1], out["steps"])


def test_time_limit_before_the_first_step(tok):
    model = _model(tok)
    ids = [seq2seq.encode_pair(tok, s, e) for s, e in PAIRS[:4]]
    out = seq2seq.train_seq2seq(model, ids, epochs=1, batch_size=2, lr=1e-3, max_seconds=0)
    assert out["steps"] == len(out["history"])                        # no crash, 0 steps (or 1)


# --------------------------------------------------------------------------------------------------
# The shipped checkpoint (registered by scripts/train_lesson15.py register)
def test_shipped_model_translates_easy_sentences():
    name = "seq2seq_spa_eng"
    entry = checkpoints.read_manifest().get(name)
    assert entry is not None, f"{name} is missing from the checkpoint manifest"
    assert entry["quality"]["test_bleu_greedy"] >= 35 and entry["quality"]["test_bleu_beam4"] >= 35
    payload = checkpoints.load_checkpoint(checkpoints.shipped_path(name))
    model = seq2seq.Seq2Seq(seq2seq.Seq2SeqConfig(**payload["config"]))
    checkpoints.load_shipped(name, model)
    tok = gpt.BPE.from_dict(payload["metadata"]["tokenizer"])
    out = seq2seq.translate(model.eval(), tok, ["Tengo hambre.", "Mi hermano es alto.",
                                                "Me gusta el café."])
    for hyp, word in zip(out, ("hungry", "brother", "coffee")):
        assert word in hyp.lower(), out


# --------------------------------------------------------------------------------------------------
# Checkers: the reference passes, real mistakes fail
def _self_and_cross(src, tgt_in, pad, causal_self=True, causal_cross=False, cross_from=None,
                    keys=True, invert=False):
    T, S = tgt_in.shape[1], src.shape[1]
    pad_of = lambda ids: ((ids != pad)[:, None, None, :] if keys
                          else (ids != pad)[:, None, :, None])
    self_mask = pad_of(tgt_in)
    if causal_self:
        self_mask = self_mask & torch.ones(T, T, dtype=torch.bool).tril()
    cross_mask = pad_of(src if cross_from is None else cross_from)
    if causal_cross:
        cross_mask = cross_mask & torch.ones(T, S, dtype=torch.bool).tril()
    return (~self_mask, ~cross_mask) if invert else (self_mask, cross_mask)


def test_check_decoder_masks():
    assert chk.check_decoder_masks(chk._ref_decoder_masks)
    assert chk.check_decoder_masks(lambda s, t, p: _self_and_cross(s, t, p))
    wrong = {"no causal part": lambda s, t, p: _self_and_cross(s, t, p, causal_self=False),
             "causal cross mask": lambda s, t, p: _self_and_cross(s, t, p, causal_cross=True),
             "target padding for cross": lambda s, t, p: _self_and_cross(s, t, p, cross_from=t),
             "inverted": lambda s, t, p: _self_and_cross(s, t, p, invert=True),
             "queries, not keys": lambda s, t, p: _self_and_cross(s, t, p, keys=False)}
    for name, fn in wrong.items():
        assert not chk.check_decoder_masks(fn), name


def _smoothed_other_classes(logits, targets, pad, eps):               # eps / (V - 1) elsewhere
    logp = logits.log_softmax(-1)
    V = logits.shape[-1]
    nll = -logp.gather(-1, targets[..., None])[..., 0]
    others = (-logp.sum(-1) - nll) / (V - 1)
    return ((1 - eps) * nll + eps * others)[targets != pad].mean()


def test_check_label_smoothed_loss():
    ref = lambda lo, ta, pad, eps: F.cross_entropy(lo.flatten(0, 1), ta.flatten(),
                                                   ignore_index=pad, label_smoothing=eps)
    assert chk.check_label_smoothed_loss(ref)
    assert chk.check_label_smoothed_loss(chk._ref_smoothed_loss)
    pads_counted = lambda lo, ta, pad, eps: F.cross_entropy(lo.flatten(0, 1), ta.flatten(),
                                                            label_smoothing=eps)
    summed = lambda lo, ta, pad, eps: F.cross_entropy(lo.flatten(0, 1), ta.flatten(),
                                                      ignore_index=pad, label_smoothing=eps,
                                                      reduction="sum")
    no_smoothing = lambda lo, ta, pad, eps: F.cross_entropy(lo.flatten(0, 1), ta.flatten(),
                                                            ignore_index=pad)
    for wrong in (pads_counted, _smoothed_other_classes, summed, no_smoothing):
        assert not chk.check_label_smoothed_loss(wrong)


def _precision(hyp, refs, n, clip="max", count_refs=False, windows=lambda L, n: L - n + 1):
    grams = lambda toks: Counter(tuple(toks[i:i + n]) for i in range(max(0, windows(len(toks),
                                                                                    n))))
    counts = grams(hyp)
    per_ref = [grams(r) for r in refs]
    limit = Counter()
    for c in per_ref:
        for g, k in c.items():
            limit[g] = max(limit[g], k) if clip == "max" else limit[g] + k
    if clip is None:
        matches = sum(k for g, k in counts.items() if limit[g] > 0)
    else:
        matches = sum(min(k, limit[g]) for g, k in counts.items())
    total = sum(sum(c.values()) for c in per_ref) if count_refs else sum(counts.values())
    return matches, total


def test_check_modified_precision():
    assert chk.check_modified_precision(_precision)
    wrong = {"no clipping": lambda h, r, n: _precision(h, r, n, clip=None),
             "clipped by the sum": lambda h, r, n: _precision(h, r, n, clip="sum"),
             "reference n-grams": lambda h, r, n: _precision(h, r, n, count_refs=True),
             "len - n windows": lambda h, r, n: _precision(h, r, n, windows=lambda L, n: L - n),
             "len - n + 2 windows": lambda h, r, n: _precision(h, r, n,
                                                                windows=lambda L, n: L - n + 2)}
    for name, fn in wrong.items():
        assert not chk.check_modified_precision(fn), name
    # a hypothesis shorter than n: range(len - n + 1) is empty, but a hand-written loop may not be
    assert not chk.check_modified_precision(
        lambda h, r, n: _precision(h, r, n) if len(h) >= n else (0, 1))


def test_check_brevity_penalty():
    def ref(c, r):
        if c >= r:
            return 1.0
        return math.exp(1 - r / c) if c > 0 else 0.0

    assert chk.check_brevity_penalty(ref)
    assert chk.check_brevity_penalty(lambda c, r: min(1.0, math.exp(1 - r / c)) if c else 0.0)
    wrong = {"exp(1 - c / r)": lambda c, r: 1.0 if c >= r else math.exp(1 - c / r),
             "long ones penalised": lambda c, r: math.exp(1 - max(r / c, c / r)) if c else 0.0,
             "crashes on c = 0": lambda c, r: 1.0 if c >= r else math.exp(1 - r / c)}
    for name, fn in wrong.items():
        assert not chk.check_brevity_penalty(fn), name


def _beam_step_variants(beam_logp, step_logp, K, how="ref"):
    B, _, V = step_logp.shape
    cand = step_logp if how == "no_add" else beam_logp[..., None] + step_logp
    if how == "per_beam":                                  # each beam keeps its own best token
        vals, tok = cand.max(-1)
        order = vals.argsort(-1, descending=True)
        return vals.gather(1, order), order, tok.gather(1, order)
    if how == "across_batch":
        vals, top = cand.reshape(-1).topk(B * K)
        return vals.view(B, K), (top // V % K).view(B, K), (top % V).view(B, K)
    vals, top = cand.reshape(B, -1).topk(K, dim=-1)
    if how == "swapped":
        return vals, top % V, top // V
    return vals, top // V, top % V


def test_check_beam_step():
    assert chk.check_beam_step(chk._ref_beam_step)
    assert chk.check_beam_step(_beam_step_variants)
    for how in ("no_add", "per_beam", "across_batch", "swapped"):
        assert not chk.check_beam_step(lambda b, s, K: _beam_step_variants(b, s, K, how)), how
