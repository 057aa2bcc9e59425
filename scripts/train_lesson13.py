"""Train lesson 13's shipped GPTs with the lesson's own code (on a GPU or the CPU), then measure and
register them here.

    # 1. train (on any device; writes DIR/gpt_<corpus>.pt in float16 and prints JSON lines):
    python scripts/train_lesson13.py train --corpus tinyshakespeare --preset gpu --device cuda \\
        --save-to DIR [--max-seconds 230]
    # 2. measure the stored float16 weights on this machine's CPU and register them:
    python scripts/train_lesson13.py register --corpus tinyshakespeare --from DIR/gpt_shakespeare.pt \\
        --device-used "cuda (NVIDIA H200)" --wall-seconds S --command "the command of step 1"

    # the same training on several GPUs (or CPU processes), unchanged: DistributedDataParallel
    torchrun --nproc_per_node 4 scripts/train_lesson13.py train --corpus tinyshakespeare \\
        --preset gpu --device cuda --save-to DIR

Each corpus is split as in nanoGPT's character model: the first 90 % trains, the last 10 % is held
out. Training is ``deepgen_helpers.models.gpt.train_gpt`` (random windows, AdamW with decay on
matrices only, linear warm-up then cosine decay, clipping by norm; bf16 autocast on CUDA); the
quality is ``gpt.evaluate``: nats per character over every held-out character after the first, in
non-overlapping windows of the model's context. ``register`` evaluates exactly the float16 weights
that are stored, in float32 on the CPU, copies the file into ``data/checkpoints/`` and adds it to the
manifest. ``train`` never registers anything.

Under ``torchrun`` (the environment variables WORLD_SIZE, RANK, LOCAL_RANK) the script starts a
process group (NCCL on CUDA, gloo on the CPU), wraps the model in DistributedDataParallel and gives
each process an equal slice of the same global batch (``--batch-size`` is the global batch); only
rank 0 prints and saves.
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

from deepgen_helpers import checkpoints, data  # noqa: E402
from deepgen_helpers.models import gpt, rnn  # noqa: E402

STEM = "13_gpt_from_scratch"
NAMES = {"tinyshakespeare": "gpt_shakespeare", "quijote": "gpt_quijote"}

#: Model and optimiser settings. "gpu" is nanoGPT's shakespeare-char GPU recipe (Karpathy,
#: config/train_shakespeare_char.py: 6 layers, 6 heads, 384 wide, context 256, batch 64, dropout
#: 0.2, lr 1e-3 to 1e-4, warm-up 100, betas 0.9/0.99, no biases) with the cosine over 2,500 steps
#: instead of 5,000: on the H200 the 5,000-step run overfits (validation 1.478 at step 2,000,
#: 1.708 at 5,000, training loss 0.815; a log of nanoGPT's recipe gives 0.818 at 5,000, and its
#: 1.47 is the best checkpoint, kept because it saves only when the validation loss improves),
#: while 2,500 steps end at 1.464. Don Quijote (twice the text) keeps 5,000 steps, with a smaller
#: model so that both files stay under 30 MB together in float16. "cpu" is the lesson's CPU recipe
#: on characters; "tiny" tests the whole path in seconds. (The lesson's benchmark recipe adds BPE
#: tokens: scripts/bench_gpt_baseline.py.)
PRESETS = {
    "gpu": dict(context=256, n_layer=6, n_head=6, d_model=384, dropout=0.2, batch_size=64,
                lr=1e-3, steps=2500, warmup=100, min_lr=0.1, weight_decay=0.1, betas=(0.9, 0.99)),
    "gpu-quijote": dict(context=256, n_layer=5, n_head=4, d_model=256, dropout=0.1, batch_size=64,
                        lr=1e-3, steps=5000, warmup=100, min_lr=0.1, weight_decay=0.1,
                        betas=(0.9, 0.99)),
    "cpu": dict(context=64, n_layer=4, n_head=4, d_model=128, dropout=0.0, batch_size=12,
                lr=3e-3, steps=2000, warmup=50, min_lr=0.1, weight_decay=0.1, betas=(0.9, 0.99)),
    "tiny": dict(context=32, n_layer=2, n_head=2, d_model=32, dropout=0.0, batch_size=8,
                 lr=3e-3, steps=30, warmup=5, min_lr=0.1, weight_decay=0.1, betas=(0.9, 0.95)),
}


def split(corpus: str):
    """The character vocabulary and the 90/10 split (nanoGPT's char split) of a bundled corpus."""
    text = data.load_text(corpus)
    vocab = rnn.CharVocab.from_text(text)
    ids = vocab.encode(text)
    n = int(0.9 * len(ids))
    return vocab, ids[:n], ids[n:]


def recipe(args) -> dict:
    """The preset for this corpus (``gpu`` means ``gpu-quijote`` on Don Quijote), with any
    command-line overrides."""
    name = "gpu-quijote" if args.preset == "gpu" and args.corpus == "quijote" else args.preset
    r = dict(PRESETS[name], preset=name)
    for key in ("steps", "batch_size", "lr", "dropout", "warmup"):
        if getattr(args, key) is not None:
            r[key] = getattr(args, key)
    return r


def distributed(device_arg: str):
    """(rank, world size, device): a process group under torchrun, else (0, 1, device_arg)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(device_arg)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_arg.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local)
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), world, torch.device(f"cuda:{local}" if cuda else "cpu")


def train(args) -> int:
    rank, world, device = distributed(args.device)
    say = (lambda obj: print(json.dumps(obj), flush=True)) if rank == 0 else (lambda obj: None)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    r = recipe(args)
    vocab, train_ids, valid_ids = split(args.corpus)
    torch.manual_seed(args.seed)                  # the same initial weights on every rank
    cfg = gpt.GPTConfig(len(vocab), context=r["context"], n_layer=r["n_layer"],
                        n_head=r["n_head"], d_model=r["d_model"], dropout=r["dropout"],
                        chars=vocab.chars)
    model = gpt.GPT(cfg).to(device)
    core = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    say({"corpus": args.corpus, "recipe": r, "device": str(device), "world_size": world,
         "parameters": sum(p.numel() for p in core.parameters()),
         "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None})
    curve = []

    def log(entry):
        curve.append(entry)
        say(entry)

    out = gpt.train_gpt(model, train_ids, steps=r["steps"], batch_size=r["batch_size"],
                        lr=r["lr"], warmup=r["warmup"], min_lr=r["min_lr"],
                        weight_decay=r["weight_decay"], betas=r["betas"], seed=args.seed,
                        max_seconds=args.max_seconds,
                        valid_ids=None if args.no_eval else valid_ids,
                        eval_every=0 if args.no_eval else args.eval_every,
                        log_every=args.log_every, log=log, desc=args.corpus)
    valid = dict(zip(out["valid_step"], [round(v, 4) for v in out["valid_nll"]]))
    say({"valid_curve": valid, "steps_done": out["steps"],
         "train_seconds": round(out["seconds"], 1)})
    if rank == 0 and args.save_to:
        path = Path(args.save_to) / f"{NAMES[args.corpus]}.pt"
        meta = {"vocab": vocab.chars, "corpus": args.corpus, "recipe": r, "seed": args.seed,
                "steps_done": out["steps"], "world_size": world, "device": str(device),
                "train_seconds": round(out["seconds"], 1), "loss_curve": curve,
                "valid_curve_bf16_or_fp32": {str(k): v for k, v in valid.items()}}
        checkpoints.save_checkpoint(path, core, cfg, meta, half=not args.full_precision)
        say({"saved": str(path), "bytes": path.stat().st_size,
             "sha256": checkpoints.sha256_file(path), "wall_seconds": round(out["seconds"], 1)})
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def register(args) -> int:
    """Measure a trained checkpoint's stored weights on the CPU, then add it to the manifest."""
    torch.set_num_threads(args.threads)
    payload = checkpoints.load_checkpoint(args.source)
    cfg = gpt.GPTConfig(**payload["config"])
    vocab, _, valid_ids = split(args.corpus)
    if cfg.chars != vocab.chars:
        raise SystemExit(f"{args.source} was trained on another vocabulary than {args.corpus}'s.")
    model = gpt.GPT(cfg)
    checkpoints.load_into(model, payload)          # float16 values, float32 model: exact copies
    t = time.time()
    losses = gpt.token_losses(model, valid_ids)
    nll = losses.mean().item()
    quality = {"valid_nats_per_char": round(nll, 4),
               "valid_bits_per_char": round(nll / 0.6931472, 4),
               "split": "last 10 % of the text held out",
               "evaluation": f"non-overlapping windows of {cfg.context} characters, float16 "
                             "weights, float32 CPU arithmetic",
               "steps": payload["metadata"].get("steps_done")}
    print(json.dumps({"name": NAMES[args.corpus], "quality": quality,
                      "eval_seconds": round(time.time() - t, 1)}), flush=True)
    target = checkpoints.checkpoint_dir() / f"{NAMES[args.corpus]}.pt"
    if Path(args.source).resolve() != target.resolve():
        shutil.copyfile(args.source, target)
    entry = checkpoints.register_checkpoint(NAMES[args.corpus], target, lesson=STEM,
                                            command=args.command, device=args.device_used,
                                            wall_seconds=args.wall_seconds, quality=quality)
    print(json.dumps({"registered": NAMES[args.corpus], "bytes": entry["bytes"]}), flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a GPT and save it (never registers)")
    t.add_argument("--corpus", choices=sorted(NAMES), required=True)
    t.add_argument("--preset", choices=["gpu", "cpu", "tiny"], default="gpu")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    t.add_argument("--save-to", help="folder for gpt_<corpus>.pt (omit: train and report only)")
    t.add_argument("--max-seconds", type=float, help="stop training after this much time")
    for name, kind in (("steps", int), ("batch-size", int), ("lr", float), ("dropout", float),
                       ("warmup", int)):
        t.add_argument(f"--{name}", type=kind, help="override the preset")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    t.add_argument("--log-every", type=int, default=250)
    t.add_argument("--eval-every", type=int, default=1000)
    t.add_argument("--no-eval", action="store_true", help="no validation during training")
    t.add_argument("--full-precision", action="store_true", help="save float32, not float16")
    g = sub.add_parser("register", help="measure a trained file here (CPU) and register it")
    g.add_argument("--corpus", choices=sorted(NAMES), required=True)
    g.add_argument("--from", dest="source", required=True)
    g.add_argument("--device-used", required=True, help='e.g. "cuda (NVIDIA H200)"')
    g.add_argument("--wall-seconds", type=float, required=True)
    g.add_argument("--command", required=True, help="the train command that made the file")
    g.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return train(args) if args.cmd == "train" else register(args)


if __name__ == "__main__":
    sys.exit(main())
