"""Train lesson 03's shipped checkpoints with the lesson's own classes and training loop.

    python scripts/train_lesson03.py vae --epochs 170 --channels 32 --hidden 512 --half   # main VAE (wider), test -ELBO <= 90
    python scripts/train_lesson03.py vae2d --epochs 20     # 2-D latent VAE for the latent map and manifold grid
    python scripts/train_lesson03.py cvae  --epochs 30     # conditional VAE, target: class accuracy >= 0.90

Each run is seeded, trains with the lesson's ``train_vae`` and ``TrainConfig(cosine=True)`` (the learning rate
decays to zero over the run) on the 60,000 MNIST training digits with dynamic binarisation (a fresh Bernoulli
draw per batch from the grey levels), evaluates on the 10,000 test digits binarised once with
``load_mnist("test", binarize="sample", seed=1)`` (the lesson's test set), saves ``data/checkpoints/<name>.pt``
and registers it in the manifest with the measured quality. Run it under the course's CPU lock.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from deepgen_helpers import checkpoints, data, metrics
from deepgen_helpers.config import seed_everything
from deepgen_helpers.models import vae as lesson

STEM = "03_variational_autoencoders"
NAMES = {"vae": "vae_mnist", "vae2d": "vae_mnist_2d", "cvae": "cvae_mnist"}


@torch.no_grad()
def test_neg_elbo(model, x, y=None, batch=1000, seed=0):
    """Mean single-sample negative ELBO (nats) over x, with a fixed seed for the reparameterisation noise."""
    torch.manual_seed(seed)
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch):
        c = None if y is None else model.one_hot(y[i:i + batch])
        rec, kl = lesson.elbo_terms(model, x[i:i + batch], c)
        total += float((rec + kl).sum())
    return total / len(x)


@torch.no_grad()
def cvae_accuracy(model, n_per_class=100, seed=0):
    y = torch.arange(10).repeat_interleave(n_per_class)
    images = model.sample(y, generator=torch.Generator().manual_seed(seed))
    return metrics.class_accuracy(images, y)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=sorted(NAMES))
    p.add_argument("--epochs", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--channels", type=int, default=16, help="VAEConfig.channels (width of the conv layers)")
    p.add_argument("--hidden", type=int, default=256, help="VAEConfig.hidden (width of the fully connected layers)")
    p.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the file); the quality is measured on the rounded weights")
    p.add_argument("--no-save", action="store_true", help="train and evaluate only")
    p.add_argument("--resume", action="store_true",
                   help="continue from the registered checkpoint (a second stage with its own learning-rate schedule); "
                        "the manifest then records both commands")
    args = p.parse_args(argv)

    torch.set_num_threads(max(1, torch.get_num_threads()))
    seed_everything(args.seed)
    grey, y_train = data.load_mnist("train")
    x_train = torch.bernoulli(grey, generator=torch.Generator().manual_seed(0))   # = binarize="sample", seed=0
    x_test, y_test = data.load_mnist("test", binarize="sample", seed=1)

    width = {"channels": args.channels, "hidden": args.hidden}
    cfg = {"vae": lesson.VAEConfig(**width), "vae2d": lesson.VAEConfig(z_dim=2, **width),
           "cvae": lesson.VAEConfig(n_classes=10, **width)}[args.which]
    model = (lesson.ConditionalVAE if args.which == "cvae" else lesson.VAE)(cfg)
    previous = None
    if args.resume:
        previous = checkpoints.read_manifest()[NAMES[args.which]]
        checkpoints.load_shipped(NAMES[args.which], model)
        print(json.dumps({"resumed_from": previous["quality"]}), flush=True)
    start = time.time()
    train_cfg = lesson.TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                   cosine=True, desc=args.which)      # cosine decay: these are long runs
    lesson.train_vae(model, x_train, train_cfg, y_train=y_train if args.which == "cvae" else None, grey=grey)
    wall = time.time() - start
    if args.half:                                   # evaluate exactly the weights that will be stored
        checkpoints.round_to_half(model)
    quality = {"test_neg_elbo_nats": round(test_neg_elbo(model, x_test, y_test if args.which == "cvae" else None), 2)}
    if args.which == "cvae":
        quality["class_accuracy"] = round(cvae_accuracy(model), 4)
    command = (f"python scripts/train_lesson03.py {args.which} --epochs {args.epochs:g} --seed {args.seed}"
               + (f" --lr {args.lr:g}" if args.lr != 1e-3 else "")
               + (f" --batch-size {args.batch_size}" if args.batch_size != 128 else "")
               + (f" --channels {args.channels}" if args.channels != 16 else "")
               + (f" --hidden {args.hidden}" if args.hidden != 256 else "")
               + (" --half" if args.half else "")
               + (" --resume" if args.resume else ""))
    if previous is not None:
        command = previous["command"] + " && " + command
        wall += previous["wall_seconds"]
    print(json.dumps({"name": NAMES[args.which], "wall_seconds": round(wall, 1), "quality": quality,
                      "config": vars(cfg) if hasattr(cfg, "__dict__") else str(cfg)}), flush=True)
    if not args.no_save:
        path = checkpoints.checkpoint_dir() / f"{NAMES[args.which]}.pt"
        checkpoints.save_checkpoint(path, model, cfg, {"epochs": args.epochs, "seed": args.seed, "lr": args.lr,
                                                        "batch_size": args.batch_size, "binarization": "dynamic train, sample(seed=1) test"},
                                    half=args.half)
        entry = checkpoints.register_checkpoint(NAMES[args.which], path, lesson=STEM, command=command, device="cpu",
                                                wall_seconds=wall, quality=quality)
        print(json.dumps({"registered": NAMES[args.which], "bytes": entry["bytes"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
