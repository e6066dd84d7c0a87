"""Descriptor fields: batched, optionally masked, patch descriptors over one image.

A field answers ``describe(tops, lefts, mask_tops, mask_lefts)``: the descriptors of the patches
with top-left corners (tops, lefts); when mask corners are given, every patch is described under
the exclusion mask found at the mask corner instead (a node's missing area applied to a candidate,
so that both sides are seen on the same support). This is the interface the MRF uses; it never
needs to know whether descriptors come from an IR, a per-patch encoder or raw pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from patches import extract_patches

from .config import RF_RADIUS
from .extract import DenseField, _as_index, descriptor_dim, gather_windows, pool_windows
from .ir import as_image_tensor, compute_ir
from .models import ChenAutoencoder, ConvAutoencoder


def dilate_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(H, W) bool mask dilated by a (2r+1)^2 square: the IR positions whose receptive field
    touches the mask."""
    if radius == 0:
        return mask.bool()
    k = 2 * radius + 1
    return F.max_pool2d(mask[None, None].float(), k, stride=1, padding=radius)[0, 0] > 0


class _MaskedField:
    """Shared bookkeeping: patch size, device, exclusion windows."""

    patch_size: int
    exclusion: torch.Tensor  # (H, W) bool, True = not to be used by descriptors

    def _exclusion_windows(self, mask_tops, mask_lefts) -> torch.Tensor:
        device = self.exclusion.device
        t, l = _as_index(mask_tops, device), _as_index(mask_lefts, device)
        return extract_patches(self.exclusion, t, l, self.patch_size)


class IRField(_MaskedField):
    """Descriptors pooled from the IR of one image (v32 / v128).

    image: (H, W, 3) float in [0, 1] with holes pre-filled; hole: (H, W) bool, True = missing.
    The IR is computed once; IR positions whose receptive field touches the hole (the hole
    dilated by 3 px) are excluded from a masked descriptor's max.
    """

    def __init__(
        self,
        model: ConvAutoencoder,
        image: np.ndarray,
        hole: np.ndarray,
        patch_size: int,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        tile: int = 512,
        progress: bool = False,
    ):
        self.patch_size = patch_size
        self.device = torch.device(device)
        self.ir = compute_ir(model.encoder, image, model.config.padding_mode, device=self.device,
                             dtype=dtype, tile=tile, progress=progress)
        hole_t = torch.as_tensor(np.asarray(hole, dtype=bool), device=self.device)
        self.exclusion = dilate_mask(hole_t, RF_RADIUS)
        self.dim = descriptor_dim(self.ir.shape[0], patch_size)
        self._dense: DenseField | None = None

    def describe(self, tops, lefts, mask_tops=None, mask_lefts=None) -> torch.Tensor:
        if mask_tops is None:
            if self._dense is None:
                self._dense = DenseField(self.ir, self.patch_size)
            return self._dense.at(tops, lefts)
        exclude = self._exclusion_windows(mask_tops, mask_lefts)
        return pool_windows(self.ir, tops, lefts, self.patch_size, exclude)

    @property
    def nbytes(self) -> int:
        """Bytes held: the IR and the exclusion mask."""
        return self.ir.element_size() * self.ir.nelement() + self.exclusion.nelement()


class PatchEncoderField(_MaskedField):
    """Descriptors by encoding every patch on its own (the Chen et al. baseline: no IR exists).

    Masked pixels are zeroed before encoding, in the node's mask, as in the papers' protocol.
    """

    def __init__(
        self,
        model: ChenAutoencoder,
        image: np.ndarray,
        hole: np.ndarray,
        patch_size: int = 16,
        *,
        device: str | torch.device = "cpu",
        chunk: int = 8192,
    ):
        if patch_size != model.config.patch_size:
            raise ValueError(f"the {model.config.arch} descriptor needs "
                             f"{model.config.patch_size}-px"
                             f" patches, not {patch_size}")
        self.patch_size = patch_size
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.image = as_image_tensor(image).to(self.device)
        self.exclusion = torch.as_tensor(np.asarray(hole, dtype=bool), device=self.device)
        self.dim = model.config.descriptor_dim
        self.chunk = chunk

    @torch.no_grad()
    def describe(self, tops, lefts, mask_tops=None, mask_lefts=None) -> torch.Tensor:
        t, l = _as_index(tops, self.device), _as_index(lefts, self.device)
        out = []
        for s in range(0, len(t), self.chunk):
            patches = gather_windows(self.image, t[s:s + self.chunk], l[s:s + self.chunk],
                                     self.patch_size)
            if mask_tops is not None:
                excl = self._exclusion_windows(mask_tops[s:s + self.chunk],
                                               mask_lefts[s:s + self.chunk])
                patches = patches.masked_fill(excl[:, None], 0.0)
            out.append(self.model.encode(patches))
        return torch.cat(out) if out else torch.empty((0, self.dim), device=self.device)

    @property
    def nbytes(self) -> int:
        return self.image.element_size() * self.image.nelement() + self.exclusion.nelement()
