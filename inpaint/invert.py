"""``inpaint invert``: decode VAE descriptors back to patches and show how faithful they are.

Random patches of an image are encoded to descriptors (the posterior means) and decoded back; a
PNG grid shows originals above their reconstructions (nearest-neighbour upscaled so that 16-px
patches are visible) and the mean reconstruction PSNR / SSIM of those patches is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from descriptor import CheckpointError, invert, load_checkpoint, to_channels

from .device import choose_device
from .dtypes import from_float, to_float
from .errors import InpaintError, OutputExistsError
from .raster import read_raster, write_raster

#: Grid layout: patches per row, gap between cells and between (original, reconstruction) pairs.
GRID_COLUMNS = 8
CELL_GAP = 2
PAIR_GAP = 8
#: Cells are upscaled (nearest neighbour) by an integer factor to about this side.
CELL_SIDE = 64


@dataclass
class InversionResult:
    """What one inversion produced: the grid file and the mean reconstruction quality."""

    output: Path
    count: int
    patch_size: int
    channels: int
    psnr: float
    ssim: float


def sample_patches(image: np.ndarray, size: int, count: int, seed: int) -> np.ndarray:
    """``count`` random ``size`` x ``size`` crops (seeded) of ``image`` (H, W, C) ->
    (N, C, S, S)."""
    height, width = image.shape[:2]
    if height < size or width < size:
        raise InpaintError(f"image of {width}x{height} pixels is smaller than the descriptor's "
                           f"{size}x{size} patches")
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, height - size + 1, size=count)
    lefts = rng.integers(0, width - size + 1, size=count)
    crops = np.stack([image[t:t + size, x:x + size] for t, x in zip(tops, lefts)])
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2))


def patch_grid(originals: np.ndarray, reconstructions: np.ndarray,
               columns: int = GRID_COLUMNS) -> np.ndarray:
    """(N, C, S, S) originals and reconstructions in [0, 1] -> (H, W, 3) float grid on white.

    Rows come in pairs: a row of originals above the row of their reconstructions. Cells are
    upscaled by nearest neighbour (integer factor, to about ``CELL_SIDE`` px).
    """
    n, _, size, _ = originals.shape
    scale = max(1, CELL_SIDE // size)
    cell = size * scale
    columns = max(1, min(columns, n))
    pairs = -(-n // columns)
    height = pairs * 2 * cell + pairs * CELL_GAP + (pairs - 1) * PAIR_GAP
    width = columns * cell + (columns - 1) * CELL_GAP
    grid = np.ones((height, width, 3), dtype=np.float32)

    def paste(patch: np.ndarray, top: int, left: int) -> None:
        rgb = np.repeat(patch, 3, axis=0) if patch.shape[0] == 1 else patch  # (3, S, S)
        big = rgb.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
        grid[top:top + cell, left:left + cell] = big

    for k in range(n):
        pair, col = divmod(k, columns)
        top = pair * (2 * cell + CELL_GAP + PAIR_GAP)
        left = col * (cell + CELL_GAP)
        paste(originals[k], top, left)
        paste(reconstructions[k], top + cell + CELL_GAP, left)
    return grid


def reconstruction_quality(originals: np.ndarray, reconstructions: np.ndarray
                           ) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over patches (N, C, S, S) in [0, 1], data range 1."""
    psnrs, ssims = [], []
    for a, b in zip(originals, reconstructions):
        a, b = a.transpose(1, 2, 0).astype(np.float64), b.transpose(1, 2, 0).astype(np.float64)
        psnrs.append(peak_signal_noise_ratio(a, b, data_range=1.0))
        ssims.append(structural_similarity(a, b, data_range=1.0, channel_axis=2))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def invert_patches(
    checkpoint: str,
    image: str,
    out: str | Path,
    *,
    count: int = 32,
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
) -> InversionResult:
    """Encode ``count`` random patches of ``image`` (path or ``skimage:NAME``) with the VAE of
    ``checkpoint``, decode the descriptors and write the originals / reconstructions grid to
    ``out`` (a PNG, atomically; an existing file only with ``force``).

    Raises ``CheckpointError`` for a checkpoint that is not a vae, ``InpaintError`` (or a
    subclass) for a bad image, count or output.
    """
    out = Path(out)
    if count < 1:
        raise InpaintError(f"count must be at least 1, got {count}")
    if out.suffix.lower() != ".png":
        raise InpaintError(f"the inversion grid is a PNG: name the output *.png, not {out.name}")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force to overwrite")
    if not out.parent.is_dir():
        raise InpaintError(f"output folder {out.parent} does not exist")
    dev = choose_device(device)
    ck = load_checkpoint(checkpoint, device=dev)
    if ck.arch != "vae":
        raise CheckpointError(f"{checkpoint} holds a {ck.arch} model: only a vae descriptor can "
                              "be inverted")
    size, channels = ck.config.patch_size, ck.config.channels
    colour = to_float(read_raster(image).colour)  # (H, W, 1|3) in [0, 1]
    crops = torch.from_numpy(sample_patches(colour, size, count, seed))
    originals = to_channels(crops, channels).to(dev)
    with torch.no_grad():
        descriptors = ck.model.encode(originals)  # (N, latent)
        reconstructions = invert(ck.model, descriptors)  # (N, C, S, S)
    orig = originals.cpu().numpy()
    recon = reconstructions.float().cpu().numpy()
    psnr, ssim = reconstruction_quality(orig, recon)
    grid = from_float(patch_grid(orig, recon), np.uint8)
    profile = {"driver": "PNG", "dtype": "uint8", "count": 3, "height": grid.shape[0],
               "width": grid.shape[1]}
    write_raster(out, grid, profile, force=force)
    return InversionResult(output=out, count=count, patch_size=size, channels=channels,
                           psnr=psnr, ssim=ssim)
