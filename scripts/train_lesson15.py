"""Train lesson 15's shipped Spanish-to-English Transformer with the lesson's own code, then
measure it on the held-out test split and register the checkpoint.

    # 1. train (tokeniser + model) on the training split of data.split_spa_eng (seed 0):
    python scripts/train_lesson15.py train --threads 1 --size base --epochs 9 --max-seconds 4800 \\
        --schedule time --save-to DIR
    # 2. measure the stored float16 weights here (sacreBLEU-equal BLEU and chrF of greedy and
    #    beam search on all 5,906 test pairs) and register them:
    python scripts/train_lesson15.py register --from DIR/seq2seq_spa_eng.pt --wall-seconds S \\
        --command "the command of step 1"
    # a quick look at any checkpoint, on N random test pairs:
    python scripts/train_lesson15.py evaluate --from DIR/seq2seq_spa_eng.pt --n 500

The tokeniser is lesson 13's BPE (``gpt.BPE``) with 8,000 merges learned on both sides of the
training pairs only, plus ``seq2seq.SPECIALS``; it is stored as JSON in the checkpoint's metadata.
Nothing from the validation or test pairs is used in training; the validation pairs are only
scored at the end.
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
from deepgen_helpers.models import gpt, seq2seq  # noqa: E402

STEM = "15_seq2seq_translation"
NAME = "seq2seq_spa_eng"
N_MERGES = 8000

#: Model sizes: "base" is the shipped model; "small" is the lesson's own short run; "tiny" tests
#: the whole path in seconds.
SIZES = {
    "base": dict(n_layer=3, n_head=4, d_model=256),
    "small": dict(n_layer=2, n_head=4, d_model=128),
    "tiny": dict(n_layer=1, n_head=2, d_model=32),
}


def say(obj) -> None:
    print(json.dumps(obj), flush=True)


def splits():
    """(train, valid, test) pairs of the lesson's split (seed 0, 5 % + 5 %)."""
    return data.split_spa_eng(data.load_spa_eng(), valid=0.05, test=0.05, seed=0)


def tokenizer(train_pairs, n_merges: int = N_MERGES) -> gpt.BPE:
    text = "\n".join(s + "\n" + e for s, e in train_pairs)
    return gpt.BPE.train(text, n_merges, specials=seq2seq.SPECIALS)


def scores(model, tok, pairs, beam: int, alpha: float = 0.6) -> dict:
    sources, refs = [s for s, _ in pairs], [e for _, e in pairs]
    t0 = time.time()
    hyps = seq2seq.translate(model, tok, sources, beam=beam, alpha=alpha)
    b = metrics.bleu(hyps, refs)
    return {"bleu": round(b["score"], 2), "chrf": round(metrics.chrf(hyps, refs), 2),
            "brevity_penalty": round(b["brevity_penalty"], 4),
            "seconds": round(time.time() - t0, 1)}, hyps


def train(args) -> int:
    t0 = time.time()
    tr, va, _ = splits()
    tok = tokenizer(tr, args.merges)
    cfg = seq2seq.Seq2SeqConfig.for_tokenizer(tok, dropout=args.dropout, **SIZES[args.size])
    ids = [seq2seq.encode_pair(tok, s, e) for s, e in tr]
    kept = [p for p in ids if len(p[0]) <= cfg.context and len(p[1]) <= cfg.context]
    say({"vocab": len(tok), "train_pairs": len(tr), "kept": len(kept),
         "tokeniser_seconds": round(time.time() - t0, 1)})
    torch.manual_seed(args.seed)
    model = seq2seq.Seq2Seq(cfg)
    say({"parameters": sum(p.numel() for p in model.parameters())})
    curve = []

    def log(entry):
        curve.append(entry)
        say(entry)

    out = seq2seq.train_seq2seq(model, kept, epochs=args.epochs, batch_size=args.batch_size,
                                lr=args.lr, warmup=args.warmup, smoothing=args.smoothing,
                                seed=args.seed, max_seconds=args.max_seconds,
                                schedule=args.schedule, log_every=args.log_every, log=log,
                                desc="translation")
    g = torch.Generator().manual_seed(1)
    pick = torch.randperm(len(va), generator=g)[:args.valid_n].tolist()
    valid, _ = scores(model, tok, [va[i] for i in pick], beam=1)
    say({"steps_done": out["steps"], "train_seconds": round(out["seconds"], 1),
         "valid_greedy": valid})
    if args.save_to:
        path = Path(args.save_to) / f"{NAME}.pt"
        meta = {"tokenizer": tok.to_dict(), "size": args.size, "seed": args.seed,
                "recipe": {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "warmup",
                                                         "smoothing", "dropout", "merges",
                                                         "max_seconds", "schedule",
                                                         "threads")},
                "steps_done": out["steps"], "train_seconds": round(out["seconds"], 1),
                "loss_curve": curve, "valid_greedy_float32": valid,
                "valid_n": len(pick)}
        checkpoints.save_checkpoint(path, model, cfg, meta, half=True)
        say({"saved": str(path), "bytes": path.stat().st_size,
             "wall_seconds": round(time.time() - t0, 1)})
    return 0


