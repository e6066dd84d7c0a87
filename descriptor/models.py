"""Autoencoder architectures whose codes serve as patch descriptors.

* ``v32`` / ``v128`` (Zizakic et al. 2019): three 3x3 convolutions, stride 1, ReLU, no pooling
  between them, then one 8x8 max-pool. The conv stack is what runs once over a whole image (the
  intermediate representation, IR); a patch descriptor is the 8x8 max-pool of an IR window.
* ``chen`` (Chen, Rottensteiner & Heipke 2015): a fully connected sparse autoencoder,
  768 -> 128 sigmoid -> 768, used as a baseline. It has no IR: every patch is encoded on its own.
* ``vae`` (Zizakic & Pizurica, seed paper 2): a variational autoencoder whose posterior mean is
  the descriptor and whose decoder inverts descriptors (``descriptor/vae.py``). No IR either.

Pixels are RGB in [0, 1] (the vae may also be grey). Tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import (  # noqa: F401  (re-exported: the architecture constants' old home)
    ARCHITECTURES,
    IR_ARCH_CHANNELS,
    PADDING_MODES,
    POOL_CELL,
    RF_RADIUS,
    ModelConfig,
)
from .vae import VariationalAutoencoder


def _conv_stack(channels: tuple[int, int, int], padding: int) -> nn.Sequential:
    c1, c2, c3 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, padding=padding), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=padding), nn.ReLU(),
        nn.Conv2d(c2, c3, 3, padding=padding), nn.ReLU(),
    )


class ConvAutoencoder(nn.Module):
    """v32 / v128 convolutional autoencoder.

    ``encoder`` is the conv stack (the IR); the decoder mirrors the single 8x8 pool with three
    nearest x2 upsamplings and ends with a sigmoid. The decoder only serves training.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not config.has_ir:
            raise ValueError(f"{config.arch} is not a convolutional IR architecture")
        self.config = config
        c1, c2, c3 = IR_ARCH_CHANNELS[config.arch]
        self.encoder = _conv_stack((c1, c2, c3), padding=1 if config.padding_mode == "same" else 0)
        self.decoder = nn.Sequential(
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
            nn.Conv2d(c1, 3, 3, padding=1), nn.Sigmoid(),
        )

    def code(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops with S = ``config.input_size`` -> (B, C, P/8, P/8) pooled code."""
        return F.max_pool2d(self.encoder(crops), POOL_CELL)

    def encode(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops -> (B, D) descriptors, flattened in (channel, row, col) order."""
        return self.code(crops).flatten(1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) crops -> (B, 3, P, P) reconstruction of the central patch."""
        return self.decoder(self.code(crops))

    def target(self, crops: torch.Tensor) -> torch.Tensor:
        """The part of the input crop that the reconstruction is compared with."""
        c = self.config.context
        return crops[..., c:crops.shape[-2] - c, c:crops.shape[-1] - c] if c else crops


class ChenAutoencoder(nn.Module):
    """Sparse fully connected autoencoder of Chen et al. (2015): 768 -> 128 sigmoid -> 768."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n_in = 3 * config.patch_size**2
        self.encoder = nn.Linear(n_in, 128)
        self.decoder = nn.Linear(128, n_in)
        # UFLDL initialisation: uniform in +-sqrt(6 / (hidden + visible + 1)), zero biases.
        bound = (6.0 / (128 + n_in + 1)) ** 0.5
        for layer in (self.encoder, self.decoder):
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)

    def encode(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, 3, 16, 16) patches -> (B, 128) hidden activations."""
        return torch.sigmoid(self.encoder(patches.flatten(1)))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(patches)
        return torch.sigmoid(self.decoder(hidden)).view_as(patches)

    def target(self, patches: torch.Tensor) -> torch.Tensor:
        return patches


def build_model(config: ModelConfig) -> nn.Module:
    """An untrained model for ``config``."""
    if config.has_ir:
        return ConvAutoencoder(config)
    if config.arch == "vae":
        return VariationalAutoencoder(config)
    return ChenAutoencoder(config)
