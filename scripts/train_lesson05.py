"""Train lesson 05's shipped conditional GANs, and check the lesson's recipe over seeds, with the
lesson's own code.

    python scripts/train_lesson05.py cgan --dataset mnist --steps 24000 --half --d-norm spectral \
        --g-cond batchnorm
    python scripts/train_lesson05.py cgan --dataset fashion_mnist --steps 9000 --half   # Fashion
    python scripts/train_lesson05.py cgan ... --curve 4000   # FID and accuracy every 4000 steps
    python scripts/train_lesson05.py seeds --seeds 0 1 2 --steps 2000    # the lesson's run, 3 seeds
    python scripts/train_lesson05.py ablate --seeds 0 1 --steps 2000     # one change at a time
    python scripts/train_lesson05.py cgan ... --channels 64 --device cuda --save-to DIR   # on a GPU
    python scripts/train_lesson05.py register --from DIR/cgan_mnist.pt --dataset mnist \
        --device-used cuda --wall-seconds S --command "..."   # measure here, then ship

Everything uses ``deepgen_helpers.models.dcgan`` (exported from the lesson's cells): ``Generator``,
``Discriminator``, ``init_weights``, ``GANTrainConfig`` and ``train_gan``, on all 60,000 training
images scaled to [-1, 1], with the lesson's conditional config ``GANConfig(n_classes=10)``
(``--d-norm spectral``: its spectrally normalised discriminator, as for the shipped MNIST model).
The shipped checkpoints hold the EMA generator's weights (float16 with ``--half``; the quality is
measured on the rounded weights) and are registered in the manifest with the measured quality:

- class accuracy of 1,000 conditional samples (100 per class), judged by the dataset's course
  classifier, with its standard error;
- FID (course classifier) of the same kind of 1,000 samples against random real test images, with
  the real-vs-real floor at the same size (``metrics.fid_with_floor``, 3 repeats), the mean
  top-class probability and the class entropy.

``--save-to DIR`` writes the checkpoint to DIR and registers nothing (for a run on another
machine, such as a GPU); ``register`` copies such a file into ``data/checkpoints``, measures it
here on the CPU with the same protocol and registers it with the command that made it.
``--max-seconds`` times 250 steps first and trains fewer steps if the requested ones would not fit.

``seeds`` and ``ablate`` print one JSON line per run with the lesson's three bars (section 7.1).
Add ``--threads 1`` for a background run beside other jobs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

from deepgen_helpers import checkpoints, data, metrics
from deepgen_helpers.classifier import load_classifier
from deepgen_helpers.config import seed_everything
from deepgen_helpers.models import dcgan as lesson

STEM = "05_dcgan_and_conditional_gans"
CGAN = dict(n_classes=10)        # the lesson's conditional DCGAN (section 6), trained for longer
ABLATIONS = {"recipe": ({}, {}), "no_smoothing": ({}, {"smooth": 1.0}),
             "beta1_0.9": ({}, {"beta1": 0.9}), "spectral_norm": ({"d_norm": "spectral"}, {}),
             "no_ema": ({}, {"ema_decay": 0.0})}


def image_bars(images, dataset="mnist", n=1000, labels=None):
    """The lessons' bars on n images in [0, 1]: mean top-class probability (and SE), class
    entropy, FID with its spread and the real-vs-real floor; with ``labels`` (the classes asked
    for) also the class accuracy and its SE."""
    with torch.no_grad():
        probs = F.softmax(load_classifier(dataset)(images), dim=1)
    top, top_se = metrics.mean_se(probs.max(1).values)
    x_test, _ = data.load_images(dataset, "test")
    fid = metrics.fid_with_floor(images, x_test, n=n, repeats=3, dataset=dataset)
    out = {"top_class_prob": round(top, 4), "top_class_prob_se": round(top_se, 4),
           "class_entropy": round(metrics.class_entropy(probs.argmax(1)), 4),
           "fid": round(fid["fid"], 2), "fid_sd": round(fid["fid_sd"], 2),
           "fid_floor": round(fid["floor"], 2), "fid_floor_sd": round(fid["floor_sd"], 2),
           "fid_over_floor": round(fid["fid"] / fid["floor"], 2)}
    if labels is not None:
        acc, acc_se = metrics.mean_se((probs.argmax(1) == labels).float())
        out.update(class_accuracy=round(acc, 4), class_accuracy_se=round(acc_se, 4))
    return out


def three_bars(model, dataset="mnist", n=1000, seed=1, conditional=False):
    """The lesson's bars on n samples (100 per class if conditional, as in section 7.1)."""
    y = torch.arange(n) % 10 if conditional else None
    return image_bars(lesson.sample(model, n, seed=seed, y=y), dataset, n)


