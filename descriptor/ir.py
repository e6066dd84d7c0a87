"""The intermediate representation (IR): the encoder's conv stack run once over a whole image.

The image is processed in tiles that each carry a halo equal to the receptive-field radius, so the
tiled IR equals the untiled one (to float rounding) while peak memory stays bounded by the tile.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import RF_RADIUS


def reflect_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices ``start..stop-1`` folded into ``[0, size)`` by mirror reflection (no edge repeat).

    Matches ``numpy.pad(mode="reflect")`` for overhangs shorter than ``size``.
    """
    idx = np.abs(np.arange(start, stop))
    period = 2 * (size - 1) if size > 1 else 1
    idx = idx % period
    return np.where(idx >= size, period - idx, idx)


def as_image_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) array or (3, H, W) tensor in [0, 1] -> float32 (3, H, W) tensor (no copy if
    possible)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    return image.float()


@torch.no_grad()
def compute_ir(
    encoder: nn.Module,
    image: np.ndarray | torch.Tensor,
    padding_mode: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    tile: int = 512,
    progress: bool = False,
) -> torch.Tensor:
    """Run ``encoder`` (the conv stack) over ``image``; returns the IR, (C, H, W), on ``device``.

    ``padding_mode='valid_context'``: the encoder's convs are unpadded and the image is treated as
    mirror-padded by the receptive-field radius, so IR[:, i, j] depends on the 7x7 neighbourhood of
    pixel (i, j) and the IR of a window equals encoding the window plus its 3-pixel context.
    ``padding_mode='same'``: the convs zero-pad; a tile is cut with a halo clipped to the image,
    so the image border sees exactly the zero padding an untiled run would see.
    """
    img = as_image_tensor(image)
    _, height, width = img.shape
    if padding_mode == "valid_context" and min(height, width) <= RF_RADIUS:
        raise ValueError(f"image of {height}x{width} pixels is too small for the IR")
    if tile < 8:
        raise ValueError("tile must be at least 8 pixels")
    device = torch.device(device)
    encoder = encoder.to(device).eval()
    channels = _out_channels(encoder)
    # channels-last storage: (C, H, W) indexing over (H, W, C) memory, so that gathering the
    # C-vector of a pixel (window pooling) reads contiguous memory
    ir = torch.empty((height, width, channels), dtype=dtype, device=device).permute(2, 0, 1)
    halo = RF_RADIUS
    starts = [(y, x) for y in range(0, height, tile) for x in range(0, width, tile)]
    for y0, x0 in tqdm(starts, desc="IR tiles", disable=not progress or len(starts) < 2,
                       leave=False):
        y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
        if padding_mode == "valid_context":
            rows = torch.from_numpy(reflect_indices(y0 - halo, y1 + halo, height))
            cols = torch.from_numpy(reflect_indices(x0 - halo, x1 + halo, width))
            crop = img[:, rows][:, :, cols]
            out = encoder(crop.unsqueeze(0).to(device))[0]
        else:
            cy0, cx0 = max(0, y0 - halo), max(0, x0 - halo)
            cy1, cx1 = min(height, y1 + halo), min(width, x1 + halo)
            out = encoder(img[:, cy0:cy1, cx0:cx1].unsqueeze(0).to(device))[0]
            out = out[:, y0 - cy0:y0 - cy0 + (y1 - y0), x0 - cx0:x0 - cx0 + (x1 - x0)]
        ir[:, y0:y1, x0:x1] = out.to(dtype)
    return ir


def _out_channels(encoder: nn.Module) -> int:
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("encoder has no convolution layers")
    return convs[-1].out_channels
