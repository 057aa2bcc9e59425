"""Lesson 03's variational autoencoder, moved into the package for later lessons.

The classes and functions below are copies of the cells tagged ``lesson-model`` of
``notebooks/03_variational_autoencoders.ipynb`` (except the training loop, which stays in the lesson); edit both
together. ``tests/test_lesson03.py`` checks that both build the same model (same state-dict keys, same outputs for
the same weights), for the lesson's config and the shipped checkpoints' configs. See the lesson for the derivations:

* :class:`VAEConfig`, :class:`Encoder` (q(z | x)), :class:`Decoder` (p(x | z), Bernoulli logits), :class:`VAE`
  and :class:`ConditionalVAE` (Kingma & Welling 2013; Sohn et al. 2015);
* :func:`reparameterize`, :func:`gaussian_kl`, :func:`bernoulli_nll`, :func:`elbo_terms` (distortion and rate per
  image) and :func:`iwae_nll` (importance-weighted NLL estimate, Burda et al. 2015).

Shipped checkpoints: ``vae_mnist``, ``vae_mnist_2d`` and ``cvae_mnist`` (``checkpoints.load_shipped(name, model)``).
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VAEConfig", "Encoder", "Decoder", "VAE", "ConditionalVAE", "reparameterize", "gaussian_kl",
           "bernoulli_nll", "elbo_terms", "diag_gaussian_log_prob", "iwae_nll"]


@dataclass
class VAEConfig:
    """Sizes of a VAE with a small convolutional encoder and decoder for 28x28 binary images."""
    z_dim: int = 32          # latent dimensions
    channels: int = 16       # channels of the first conv layer; the second has twice as many
    hidden: int = 256        # width of the fully connected layer between the conv layers and the code
    n_classes: int = 0       # 0 for a plain VAE; 10 for the conditional VAE of section 9
    image_size: int = 28     # divisible by 4: two stride-2 convolutions halve it twice

    @property
    def feature_shape(self) -> Tuple[int, int, int]:
        """Shape of the conv features of one image: (2 * channels, image_size / 4, image_size / 4)."""
        return (2 * self.channels, self.image_size // 4, self.image_size // 4)

class Encoder(nn.Module):
    """The probabilistic encoder q_phi(z | x) = N(mu, diag(exp(logvar))) (Kingma & Welling 2013, Eq. 9)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c = cfg.channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(),        # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(),    # (B, 2c, 7, 7)
            nn.Flatten())                                              # (B, 2c*7*7)
        n_features = math.prod(cfg.feature_shape) + cfg.n_classes     # a conditional VAE also sees the label
        self.fc = nn.Sequential(nn.Linear(n_features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2 * cfg.z_dim))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)                                   # (B, 2c*7*7)
        if c is not None:
            h = torch.cat([h, c], dim=1)                   # (B, 2c*7*7 + n_classes), c one-hot
        mu, logvar = self.fc(h).chunk(2, dim=1)            # two (B, z_dim) halves
        return mu, logvar

def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of N(mu, sigma^2) that is differentiable in mu and logvar."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + (0.5 * logvar).exp() * eps

class Decoder(nn.Module):
    """The probabilistic decoder p_theta(x | z) = prod_d Bernoulli(x_d; sigmoid(logits_d)); returns the logits."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c = cfg.channels
        self.feature_shape = cfg.feature_shape
        self.fc = nn.Sequential(nn.Linear(cfg.z_dim + cfg.n_classes, cfg.hidden), nn.ReLU(),
                                nn.Linear(cfg.hidden, math.prod(cfg.feature_shape)), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),   # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1))                  # (B, 1, 28, 28)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        if c is not None:
            z = torch.cat([z, c], dim=1)                   # (B, z_dim + n_classes)
        h = self.fc(z).view(-1, *self.feature_shape)       # (B, 2c, 7, 7)
        return self.deconv(h)                              # logits (B, 1, 28, 28)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) for binary images x (B, 1, 28, 28), summed over pixels: (B,), in nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling 2013): encoder, reparameterised sample, decoder, prior N(0, I)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x)                       # (B, z_dim) each
        z = reparameterize(mu, logvar)                     # (B, z_dim), one sample per image
        return self.decoder(z), mu, logvar                 # logits (B, 1, 28, 28)

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Pixel probabilities (n, 1, 28, 28) of n images decoded from z ~ p(z) = N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.cfg.z_dim, generator=generator).to(device)
        return torch.sigmoid(self.decoder(z))

def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, summed over latent dims: (B,) in nats (K&W 2013, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)

def elbo_terms(model: nn.Module, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-image distortion -log p(x | z) with z ~ q(z | x), and rate KL(q(z | x) || p(z)): two (B,) tensors.

    Their sum is the single-sample SGVB estimate of the negative ELBO (K&W 2013, Eqs. 7 and 10).
    """
    if c is None:
        logits, mu, logvar = model(x)
    else:
        logits, mu, logvar = model(x, c)
    return bernoulli_nll(logits, x), gaussian_kl(mu, logvar)


def diag_gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dim."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def iwae_nll(model: nn.Module, x: torch.Tensor, k: int, c: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x) with k samples per image (Burda et al. 2015, Eq. 8): (B,), nats.

    log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) with z_i ~ q(z | x); the estimate is
    -log (1/k) sum_i w_i. k = 1 gives the negative ELBO; it decreases towards -log p(x) as k grows.
    """
    mu, logvar = model.encoder(x) if c is None else model.encoder(x, c)          # (B, z_dim)
    eps = torch.randn((k,) + mu.shape, generator=generator).to(mu.device)        # (k, B, z_dim)
    z = mu + (0.5 * logvar).exp() * eps                                           # (k, B, z_dim)
    zf = z.flatten(0, 1)                                                          # (k*B, z_dim)
    cf = None if c is None else c.repeat(k, 1)
    logits = model.decoder(zf) if cf is None else model.decoder(zf, cf)           # (k*B, 1, 28, 28)
    log_px_z = -bernoulli_nll(logits, x.repeat(k, 1, 1, 1)).view(k, -1)          # (k, B)
    log_pz = diag_gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))  # (k, B)
    log_qz = diag_gaussian_log_prob(z, mu, logvar)                                # (k, B)
    log_w = log_px_z + log_pz - log_qz
    return -(torch.logsumexp(log_w, dim=0) - math.log(k))

class ConditionalVAE(VAE):
    """Conditional VAE (Sohn, Lee & Yan 2015): encoder q(z | x, c) and decoder p(x | z, c) both see the label c;
    the prior stays p(z) = N(0, I), so z is free to encode everything *except* the class: the style."""

    def __init__(self, cfg: VAEConfig):
        if cfg.n_classes < 2:
            raise ValueError(f"a conditional VAE needs cfg.n_classes >= 2, got {cfg.n_classes}.")
        super().__init__(cfg)

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.cfg.n_classes).float()                    # (B, n_classes)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x, c)
        z = reparameterize(mu, logvar)
        return self.decoder(z, c), mu, logvar

    @torch.no_grad()
    def sample(self, y: torch.Tensor, generator: Optional[torch.Generator] = None,
               z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Pixel probabilities (len(y), 1, 28, 28) of digits of the classes y (int64), from z ~ N(0, I) or the given z."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(len(y), self.cfg.z_dim, generator=generator)
        return torch.sigmoid(self.decoder(z.to(device), self.one_hot(y.to(device))))
