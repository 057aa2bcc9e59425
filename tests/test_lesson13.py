"""Lesson 13 (GPT from scratch): the exported gpt module (config, model, loss, AdamW groups, training,
evaluation, KV cache, sampling, BPE), its errors in the learner's terms, the training script (float16
checkpoint, register, torchrun with two processes equal to one), and the checkers fed the mistakes
learners make."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepgen_helpers import checkpoints
from deepgen_helpers.checks import lesson13 as chk
from deepgen_helpers.config import repo_root
from deepgen_helpers.models import gpt, rnn

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

TEXT = "to be, or not to be: that is the question.\n" * 40


@pytest.fixture(scope="module")
def vocab():
    return rnn.CharVocab.from_text(TEXT)


@pytest.fixture(scope="module")
def ids(vocab):
    return vocab.encode(TEXT)


def tiny_model(V, **kw):
    torch.manual_seed(0)
    cfg = dict(context=16, n_layer=2, n_head=2, d_model=16)
    cfg.update(kw)
    return gpt.GPT(gpt.GPTConfig(V, **cfg))


# --------------------------------------------------------------------------------------------------
# The model
def test_shapes_tying_and_initialisation(vocab, ids):
    model = tiny_model(len(vocab))
    logits = model(ids[:32].view(2, 16))
    assert logits.shape == (2, 16, len(vocab))
    assert model.head.weight is model.tok_emb.weight
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    std = model.blocks[0].mlp.proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(4)) < 0.003
    untied = tiny_model(len(vocab), tie_weights=False)
    assert untied.head.weight is not untied.tok_emb.weight
    assert sum(p.numel() for p in untied.parameters()) == n + len(vocab) * 16
    sinus = tiny_model(len(vocab), positions="sinusoidal")
    assert not hasattr(sinus, "pos_emb") and sinus(ids[:8][None]).shape == (1, 8, len(vocab))


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_causality_later_tokens_do_not_change_earlier_logits(vocab, ids, positions):
    model = tiny_model(len(vocab), positions=positions).eval()
    x = ids[:16][None].clone()
    y = x.clone()
    y[0, 9] = (y[0, 9] + 1) % len(vocab)
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[0, :9], b[0, :9])
    assert (a[0, 9:] - b[0, 9:]).abs().amax(-1).min() > 0


def test_loss_starts_near_log_V_and_targets_are_shifted(vocab, ids):
    model = tiny_model(len(vocab))
    x, y = rnn.random_windows(ids, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert abs(gpt.next_token_loss(model(x), y).item() - math.log(len(vocab))) < 0.1


def test_config_and_input_errors(vocab, ids):
    with pytest.raises(ValueError, match="divisible"):
        gpt.GPTConfig(10, d_model=30, n_head=4)
    with pytest.raises(ValueError, match="positions"):
        gpt.GPTConfig(10, positions="rotary")
    with pytest.raises(ValueError, match="dropout"):
        gpt.GPTConfig(10, dropout=1.0)
    with pytest.raises(ValueError, match="chars"):
        gpt.GPTConfig(10, chars="abc")
    with pytest.raises(ValueError, match="n_layer"):
        gpt.GPTConfig(10, n_layer=0)
    model = tiny_model(len(vocab))
    with pytest.raises(ValueError, match="context = 16"):
        model(ids[:17][None])
    with pytest.raises(ValueError, match=r"\[0, "):
        model(torch.tensor([[0, len(vocab)]]))
    with pytest.raises(ValueError, match="batch, time"):
        model(ids[:8])


def test_adamw_groups_decay_matrices_only(vocab):
    model = tiny_model(len(vocab), bias=True)
    decay, no_decay = gpt.adamw_groups(model, 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    everything = {id(p) for p in model.parameters()}
    assert {id(p) for p in decay["params"] + no_decay["params"]} == everything


# --------------------------------------------------------------------------------------------------
# Training and evaluation
def test_training_is_seeded_lowers_the_loss_and_restores_mode(vocab, ids):
    runs = []
    for _ in range(2):
        model = tiny_model(len(vocab))
        model.eval()
        before = gpt.evaluate(model, ids)
        out = gpt.train_gpt(model, ids, steps=40, batch_size=8, lr=3e-3, warmup=5, seed=3,
                            valid_ids=ids, eval_every=20)
        assert not model.training
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert out["valid_step"] == [20, 40] and out["valid_nll"][-1] < before - 0.5
    assert out["steps"] == 40 and len(out["history"]) == 40


def test_max_seconds_and_time_schedule(vocab, ids):
    model = tiny_model(len(vocab))
    out = gpt.train_gpt(model, ids, steps=10_000, batch_size=4, lr=1e-3, warmup=2,
                        max_seconds=0.5, schedule="time", valid_ids=ids[:200])
    assert 0 < out["steps"] < 10_000 and out["seconds"] < 2.0
    assert out["valid_step"] == [out["steps"]]
    with pytest.raises(ValueError, match="schedule"):
        gpt.train_gpt(model, ids, steps=5, batch_size=4, lr=1e-3, schedule="time")
    with pytest.raises(ValueError, match="fewer"):
        gpt.train_gpt(model, ids[:10], steps=5, batch_size=4, lr=1e-3)


def test_token_losses_cover_every_token_in_windows(vocab, ids):
    model = tiny_model(len(vocab)).eval()
    stream = ids[:53]
    losses = gpt.token_losses(model, stream, batch_size=2)
    assert losses.shape == (52,)
    with torch.no_grad():                        # the second window, read from scratch
        logits = model(stream[16:32][None])[0]
    expected = torch.nn.functional.cross_entropy(logits, stream[17:33], reduction="none")
    assert torch.allclose(losses[16:32], expected, atol=1e-6)
    assert gpt.evaluate(model, stream) == pytest.approx(losses.mean().item())


# --------------------------------------------------------------------------------------------------
# KV cache and sampling
def test_kv_cache_equals_full_forward(vocab, ids):
    model = tiny_model(len(vocab)).eval()
    x = ids[:16][None]
    with torch.no_grad():
        full = model(x)
        a, cache = gpt.forward_cached(model, x[:, :7])
        b, cache = gpt.forward_cached(model, x[:, 7:8], cache)
        c, cache = gpt.forward_cached(model, x[:, 8:], cache)
    assert torch.allclose(torch.cat([a, b, c], 1), full, atol=1e-5)
    assert cache[0][0].shape == (1, 2, 16, 8)
    with pytest.raises(ValueError, match="context"):
        gpt.forward_cached(model, x[:, :1], cache)


@pytest.mark.parametrize("length", [5, 30])          # 30: runs past the context, window slides
def test_generate_same_tokens_with_and_without_cache(vocab, ids, length):
    model = tiny_model(len(vocab))
    model.train()
    out = [gpt.generate(model, ids[:3], length, n=2, use_cache=c, top_k=5,
                        generator=torch.Generator().manual_seed(0)) for c in (True, False)]
    assert out[0].shape == (2, length) and torch.equal(out[0], out[1])
    assert model.training                            # the caller's mode is restored


def test_sample_errors_in_the_learners_terms(vocab):
    model = tiny_model(len(vocab))
    with pytest.raises(ValueError, match="'Z'"):
        gpt.sample(model, vocab, "Zed", 5)
    with pytest.raises(ValueError, match="temperature"):
        gpt.sample(model, vocab, "to", 5, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        gpt.sample(model, vocab, "to", 5, top_p=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        gpt.sample(model, vocab, "", 5)
    with pytest.raises(ValueError, match="length"):
        gpt.generate(model, torch.tensor([1]), -1)
    text = gpt.sample(model, vocab, "to be", 12, generator=torch.Generator().manual_seed(1))
    assert len(text) == 12 and set(text) <= set(vocab.chars)


# --------------------------------------------------------------------------------------------------
# BPE
def _naive_train(text, n_merges):
    """Sennrich et al.'s Algorithm 1 with a full recount after every merge (the slow reference)."""
    import re
    from collections import Counter

    chars = "".join(sorted(set(text)))
    words = Counter(tuple(chars.index(c) for c in w) for w in re.findall(gpt.PIECES, text))
    merges = []
    for m in range(n_merges):
        pairs = Counter()
        for w, f in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += f
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], -p[0], -p[1]))
        merges.append(best)
        words = Counter({tuple(gpt.merge_pair(list(w), best, len(chars) + m)): f
                         for w, f in words.items()})
    return merges


