"""``ModelConfig``: what rebuilds an untrained descriptor model, and the architecture constants.

Plain data without torch, so that ``models.py`` and ``vae.py`` both import it (no cycle) and a
caller can validate a configuration without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
