"""Beat the reference: nanoGPT's CPU recipe against lesson 13's, at equal wall time, with the lesson's code.

    python scripts/bench_gpt_baseline.py --seconds 75 --runs 2 --match-reference   # the README's
    python scripts/bench_gpt_baseline.py --seconds 75 --runs 2          # both for 75 s
    python scripts/bench_gpt_baseline.py sweep --threads 1              # tokens/s of a few shapes
    python scripts/bench_gpt_baseline.py --only lesson --set d_model=192 --seconds 120 --threads 1

Both configurations are trained with ``deepgen_helpers.models.gpt`` (``GPT``, ``train_gpt``) on Tiny
Shakespeare's first 90 % and scored by ``gpt.evaluate`` on ALL of the last 10 % (nats per
character, non-overlapping windows of each model's own context), one after the other in one
invocation, each for the same wall-clock training time (evaluation not counted).

* reference: nanoGPT's CPU example (README "I only have a macbook": block_size 64, batch 12, 4
  layers, 4 heads, 128 wide, 2,000 iterations, lr_decay_iters 2,000, dropout 0; the rest from
  config/train_shakespeare_char.py: lr 1e-3 to 1e-4, warm-up 100, betas 0.9/0.99, weight decay 0.1,
  no biases, tied embeddings, clipping at 1). It stops at 2,000 iterations or at the time limit.
* lesson: the lesson's recipe (``LESSON`` below; section 6 of the notebook explains each change):
  the same model shape and batch, learning rate 3e-3 with a warm-up of 50 steps, BPE tokens (3,000
  merges, trained on the training split inside the time budget; the loss is then total nats over
  the held-out characters), and a cosine decay that runs over the time limit itself, so the model
  is annealed when the time is up. ``--set processes=2 --set batch_size=24`` runs it as two
  one-thread processes under DistributedDataParallel instead (measured: worse on this CPU).

Run it on an idle machine: ``flock /tmp/deepgen-cpu.lock flock /tmp/deepgen-cpu2.lock python
scripts/bench_gpt_baseline.py --seconds 75 --runs 2`` (two threads: the 2-core CPU). Each run
uses another seed (0, 1, ...) for the initial weights and the batches.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DEEPGEN_PLAIN_PROGRESS", "1")             # one line per bar

import torch  # noqa: E402

from deepgen_helpers import data  # noqa: E402
from deepgen_helpers.models import gpt, rnn  # noqa: E402

MODEL_KEYS = ("context", "n_layer", "n_head", "d_model", "dropout", "bias", "tie_weights",
              "positions", "scaled_init", "mlp_ratio")
REFERENCE = dict(context=64, n_layer=4, n_head=4, d_model=128, dropout=0.0, bias=False,
                 tie_weights=True, positions="learned", scaled_init=True, mlp_ratio=4,
                 batch_size=12, lr=1e-3, steps=2000, warmup=100, min_lr=0.1, weight_decay=0.1,
                 betas=(0.9, 0.99), schedule="steps", short_windows=None, amp=False, bpe_merges=0,
                 processes=1)
LESSON = dict(REFERENCE, lr=3e-3, warmup=50, bpe_merges=3000, steps=100_000, schedule="time")


def split():
    text = data.load_text("tinyshakespeare")
    vocab = rnn.CharVocab.from_text(text)
    n = int(0.9 * len(text))
    return vocab, text[:n], text[n:]


def train_and_score(name: str, r: dict, seconds: float, seed: int, vocab, train_text,
                    valid_text, threads: int = 1) -> dict:
    """Train recipe ``r`` for ``seconds`` of wall time (tokeniser training included) and score
    it in nats per character of the whole held-out text. With ``processes`` > 1 the recipe runs
    as that many one-thread processes under DistributedDataParallel (gloo), each taking its
    slice of the same global batch (section 10 of the lesson); process start-up is counted."""
    if r["processes"] == 1:
        return _train_and_score(0, 1, name, r, seconds, seed, vocab, train_text, valid_text)
    import tempfile

    import torch.multiprocessing as mp

    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "result.json")
        mp.spawn(_ddp_worker, nprocs=r["processes"], join=True,
                 args=(r["processes"], name, r, seconds, seed, vocab, train_text, valid_text,
                       os.path.join(tmp, "store"), result, start))
        with open(result) as fh:
            out = json.load(fh)
    out["wall_seconds_with_startup"] = round(time.time() - start - out["eval_seconds"], 1)
    return out


def _ddp_worker(rank, world, name, r, seconds, seed, vocab, train_text, valid_text, store,
                result, start):
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                                         world_size=world)
    out = _train_and_score(rank, world, name, r, seconds - (time.time() - start), seed, vocab,
                           train_text, valid_text)
    if rank == 0:
        with open(result, "w") as fh:
            json.dump(out, fh)
    torch.distributed.destroy_process_group()


def _train_and_score(rank, world, name, r, seconds, seed, vocab, train_text, valid_text):
    start = time.time()
    tok = gpt.BPE.train(train_text, r["bpe_merges"]) if r["bpe_merges"] else vocab
    train_ids, valid_ids = tok.encode(train_text), tok.encode(valid_text)
    torch.manual_seed(seed)
    cfg = gpt.GPTConfig(len(tok), **{k: r[k] for k in MODEL_KEYS})
    model = core = gpt.GPT(cfg)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(core)
    out = gpt.train_gpt(model, train_ids, steps=r["steps"], batch_size=r["batch_size"],
                        lr=r["lr"], warmup=r["warmup"], min_lr=r["min_lr"],
                        weight_decay=r["weight_decay"], betas=tuple(r["betas"]), seed=seed,
                        max_seconds=seconds - (time.time() - start), schedule=r["schedule"],
                        short_windows=r["short_windows"], amp=r["amp"],
                        desc=name if rank == 0 else "")
    wall = time.time() - start
    if rank != 0:
        return {}
    t = time.time()
    losses = gpt.token_losses(core, valid_ids)                    # nats of tokens 2 .. M
    chars = torch.tensor([len(tok.tokens[i]) for i in valid_ids[1:].tolist()]
                         if r["bpe_merges"] else [1] * len(losses), dtype=torch.float64)
    per_char = losses.double().sum().item() / chars.sum().item()
    n = len(losses) // 500 * 500                    # SE over blocks of 500 tokens (ratio of sums)
    blocks = losses[:n].double().view(-1, 500).sum(1) / chars[:n].view(-1, 500).sum(1)
    return {"name": name, "seed": seed, "valid_nats_per_char": round(per_char, 4),
            "valid_se_blocks": round(blocks.std().item() / math.sqrt(len(blocks)), 4),
            "wall_seconds": round(wall, 1), "train_seconds": round(out["seconds"], 1),
            "steps": out["steps"], "tokens": out["steps"] * r["batch_size"] * r["context"],
            "vocab": len(tok), "final_train_loss": (round(out["history"].mean("loss", last=50), 4)
                                 if len(out["history"]) else None),
            "eval_seconds": round(time.time() - t, 1),
            "parameters": sum(p.numel() for p in core.parameters()),
            "threads": torch.get_num_threads(), "processes": world}


def sweep(args) -> int:
    """Milliseconds per training step (forward, backward, AdamW) and tokens per second."""
    vocab, train_text, _ = split()
    train_ids = vocab.encode(train_text)
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 4, 128, 64, 12), (4, 4, 128, 64, 32), (4, 4, 128, 128, 32),
              (4, 4, 128, 256, 16), (4, 4, 192, 128, 32), (4, 4, 256, 128, 16),
              (6, 4, 128, 128, 32), (2, 4, 192, 128, 32), (3, 4, 160, 128, 32)]
    if args.shapes:                              # "L,H,D,T,B;L,H,D,T,B"
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    for L, H, D, T, B in shapes:
        torch.manual_seed(0)
        model = gpt.GPT(gpt.GPTConfig(len(vocab), context=T, n_layer=L, n_head=H, d_model=D))
        opt = torch.optim.AdamW(gpt.adamw_groups(model, 0.1), lr=1e-3)
        times = []
        for _ in range(8):
            t = time.time()
            x, y = rnn.random_windows(train_ids, B, T, g)
            loss = gpt.next_token_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.time() - t)
        per_step = sorted(times[2:])[len(times[2:]) // 2]          # median after warm-up
        print(json.dumps({"n_layer": L, "n_head": H, "d_model": D, "context": T, "batch": B,
                          "ms_per_step": round(1000 * per_step, 1),
                          "tokens_per_s": round(B * T / per_step)}), flush=True)
    return 0


def parse_set(items):
    out = {}
    for item in items or []:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value                         # a plain string such as steps or time
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", default="compare", choices=["compare", "sweep"])
    p.add_argument("--seconds", type=float, default=75.0, help="training time per model")
    p.add_argument("--runs", type=int, default=2, help="seeds 0 .. runs-1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=["reference", "lesson"], help="train just one of the two")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting of the lesson's recipe (exploration)")
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--match-reference", action="store_true",
                   help="give the lesson's recipe exactly the wall time the reference's 2,000 "
                        "steps took in the same run (strictly equal time; needs both recipes)")
    p.add_argument("--shapes", help='sweep only: "L,H,D,T,B;..." (layers, heads, width, '
                   'context, batch)')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.what == "sweep":
        return sweep(args)
    vocab, train_text, valid_text = split()
    lesson = dict(LESSON, **parse_set(args.set))
    recipes = {"reference": REFERENCE, "lesson": lesson}
    print(json.dumps({"reference": REFERENCE, "lesson": lesson, "seconds": args.seconds,
                      "threads": args.threads}), flush=True)
    if args.match_reference and args.only:
        p.error("--match-reference compares both recipes; drop --only")
    results = {k: [] for k in recipes}
    for run in range(args.runs):
        seconds = args.seconds
        for name, r in recipes.items():
            if args.only and name != args.only:
                continue
            res = train_and_score(name, r, seconds, args.seed0 + run, vocab, train_text,
                                  valid_text)
            if args.match_reference and name == "reference":
                seconds = res["wall_seconds"]           # the lesson gets what the reference took
            results[name].append(res)
            print(json.dumps(res), flush=True)
    summary = {}
    for name, rs in results.items():
        if rs:
            v = [r["valid_nats_per_char"] for r in rs]
            summary[name] = {"valid_nats_per_char": v, "mean": round(sum(v) / len(v), 4),
                             "train_seconds": [r["train_seconds"] for r in rs],
                             "steps": [r["steps"] for r in rs]}
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