def test_bpe_incremental_counts_equal_a_full_recount():
    text = TEXT + "Whether 'tis nobler in the mind to suffer, aaaa aaa aa a!\n"
    assert gpt.BPE.train(text, 40).merges == _naive_train(text, 40)


def test_bpe_round_trip_json_and_compression():
    text = "¿Dónde está el señor? ¡Aquí!  \n\n" * 20 + TEXT
    bpe = gpt.BPE.train(text, 60)
    enc = bpe.encode(text)
    assert enc.dtype == torch.long and bpe.decode(enc) == text and bpe.decode(enc.tolist()) == text
    assert len(enc) < len(text) / 2
    again = gpt.BPE.from_dict(json.loads(json.dumps(bpe.to_dict())))
    assert torch.equal(again.encode(text), enc) and len(again) == len(bpe)
    assert len(bpe.merges) == 41                  # then every piece is one token: training stops
    assert "".join(re.findall(gpt.PIECES, text)) == text              # pieces cover the text
    assert not any(re.search(r"\S\s", t) for t in bpe.tokens)         # no merge across a word end


def test_bpe_merges_stay_inside_pieces_and_do_not_overlap():
    bpe = gpt.BPE.train("aaa aaa aaa", 3)
    assert bpe.tokens[len(bpe.chars)] == "aa"          # (a, a) counted twice per "aaa" piece
    assert gpt.merge_pair([1, 1, 1], (1, 1), 7) == [7, 1]
    assert bpe.tokens[len(bpe.chars) + 2] == " aaa"


