"""Train lesson 06's shipped models (upscalers, CycleGAN, text models) with the lesson's own code.

    python scripts/train_lesson06.py sr --dataset mnist --scale 4 --steps 3000 --gan-steps 2000 \
        --half
    python scripts/train_lesson06.py sr --dataset fashion_mnist --scale 4 --steps 2000 \
        --gan-steps 1200 --half --d-norm spectral
    python scripts/train_lesson06.py sr --dataset mnist --scale 2 --steps 1000 --gan-steps 600 \
        --half
    python scripts/train_lesson06.py sr --dataset fashion_mnist --scale 2 --steps 1000 \
        --gan-steps 600 --half --d-norm spectral
    python scripts/train_lesson06.py cycle --steps 3000 --half
    python scripts/train_lesson06.py text ref --steps 4000 --half     # the judge, first
    python scripts/train_lesson06.py text mle --steps 8000 --half
    python scripts/train_lesson06.py text gan --steps 6000 --half
    python scripts/train_lesson06.py text measure                     # section 11's sweep

Everything uses ``deepgen_helpers.models.image2image`` (exported from the lesson's cells):
``SRNet``, ``SRTrainConfig``, ``train_sr`` and ``upscale``, with lesson 05's discriminator, on all
60,000 training images. For one dataset and factor the script trains the pixel-loss CNN
(``sr_pixel_DATASET_xS``) and then fine-tunes a copy of it with the lesson's GAN recipe
(``sr_gan_DATASET_xS``: ``lr=1e-4, adv_weight=1e-2, feat_weight=1e-2``), as section 7 does
with a shorter budget. Each checkpoint is registered in the manifest with the quality measured on
the stored (float16 with ``--half``) weights, on 1,000 random test images (seed 5; the lesson uses
other subsets): PSNR and SSIM with standard errors, FID (course classifier) against random training
images with the real-vs-real floor (3 repeats) and the course classifier's accuracy, beside the
same numbers for bicubic interpolation.

``cycle`` trains the shipped CycleGAN (``cyclegan_thin_thick``: both generators in one file) with
the lesson's ``CycleConfig``, ``cycle_pair``, ``cycle_critics`` and ``train_cyclegan`` on the two
disjoint random halves of the training digits that section 10 uses (thin; thickened), and
registers it with ``translation_report`` on 1,000 random test digits per direction (seeds 31, 32;
the lesson uses other subsets).

``text``: the judge, the MLE model and the GAN of section 11, all three the lesson's ``CharGRU``
(``CharConfig()``: embedding 32, GRU 128) on the lesson's split of the distinct makemore names
(``split_names(load_names(), seed=0)``: 70% train, 20% reference, 10% test):

- ``text_ref``: the judge. Maximum likelihood on the *reference* part only, early-stopped on 2,000
  random training names (it never sees the test part, and never trains on the training part).
- ``text_mle``: maximum likelihood on the training part, early-stopped on the reference part.
- ``text_gan``: the same network trained adversarially on the training part (``train_text_gan``:
  lesson 05's losses, straight-through Gumbel-softmax, tau annealed 1 -> 0.5, no pre-training)
  against a ``CharCNN`` discriminator (not shipped).

Each checkpoint's quality is measured on the stored (float16 with ``--half``) weights: the judge
and the MLE model by their NLL per character (end token included) on the test names; the MLE model
and the GAN by ``text_quality`` of 2,000 samples at temperature 1 (seed 5; the lesson uses other
seeds). ``measure`` prints the lesson's whole comparison (a temperature sweep) as JSON lines.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from deepgen_helpers import checkpoints, data, metrics
from deepgen_helpers.config import seed_everything
from deepgen_helpers.models import image2image as lesson
from deepgen_helpers.models.dcgan import Discriminator, GANConfig, init_weights

STEM = "06_image_to_image_gans"
GAN_TRAIN = dict(lr=1e-4, adv_weight=1e-2, feat_weight=1e-2)     # the lesson's GAN_TRAIN


def quality(images, truth, labels, reference, dataset):
    """The lesson's four numbers for upscaled ``images`` of the ``truth`` images."""
    psnr = metrics.mean_se(metrics.psnr(images, truth))
    ssim = metrics.mean_se(metrics.ssim(images, truth))
    acc = metrics.mean_se((metrics.predict(images, dataset) == labels).float())
    fid = metrics.fid_with_floor(images, reference, n=len(images), repeats=3, dataset=dataset)
    return {"psnr": round(psnr[0], 3), "psnr_se": round(psnr[1], 3),
            "ssim": round(ssim[0], 4), "ssim_se": round(ssim[1], 4),
            "fid": round(fid["fid"], 2), "fid_sd": round(fid["fid_sd"], 2),
            "fid_floor": round(fid["floor"], 2), "class_accuracy": round(acc[0], 4),
            "class_accuracy_se": round(acc[1], 4)}


