"""Train lesson 10's shipped character models, and measure the CPU recipe, with the lesson's own code.

    python scripts/train_lesson10.py shakespeare --half     # char-LSTM, validation <= 1.50 nats/char
    python scripts/train_lesson10.py quijote --half         # the same recipe on Don Quijote
    python scripts/train_lesson10.py sweep                  # tokens per second of a few sizes (1 thread)

Each corpus is split as in nanoGPT's character model: the first 90 % trains, the last 10 % is held out.
Training is ``deepgen_helpers.models.rnn.train_char_model`` (random windows, Adam, linear warm-up then cosine
decay, clipping by norm); the validation loss is ``evaluate_nll`` (nats per character over every held-out
character, the state carried across windows). With ``--half`` the quality is measured on the float16-rounded
weights that are stored, and the float32 value is recorded beside it. Run it under one CPU lock with one
thread: ``flock /tmp/deepgen-cpu2.lock python scripts/train_lesson10.py shakespeare --half --threads 1``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from deepgen_helpers import checkpoints, data
from deepgen_helpers.config import seed_everything
from deepgen_helpers.models import rnn

STEM = "10_rnn_text_generation"
CORPORA = {"shakespeare": "tinyshakespeare", "quijote": "quijote"}
NAMES = {"shakespeare": "char_lstm_shakespeare", "quijote": "char_lstm_quijote"}


def split(corpus: str):
    """The vocabulary and the 90/10 split (nanoGPT's char split) of a bundled corpus."""
    text = data.load_text(CORPORA[corpus])
    vocab = rnn.CharVocab.from_text(text)
    ids = vocab.encode(text)
    n = int(0.9 * len(ids))
    return vocab, ids[:n], ids[n:]


def sweep(args) -> int:
    """Tokens per second of one training step (forward, backward, Adam) for a few sizes."""
    vocab, train_ids, _ = split("shakespeare")
    g = torch.Generator().manual_seed(0)
    for cell, hidden, layers, batch, seq in [("lstm", 256, 1, 64, 64), ("lstm", 384, 1, 64, 64),
                                             ("lstm", 512, 1, 64, 64), ("lstm", 256, 2, 64, 64),
                                             ("gru", 256, 1, 64, 64), ("rnn", 256, 1, 64, 64),
                                             ("lstm", 256, 1, 128, 64), ("lstm", 256, 1, 64, 128)]:
        torch.manual_seed(0)
        model = rnn.CharRNN(rnn.CharRNNConfig(len(vocab), hidden=hidden, layers=layers, cell=cell))
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        times = []
        for step in range(6):
            t = time.time()
            x, y = rnn.random_windows(train_ids, batch, seq, g)
            logits, _ = model(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.time() - t)
        per_step = sorted(times[1:])[len(times[1:]) // 2]            # median, first step excluded
        print(json.dumps({"cell": cell, "hidden": hidden, "layers": layers, "batch": batch,
                          "seq_len": seq, "ms_per_step": round(1000 * per_step, 1),
                          "tokens_per_s": round(batch * seq / per_step)}), flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=sorted(NAMES) + ["sweep"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--half", action="store_true",
                   help="store float16 weights; the quality is measured on the rounded weights")
    p.add_argument("--no-save", action="store_true", help="train and evaluate only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.which == "sweep":
        return sweep(args)
    seed_everything(args.seed)
    vocab, train_ids, valid_ids = split(args.which)
    cfg = rnn.CharRNNConfig(len(vocab), embed=args.embed, hidden=args.hidden, layers=args.layers,
                            cell="lstm", dropout=args.dropout)
    model = rnn.CharRNN(cfg)
    out = rnn.train_char_model(model, train_ids, steps=args.steps, batch_size=args.batch_size,
                               seq_len=args.seq_len, lr=args.lr, clip=args.clip,
                               warmup=args.warmup, valid_ids=valid_ids,
                               eval_every=max(1, args.steps // 10), seed=args.seed,
                               desc=args.which)
    wall = out["seconds"]
    print(json.dumps({"valid_curve": dict(zip(out["valid_step"],
                                              [round(v, 4) for v in out["valid_nll"]]))}),
          flush=True)
    nll32 = rnn.evaluate_nll(model, valid_ids)
    if args.half:                                   # evaluate exactly the weights that are stored
        checkpoints.round_to_half(model)
    nll = rnn.evaluate_nll(model, valid_ids)
    quality = {"valid_nats_per_char": round(nll, 4), "valid_bits_per_char": round(nll / 0.6931472, 4),
               "valid_nats_per_char_float32": round(nll32, 4),
               "split": "last 10 % of the text held out", "train_tokens": args.steps *
               args.batch_size * args.seq_len}
    command = (f"python scripts/train_lesson10.py {args.which} --steps {args.steps} "
               f"--batch-size {args.batch_size} --seq-len {args.seq_len} --hidden {args.hidden} "
               f"--embed {args.embed} --layers {args.layers} --dropout {args.dropout:g} "
               f"--lr {args.lr:g} --warmup {args.warmup} --clip {args.clip:g} --seed {args.seed} "
               f"--threads {args.threads}" + (" --half" if args.half else ""))
    print(json.dumps({"name": NAMES[args.which], "wall_seconds": round(wall, 1),
                      "quality": quality, "config": vars(cfg)}), flush=True)
    if not args.no_save:
        path = checkpoints.checkpoint_dir() / f"{NAMES[args.which]}.pt"
        checkpoints.save_checkpoint(path, model, cfg, {"vocab": vocab.chars, "steps": args.steps,
                                                        "seed": args.seed,
                                                        "seq_len": args.seq_len,
                                                        "batch_size": args.batch_size},
                                    half=args.half)
        entry = checkpoints.register_checkpoint(NAMES[args.which], path, lesson=STEM,
                                                command=command,
                                                device=f"cpu ({args.threads} thread)",
                                                wall_seconds=wall, quality=quality)
        print(json.dumps({"registered": NAMES[args.which], "bytes": entry["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
