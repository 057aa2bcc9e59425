"""Train lesson 06's shipped upscalers (super-resolution) with the lesson's own code.

    python scripts/train_lesson06.py sr --dataset mnist --scale 4 --steps 3000 --gan-steps 2000 \
        --half
    python scripts/train_lesson06.py sr --dataset fashion_mnist --scale 4 --steps 3000 \
        --gan-steps 2000 --half
    python scripts/train_lesson06.py sr --dataset mnist --scale 2 --steps 1500 --gan-steps 1000 \
        --half
    python scripts/train_lesson06.py sr --dataset fashion_mnist --scale 2 --steps 1500 \
        --gan-steps 1000 --half
    python scripts/train_lesson06.py cycle --steps 3000 --half

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
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time

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


def cycle(argv) -> int:
    p = argparse.ArgumentParser(description="Train the shipped CycleGAN (thin <-> thick digits).")
    p.add_argument("--steps", type=int, required=True, help="steps of 32 + 32 unpaired digits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--half", action="store_true", help="store float16 weights; quality on them")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (1 beside other jobs)")
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
    q = {}
    for key, val in rep.items():
        for k, (m, se) in (val.items() if isinstance(val, dict) else [(None, val)]):
            name = key if k is None else f"{key}_{k}"
            q[name], q[f"{name}_se"] = round(m, 4), round(se, 4)
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["sr", "cycle"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--scale", type=int, default=4, choices=[2, 4])
    p.add_argument("--steps", type=int, required=True, help="pixel-loss steps (batches of 64)")
    p.add_argument("--gan-steps", type=int, required=True, help="GAN fine-tuning steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--half", action="store_true", help="store float16 weights; quality on them")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (1 beside other jobs)")
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
    D = Discriminator(GANConfig())
    init_weights(D)
    start = time.time()
    lesson.train_sr(gan, x_train, lesson.SRTrainConfig(steps=args.gan_steps, seed=args.seed + 1,
                                                       desc=f"SRGAN {ds} x{s}", **GAN_TRAIN), D=D)
    gan_wall = time.time() - start
    half = " --half" if args.half else ""
    command = (f"python scripts/train_lesson06.py sr --dataset {ds} --scale {s} --steps "
               f"{args.steps} --gan-steps {args.gan_steps} --seed {args.seed}{half}")
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
