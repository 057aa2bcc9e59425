"""Train and register lesson 02's shipped checkpoints with the lesson's own classes and training loop.

    python scripts/train_lesson02.py                  # all: ae02_conv, ae02_mlp16, ae02_mlp2d, ae02_denoise
    python scripts/train_lesson02.py --only ae02_conv # one of them

The models, loss and loop are the lesson's own: the cells of notebooks/02_autoencoders.ipynb tagged ``export``,
exported to ``deepgen_helpers.models.autoencoders``. So a checkpoint is exactly what the lesson would train with
a bigger budget. Quality is measured on the full MNIST test set (10,000 digits) and written into
data/checkpoints/manifest.json. ``ae02_conv`` and ``ae02_mlp16`` share the code size (16), the data, the seed
and the budget (12 epochs), so the lesson compares them like with like. Checkpoints marked ``half`` are stored
in float16; their quality is measured on the stored (rounded) weights, and the float32 value is printed beside it.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from deepgen_helpers import checkpoints, data
from deepgen_helpers.config import get_device, seed_everything
from deepgen_helpers.models import autoencoders as lesson

LESSON = "02_autoencoders"
NOISE_SIGMA = 0.5      # the lesson's denoising corruption
NOISE_SEED = 1         # the lesson's fixed test noise generator seed


def specs():
    """name -> (model constructor, TrainConfig, store in float16)."""
    T = lesson.TrainConfig
    return {
        "ae02_conv": (lambda: lesson.ConvAutoencoder(lesson.ConvAEConfig(latent_dim=16)), T(epochs=12), False),
        "ae02_mlp16": (lambda: lesson.MLPAutoencoder(lesson.MLPAEConfig(latent_dim=16)), T(epochs=12), True),
        "ae02_mlp2d": (lambda: lesson.MLPAutoencoder(lesson.MLPAEConfig(latent_dim=2)), T(epochs=30), False),
        "ae02_denoise": (lambda: lesson.ConvAutoencoder(lesson.ConvAEConfig(latent_dim=16)),
                         T(epochs=12, noise_sigma=NOISE_SIGMA), False),
    }


def measure(model, x_test, x_test_noisy, cfg) -> dict:
    """Quality on the full test set: reconstruction cost (nats/image) and MSE per pixel, with standard errors."""
    clean = lesson.evaluate_reconstruction(model, x_test)
    quality = {"test_bce_nats": round(clean["bce"], 2), "test_bce_se": round(clean["bce_se"], 2),
               "test_mse_per_pixel": round(clean["mse"], 5)}
    if cfg.noise_sigma > 0:
        noisy = lesson.evaluate_reconstruction(model, x_test, x_in=x_test_noisy)
        quality["noisy_test_mse_per_pixel"] = round(noisy["mse"], 5)
    return quality


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="names of the checkpoints to train (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    args = parser.parse_args(argv)
    device = get_device(args.device)
    x_train, _ = data.load_mnist("train")
    x_test, _ = data.load_mnist("test")
    x_test_noisy = lesson.add_gaussian_noise(x_test, NOISE_SIGMA, torch.Generator().manual_seed(NOISE_SEED))
    table = specs()
    for name in args.only or list(table):
        build, cfg, half = table[name]
        seed_everything(args.seed)
        model = build().to(device)
        start = time.time()
        lesson.train_autoencoder(model, x_train, cfg, desc=name)
        wall = time.time() - start
        model = model.cpu()
        full = measure(model, x_test, x_test_noisy, cfg)
        path = checkpoints.checkpoint_dir() / f"{name}.pt"
        checkpoints.save_checkpoint(path, model, model.cfg, half=half,
                                    metadata={"lesson": LESSON, "train_config": vars(cfg), "seed": args.seed})
        checkpoints.load_into(model, path)           # measure what ships: the stored (maybe rounded) weights
        quality = measure(model, x_test, x_test_noisy, cfg)
        if half:
            print(f"{name}: float32 {full}; stored float16 {quality}", flush=True)
        only = f" --only {name}"
        entry = checkpoints.register_checkpoint(
            name, path, lesson=LESSON, command=f"python scripts/train_lesson02.py{only}", device=str(device),
            wall_seconds=wall, quality=quality)
        print(f"{name}: {wall:.0f} s, {entry['bytes'] / 1e6:.2f} MB, {quality}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
