"""Train lesson 08's shipped diffusion models (class-conditional U-Nets) with the lesson's own code.

    python scripts/train_lesson08.py ddpm --dataset mnist --steps 16000 --half --threads 1
    python scripts/train_lesson08.py ddpm --dataset fashion_mnist --steps 16000 --half --threads 1
    python scripts/train_lesson08.py evaluate --dataset mnist --sampler ddpm --sample-steps 250
    # re-measure a shipped model (--record: store the first measurement in the manifest)

Everything uses ``deepgen_helpers.models.unet`` and ``deepgen_helpers.models.diffusion`` (exported
from lessons 07 and 08): the lesson's U-Net (``UNetConfig(channels=16)``) with a class embedding
(``n_classes=10``, plus the "no class" row), the cosine schedule with T = 1000, v-prediction with
min-SNR-5 weights, EMA, and ``train_unet`` on all 60,000 training images scaled to [-1, 1]. Labels
are replaced by "no class" 10 % of the time (``--label-dropout``), so the same network also models
p(x): lesson 09 uses it for classifier-free guidance.

The shipped checkpoints hold the EMA weights (float16 with ``--half``; the quality is measured on
the rounded weights) and are registered in the manifest with the measured quality, by the same
protocol as lesson 05's shipped GANs (``scripts/train_lesson05.py``): 1,000 conditional samples,
100 per class, drawn without guidance in ``--sample-steps`` steps of deterministic DDIM (or, with
``--sampler ddpm``, of lesson 07's ancestral sampler respaced), judged by the dataset's course
classifier (class accuracy with its standard error, mean top-class probability, class entropy) and
FID against random real test images with its spread over 3 reference sets and the real-vs-real
floor at the same size.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from deepgen_helpers import checkpoints, data
from deepgen_helpers.config import seed_everything
from deepgen_helpers.models import diffusion
from deepgen_helpers.models import unet as lesson

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from train_lesson05 import image_bars  # noqa: E402

STEM = "08_diffusion_on_images"


def build(n_classes: int = 10):
    """The shipped models' U-Net and schedule (the lesson's, plus the class embedding)."""
    model = lesson.UNet(lesson.UNetConfig(channels=16, n_classes=n_classes))
    schedule = diffusion.NoiseSchedule(diffusion.ScheduleConfig(T=1000, kind="cosine"))
    return model, schedule


def conditional_samples(model, schedule, n: int = 1000, steps: int = 100, seed: int = 1,
                        batch: int = 250, sampler: str = "ddim"):
    """n samples in [0, 1], class i % 10 for sample i: (images, labels). sampler "ddim"
    (deterministic, eta = 0) or "ddpm" (lesson 07's ancestral sampler, respaced to `steps`)."""
    y = torch.arange(n) % 10
    eps_model = lesson.EpsModel(model.eval(), schedule, "v")
    g, out = torch.Generator().manual_seed(seed), []
    for i in range(0, n, batch):
        labelled = lesson.WithLabels(eps_model, y[i:i + batch])
        shape = (len(y[i:i + batch]), 1, 28, 28)
        if sampler == "ddim":
            out.append(lesson.ddim_sample(labelled, schedule, shape, steps, generator=g))
        else:
            short, taus = lesson.respace(schedule, steps)
            out.append(diffusion.ddpm_sample(lesson.Respaced(labelled, taus), short, shape,
                                             generator=g))
    return ((torch.cat(out) + 1) / 2).clamp(0, 1), y


def quality(model, schedule, dataset: str, steps: int, seed: int = 1,
            sampler: str = "ddim") -> dict:
    start = time.time()
    images, y = conditional_samples(model, schedule, steps=steps, seed=seed, sampler=sampler)
    seconds = time.time() - start
    return {**image_bars(images, dataset, labels=y), "sampler": sampler, "sample_steps": steps,
            "images_per_second": round(len(images) / seconds, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["ddpm", "evaluate"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--steps", type=int, default=16000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--label-dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-steps", type=int, nargs="+", default=[100],
                   help="DDIM steps for the quality check; the first one is recorded")
    p.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"],
                   help="deterministic DDIM, or lesson 07's ancestral sampler respaced")
    p.add_argument("--record", action="store_true",
                   help="evaluate: store the first measurement as the manifest's quality")
    p.add_argument("--half", action="store_true", help="store float16 weights; quality on them")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (1 beside other jobs)")
    p.add_argument("--name", default="", help="checkpoint name (default ddpm_DATASET)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.name or f"ddpm_{args.dataset}"
    model, schedule = build()

    if args.which == "evaluate":
        checkpoints.load_shipped(name, model)
        results = [quality(model, schedule, args.dataset, steps, sampler=args.sampler)
                   for steps in args.sample_steps]
        for r in results:
            print(json.dumps({"name": name, **r}), flush=True)
        if args.record:                   # same file, command and wall time; the new quality
            entry = checkpoints.read_manifest()[name]
            checkpoints.register_checkpoint(
                name, checkpoints.shipped_path(name), lesson=entry["lesson"],
                command=entry["command"], device=entry["device"],
                wall_seconds=entry["wall_seconds"], quality=results[0])
            print(json.dumps({"recorded": name}), flush=True)
        return 0

    seed_everything(args.seed)
    x, y = data.load_images(args.dataset, "train")
    cfg = lesson.UNetTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                 ema_decay=args.ema, label_dropout=args.label_dropout,
                                 snapshots=0, seed=args.seed, desc=f"U-Net {args.dataset}")
    torch.manual_seed(args.seed)
    model, schedule = build()
    out = lesson.train_unet(model, schedule, x * 2 - 1, cfg, y_train=y)
    ema = out["ema"].model.to(memory_format=torch.contiguous_format)
    if args.half:
        checkpoints.round_to_half(ema)
    results = [quality(ema, schedule, args.dataset, steps, sampler=args.sampler)
               for steps in args.sample_steps]
    for r in results:
        print(json.dumps({"name": name, "steps": args.steps,
                          "wall_seconds": round(out["seconds"], 1), **r}), flush=True)
    command = (f"python scripts/train_lesson08.py ddpm --dataset {args.dataset} "
               f"--steps {args.steps} --seed {args.seed} --lr {args.lr} --ema {args.ema} "
               f"--label-dropout {args.label_dropout} --batch-size {args.batch_size} "
               f"--sampler {args.sampler} --sample-steps {args.sample_steps[0]}" + (" --half" if args.half else "")
               + (f" --name {args.name}" if args.name else ""))
    if not args.no_save:
        path = checkpoints.checkpoint_dir() / f"{name}.pt"
        meta = {"steps": args.steps, "seed": args.seed, "dataset": args.dataset,
                "weights": "EMA", "pred": "v", "schedule": {"T": 1000, "kind": "cosine"},
                "sampler": args.sampler, "sample_steps": args.sample_steps[0], "label_dropout": args.label_dropout}
        checkpoints.save_checkpoint(path, ema, model.cfg, meta, half=args.half)
        entry = checkpoints.register_checkpoint(
            name, path, lesson=STEM, command=command, device="cpu",
            wall_seconds=out["seconds"], quality=results[0])
        print(json.dumps({"registered": name, "bytes": entry["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
