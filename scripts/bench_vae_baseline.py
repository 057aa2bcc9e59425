"""Equal-CPU-time benchmark: lesson 03's VAE against the conventional 784-400-20 MLP VAE of the PyTorch examples.

    python scripts/bench_vae_baseline.py --seconds 120

Both models train for the same wall-clock budget on the same data (the 60,000 training digits binarised once with
``binarize="sample", seed=0``), with the same optimiser (Adam, lr 1e-3, batches of 128, constant learning rate),
the same loss (the lesson's ``elbo_terms``: Bernoulli decoder, closed-form KL) and the same seed. Evaluation time is
not counted. Prints one JSON line per model: test negative ELBO (nats, 10,000 test digits binarised with
``binarize="sample", seed=1``) and an importance-weighted NLL estimate (k samples on 1,000 random test digits,
``metrics.random_subset(10000, 1000, seed=1)``), each with its standard error over the digits.
Run it alone (under the course's CPU lock): the budget is wall-clock time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch import nn

from deepgen_helpers import data, metrics
from deepgen_helpers.models import vae as lesson



class BaselineVAE(nn.Module):
    """The VAE of github.com/pytorch/examples (vae/main.py): 784-400-(20, 20) encoder, 20-400-784 decoder, ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)
        self.encoder = self._encode
        self.decoder = self._decode

    def _encode(self, x, c=None):
        h = torch.relu(self.fc1(x.flatten(1)))
        return self.fc21(h), self.fc22(h)

    def _decode(self, z, c=None):
        return self.fc4(torch.relu(self.fc3(z))).view(-1, 1, 28, 28)

    def forward(self, x):
        mu, logvar = self._encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        return self._decode(z), mu, logvar


def train_for(model, x_train, seconds, seed, lr=1e-3, batch_size=128):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start, steps = time.time(), 0
    while time.time() - start < seconds:
        order = torch.randperm(len(x_train), generator=g)
        for i in range(len(x_train) // batch_size):
            rec, kl = lesson.elbo_terms(model, x_train[order[i * batch_size:(i + 1) * batch_size]])
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.time() - start >= seconds:
                break
    model.eval()
    return time.time() - start, steps


@torch.no_grad()
def evaluate(model, x_test, k, n_iwae, seed=0):
    """(mean, standard error) of the test negative ELBO, and of the IWAE estimate on n_iwae random digits."""
    torch.manual_seed(seed)
    neg_elbo = torch.cat([sum(lesson.elbo_terms(model, x_test[i:i + 1000])) for i in range(0, len(x_test), 1000)])
    g = torch.Generator().manual_seed(seed)
    x_iw = x_test[metrics.random_subset(len(x_test), n_iwae, seed=1)]     # random digits, never file order
    iw = torch.cat([lesson.iwae_nll(model, x_iw[i:i + 20], k, generator=g) for i in range(0, n_iwae, 20)])
    return metrics.mean_se(neg_elbo), metrics.mean_se(iw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=100, help="importance samples per test digit")
    p.add_argument("--n-iwae", type=int, default=1000, help="test digits for the importance-weighted estimate")
    args = p.parse_args(argv)
    x_train, _ = data.load_mnist("train", binarize="sample", seed=0)
    x_test, _ = data.load_mnist("test", binarize="sample", seed=1)
    models = {"baseline_mlp_784-400-20": BaselineVAE, "lesson03_vae": lambda: lesson.VAE(lesson.VAEConfig())}
    for name, make in models.items():
        torch.manual_seed(args.seed)
        model = make()
        wall, steps = train_for(model, x_train, args.seconds, args.seed)
        (neg_elbo, neg_elbo_se), (iwae, iwae_se) = evaluate(model, x_test, args.k, args.n_iwae)
        print(json.dumps({"model": name, "train_seconds": round(wall, 1), "steps": steps,
                          "epochs": round(steps * 128 / len(x_train), 2),
                          "params": sum(p.numel() for p in model.parameters()),
                          "test_neg_elbo_nats": round(neg_elbo, 2), "test_neg_elbo_se": round(neg_elbo_se, 2),
                          f"iwae_nll_k{args.k}_nats": round(iwae, 2), "iwae_se": round(iwae_se, 2),
                          "torch_threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