NAMES = {"ref": "text_ref", "mle": "text_mle", "gan": "text_gan"}
TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.2, 1.5)
GAN_TEMPERATURES = (0.85, 1.0, 1.2)
N_SAMPLES = 2000


def r(x, nd=4):
    """A float rounded for JSON."""
    return round(float(x), nd)


def quality_json(q: dict, prefix: str = "") -> dict:
    """A report of (mean, se) pairs (text_quality, translation_report; nested dicts name their
    keys "outer_inner") as flat JSON numbers: name and name_se."""
    out = {}
    for k, v in q.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(quality_json(v, prefix=f"{name}_"))
        elif isinstance(v, tuple):
            out[name], out[f"{name}_se"] = r(v[0]), r(v[1])
        else:
            out[name] = v
    return out


def common_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every subcommand shares."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--half", action="store_true", help="store float16 weights; quality on them")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (1 beside other jobs)")
    return p


def load(name: str, ckpt_dir: Path) -> lesson.CharGRU:
    model = lesson.CharGRU(lesson.CharConfig())
    checkpoints.load_into(model, ckpt_dir / f"{name}.pt")
    return model.eval()


def text(argv) -> int:
    p = argparse.ArgumentParser(description="Train or measure section 11's shipped text models.")
    p.add_argument("which", choices=["ref", "mle", "gan", "measure"])
    p.add_argument("--steps", type=int, default=0, help="training steps (batches of 64)")
    p.add_argument("--eval-every", type=int, default=250, help="MLE: validation interval")
    common_options(p)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt_dir = checkpoints.checkpoint_dir()
    all_names = data.load_names()
    split = lesson.split_names(all_names, seed=0)
    train_set, all_set = set(split["train"]), set(all_names)
    test_tokens = lesson.encode(split["test"])

    if args.which == "measure":
        return measure(ckpt_dir, split, train_set, all_set)
    if args.steps <= 0:
        p.error(f"{args.which} needs --steps (a positive number of training steps)")

    seed_everything(args.seed)
    model = lesson.CharGRU(lesson.CharConfig())
    name = NAMES[args.which]
    start = time.time()
    if args.which == "ref":
        val_idx = metrics.random_subset(len(split["train"]), 2000, seed=3)
        val = lesson.encode([split["train"][i] for i in val_idx.tolist()])
        cfg = lesson.TextTrainConfig(steps=args.steps, eval_every=args.eval_every,
                                     seed=args.seed, desc="judge (reference part)")
        info = lesson.train_mle(model, lesson.encode(split["ref"]), cfg, val=val)
    elif args.which == "mle":
        cfg = lesson.TextTrainConfig(steps=args.steps, eval_every=args.eval_every,
                                     seed=args.seed, desc="MLE (training part)")
        info = lesson.train_mle(model, lesson.encode(split["train"]), cfg,
                                val=lesson.encode(split["ref"]))
    else:
        D = lesson.CharCNN(lesson.CharConfig())
        cfg = lesson.TextTrainConfig(steps=args.steps, seed=args.seed, desc="Gumbel GAN")
        info = lesson.train_text_gan(model, D, lesson.encode(split["train"]), cfg)
    wall = time.time() - start
    if args.half:
        checkpoints.round_to_half(model)
    model.eval()
    q = {}
    if args.which in ("ref", "mle"):
        nll = metrics.mean_se(lesson.name_nll(model, split["test"]))
        q.update(test_nll=r(nll[0]), test_nll_se=r(nll[1]), best_step=info["best_step"])
        with torch.no_grad():   # the training loss's definition, per character over all names
            q["test_nll_per_char"] = r(lesson.mle_loss(model, test_tokens))
    if args.which in ("mle", "gan"):
        ref = load(NAMES["ref"], ckpt_dir)
        names = lesson.sample_names(model, N_SAMPLES, temperature=1.0, seed=5)
        q.update({f"samples_{k}": v for k, v in quality_json(
            lesson.text_quality(names, train_set, all_set, ref)).items()})
    half = " --half" if args.half else ""
    extra = f" --eval-every {args.eval_every}" if args.which != "gan" else ""
    command = (f"python scripts/train_lesson06.py text {args.which} --steps {args.steps}"
               f"{extra} --seed {args.seed}{half}")
    print(json.dumps({"name": name, "wall_seconds": round(wall, 1), "quality": q}), flush=True)
    if not args.no_save:
        path = ckpt_dir / f"{name}.pt"
        meta = {"steps": args.steps, "seed": args.seed, "split_seed": 0,
                "best_step": info.get("best_step", args.steps)}
        checkpoints.save_checkpoint(path, model, lesson.CharConfig(), meta, half=args.half)
        entry = checkpoints.register_checkpoint(name, path, lesson=STEM, command=command,
                                                device="cpu", wall_seconds=wall, quality=q)
        print(json.dumps({"registered": name, "bytes": entry["bytes"]}), flush=True)
    return 0