def test_bpe_specials_unknowns_and_errors():
    bpe = gpt.BPE.train(TEXT, 20, specials=["<eos>"])
    ids = bpe.encode("to be<eos>")
    assert ids[-1].item() == bpe.special_ids["<eos>"] and bpe.decode(ids) == "to be<eos>"
    with pytest.raises(ValueError, match="'Z'"):
        bpe.encode("Zounds")
    unk = gpt.BPE.train(TEXT, 20, specials=["<unk>"])
    assert unk.decode(unk.encode("toZ")) == "to<unk>"
    with pytest.raises(ValueError, match=r"\[0, "):
        bpe.decode([len(bpe)])
    with pytest.raises(ValueError, match="n_merges"):
        gpt.BPE.train(TEXT, -1)
    with pytest.raises(ValueError, match="to_dict"):
        gpt.BPE.from_dict({"chars": "ab"})


# --------------------------------------------------------------------------------------------------
# Checkpoints and the training script
def test_checkpoint_round_trip(tmp_path, vocab, ids):
    model = tiny_model(len(vocab), chars=vocab.chars).eval()
    cfg = model.config
    path = checkpoints.save_checkpoint(tmp_path / "g.pt", model, cfg, {"vocab": vocab.chars})
    payload = checkpoints.load_checkpoint(path)
    again = gpt.GPT(gpt.GPTConfig(**payload["config"])).eval()
    checkpoints.load_into(again, payload)
    assert again.config == cfg and again.head.weight is again.tok_emb.weight
    x = ids[:16][None]
    assert torch.equal(again(x), model(x))


