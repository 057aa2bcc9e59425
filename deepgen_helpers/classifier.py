"""The course classifier: a small CNN per image dataset whose features drive FID and class accuracy.

It is plumbing for evaluation (lesson 01 explains what it is for), not a lesson's subject, so it
lives here.
Reproduce the shipped checkpoints and print their test accuracy with::

    python -m deepgen_helpers.classifier train mnist fashion_mnist
    python -m deepgen_helpers.classifier evaluate
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints
from .config import get_device, seed_everything
from .data import IMAGE_DATASETS, _choice, _whole, as_image_batch, load_images


@dataclass
class ClassifierConfig:
    """Shape of :class:`CourseClassifier`."""

    channels1: int = 32
    channels2: int = 64
    features: int = 128
    n_classes: int = 10
    dropout: float = 0.3


class CourseClassifier(nn.Module):
    """conv(32) - pool - conv(64) - pool - fc(128) - fc(10) on ``(B, 1, 28, 28)`` images in [0,
    1]."""

    def __init__(self, cfg: Optional[ClassifierConfig] = None):
        super().__init__()
        self.cfg = cfg or ClassifierConfig()
        c1, c2, f = self.cfg.channels1, self.cfg.channels2, self.cfg.features
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * 7 * 7, f)
        self.fc2 = nn.Linear(f, self.cfg.n_classes)
        self.dropout = nn.Dropout(self.cfg.dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 28, 28)`` in [0, 1] -> ``(B, features)``: the penultimate activations FID
        compares."""
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError("CourseClassifier expects images of shape (B, 1, 28, 28) in [0, 1], "
                             f"got {tuple(x.shape)}. Reshape flat images with "
                             "x.view(-1, 1, 28, 28).")
        h = (x - 0.5) / 0.5
        h = F.max_pool2d(F.relu(self.conv1(h)), 2)  # (B, c1, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, c2, 7, 7)
        return F.relu(self.fc1(h.flatten(1)))  # (B, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)``."""
        return self.fc2(self.dropout(self.features(x)))


def _random_shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each batch by up to ``max_shift`` pixels (a cheap augmentation that adds
    robustness)."""
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=g).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` ``(N,1,28,28)`` whose predicted class equals ``y`` ``(N,)``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    x = as_image_batch(x, "x", shape=(1, 28, 28))
    y = torch.as_tensor(y).cpu()
    if y.shape != (len(x),) or y.is_floating_point():
        raise ValueError(f"y must be integer class labels of shape ({len(x)},), one per image "
                         f"in x; got {'float ' if y.is_floating_point() else ''}labels "
                         f"of shape {tuple(y.shape)}.")
    batch_size = _whole(batch_size, "batch_size", 1)
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (
            (model(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size])
            .sum()
            .item()
        )
    return correct / len(x)


def train_classifier(
    dataset: str,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: Optional[str] = None,
    n_train: Optional[int] = None,
) -> Dict:
    """Train a :class:`CourseClassifier` on ``dataset``'s training split; return model, accuracy
    and wall time."""
    _choice(dataset, IMAGE_DATASETS, "image dataset")
    epochs, batch_size = _whole(epochs, "epochs", 1), _whole(batch_size, "batch_size", 1)
    if n_train is not None and _whole(n_train, "n_train", batch_size) < batch_size:
        raise ValueError(f"n_train={n_train} is smaller than batch_size={batch_size}.")
    if not (isinstance(lr, (int, float)) and 0 < lr < float("inf")):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    g = seed_everything(seed)
    dev = get_device(device)
    x, y = load_images(dataset, "train", n=n_train)
    xt, yt = load_images(dataset, "test")
    model = CourseClassifier().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb = _random_shift(x[idx], g).to(dev)
            loss = F.cross_entropy(model(xb), y[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, xt, yt)
        print(f"{dataset} epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}, test "
              f"accuracy {acc:.4f}", flush=True)
    return {
        "model": model.cpu(),
        "test_accuracy": acc,
        "wall_seconds": time.time() - start,
        "device": str(dev),
    }


def checkpoint_name(dataset: str) -> str:
    return f"classifier_{dataset}"


_LOADED: Dict[str, CourseClassifier] = {}


def load_classifier(dataset: str, device: Optional[torch.device | str] = None) -> CourseClassifier:
    """The shipped course classifier for ``dataset`` (``"mnist"`` or ``"fashion_mnist"``), in eval
    mode."""
    if not (isinstance(dataset, str) and dataset in IMAGE_DATASETS):
        _choice(dataset, IMAGE_DATASETS, "course-classifier dataset")
    if device is not None:
        device = get_device(device)
    if dataset not in _LOADED:
        model = CourseClassifier()
        checkpoints.load_shipped(checkpoint_name(dataset), model)
        _LOADED[dataset] = model.eval()
    model = _LOADED[dataset]
    return model.to(device) if device is not None else model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train or evaluate the course classifiers.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train and ship classifiers (writes data/checkpoints)")
    tr.add_argument("datasets", nargs="+", choices=sorted(IMAGE_DATASETS))
    tr.add_argument("--epochs", type=int, default=5)
    tr.add_argument("--seed", type=int, default=0)
    ev = sub.add_parser("evaluate", help="print the shipped classifiers' test accuracy")
    ev.add_argument("datasets", nargs="*", default=sorted(IMAGE_DATASETS))
    args = parser.parse_args(argv)
    if args.cmd == "train":
        for ds in args.datasets:
            out = train_classifier(ds, epochs=args.epochs, seed=args.seed)
            path = checkpoints.checkpoint_dir() / f"{checkpoint_name(ds)}.pt"
            checkpoints.save_checkpoint(
                path, out["model"], out["model"].cfg, {"dataset": ds, "seed": args.seed}
            )
            entry = checkpoints.register_checkpoint(
                checkpoint_name(ds), path, lesson="01_generative_modelling_basics",
                command=f"python -m deepgen_helpers.classifier train {ds} --epochs {args.epochs} "
                        f"--seed {args.seed}",
                device=out["device"], wall_seconds=out["wall_seconds"],
                quality={"test_accuracy": round(out["test_accuracy"], 4)})
            print(json.dumps({checkpoint_name(ds): entry}))
    else:
        for ds in args.datasets:
            x, y = load_images(ds, "test")
            acc = accuracy(load_classifier(ds), x, y)
            print(
                json.dumps({"dataset": ds, "split": "test", "n": len(x), "accuracy": round(acc, 4)})
            )


if __name__ == "__main__":
    main()
