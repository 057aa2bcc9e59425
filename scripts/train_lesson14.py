"""Pre-train and fine-tune lesson 14's shipped BERT with the lesson's own code (on the CPU), then
measure and register the checkpoints.

    # 0. tokens per second of a few model sizes (one thread, 30 steps each after 5 warm-up steps):
    python scripts/train_lesson14.py speed --threads 1
    # 1. masked-LM pre-training on WikiText-2 train + the unlabelled SST-2 training sentences:
    python scripts/train_lesson14.py pretrain --threads 1 --max-seconds 2400 --save-to DIR
    # 1b. a second leg that continues from the first one's file (its weights and tokeniser; a
    #     fresh optimiser, warm-up and cosine); the shipped encoder had one:
    python scripts/train_lesson14.py pretrain --threads 2 --init DIR/bert_wikitext2.pt \\
        --max-seconds 4500 --save-to DIR2
    # 2a. each arm's fine-tuning recipe (learning rate x epochs), chosen on 1,500 whole training
    #     sentences held out (with every phrase inside them), never on the dev set:
    python scripts/train_lesson14.py select --threads 1 --pretrained DIR/bert_wikitext2.pt \\
        --arm pretrained --results-to SELECT_P.json        # and --arm scratch: SELECT_S.json
    # 2b. fine-tuning on SST-2 (all 67,349 labelled phrases) from the file of step 1, three seeds,
    #    and the same architecture from scratch, each arm with its chosen recipe; the first seed's
    #    pre-trained weights are saved (seed 0, fixed in advance: choosing the best seed would
    #    tune on the dev set):
    python scripts/train_lesson14.py finetune --threads 1 --pretrained DIR/bert_wikitext2.pt \\
        --chosen SELECT_P.json SELECT_S.json --save-to DIR
    # 3. measure the stored float16 weights here and register them (MLM on WikiText-2 valid;
    #    SST-2 dev accuracy):
    python scripts/train_lesson14.py register --from DIR/bert_wikitext2.pt --wall-seconds S \\
        --command "the command of step 1"
    python scripts/train_lesson14.py register --from DIR/bert_sst2.pt --wall-seconds S \\
        --command "the command of step 2"

The tokeniser is lesson 13's BPE (``gpt.BPE``) with 4,000 merges learned on the lower-cased
WikiText-2 training text and the SST-2 training sentences (no labels), plus the special tokens
``bert.SPECIALS``; it is stored as JSON in each checkpoint's metadata. Nothing from the SST-2 dev
set (the sentences every paper reports accuracy on) is used before evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # runs from a plain checkout too
os.environ.setdefault("DEEPGEN_PLAIN_PROGRESS", "1")             # one line per bar, not a flood

import torch  # noqa: E402

from deepgen_helpers import checkpoints, data, metrics  # noqa: E402
from deepgen_helpers.models import bert, gpt  # noqa: E402

STEM = "14_bert_masked_language_models"
N_MERGES = 4000

#: Model sizes. "cpu" is the shipped model (chosen with the speed command, see the lesson's
#: instructor notes); "tiny" tests the whole path in seconds.
SIZES = {
    "2x128": dict(context=128, n_layer=2, n_head=2, d_model=128),
    "4x192": dict(context=128, n_layer=4, n_head=4, d_model=192),
    "4x256": dict(context=128, n_layer=4, n_head=4, d_model=256),
    "tiny": dict(context=32, n_layer=2, n_head=2, d_model=32),
}


def say(obj) -> None:
    print(json.dumps(obj), flush=True)


def tokenizer_and_streams(n_merges: int = N_MERGES, tok=None):
    """The BPE (trained on WikiText-2 train + SST-2 train sentences, unless ``tok`` is given),
    the pre-training stream and the WikiText-2 validation stream."""
    wiki = data.load_wikitext2("train")
    sst, _ = data.load_sst2("train")                 # the sentences only: labels never used here
    if tok is None:
        text = "".join(bert.as_text(s) for s in wiki + sst if s.strip())
        tok = gpt.BPE.train(text, n_merges, specials=list(bert.SPECIALS))
    train = bert.text_stream(tok, wiki + sst)
    valid = bert.text_stream(tok, data.load_wikitext2("valid"))
    return tok, train, valid


def speed(args) -> int:
    tok, train, _ = tokenizer_and_streams()
    for name in args.sizes:
        torch.manual_seed(0)
        cfg = bert.BertConfig.for_tokenizer(tok, **SIZES[name])
        model = bert.Bert(cfg)
        bert.pretrain(model, train, steps=5, batch_size=args.batch_size, lr=1e-4, warmup=1)
        out = bert.pretrain(model, train, steps=args.steps, batch_size=args.batch_size, lr=1e-4,
                            warmup=1)
        say({"size": name, "parameters": sum(p.numel() for p in model.parameters()),
             "tokens_per_second": round(out["tokens"] / out["seconds"]),
             "seconds_per_step": round(out["seconds"] / out["steps"], 3)})
    return 0


def pretrain(args) -> int:
    t0 = time.time()
    prior = None
    if args.init:                  # a second leg: the first leg's weights and tokeniser
        model, tok, payload = load_pretrained(args.init)
        prior = payload["metadata"]
        if prior.get("size") != args.size or model.config.n_classes:
            raise SystemExit(f"--init {args.init} is not a {args.size} pre-trained encoder "
                             f"(it is {prior.get('size')}); pass the matching --size.")
        cfg = model.config
        prior = {"file": Path(args.init).name, "sha256": checkpoints.sha256_file(args.init),
                 **{k: prior[k] for k in ("steps_done", "tokens_seen", "train_seconds",
                                          "recipe")}}
    tok, train, valid = tokenizer_and_streams(tok=tok if args.init else None)
    say({"vocab": len(tok), "train_tokens": len(train), "valid_tokens": len(valid),
         "tokeniser_seconds": round(time.time() - t0, 1)})
    torch.manual_seed(args.seed)
    if not args.init:
        cfg = bert.BertConfig.for_tokenizer(tok, dropout=args.dropout, **SIZES[args.size])
        model = bert.Bert(cfg)
    curve = []

    def log(entry):
        curve.append(entry)
        say(entry)

    out = bert.pretrain(model, train, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                        warmup=args.warmup, seed=args.seed, max_seconds=args.max_seconds,
                        log_every=args.log_every, log=log, desc="MLM")
    nll, correct = bert.mlm_eval(model, valid)
    quality = {"valid_mlm_nats": round(nll.mean().item(), 4),
               "valid_masked_accuracy": round(correct.mean().item(), 4)}
    say({"steps_done": out["steps"], "tokens_seen": out["tokens"],
         "train_seconds": round(out["seconds"], 1), **quality})
    if args.save_to:
        path = Path(args.save_to) / "bert_wikitext2.pt"
        earlier = prior or {"steps_done": 0, "tokens_seen": 0, "train_seconds": 0.0}
        meta = {"tokenizer": tok.to_dict(), "size": args.size, "seed": args.seed,
                "recipe": {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                           "warmup": args.warmup, "max_seconds": args.max_seconds,
                           "threads": args.threads},
                "continued_from": prior,            # None for a first leg
                "steps_done": earlier["steps_done"] + out["steps"],
                "tokens_seen": earlier["tokens_seen"] + out["tokens"],
                "train_seconds": round(earlier["train_seconds"] + out["seconds"], 1),
                "loss_curve": curve, "valid_float32": quality}
        checkpoints.save_checkpoint(path, model, cfg, meta, half=True)
        say({"saved": str(path), "bytes": path.stat().st_size,
             "wall_seconds": round(time.time() - t0, 1)})
    return 0


def load_pretrained(path):
    """(model, tokeniser, payload) of a checkpoint written by ``pretrain``."""
    payload = checkpoints.load_checkpoint(path)
    tok = gpt.BPE.from_dict(payload["metadata"]["tokenizer"])
    model = bert.Bert(bert.BertConfig(**payload["config"]))
    checkpoints.load_into(model, payload)
    return model, tok, payload


def sst2(tok, context):
    """Encoded SST-2: training phrases (all 67,349) and dev sentences, with their labels."""
    out = {}
    for split in ("train", "dev"):
        sentences, labels = data.load_sst2(split)
        out[split] = (bert.encode_batch(tok, sentences, context, truncate=True),
                      torch.tensor(labels))
    return out


def dev_correct(model, dev):
    ids, labels = dev
    return (bert.predict_proba(model, ids).argmax(1) == labels).float()


def held_out_sentences(phrases, n, seed=0):
    """(train, held) index lists of SST-2 training phrases for choosing a recipe without the
    dev set. ``held`` is ``n`` random whole sentences (phrases that no other phrase contains, as
    the dev set's are); ``train`` drops every phrase inside a held-out sentence, so no held-out
    sentence is seen in part either."""
    every = "\n".join(f" {p} " for p in phrases)
    order = torch.randperm(len(phrases), generator=torch.Generator().manual_seed(seed)).tolist()
    held = []
    for i in order:                     # a whole sentence occurs once in the joined text
        if every.count(f" {phrases[i]} ") == 1:
            held.append(i)
            if len(held) == n:
                break
    inside = "\n".join(f" {phrases[i]} " for i in held)
    train = [j for j, p in enumerate(phrases) if f" {p} " not in inside]
    return train, held


def select(args) -> int:
    """Each recipe of the grid, for one arm, on training phrases only: fine-tune on all but the
    held-out sentences, measure accuracy on them. The dev set is not read."""
    t0 = time.time()
    pre, tok, _ = load_pretrained(args.pretrained)
    phrases, labels = data.load_sst2("train")
    train, held = held_out_sentences(phrases, args.held_out, args.split_seed)
    ids = bert.encode_batch(tok, phrases, pre.config.context, truncate=True)
    labels = torch.tensor(labels)
    say({"held_out_sentences": len(held), "train_phrases": len(train),
         "split_seconds": round(time.time() - t0, 1)})
    results = {"arm": args.arm, "seed": args.seed, "held_out": len(held),
               "train_phrases": len(train), "split_seed": args.split_seed, "grid": []}
    for epochs in args.epochs:
        for lr in args.lrs:
            torch.manual_seed(args.seed)
            model = bert.with_classifier(pre if args.arm == "pretrained" else None, pre.config,
                                         dropout=args.dropout)
            out = bert.finetune(model, ids[train], labels[train], epochs=epochs,
                                batch_size=args.batch_size, lr=lr, seed=args.seed,
                                desc=f"{args.arm} lr {lr:g} epochs {epochs:g}")
            correct = dev_correct(model, (ids[held], labels[held]))
            m, se = metrics.mean_se(correct)
            row = {"epochs": epochs, "lr": lr, "held_out_accuracy": round(m, 4),
                   "se": round(se, 4), "seconds": round(out["seconds"], 1)}
            results["grid"].append(row)
            say(row)
    best = max(results["grid"], key=lambda r: r["held_out_accuracy"])
    results["best"] = best
    say({"best": best, "wall_seconds": round(time.time() - t0, 1)})
    if args.results_to:
        Path(args.results_to).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def finetune(args) -> int:
    t0 = time.time()
    chosen = {}                      # per arm: (lr, epochs) chosen by `select`, else the flags
    for path in args.chosen:
        sel = json.loads(Path(path).read_text())
        chosen[sel["arm"]] = {"lr": sel["best"]["lr"], "epochs": sel["best"]["epochs"],
                              "chosen_by": {"file": Path(path).name, "held_out": sel["held_out"],
                                            "grid": sel["grid"]}}
    missing = [arm for arm in args.arms if args.chosen and arm not in chosen]
    if missing:
        raise SystemExit(f"--chosen has no selection for the arm(s) {missing}; run `select "
                         f"--arm {missing[0]}` first, or leave --chosen out.")
    pre, tok, payload = load_pretrained(args.pretrained)
    sets = sst2(tok, pre.config.context)
    ids, labels = sets["train"]
    results = {"recipe": {"batch_size": args.batch_size, "dropout": args.dropout,
                          "seeds": args.seeds, "train": "all 67,349 SST-2 training phrases"}}
    # the frozen-features linear probe on the full training set ([CLS] and mean-pooled outputs)
    if not args.no_probe:
        f_train = bert.sentence_features(pre, ids)
        f_dev = bert.sentence_features(pre, sets["dev"][0])
    for i, name in enumerate(("cls", "mean") if not args.no_probe else ()):
        layer = bert.train_logistic(f_train[i], labels)
        with torch.no_grad():
            correct = (layer(f_dev[i]).argmax(1) == sets["dev"][1]).float()
        m, se = metrics.mean_se(correct)
        results[f"probe_{name}"] = {"dev_accuracy": round(m, 4), "se": round(se, 4)}
        say({f"probe_{name}": results[f"probe_{name}"]})
    keep = None
    for arm in args.arms:
        accs, per_seed = [], []
        lr, epochs = (chosen[arm]["lr"], chosen[arm]["epochs"]) if chosen else (args.lr,
                                                                                args.epochs)
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = bert.with_classifier(pre if arm == "pretrained" else None, pre.config,
                                         dropout=args.dropout)
            out = bert.finetune(model, ids, labels, epochs=epochs, batch_size=args.batch_size,
                                lr=lr, seed=seed, desc=f"{arm} seed {seed}")
            correct = dev_correct(model, sets["dev"])
            per_seed.append(correct)
            accs.append(correct.mean().item())
            say({"arm": arm, "seed": seed, "dev_accuracy": round(accs[-1], 4),
                 "seconds": round(out["seconds"], 1)})
            if arm == "pretrained" and seed == args.seeds[0]:
                keep = (model, correct, out)
        m, se = metrics.mean_se(torch.tensor(accs)) if len(accs) > 1 else (accs[0], 0.0)
        results[arm] = {"lr": lr, "epochs": epochs, "chosen_by": chosen.get(arm, {}).get(
                            "chosen_by", "the --lr and --epochs flags"),
                        "dev_accuracy_per_seed": [round(a, 4) for a in accs],
                        "mean": round(m, 4), "se_over_seeds": round(se, 4)}
        results[arm + "_correct"] = torch.stack(per_seed).tolist()
        say({arm: results[arm]})
    for path in args.merge:          # arms run by another process side by side (same recipe)
        waited = 0
        while not Path(path).exists() and waited < args.merge_wait:
            time.sleep(5)
            waited += 5
        if not Path(path).exists():
            raise SystemExit(f"--merge {path}: no such file after {args.merge_wait} s; run the "
                             f"other arm with --results-to {path} first.")
        other = json.loads(Path(path).read_text())
        if other["recipe"] != results["recipe"] | {"seeds": other["recipe"]["seeds"]}:
            raise SystemExit(f"{path} used another recipe: {other['recipe']}")
        results.update({k: v for k, v in other.items() if k != "recipe"})
        say({"merged": path, "arms": [k for k in other if k not in ("recipe",)]})
    if args.results_to:                              # written whole, then renamed (atomic)
        part = Path(args.results_to).with_suffix(".part")
        part.write_text(json.dumps(results))
        part.replace(args.results_to)
    if args.save_to and keep is not None:
        model, correct, out = keep
        path = Path(args.save_to) / "bert_sst2.pt"
        m, se = metrics.mean_se(correct)
        meta = {"tokenizer": tok.to_dict(), "pretrained_from": Path(args.pretrained).name,
                "pretrained_sha256": checkpoints.sha256_file(args.pretrained),
                "seed": args.seeds[0], "train_seconds": round(out["seconds"], 1),
                "dev_accuracy_float32": round(m, 4), "dev_se_float32": round(se, 4),
                "full_set_results": {k: v for k, v in results.items()
                                     if not k.endswith("_correct")},
                "dev_correct_per_seed": {k[:-8]: v for k, v in results.items()
                                         if k.endswith("_correct")}}
        checkpoints.save_checkpoint(path, model, model.config, meta, half=True)
        say({"saved": str(path), "bytes": path.stat().st_size,
             "wall_seconds": round(time.time() - t0, 1)})
    return 0


def register(args) -> int:
    """Measure a checkpoint's stored (float16) weights here, then add it to the manifest."""
    payload = checkpoints.load_checkpoint(args.source)
    cfg = bert.BertConfig(**payload["config"])
    tok = gpt.BPE.from_dict(payload["metadata"]["tokenizer"])
    model = bert.Bert(cfg)
    checkpoints.load_into(model, payload)          # float16 values, float32 model: exact copies
    meta = payload["metadata"]
    if cfg.n_classes:
        name = "bert_sst2"
        correct = dev_correct(model, sst2(tok, cfg.context)["dev"])
        m, se = metrics.mean_se(correct)
        quality = {"sst2_dev_accuracy": round(m, 4), "sst2_dev_se": round(se, 4),
                   "sst2_dev_accuracy_float32": meta["dev_accuracy_float32"],
                   "evaluation": "872 GLUE SST-2 dev sentences, float16 weights, float32 CPU"}
        for arm in ("pretrained", "scratch"):
            r = meta["full_set_results"].get(arm)
            if r:
                quality[f"full_set_{arm}_mean"] = r["mean"]
                quality[f"full_set_{arm}_se_over_seeds"] = r["se_over_seeds"]
        for probe in ("probe_cls", "probe_mean"):
            if probe in meta["full_set_results"]:
                quality[f"full_set_{probe}"] = meta["full_set_results"][probe]["dev_accuracy"]
    else:
        name = "bert_wikitext2"
        nll, correct = bert.mlm_eval(model, bert.text_stream(tok, data.load_wikitext2("valid")))
        (mn, sn), (ma, sa) = metrics.mean_se(nll), metrics.mean_se(correct)
        quality = {"valid_mlm_nats": round(mn, 4), "valid_mlm_se": round(sn, 4),
                   "valid_masked_accuracy": round(ma, 4), "valid_masked_accuracy_se": round(sa, 4),
                   "valid_masked_accuracy_float32": meta["valid_float32"]["valid_masked_accuracy"],
                   "evaluation": "WikiText-2 valid, non-overlapping windows, 80/10/10 with seed 0",
                   "tokens_seen": meta["tokens_seen"]}
    say({"name": name, "quality": quality})
    target = checkpoints.checkpoint_dir() / f"{name}.pt"
    if Path(args.source).resolve() != target.resolve():
        shutil.copyfile(args.source, target)
    entry = checkpoints.register_checkpoint(name, target, lesson=STEM, command=args.command,
                                            device=args.device_used,
                                            wall_seconds=args.wall_seconds, quality=quality)
    say({"registered": name, "bytes": entry["bytes"]})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed", help="tokens per second of model sizes")
    s.add_argument("--sizes", nargs="+", default=["2x128", "4x192", "4x256"], choices=SIZES)
    s.add_argument("--steps", type=int, default=30)
    s.add_argument("--batch-size", type=int, default=32)
    t = sub.add_parser("pretrain", help="masked-LM pre-training (never registers)")
    t.add_argument("--size", choices=sorted(SIZES), default="4x256")
    t.add_argument("--steps", type=int, default=100000, help="cosine length (with --max-seconds "
                   "the cosine runs over the time instead)")
    t.add_argument("--max-seconds", type=float, default=None)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=200)
    t.add_argument("--save-to", help="folder for bert_wikitext2.pt")
    t.add_argument("--init", help="a bert_wikitext2.pt to continue from (a second leg: its "
                   "weights, tokeniser and config, so --dropout is ignored; a fresh optimiser, "
                   "warm-up and cosine)")
    f = sub.add_parser("finetune", help="SST-2 on all training phrases: pre-trained vs scratch")
    f.add_argument("--pretrained", required=True, help="bert_wikitext2.pt from pretrain")
    f.add_argument("--arms", nargs="+", default=["pretrained", "scratch"])
    f.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    f.add_argument("--epochs", type=float, default=2.0)
    f.add_argument("--chosen", nargs="*", default=[], help="results files of `select`, one per "
                   "arm: each arm then uses its chosen lr and epochs instead of --lr/--epochs")
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--lr", type=float, default=2e-4)
    f.add_argument("--dropout", type=float, default=0.1)
    f.add_argument("--save-to", help="folder for bert_sst2.pt (the first seed, pre-trained)")
    f.add_argument("--no-probe", action="store_true", help="skip the linear probes")
    f.add_argument("--results-to", help="write the results (with per-sentence correctness) here")
    f.add_argument("--merge", nargs="*", default=[], help="results files of other arms to include "
                   "(read after this process's own arms, so two processes can run side by side)")
    f.add_argument("--merge-wait", type=float, default=1800,
                   help="seconds to wait for a --merge file to appear")
    c = sub.add_parser("select", help="choose a fine-tuning recipe per arm on held-out "
                       "training sentences (never the dev set)")
    c.add_argument("--pretrained", required=True, help="bert_wikitext2.pt from pretrain")
    c.add_argument("--arm", choices=["pretrained", "scratch"], required=True)
    c.add_argument("--lrs", nargs="+", type=float, default=[2e-4, 5e-4, 1e-3])
    c.add_argument("--epochs", nargs="+", type=float, default=[2.0, 3.0])
    c.add_argument("--held-out", type=int, default=1500, help="whole training sentences")
    c.add_argument("--split-seed", type=int, default=0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--dropout", type=float, default=0.1)
    c.add_argument("--results-to", help="write the grid's results (JSON) here")
    r = sub.add_parser("register", help="measure a saved file here (CPU) and register it")
    r.add_argument("--from", dest="source", required=True)
    r.add_argument("--device-used", default="cpu (1 thread)")
    r.add_argument("--wall-seconds", type=float, required=True)
    r.add_argument("--command", required=True, help="the command that made the file")
    for q in (s, t, f, c, r):
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return {"speed": speed, "pretrain": pretrain, "finetune": finetune, "select": select,
            "register": register}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