def _script(*args, env=None, cwd=None, torchrun=0):
    script = str(repo_root() / "scripts" / "train_lesson13.py")
    launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(torchrun),
               "--master_port", "29533"] if torchrun else [sys.executable])
    full = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    done = subprocess.run(launch + [script, *args], capture_output=True, text=True, env=full,
                          timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_two_processes_equal_one_on_the_combined_batch(tmp_path):
    """torchrun, 2 CPU processes (gloo), each half of the global batch, against 1 process."""
    common = ["train", "--corpus", "tinyshakespeare", "--preset", "tiny", "--device", "cpu",
              "--steps", "4", "--no-eval", "--full-precision", "--threads", "1"]
    _script(*common, "--save-to", str(tmp_path / "one"))
    lines = _script(*common, "--save-to", str(tmp_path / "two"), torchrun=2)
    assert lines[0]["world_size"] == 2
    one = checkpoints.load_checkpoint(tmp_path / "one" / "gpt_shakespeare.pt")["state_dict"]
    two = checkpoints.load_checkpoint(tmp_path / "two" / "gpt_shakespeare.pt")["state_dict"]
    torch.manual_seed(0)
    start = gpt.GPT(gpt.GPTConfig(65, context=32, n_layer=2, n_head=2, d_model=32)).state_dict()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    gap = max((one[k] - two[k]).abs().max().item() for k in one)
    assert moved > 1e-3 and gap < 2e-5, (moved, gap)          # trained, and the same training


def test_script_train_then_register_measures_the_stored_float16(tmp_path):
    data = tmp_path / "data"
    (data / "checkpoints").mkdir(parents=True)
    for name in ("tinyshakespeare", "manifest.json"):
        (data / name).symlink_to(repo_root() / "data" / name)
    lines = _script("train", "--corpus", "tinyshakespeare", "--preset", "tiny", "--device", "cpu",
                    "--save-to", str(tmp_path / "out"), "--log-every", "10", "--eval-every", "15")
    assert [line["step"] for line in lines if "step" in line] == [10, 20, 30]
    saved = lines[-1]
    assert saved["sha256"] == checkpoints.sha256_file(Path(saved["saved"]))
    payload = checkpoints.load_checkpoint(saved["saved"])
    assert payload["metadata"]["stored_dtype"] == "float16" and payload["config"]["chars"]
    out = _script("register", "--corpus", "tinyshakespeare", "--from", saved["saved"],
                  "--device-used", "cpu", "--wall-seconds", "1", "--command", "test",
                  env={"DEEPGEN_DATA": str(data)})
    entry = json.loads((data / "checkpoints" / "manifest.json").read_text())["checkpoints"]
    quality = entry["gpt_shakespeare"]["quality"]
    assert quality["valid_nats_per_char"] == out[0]["quality"]["valid_nats_per_char"]
    model = gpt.GPT(gpt.GPTConfig(**payload["config"]))
    checkpoints.load_into(model, payload)
    vocab = rnn.CharVocab(payload["config"]["chars"])
    text = (repo_root() / "data" / "tinyshakespeare" / "input.txt").read_text()
    valid = vocab.encode(text)[int(0.9 * len(text)):]
    assert gpt.evaluate(model, valid) == pytest.approx(quality["valid_nats_per_char"], abs=1e-4)


@pytest.mark.parametrize("name, corpus, bar", [("gpt_shakespeare", "tinyshakespeare", 1.50),
                                               ("gpt_quijote", "quijote", None)])
def test_shipped_checkpoints(name, corpus, bar):
    from deepgen_helpers import data

    if name not in checkpoints.read_manifest():
        pytest.skip(f"{name} is not shipped yet (scripts/train_lesson13.py train + register)")
    payload = checkpoints.load_checkpoint(checkpoints.shipped_path(name))
    text = data.load_text(corpus)
    vocab = rnn.CharVocab(payload["config"]["chars"])
    assert vocab.chars == rnn.CharVocab.from_text(text).chars
    model = gpt.GPT(gpt.GPTConfig(**payload["config"]))
    checkpoints.load_shipped(name, model)
    ids = vocab.encode(text)
    nll = gpt.evaluate(model, ids[int(0.9 * len(ids)):])
    recorded = checkpoints.read_manifest()[name]["quality"]["valid_nats_per_char"]
    assert nll == pytest.approx(recorded, abs=2e-4)
    if bar is not None:
        assert nll <= bar


# --------------------------------------------------------------------------------------------------
# Checkers: the reference passes, the learners' mistakes fail
def test_check_shifted_batch():
    def ok(ids, starts, T):
        pos = starts[:, None] + torch.arange(T)
        return ids[pos], ids[pos + 1]

    assert chk.check_shifted_batch(ok)
    assert not chk.check_shifted_batch(lambda ids, s, T: (ok(ids, s, T)[0], ok(ids, s, T)[0]))
    assert not chk.check_shifted_batch(                                   # shifted backwards
        lambda ids, s, T: (ok(ids, s + 1, T)[0], ok(ids, s, T)[0]))
    assert not chk.check_shifted_batch(                                   # T + 1 tokens each
        lambda ids, s, T: (ok(ids, s, T + 1)[0], ok(ids, s, T + 1)[1]))


def _attention(q, k, v, mask="tril", scale=True):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if mask:
        allowed = torch.ones(T, T, dtype=torch.bool)
        allowed = {"tril": allowed.tril(), "triu": allowed.triu(), "strict": allowed.tril(-1)}[mask]
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


def test_check_causal_attention():
    assert chk.check_causal_attention(_attention)
    assert chk.check_causal_attention(
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert not chk.check_causal_attention(lambda q, k, v: _attention(q, k, v, mask=None))  # peeks
    assert not chk.check_causal_attention(lambda q, k, v: _attention(q, k, v, mask="triu"))
    assert not chk.check_causal_attention(lambda q, k, v: _attention(q, k, v, mask="strict"))
    assert not chk.check_causal_attention(lambda q, k, v: _attention(q, k, v, scale=False))


def test_check_count_pairs():
    def ok(words):
        out = {}
        for w, f in words.items():
            for p in zip(w, w[1:]):
                out[p] = out.get(p, 0) + f
        return out

    def across(words):                      # the corpus as one string: pairs span word ends
        seq = [s for w, f in words.items() for _ in range(f) for s in w]
        out = {}
        for p in zip(seq, seq[1:]):
            out[p] = out.get(p, 0) + 1
        return out

    def once_per_word(words):               # a pair counted once per word, not per occurrence
        out = {}
        for w, f in words.items():
            for p in set(zip(w, w[1:])):
                out[p] = out.get(p, 0) + f
        return out

    assert chk.check_count_pairs(ok)
    assert not chk.check_count_pairs(across)
    assert not chk.check_count_pairs(once_per_word)
    assert not chk.check_count_pairs(lambda words: {p: c for p, c in ok(
        {w: 1 for w in words}).items()})                                 # frequencies ignored


def test_check_apply_merges():
    def ok(word, merges, base):
        for r, pair in enumerate(merges):
            word = gpt.merge_pair(list(word), tuple(pair), base + r)
        return word

    def by_frequency_in_word(word, merges, base):   # the most common pair in the word first
        from collections import Counter

        word = list(word)
        while True:
            present = Counter(p for p in zip(word, word[1:]) if p in merges)
            if not present:
                return word
            pair = present.most_common(1)[0][0]
            word = gpt.merge_pair(word, pair, base + merges.index(pair))

    def first_only(word, merges, base):              # only the first occurrence of each pair
        word = list(word)
        for r, pair in enumerate(merges):
            for i in range(len(word) - 1):
                if tuple(word[i:i + 2]) == tuple(pair):
                    word = word[:i] + [base + r] + word[i + 2:]
                    break
        return word

    def right_to_left(word, merges, base):           # "aaa" -> (a, aa) instead of (aa, a)
        for r, (a, b) in enumerate(merges):
            word = gpt.merge_pair(list(word)[::-1], (b, a), base + r)[::-1]
        return word

    assert chk.check_apply_merges(ok)
    assert not chk.check_apply_merges(lambda w, m, b: ok(w, list(reversed(m)), b))
    assert not chk.check_apply_merges(by_frequency_in_word)
    assert not chk.check_apply_merges(first_only)
    assert not chk.check_apply_merges(right_to_left)


def test_check_cached_embedding():
    ok = lambda m, ids, P: m.tok_emb(ids) + m.pos_emb.weight[P:P + ids.shape[1]]   # noqa: E731
    assert chk.check_cached_embedding(ok)
    assert chk.check_cached_embedding(
        lambda m, ids, P: m.tok_emb(ids) + m.positions(P, ids.shape[1]))
    assert not chk.check_cached_embedding(lambda m, ids, P: ok(m, ids, 0))        # offset forgotten
    assert not chk.check_cached_embedding(lambda m, ids, P: m.tok_emb(ids))       # no positions
    assert not chk.check_cached_embedding(                                         # off by one
        lambda m, ids, P: m.tok_emb(ids) + m.pos_emb.weight[P + 1:P + 1 + ids.shape[1]])


def test_check_bits_per_char():
    assert chk.check_bits_per_char(lambda n, c: (n.sum() / c.sum() / math.log(2)).item())
    assert not chk.check_bits_per_char(lambda n, c: (n.mean() / math.log(2)).item())  # per token
    assert not chk.check_bits_per_char(lambda n, c: ((n / c).mean() / math.log(2)).item())
    assert not chk.check_bits_per_char(lambda n, c: (n.sum() / c.sum()).item())       # nats
