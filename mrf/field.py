"""The one interface between the MRF and patch descriptors, and the raw-pixel implementation.

A *patch field* describes patches of one image as vectors whose squared Euclidean distance is
the dissimilarity the MRF uses. ``describe(tops, lefts)`` gives the plain descriptors of the
patches with those top-left corners; ``describe(tops, lefts, mask_tops, mask_lefts)`` describes
them under the field's exclusion mask taken at the *mask* corners, which is how a candidate is
compared with a partly missing node on the node's known support only.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from patches import patch_view


@runtime_checkable
class PatchField(Protocol):
    patch_size: int
    dim: int

    def describe(self, tops, lefts, mask_tops=None, mask_lefts=None) -> torch.Tensor:
        """(N,) corners [, (N,) mask corners] -> (N, dim) float32 tensor."""
        ...


def as_long(values, device) -> torch.Tensor:
    if torch.is_tensor(values):
        return values.to(device=device, dtype=torch.long)
    return torch.as_tensor(np.asarray(values), dtype=torch.long, device=device)


class PixelField:
    """Raw pixels as the descriptor (pixel mode): distance = SSD over the node's known pixels.

    image: (H, W, 3) float32 in [0, 1]; hole: (H, W) bool, True = missing.
    """

    def __init__(self, image: np.ndarray, hole: np.ndarray, patch_size: int,
                 device: str | torch.device = "cpu", chunk: int = 8192):
        self.device = torch.device(device)
        pixels = np.ascontiguousarray(image, dtype=np.float32)
        self.image = torch.from_numpy(pixels).permute(2, 0, 1).to(self.device)
        self.exclusion = torch.as_tensor(np.asarray(hole, dtype=bool), device=self.device)
        self.patch_size = patch_size
        self.dim = 3 * patch_size * patch_size
        self.chunk = chunk

    def describe(self, tops, lefts, mask_tops=None, mask_lefts=None) -> torch.Tensor:
        t, l = as_long(tops, self.device), as_long(lefts, self.device)
        p = self.patch_size
        # (C, H, W) image -> patches (n, P, P, C) -> (n, C, P, P): descriptors in C, P, P order
        pixels, exclusion = patch_view(self.image.permute(1, 2, 0), p), patch_view(
            self.exclusion, p)
        out = []
        for s in range(0, len(t), self.chunk):
            patches = pixels[t[s:s + self.chunk], l[s:s + self.chunk]].permute(0, 3, 1, 2)
            if mask_tops is not None:
                mt = as_long(mask_tops[s:s + self.chunk], self.device)
                ml = as_long(mask_lefts[s:s + self.chunk], self.device)
                patches = patches.masked_fill(exclusion[mt, ml][:, None], 0.0)
            out.append(patches.flatten(1))
        return torch.cat(out) if out else torch.empty((0, self.dim), device=self.device)

    @property
    def nbytes(self) -> int:
        return self.image.element_size() * self.image.nelement() + self.exclusion.nelement()
