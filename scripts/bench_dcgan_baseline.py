"""Equal-CPU-time benchmark: lesson 05's DCGAN recipe against the TensorFlow DCGAN tutorial's model
and settings.

    python scripts/bench_dcgan_baseline.py --seconds 120 --seeds 0 1

The baseline is the DCGAN of the TensorFlow tutorial (tensorflow.org/tutorials/generative/dcgan),
rebuilt in PyTorch layer for layer: generator Dense(7*7*256, no bias)-BN-LeakyReLU,
ConvTranspose(128, 5x5, stride 1)-BN-LeakyReLU, ConvTranspose(64, 5x5, stride 2)-BN-LeakyReLU,
ConvTranspose(1, 5x5, stride 2)-tanh; discriminator Conv(64, 5x5, stride 2)-LeakyReLU-Dropout(0.3),
Conv(128, 5x5, stride 2)-LeakyReLU-Dropout(0.3), Dense(1); noise of 100 dimensions, batches of 256,
Adam(1e-4) for both (Keras defaults beta_1 = 0.9, epsilon 1e-7), cross-entropy losses
(non-saturating for G), both networks updated from the same forward pass, Keras' defaults for
initialisation (Glorot uniform), LeakyReLU slope (0.3) and batch norm (momentum 0.99, epsilon
1e-3). 'same' padding is symmetric here (TensorFlow pads one more pixel at the bottom-right for
stride 2).

The lesson's recipe is ``deepgen_helpers.models.dcgan`` at the lesson's default unconditional
config (the tutorial's model is unconditional too): ``gan_step`` and ``ema_update`` in a loop that
stops at the time budget, sampled from the EMA generator.

Both train for the same wall-clock budget on the same data (the 60,000 MNIST training digits in
[-1, 1]), one after the other, for each seed, in this one invocation. Evaluation time is not
counted. One JSON line per run: steps, images seen, and the lesson's three bars on 1,000 samples
(FID against random real test digits with its spread over 3 reference sets and the real-vs-real
floor, mean top-class probability, class entropy). Run it alone, under the course's CPU lock: the
budget is wall-clock time.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from deepgen_helpers import data
from deepgen_helpers.models import dcgan as lesson

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from train_lesson05 import three_bars  # noqa: E402


class TutorialGenerator(nn.Module):
    """The TensorFlow tutorial's generator: 100 -> 7x7x256 -> 7x7x128 -> 14x14x64 -> 28x28x1."""

    def __init__(self):
        super().__init__()
        self.cfg = lesson.GANConfig(z_dim=100)     # sample() reads cfg.z_dim and cfg.n_classes
        bn = dict(eps=1e-3, momentum=0.01)          # Keras BatchNormalization defaults
        self.fc = nn.Sequential(nn.Linear(100, 7 * 7 * 256, bias=False),
                                nn.BatchNorm1d(7 * 7 * 256, **bn), nn.LeakyReLU(0.3))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 5, stride=1, padding=2, bias=False),
            nn.BatchNorm2d(128, **bn), nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.BatchNorm2d(64, **bn), nn.LeakyReLU(0.3),
            nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.Tanh())

    def forward(self, z, y=None):
        return self.net(self.fc(z).view(-1, 256, 7, 7))


class TutorialDiscriminator(nn.Module):
    """The tutorial's discriminator: Conv(64)-LReLU-Dropout, Conv(128)-LReLU-Dropout, Dense(1)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 5, stride=2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Conv2d(64, 128, 5, stride=2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1))

    def forward(self, x, y=None):
        return self.net(x).squeeze(1)


def glorot(module):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def train_tutorial(x, seconds, seed):
    torch.manual_seed(seed)
    G, D = TutorialGenerator(), TutorialDiscriminator()
    glorot(G)
    glorot(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    g = torch.Generator().manual_seed(seed)
    G.train()
    D.train()
    start, steps = time.time(), 0
    while time.time() - start < seconds:
        order = torch.randperm(len(x), generator=g)
        for idx in order.split(256):                  # tf.data ...shuffle(60000).batch(256)
            fake = G(torch.randn(len(idx), 100, generator=g))
            real_out, fake_out = D(x[idx]), D(fake)
            g_loss = F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
            d_loss = (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                      + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
            g_grads = torch.autograd.grad(g_loss, list(G.parameters()), retain_graph=True)
            d_grads = torch.autograd.grad(d_loss, list(D.parameters()))
            for p, grad in zip(G.parameters(), g_grads):
                p.grad = grad
            for p, grad in zip(D.parameters(), d_grads):
                p.grad = grad
            opt_g.step()
            opt_d.step()
            steps += 1
            if time.time() - start >= seconds:
                break
    G.eval()
    return G, time.time() - start, steps, 256


def train_recipe(x, seconds, seed):
    torch.manual_seed(seed)                            # as the lesson's cell
    cfg, train_cfg = lesson.GANConfig(), lesson.GANTrainConfig(seed=seed)
    G, D = lesson.Generator(cfg), lesson.Discriminator(cfg)
    lesson.init_weights(G)
    lesson.init_weights(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=train_cfg.lr_g, betas=(train_cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=train_cfg.lr_d, betas=(train_cfg.beta1, 0.999))
    ema = __import__("copy").deepcopy(G).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    G.train()
    D.train()
    start, steps = time.time(), 0
    while time.time() - start < seconds:               # train_gan's loop, stopped by the clock
        lesson.gan_step(G, D, opt_g, opt_d, x, None, train_cfg, g)
        steps += 1
        lesson.ema_update(ema, G, min(train_cfg.ema_decay, steps / (steps + 10)))
    return ema, time.time() - start, steps, train_cfg.batch_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args(argv)
    x, _ = data.load_mnist("train")
    x = x * 2 - 1
    for seed in args.seeds:
        for name, fn in (("tf_tutorial_dcgan", train_tutorial), ("lesson05_recipe", train_recipe)):
            model, wall, steps, batch = fn(x, args.seconds, seed)
            print(json.dumps({"model": name, "seed": seed, "train_seconds": round(wall, 1),
                              "steps": steps, "epochs": round(steps * batch / len(x), 2),
                              "params_G": sum(q.numel() for q in model.parameters()),
                              **three_bars(model), "torch_threads": torch.get_num_threads()}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
