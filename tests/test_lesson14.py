"""Lesson 14 (BERT): the exported bert module (encoder, 80/10/10 masking, MLM loss and evaluation,
encoding, fine-tuning), its errors in the learner's terms, the shipped checkpoints, and the checkers
fed the mistakes learners make."""
import math

import pytest
import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints
from deepgen_helpers.checks import lesson14 as chk
from deepgen_helpers.models import bert, gpt

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

TEXT = (" the cat sat on the mat . the dog sat on the log . a good film , a bad film . "
        "the movie is good . the story is bad .")


@pytest.fixture(scope="module")
def tok():
    return gpt.BPE.train(TEXT, 30, specials=list(bert.SPECIALS))


def _model(tok, **kw):
    torch.manual_seed(0)
    sizes = dict(context=24, n_layer=2, n_head=2, d_model=32, dropout=0.0)
    sizes.update(kw)
    return bert.Bert(bert.BertConfig.for_tokenizer(tok, **sizes))


# --------------------------------------------------------------------------------------------------
# The encoder
def test_shapes_and_tied_head(tok):
    model = _model(tok, n_classes=2).eval()
    ids = bert.encode_batch(tok, ["the cat sat", "a good film , a bad film ."], 24)
    assert ids[:, 0].eq(model.config.cls_id).all()
    h = model(ids)
    assert h.shape == (2, ids.shape[1], 32)
    assert model.mlm_logits(h).shape == (2, ids.shape[1], len(tok))
    assert model.classify(ids).shape == (2, 2)
    # the output matrix of the MLM head is the token embedding (tied, one tensor)
    assert model.mlm_logits(h[:, :1]).requires_grad and len(
        [n for n, _ in model.named_parameters() if "emb" in n]) == 2


def test_padding_invariance_and_bidirectionality(tok):
    model = _model(tok, n_classes=2).eval()
    ids = bert.encode_batch(tok, ["the cat sat on the mat ."], 24)
    pad = torch.full((1, 6), model.config.pad_id)
    with torch.no_grad():
        h, hp = model(ids), model(torch.cat([ids, pad], dim=1))
        assert (h[0, 0] - hp[0, 0]).abs().max() < 1e-5                 # [CLS] unchanged
        assert (model.classify(ids) - model.classify(torch.cat([ids, pad], 1))).abs().max() < 1e-5
        changed = ids.clone()
        changed[0, -2] = tok.encode(" dog")[0]
        assert (model(changed)[0, 0] - h[0, 0]).abs().max() > 1e-4     # sees the right side


def test_seeded_determinism(tok):
    a, b = _model(tok), _model(tok)
    ids = bert.encode_batch(tok, ["the dog sat"], 24)
    assert torch.equal(a(ids), b(ids))
    stream = bert.text_stream(tok, [TEXT] * 20)
    outs = []
    for _ in range(2):
        m = _model(tok)
        outs.append(bert.pretrain(m, stream, steps=3, batch_size=4, lr=1e-3, warmup=1, seed=5)
                    ["history"].mean("loss"))
    assert outs[0] == outs[1]


# --------------------------------------------------------------------------------------------------
# Masking statistics of the 80/10/10 rule
def test_mask_tokens_statistics():
    cfg = bert.BertConfig(vocab_size=1004, pad_id=1000, cls_id=1001, sep_id=1002, mask_id=1003)
    ids = torch.randint(0, 1000, (300, 128), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1], ids[:50, 100:] = 1001, 1002, 1000
    inputs, labels = bert.mask_tokens(ids, cfg, torch.Generator().manual_seed(1))
    sel = labels != -100
    ordinary = ids < 1000
    n = int(ordinary.sum())
    assert not sel[~ordinary].any()                                   # specials never selected
    assert abs(sel.sum().item() / n - 0.15) < 0.005                   # ~15 % of ordinary tokens
    assert torch.equal(labels[sel], ids[sel])
    assert torch.equal(inputs[~sel], ids[~sel])                       # the rest untouched
    frac_mask = (inputs[sel] == 1003).float().mean().item()
    frac_same = (inputs[sel] == ids[sel]).float().mean().item()
    assert abs(frac_mask - 0.8) < 0.01
    assert abs(frac_same - 0.1) < 0.01                                # (+ 0.1 % random hits)
    assert (inputs[sel & (inputs != 1003)] < 1000).all()              # random = ordinary tokens