def load(path):
    payload = checkpoints.load_checkpoint(path)
    tok = gpt.BPE.from_dict(payload["metadata"]["tokenizer"])
    model = seq2seq.Seq2Seq(seq2seq.Seq2SeqConfig(**payload["config"]))
    checkpoints.load_into(model, payload)          # float16 values, float32 model: exact copies
    return model.eval(), tok, payload


def evaluate(args) -> int:
    model, tok, _ = load(args.source)
    _, _, te = splits()
    g = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(te), generator=g)[:args.n].tolist()
    sample = [te[i] for i in pick]
    for beam in args.beams:
        result, hyps = scores(model, tok, sample, beam=beam)
        say({"beam": beam, "n": len(sample), **result})
    for (s, e), h in list(zip(sample, hyps))[:args.show]:
        say({"es": s, "ref": e, "hyp": h})
    return 0


def register(args) -> int:
    """Measure the checkpoint's stored (float16) weights on the whole test split, register it."""
    model, tok, payload = load(args.source)
    _, _, te = splits()
    quality = {"test_pairs": len(te),
               "evaluation": "all test pairs of data.split_spa_eng(seed=0), one reference each, "
                             "metrics.bleu/chrf (= sacreBLEU 13a, case-sensitive), float32 CPU"}
    outputs = {}
    for beam in (1, args.beam):
        key = "greedy" if beam == 1 else f"beam{beam}"
        result, outputs[key] = scores(model, tok, te, beam=beam)
        say({key: result})
        quality[f"test_bp_{key}"] = result["brevity_penalty"]
        quality[f"decode_seconds_{key}"] = result["seconds"]
    boot = metrics.paired_bootstrap(outputs, [e for _, e in te], n_resamples=1000, seed=0)
    for metric in ("bleu", "chrf"):
        for key in outputs:
            draws = boot[f"{metric}_draws"][key]
            quality[f"test_{metric}_{key}"] = round(boot[metric][key], 2)
            quality[f"test_{metric}_{key}_se"] = round(float(draws.std()), 2)
        a, b = (boot[f"{metric}_draws"][k] for k in outputs)
        quality[f"test_{metric}_beam_minus_greedy_se"] = round(float((b - a).std()), 2)
    quality["uncertainty"] = "standard deviation over 1,000 paired bootstrap resamples (Koehn 2004)"
    quality["valid_greedy_float32"] = payload["metadata"]["valid_greedy_float32"]
    target = checkpoints.checkpoint_dir() / f"{NAME}.pt"
    if Path(args.source).resolve() != target.resolve():
        shutil.copyfile(args.source, target)
    entry = checkpoints.register_checkpoint(NAME, target, lesson=STEM, command=args.command,
                                            device=args.device_used,
                                            wall_seconds=args.wall_seconds, quality=quality)
    say({"registered": NAME, "bytes": entry["bytes"], "quality": quality})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="tokeniser + model on the training split (never registers)")
    t.add_argument("--size", choices=sorted(SIZES), default="base")
    t.add_argument("--epochs", type=float, default=10.0)
    t.add_argument("--max-seconds", type=float, default=None, help="stop after this much time")
    t.add_argument("--schedule", choices=["steps", "time"], default="steps",
                   help="the cosine runs over the steps of --epochs, or over --max-seconds")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup", type=int, default=800)
    t.add_argument("--smoothing", type=float, default=0.1)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--merges", type=int, default=N_MERGES)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--valid-n", type=int, default=1000, help="random validation pairs scored")
    t.add_argument("--log-every", type=int, default=200)
    t.add_argument("--save-to", help="folder for seq2seq_spa_eng.pt")
    e = sub.add_parser("evaluate", help="BLEU/chrF of a checkpoint on random test pairs")
    e.add_argument("--from", dest="source", required=True)
    e.add_argument("--n", type=int, default=500)
    e.add_argument("--beams", nargs="+", type=int, default=[1, 4])
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--show", type=int, default=10)
    r = sub.add_parser("register", help="measure a saved file here (CPU) and register it")
    r.add_argument("--from", dest="source", required=True)
    r.add_argument("--beam", type=int, default=4)
    r.add_argument("--device-used", default="cpu (1 thread)")
    r.add_argument("--wall-seconds", type=float, required=True)
    r.add_argument("--command", required=True, help="the command that made the file")
    for q in (t, e, r):
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return {"train": train, "evaluate": evaluate, "register": register}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
