"""Variational-autoencoder patch descriptor (Zizakic & Pizurica, seed paper 2).

Layout, for patches of side ``S`` (a multiple of 8) with ``C`` channels (1 grey, 3 RGB) and a
latent of size ``L`` (research/descriptors.md section 3):

* encoder: 3 x [zero-pad 1, conv 3x3 (C->32, 32->32, 32->32), ReLU, max-pool 2x2], flatten
  ``32 (S/8)^2`` -> two Linear layers giving the mean and the log-variance of ``q(z | x)``;
* decoder: Linear ``L -> 32 (S/8)^2``, reshape to ``(32, S/8, S/8)``, ConvTranspose 2x2 stride 2
  (32->32), ReLU, ConvTranspose 2x2/2 (32->32), ReLU, ConvTranspose 2x2/2 (32->C), sigmoid.

The descriptor is the mean (deterministic); the decoder inverts a descriptor back to a patch.

Loss (:func:`vae_loss`): ``gamma * BCE + KL``, the BCE summed over the pixels of a patch and the
KL summed over the latent, both averaged over the batch. The authors' code writes the same
objective as ``BCE + beta * KL``; the two differ only by an overall factor, with
``gamma = 1 / beta`` (research/descriptors.md section 3, "gamma = 1/beta for the summed form").
The paper requires ``gamma > 1``; the default ``gamma = 10`` is the raw ``beta = 0.1`` that the
authors tried. Trained with Adam (lr 1e-3).

Pixels are in [0, 1]. Tensors are ``(B, C, S, S)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

#: Conv width of every encoder / decoder layer.
VAE_WIDTH = 32
#: Luminance weights (ITU-R BT.709, as ``skimage.color.rgb2gray``) for grey models.
LUMINANCE = (0.2125, 0.7154, 0.0721)


class VariationalAutoencoder(nn.Module):
    """The VAE of seed paper 2; ``encode`` gives the (deterministic) mean descriptor."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.arch != "vae":
            raise ValueError(f"{config.arch} is not the vae architecture")
        self.config = config
        c, w = config.channels, VAE_WIDTH
        self.cells = config.patch_size // 8
        flat = w * self.cells**2
        # Conv2d(padding=1) is the papers' "zero-pad 1, then 3x3 conv".
        self.encoder = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(1),
        )
        self.fc_mean = nn.Linear(flat, config.latent)
        self.fc_logvar = nn.Linear(flat, config.latent)
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, flat),
            nn.Unflatten(1, (w, self.cells, self.cells)),
            nn.ConvTranspose2d(w, w, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(w, w, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(w, c, 2, stride=2), nn.Sigmoid(),
        )

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) patches -> mean (B, L) and log-variance (B, L) of q(z | x)."""
        h = self.encoder(x)
        return self.fc_mean(h), self.fc_logvar(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) patches -> (B, L) descriptors: the posterior means (deterministic)."""
        return self.fc_mean(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) latent codes -> (B, C, S, S) patches in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, S, S) patches -> reconstruction (B, C, S, S), mean (B, L), log-variance (B, L).

        In training mode ``z = mean + eps * exp(logvar / 2)`` with ``eps ~ N(0, I)`` (the
        reparametrisation; draws from torch's default generator); in eval mode ``z = mean``.
        """
        mean, logvar = self.encode_distribution(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if self.training else mean
        return self.decode(z), mean, logvar

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the reconstruction is compared with: the input patch itself."""
        return x


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, 3|1, S, S) patches -> (B, ``channels``, S, S): RGB to grey by BT.709 luminance, grey to
    RGB by replication; unchanged when the channel count already matches."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 3 and channels == 1:
        weights = torch.tensor(LUMINANCE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    if have == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    raise ValueError(f"cannot convert {have}-channel patches to {channels} channels")


def vae_loss_terms(model: VariationalAutoencoder, x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, S, S) patches -> (reconstruction, KL), each a scalar averaged over the batch.

    reconstruction: binary cross-entropy summed over the pixels of a patch.
    KL: ``KL(N(mean, exp(logvar)) || N(0, I))`` summed over the latent.
    """
    recon, mean, logvar = model(x)
    batch = x.shape[0]
    bce = F.binary_cross_entropy(recon, model.target(x), reduction="sum") / batch
    kl = -0.5 * torch.sum(1.0 + logvar - mean.pow(2) - logvar.exp()) / batch
    return bce, kl


def vae_loss(model: VariationalAutoencoder, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma * reconstruction + KL`` (see :func:`vae_loss_terms`); gamma = 1 / beta."""
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    bce, kl = vae_loss_terms(model, x)
    return gamma * bce + kl


@torch.no_grad()
def invert(model: VariationalAutoencoder, descriptors: torch.Tensor) -> torch.Tensor:
    """(N, L) descriptors (posterior means) -> (N, C, S, S) patches in [0, 1], decoded.

    Runs on the model's device; the model is not switched out of its current mode.
    """
    if getattr(model.config, "arch", None) != "vae":
        raise ValueError(f"only a vae descriptor can be inverted, not {model.config.arch}")
    device = next(model.parameters()).device
    return model.decode(descriptors.to(device=device, dtype=next(model.parameters()).dtype))