def class_accuracy(model, dataset, n_per_class=100, seed=2):
    y = torch.arange(10 * n_per_class) % 10
    right = (metrics.predict(lesson.sample(model, len(y), seed=seed, y=y), dataset) == y).float()
    return metrics.mean_se(right)


def train(dataset, gan_cfg, train_cfg, conditional, device="cpu"):
    seed_everything(train_cfg.seed)
    x, y = data.load_images(dataset, "train")
    G, D = lesson.Generator(gan_cfg).to(device), lesson.Discriminator(gan_cfg).to(device)
    lesson.init_weights(G)
    lesson.init_weights(D)
    start = time.time()
    out = lesson.train_gan(G, D, (x * 2 - 1).to(device), train_cfg,
                           y=y.to(device) if conditional else None)
    return G, out, time.time() - start


def steps_that_fit(args, gan_cfg) -> int:
    """args.steps, or fewer if 250 timed steps (after 50 that pay the start-up costs) say they
    would not fit in args.max_seconds (rounded down to a multiple of --curve)."""
    if not args.max_seconds:
        return args.steps
    warm = lesson.GANTrainConfig(steps=50, seed=args.seed, snapshot_every=50, desc="warm-up")
    probe = lesson.GANTrainConfig(steps=250, seed=args.seed, snapshot_every=250, desc="probe")
    train(args.dataset, gan_cfg, warm, conditional=True, device=args.device)   # start-up costs
    _, _, wall = train(args.dataset, gan_cfg, probe, conditional=True, device=args.device)
    fit = int(args.max_seconds / (wall / 250))
    if args.curve:
        fit = max(fit // args.curve, 1) * args.curve
    print(json.dumps({"probe_seconds_per_step": round(wall / 250, 5), "steps_fit": fit}),
          flush=True)
    return max(min(args.steps, fit), min(args.steps, 200))


def gan_config(args):
    return lesson.GANConfig(**CGAN, d_norm=args.d_norm, g_cond=args.g_cond,
                            g_channels=args.channels, d_channels=args.channels)


def quality_of(model, dataset):
    """What the manifest records: class accuracy with its SE and the image bars."""
    acc, acc_se = class_accuracy(model, dataset)
    quality = {"class_accuracy": round(acc, 4), "class_accuracy_se": round(acc_se, 4)}
    bars = three_bars(model, dataset, conditional=True)
    quality.update({k: bars[k] for k in ("fid", "fid_sd", "fid_floor", "fid_floor_sd",
                                         "top_class_prob", "class_entropy")})
    return quality


def register(args) -> int:
    """Copy a checkpoint made elsewhere into data/checkpoints, measure it here, register it."""
    import shutil
    payload = checkpoints.load_checkpoint(args.source)
    model = lesson.Generator(lesson.GANConfig(**payload["config"]))
    checkpoints.load_into(model, payload)
    model.eval()
    quality = quality_of(model, args.dataset)
    name = args.name or f"cgan_{args.dataset}"
    path = checkpoints.checkpoint_dir() / f"{name}.pt"
    shutil.copyfile(args.source, path)
    entry = checkpoints.register_checkpoint(name, path, lesson=STEM, command=args.command,
                                            device=args.device_used,
                                            wall_seconds=args.wall_seconds, quality=quality)
    print(json.dumps({"registered": name, "bytes": entry["bytes"], "quality": quality}),
          flush=True)
    return 0


def check_seeds(args) -> int:
    variants = ({"recipe": ABLATIONS["recipe"]} if args.which == "seeds"
                else {k: ABLATIONS[k] for k in args.only})
    for name, (model_kw, train_kw) in variants.items():
        for seed in args.seeds:
            train_cfg = lesson.GANTrainConfig(steps=args.steps, seed=seed,
                                              desc=f"{name} seed {seed}", **train_kw)
            torch.manual_seed(seed)          # as the lesson: seeds the networks' initial weights
            cfg = lesson.GANConfig(**CGAN, **model_kw)
            G, out, wall = train("mnist", cfg, train_cfg, conditional=True)
            model = out["ema"] if train_cfg.ema_decay > 0 else G
            bars = three_bars(model, conditional=True)
            print(json.dumps({"variant": name, "seed": seed, "steps": args.steps,
                              "train_seconds": round(wall, 1), **bars,
                              "class_accuracy": round(class_accuracy(model, "mnist")[0], 4)}),
                  flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=["cgan", "seeds", "ablate", "register"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", default=sorted(ABLATIONS), help="ablate: which variants")
    p.add_argument("--half", action="store_true", help="store float16 weights; quality on them")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (1 beside other jobs)")
    p.add_argument("--d-norm", default="batch", choices=["batch", "spectral"],
                   help="cgan: the discriminator's normalisation (GANConfig.d_norm)")
    p.add_argument("--curve", type=int, default=0,
                   help="cgan: also print the EMA generator's FID every CURVE steps")
    p.add_argument("--name", default="", help="cgan: checkpoint name (default cgan_DATASET)")
    p.add_argument("--g-cond", default="concat", choices=["concat", "batchnorm"],
                   help="cgan: how the generator gets the class (GANConfig.g_cond)")
    p.add_argument("--channels", type=int, default=32,
                   help="cgan: GANConfig.g_channels and d_channels (the lesson's 32)")
    p.add_argument("--device", default="cpu", help="cgan: where to train (cpu, cuda)")
    p.add_argument("--max-seconds", type=float, default=0,
                   help="cgan: train fewer steps if --steps would take longer than this")
    p.add_argument("--save-to", default="", help="cgan: write the checkpoint here, register nothing")
    p.add_argument("--from", dest="source", default="", help="register: the checkpoint file")
    p.add_argument("--device-used", default="cpu", help="register: where it was trained")
    p.add_argument("--wall-seconds", type=float, default=0.0, help="register: its training time")
    p.add_argument("--command", default="", help="register: the command that trained it")
    args = p.parse_args(argv)
    if args.which == "register":
        if not (args.source and args.command):
            p.error("register needs --from FILE and --command \"...\"")
        return register(args)
    if args.steps < 1:
        p.error("--steps must be a positive number of training steps")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.which in ("seeds", "ablate"):
        return check_seeds(args)

    gan_cfg = gan_config(args)
    args.steps = steps_that_fit(args, gan_cfg)
    train_cfg = lesson.GANTrainConfig(steps=args.steps, seed=args.seed,
                                      snapshot_every=args.curve or args.steps,
                                      desc=f"cGAN {args.dataset}")
    torch.manual_seed(args.seed)
    G, out, wall = train(args.dataset, gan_cfg, train_cfg, conditional=True, device=args.device)
    model = out["ema"].cpu()
    if args.half:
        checkpoints.round_to_half(model)
    name = args.name or f"cgan_{args.dataset}"
    command = (f"python scripts/train_lesson05.py cgan --dataset {args.dataset} "
               f"--steps {args.steps} --seed {args.seed}" + (" --half" if args.half else "")
               + (f" --d-norm {args.d_norm}" if args.d_norm != "batch" else "")
               + (f" --g-cond {args.g_cond}" if args.g_cond != "concat" else "")
               + (f" --channels {args.channels}" if args.channels != 32 else "")
               + (f" --device {args.device}" if args.device != "cpu" else "")
               + (f" --name {args.name}" if args.name else ""))
    meta = {"steps": args.steps, "seed": args.seed, "dataset": args.dataset,
            "weights": "EMA generator"}
    if args.save_to:                        # saved first: the measurements below take a while
        from pathlib import Path
        path = Path(args.save_to) / f"{name}.pt"
        checkpoints.save_checkpoint(path, model, gan_cfg, meta, half=args.half)
        print(json.dumps({"saved": str(path), "command": command,
                          "wall_seconds": round(wall, 1)}), flush=True)
    for step, state in out["ema_states"][:-1] if args.curve else []:       # the FID curve
        snap = lesson.Generator(gan_cfg)
        snap.load_state_dict(state)
        bars = three_bars(snap, args.dataset, conditional=True)
        print(json.dumps({"step": step, "fid": bars["fid"], "fid_sd": bars["fid_sd"],
                          "fid_floor": bars["fid_floor"],
                          "class_accuracy": round(class_accuracy(snap, args.dataset)[0], 4)}),
              flush=True)
    quality = quality_of(model, args.dataset)
    print(json.dumps({"name": name, "steps": args.steps, "d_norm": args.d_norm,
                      "wall_seconds": round(wall, 1), "quality": quality}),
          flush=True)
    if not (args.save_to or args.no_save):
        path = checkpoints.checkpoint_dir() / f"{name}.pt"
        checkpoints.save_checkpoint(path, model, gan_cfg, meta, half=args.half)
        entry = checkpoints.register_checkpoint(name, path, lesson=STEM, command=command,
                                                device="cpu", wall_seconds=wall, quality=quality)
        print(json.dumps({"registered": name, "bytes": entry["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