def test_mlm_loss_counts_selected_positions_only(tok):
    model = _model(tok)
    ids = bert.encode_batch(tok, ["the cat sat on the mat .", "the dog"], 24)
    inputs, labels = bert.mask_tokens(ids, model.config, torch.Generator().manual_seed(0), p=0.5)
    keep = labels != -100
    expected = F.cross_entropy(model.mlm_logits(model(inputs))[keep], labels[keep])
    assert torch.allclose(bert.mlm_loss(model, inputs, labels), expected, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Errors in the learner's terms
def test_bad_inputs_give_clear_errors(tok):
    with pytest.raises(ValueError, match="no sentences"):
        bert.encode_batch(tok, [], 24)
    long = " ".join(["the cat sat on the mat ."] * 10)
    with pytest.raises(ValueError, match="truncate=True"):
        bert.encode_batch(tok, [long], 24)
    cut = bert.encode_batch(tok, [long], 24, truncate=True)
    assert cut.shape == (1, 24) and cut[0, 0] == tok.special_ids["[CLS]"] \
        and cut[0, -1] == tok.special_ids["[SEP]"]
    model = _model(tok, n_classes=2)
    with pytest.raises(ValueError, match="config.context"):
        model(torch.zeros(1, 30, dtype=torch.long))
    with pytest.raises(ValueError, match="start with \\[CLS\\]"):
        model.classify(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        bert.fill_mask(model, tok, "the cat sat", k=3)
    with pytest.raises(ValueError, match="special tokens"):
        bert.BertConfig.for_tokenizer(gpt.BPE.train(TEXT, 5))
    with pytest.raises(ValueError, match="divisible"):
        bert.BertConfig(vocab_size=40, d_model=30, n_head=4)
    with pytest.raises(ValueError, match="as many labels"):
        bert.finetune(model, torch.zeros(3, 4, dtype=torch.long), torch.zeros(2, dtype=torch.long),
                      epochs=1)


def test_unknown_split_is_refused():
    from deepgen_helpers import data
    with pytest.raises(Exception, match="dev"):
        data.load_sst2("validation")


def test_fill_mask_and_left_to_right_shapes(tok):
    model = _model(tok).eval()
    top = bert.fill_mask(model, tok, "the [MASK] sat on the [MASK] .", k=3)
    assert len(top) == 2 and all(len(t) == 3 for t in top)
    assert all(w not in bert.SPECIALS for t in top for w, _ in t)
    new = bert.generate_left_to_right(model, tok.encode(" the cat"), 5)
    assert new.shape == (5,) and (new < model.config.pad_id).all()


def test_finetune_learns_a_trivial_task(tok):
    model = bert.with_classifier(_model(tok), _model(tok).config, dropout=0.0)
    sents = ["the movie is good ."] * 16 + ["the story is bad ."] * 16
    ids = bert.encode_batch(tok, sents, 24)
    y = torch.tensor([1] * 16 + [0] * 16)
    bert.finetune(model, ids, y, epochs=8, batch_size=8, lr=3e-3)
    assert (bert.predict_proba(model, ids).argmax(1) == y).all()
    cls, mean = bert.sentence_features(model, ids)
    assert cls.shape == mean.shape == (32, 32)
    layer = bert.train_logistic(mean, y)
    assert (layer(mean).argmax(1) == y).all()


def test_checkpoint_round_trip(tok, tmp_path):
    model = _model(tok, n_classes=2).eval()
    path = checkpoints.save_checkpoint(tmp_path / "b.pt", model, model.config,
                                       {"tokenizer": tok.to_dict()}, half=True)
    payload = checkpoints.load_checkpoint(path)
    tok2 = gpt.BPE.from_dict(payload["metadata"]["tokenizer"])
    twin = bert.Bert(bert.BertConfig(**payload["config"])).eval()
    checkpoints.load_into(twin, payload)
    ids = bert.encode_batch(tok2, ["the cat sat"], 24)
    assert torch.equal(ids, bert.encode_batch(tok, ["the cat sat"], 24))
    assert (twin.classify(ids) - model.classify(ids)).abs().max() < 1e-2   # float16 rounding


# --------------------------------------------------------------------------------------------------
# Shipped checkpoints: load into the lesson's own model and meet their bars
def _shipped(name):
    if name not in checkpoints.read_manifest():
        pytest.skip(f"{name} not shipped yet")
    payload = checkpoints.load_checkpoint(checkpoints.shipped_path(name))
    model = bert.Bert(bert.BertConfig(**payload["config"])).eval()
    checkpoints.load_into(model, payload)
    return model, gpt.BPE.from_dict(payload["metadata"]["tokenizer"]), payload


def test_shipped_pretrained_model_fills_blanks():
    model, tok, _ = _shipped("bert_wikitext2")
    from deepgen_helpers import data
    stream = bert.text_stream(tok, data.load_wikitext2("valid")[:300])
    nll, correct = bert.mlm_eval(model, stream)
    floor = math.log(model.config.vocab_size)
    assert nll.mean() < floor - 1.0 and correct.mean() > 0.2


def test_shipped_finetuned_model_quality():
    model, tok, payload = _shipped("bert_sst2")
    from deepgen_helpers import data
    sents, labels = data.load_sst2("dev")
    acc = (bert.predict_proba(model, bert.encode_batch(tok, sents, model.config.context))
           .argmax(1) == torch.tensor(labels)).float().mean().item()
    entry = checkpoints.read_manifest()["bert_sst2"]["quality"]
    assert abs(acc - entry["sst2_dev_accuracy"]) < 1e-3
    assert acc >= 0.82                                  # issue 14's target for the shipped model


def test_shipped_finetuned_model_used_the_recipe_chosen_on_held_out_training_sentences():
    meta = checkpoints.load_checkpoint(checkpoints.shipped_path("bert_sst2"))["metadata"]
    for arm in ("pretrained", "scratch"):
        r = meta["full_set_results"][arm]
        grid = r["chosen_by"]["grid"]
        best = max(grid, key=lambda row: row["held_out_accuracy"])
        assert (r["lr"], r["epochs"]) == (best["lr"], best["epochs"])   # argmax, not the dev set
        assert len(grid) == 6 and r["chosen_by"]["held_out"] == 1500
    assert meta["seed"] == 0 and meta["full_set_results"]["recipe"]["seeds"] == [0, 1, 2]


# --------------------------------------------------------------------------------------------------
# Checkers: the reference passes, real mistakes fail
def _ref_mask(ids, mask_id, n_normal, generator):
    return chk._ref_mask_tokens(ids, mask_id, n_normal, generator)


def _mask_all_tokens(ids, mask_id, n_normal, generator):       # 80/10/10 on every token
    torch.rand(ids.shape, generator=generator)
    v = torch.rand(ids.shape, generator=generator)
    r = torch.randint(0, n_normal, ids.shape, generator=generator)
    inputs = torch.where(v < 0.8, torch.full_like(ids, mask_id), ids)
    inputs = torch.where((v >= 0.8) & (v < 0.9), r, inputs)
    return inputs, ids.clone()


def _labels_everywhere(ids, mask_id, n_normal, generator):    # the loss would see visible tokens
    inputs, _ = chk._ref_mask_tokens(ids, mask_id, n_normal, generator)
    return inputs, ids.clone()


def _specials_selected(ids, mask_id, n_normal, generator):    # [CLS]/[SEP]/[PAD] may be masked
    u = torch.rand(ids.shape, generator=generator)
    sel = u < 0.15
    v = torch.rand(ids.shape, generator=generator)
    r = torch.randint(0, n_normal, ids.shape, generator=generator)
    inputs = torch.where(sel & (v < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(sel & (v >= 0.8) & (v < 0.9), r, inputs)
    return inputs, torch.where(sel, ids, torch.full_like(ids, -100))


def test_check_mask_tokens():
    assert chk.check_mask_tokens(_ref_mask)
    for wrong in (_mask_all_tokens, _labels_everywhere, _specials_selected):
        assert not chk.check_mask_tokens(wrong), wrong.__name__


def test_check_mlm_loss():
    assert chk.check_mlm_loss(lambda lo, la: F.cross_entropy(lo.flatten(0, 1), la.flatten(),
                                                             ignore_index=-100))
    all_positions = lambda lo, la: F.cross_entropy(lo.flatten(0, 1), la.flatten().clamp(min=0))
    summed = lambda lo, la: F.cross_entropy(lo.flatten(0, 1), la.flatten(), reduction="sum")
    over_all = lambda lo, la: F.cross_entropy(lo.flatten(0, 1), la.flatten(), reduction="sum") \
        / la.numel()
    for wrong in (all_positions, summed, over_all):
        assert not chk.check_mlm_loss(wrong)


def test_check_encoder_mask():
    assert chk.check_encoder_mask(lambda ids, pad: (ids != pad)[:, None, None, :])
    T = lambda ids: ids.shape[1]
    causal = lambda ids, pad: torch.ones(T(ids), T(ids), dtype=torch.bool).tril()
    both = lambda ids, pad: (ids != pad)[:, None, None, :] & causal(ids, pad)
    inverted = lambda ids, pad: (ids == pad)[:, None, None, :]
    no_padding = lambda ids, pad: torch.ones(T(ids), T(ids), dtype=torch.bool)
    for wrong in (causal, both, inverted, no_padding):
        assert not chk.check_encoder_mask(wrong)


def test_check_sentence_vector():
    def ref(h, ids, pad, how):
        if how == "cls":
            return h[:, 0]
        real = (ids != pad)[..., None].float()
        return (h * real).sum(1) / real.sum(1)

    assert chk.check_sentence_vector(ref)
    last = lambda h, ids, pad, how: h[:, -1] if how == "cls" else ref(h, ids, pad, how)
    mean_with_pads = lambda h, ids, pad, how: h.mean(1) if how == "mean" else h[:, 0]
    for wrong in (last, mean_with_pads):
        assert not chk.check_sentence_vector(wrong)


# --------------------------------------------------------------------------------------------------
# scripts/train_lesson14.py: a second pre-training leg must match the first leg's size
def test_train_script_refuses_a_second_leg_of_another_size():
    import importlib.util
    from pathlib import Path
    if "bert_wikitext2" not in checkpoints.read_manifest():
        pytest.skip("bert_wikitext2 not shipped yet")
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_lesson14.py"
    spec = importlib.util.spec_from_file_location("train_lesson14", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    threads = torch.get_num_threads()                  # main() sets it: give it back after
    try:
        with pytest.raises(SystemExit, match="is not a tiny pre-trained encoder.*--size"):
            script.main(["pretrain", "--size", "tiny", "--max-seconds", "1",
                         "--init", str(checkpoints.shipped_path("bert_wikitext2"))])
    finally:
        torch.set_num_threads(threads)


def _script():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "scripts" / "train_lesson14.py"
    spec = importlib.util.spec_from_file_location("train_lesson14", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_recipe_selection_holds_out_whole_sentences_and_everything_inside_them():
    phrases = ["a good film .", "a good film", "good", "film", "a dull , long film .", "dull",
               "long film", "the best of the year .", "best", "year", "of the year"]
    train, held = _script().held_out_sentences(phrases, 2, seed=0)
    roots = {"a good film .", "a dull , long film .", "the best of the year ."}
    assert len(held) == 2 and {phrases[i] for i in held} <= roots        # whole sentences only
    assert not set(train) & set(held)
    for j in train:                                   # nothing of a held-out sentence is trained on
        assert not any(f" {phrases[j]} " in f" {phrases[i]} " for i in held)
    kept = {phrases[j] for j in train}
    left = (roots - {phrases[i] for i in held}).pop()                   # the third sentence
    assert left in kept                                                  # ...and its parts stay
    assert all(p in kept for p in phrases if f" {p} " in f" {left} "
               and not any(f" {p} " in f" {phrases[i]} " for i in held))


def test_finetune_refuses_a_selection_missing_for_an_arm(tmp_path):
    # the selections are checked before any file is read: no checkpoint is needed
    import json
    chosen = tmp_path / "select_scratch.json"
    chosen.write_text(json.dumps({"arm": "scratch", "held_out": 2, "grid": [],
                                  "best": {"lr": 1e-3, "epochs": 1.0}}))
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit, match=r"no selection for the arm\(s\) \['pretrained'\]"):
            _script().main(["finetune", "--pretrained", str(tmp_path / "not_read.pt"),
                            "--no-probe", "--arms", "pretrained", "--chosen", str(chosen)])
    finally:
        torch.set_num_threads(threads)
