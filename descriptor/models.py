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

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Conv channels (conv1, conv2, conv3) of each IR architecture; conv3's width is the IR's.
IR_ARCH_CHANNELS: dict[str, tuple[int, int, int]] = {"v32": (16, 8, 8), "v128": (32, 32, 32)}
#: Receptive-field radius of three stacked 3x3 convolutions.
RF_RADIUS = 3
#: Side of the max-pooling cell that turns an IR window into a descriptor.
POOL_CELL = 8
PADDING_MODES = ("same", "valid_context")
ARCHITECTURES = ("v32", "v128", "chen", "vae")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an untrained model.

    ``patch_size`` is the patch the model is trained on (a multiple of 8 for the IR models).
    ``padding_mode``: ``same`` pads every conv with zeros (paper-faithful; an IR window is then only
    close to the patch's own encoding); ``valid_context`` uses unpadded convs on the patch plus a
    3-pixel context ring, so that pooling an IR window equals encoding that crop exactly.
    ``channels`` (1 = grey, 3 = RGB; only the vae may be grey) and ``latent`` (the vae's code
    size) were added later with defaults, so configs saved before them still rebuild.
    """

    arch: str
    padding_mode: str = "valid_context"
    patch_size: int = 16
    channels: int = 3
    latent: int = 128

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"unknown padding mode {self.padding_mode!r}; "
                             f"expected {PADDING_MODES}")
        if self.arch == "chen" and self.patch_size != 16:
            raise ValueError("the chen baseline is defined for 16x16 patches only")
        if self.patch_size <= 0 or self.patch_size % POOL_CELL:
            raise ValueError(f"patch_size must be a positive multiple of {POOL_CELL}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.latent < 1:
            raise ValueError(f"latent must be positive, got {self.latent}")
        if self.arch != "vae" and (self.channels != 3 or self.latent != 128):
            raise ValueError(f"channels and latent apply to the vae only; {self.arch} is RGB "
                             "with its own code size")

    @property
    def has_ir(self) -> bool:
        return self.arch in IR_ARCH_CHANNELS

    @property
    def ir_channels(self) -> int:
        return IR_ARCH_CHANNELS[self.arch][-1] if self.has_ir else 0

    @property
    def context(self) -> int:
        """Pixels of context needed on each side of a patch to encode it."""
        return RF_RADIUS if (self.has_ir and self.padding_mode == "valid_context") else 0

    @property
    def input_size(self) -> int:
        """Side of the crop the model takes for one patch (patch plus context ring)."""
        return self.patch_size + 2 * self.context

    @property
    def descriptor_dim(self) -> int:
        if self.arch == "vae":
            return self.latent
        if not self.has_ir:
            return 128
        return (self.patch_size // POOL_CELL) ** 2 * self.ir_channels

    def to_dict(self) -> dict:
        return asdict(self)


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
        from .vae import VariationalAutoencoder  # vae.py imports ModelConfig from here

        return VariationalAutoencoder(config)
    return ChenAutoencoder(config)