def measure(ckpt_dir: Path, split: dict, train_set: set, all_set: set) -> int:
    """The lesson's comparison on the shipped weights: real test names, the MLE model at each
    temperature, the GAN at its sampling temperatures; 2,000 samples each (seed 5)."""
    ref = load(NAMES["ref"], ckpt_dir)
    rows = {"real test names": split["test"][:N_SAMPLES]}
    for kind, temps in (("mle", TEMPERATURES), ("gan", GAN_TEMPERATURES)):
        model = load(NAMES[kind], ckpt_dir)
        for t in temps:
            rows[f"{kind} T={t}"] = lesson.sample_names(model, N_SAMPLES, temperature=t, seed=5)
    for row, names in rows.items():
        q = quality_json(lesson.text_quality(names, train_set, all_set, ref))
        print(json.dumps({"row": row, **q}), flush=True)
    return 0


def cycle(argv) -> int:
    p = argparse.ArgumentParser(description="Train the shipped CycleGAN (thin <-> thick digits).")
    p.add_argument("--steps", type=int, required=True, help="steps of 32 + 32 unpaired digits")
    common_options(p)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, _ = data.load_images("mnist", "train")
    half = torch.randperm(len(x), generator=torch.Generator().manual_seed(11))   # as section 10
    xa, xb = x[half[: len(x) // 2]], lesson.thicken(x[half[len(x) // 2:]])
    cfg = lesson.CycleConfig(steps=args.steps, seed=args.seed)
    seed_everything(args.seed)
    pair, critics = lesson.cycle_pair(cfg), lesson.cycle_critics(cfg)
    start = time.time()
    lesson.train_cyclegan(pair, critics, xa, xb, cfg)
    wall = time.time() - start
    if args.half:
        checkpoints.round_to_half(pair)
    x_test, y_test = data.load_images("mnist", "test")
    ia, ib = (metrics.random_subset(len(x_test), 1000, seed=s) for s in (31, 32))
    rep = lesson.translation_report(pair, x_test[ia], y_test[ia], x_test[ib], y_test[ib])
    q = quality_json(rep)
    name = "cyclegan_thin_thick"
    print(json.dumps({"name": name, "wall_seconds": round(wall, 1), "quality": q}), flush=True)
    if not args.no_save:
        path = checkpoints.checkpoint_dir() / f"{name}.pt"
        command = (f"python scripts/train_lesson06.py cycle --steps {args.steps} --seed {args.seed}"
                   + (" --half" if args.half else ""))
        checkpoints.save_checkpoint(path, pair, cfg, {"steps": args.steps, "seed": args.seed,
                                                      "weights": "G (thin -> thick), F"},
                                    half=args.half)
        entry = checkpoints.register_checkpoint(name, path, lesson=STEM, command=command,
                                                device="cpu", wall_seconds=wall, quality=q)
        print(json.dumps({"registered": name, "bytes": entry["bytes"]}), flush=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["cycle"]:
        return cycle(argv[1:])
    if argv[:1] == ["text"]:
        return text(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["sr", "cycle", "text"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--scale", type=int, default=4, choices=[2, 4])
    p.add_argument("--steps", type=int, required=True, help="pixel-loss steps (batches of 64)")
    p.add_argument("--gan-steps", type=int, required=True, help="GAN fine-tuning steps")
    p.add_argument("--d-norm", default="batch", choices=["batch", "spectral"],
                   help="the GAN's discriminator: lesson 05's GANConfig(d_norm=...)")
    common_options(p)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ds, s = args.dataset, args.scale
    x_train, _ = data.load_images(ds, "train")
    x_test, y_test = data.load_images(ds, "test")
    sub = metrics.random_subset(len(x_test), 1000, seed=5)
    truth, labels = x_test[sub], y_test[sub]
    reference = x_train[metrics.random_subset(len(x_train), 4000, seed=6)]
    lr = lesson.downsample(truth, s)
    report = {"bicubic": quality(lesson.bicubic(lr, s).clamp(0, 1), truth, labels, reference, ds)}

    seed_everything(args.seed)
    pix = lesson.SRNet(lesson.SRConfig(scale=s))
    start = time.time()
    lesson.train_sr(pix, x_train, lesson.SRTrainConfig(steps=args.steps, seed=args.seed,
                                                       desc=f"pixel {ds} x{s}"))
    pix_wall = time.time() - start
    seed_everything(args.seed + 1)
    gan = copy.deepcopy(pix)
    D = Discriminator(GANConfig(d_norm=args.d_norm))
    init_weights(D)
    start = time.time()
    lesson.train_sr(gan, x_train, lesson.SRTrainConfig(steps=args.gan_steps, seed=args.seed + 1,
                                                       desc=f"SRGAN {ds} x{s}", **GAN_TRAIN), D=D)
    gan_wall = time.time() - start
    half = " --half" if args.half else ""
    command = (f"python scripts/train_lesson06.py sr --dataset {ds} --scale {s} --steps "
               f"{args.steps} --gan-steps {args.gan_steps} --seed {args.seed}{half}"
               + (f" --d-norm {args.d_norm}" if args.d_norm != "batch" else ""))
    for kind, model, wall in (("pixel", pix, pix_wall), ("gan", gan, pix_wall + gan_wall)):
        if args.half:
            checkpoints.round_to_half(model)
        q = quality(lesson.upscale(model, lr), truth, labels, reference, ds)
        q.update({f"bicubic_{k}": v for k, v in report["bicubic"].items()
                  if k in ("psnr", "ssim", "fid", "class_accuracy")})
        report[kind] = q
        name = f"sr_{kind}_{ds}_x{s}"
        print(json.dumps({"name": name, "wall_seconds": round(wall, 1), "quality": q}), flush=True)
        if not args.no_save:
            path = checkpoints.checkpoint_dir() / f"{name}.pt"
            meta = {"pixel_steps": args.steps, "gan_steps": args.gan_steps if kind == "gan" else 0,
                    "seed": args.seed, "dataset": ds, "scale": s}
            checkpoints.save_checkpoint(path, model, lesson.SRConfig(scale=s), meta, half=args.half)
            entry = checkpoints.register_checkpoint(name, path, lesson=STEM, command=command,
                                                    device="cpu", wall_seconds=wall, quality=q)
            print(json.dumps({"registered": name, "bytes": entry["bytes"]}), flush=True)
    print(json.dumps({"bicubic": report["bicubic"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
