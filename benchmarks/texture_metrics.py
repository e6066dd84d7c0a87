"""Fidelity and texture measures of an inpainted image against its ground truth.

Two axes (DESIGN.md section 7): fidelity (hole-PSNR over the missing pixels, SSIM over the whole
image) and texture (hole gradient ratio: mean Sobel gradient magnitude of the grey image over the
3x3-dilated hole, result / truth; 1 = texture kept, < 1 = smoothed, > 1 = noisier than the
truth). Every measure is also split by loss type: *crack* pixels are missing pixels within 2 px
of known paint, *lacuna* pixels are the rest. A third measure, the lattice echo of lacunae
(``lattice_echo``), catches paint recurring at the MRF's lattice step (a grid of dots), which
neither axis sees.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

#: Missing pixels at most this far (Euclidean, px) from known paint count as crack pixels.
CRACK_DISTANCE = 2.0
LOSS_TYPES = ("crack", "lacuna")

#: The MRF's default lattice step (px): neighbouring nodes that copy one source (or sources
#: shifted unlike the nodes) make the same paint recur every 3 px, a faint grid of dots: the
#: defect ``lattice_echo`` measures.
LATTICE_STEP = 3

#: Pixel pairs a region needs for ``lattice_echo`` (fewer: NaN).
MIN_ECHO_PAIRS = 50


def loss_types(mask: np.ndarray) -> dict[str, np.ndarray]:
    """(H, W) bool mask -> {"crack": ..., "lacuna": ...} (H, W) bool partitions of the mask."""
    distance = ndimage.distance_transform_edt(mask)   # to the nearest known pixel
    crack = mask & (distance <= CRACK_DISTANCE)
    return {"crack": crack, "lacuna": mask & ~crack}


def grey_gradient(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) Sobel gradient magnitude of the grey image (0-255 scale)."""
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))


def hole_psnr(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (8-bit peak) over the pixels of ``mask``; NaN when the mask is empty."""
    if not mask.any():
        return float("nan")
    err = result[mask].astype(np.float64) - truth[mask].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(err**2), 1e-12)))


def gradient_ratio(result_gradient: np.ndarray, truth_gradient: np.ndarray,
                   region: np.ndarray) -> float:
    """Mean gradient magnitude over the 3x3-dilated ``region``, result / truth (NaN if empty)."""
    grown = ndimage.binary_dilation(region, structure=np.ones((3, 3), bool))
    if not grown.any():
        return float("nan")
    return float(result_gradient[grown].mean() / max(truth_gradient[grown].mean(), 1e-12))


def _lag_correlation(detail: np.ndarray, region: np.ndarray, lag: int, axis: int) -> float:
    """Correlation of ``detail`` with itself ``lag`` px further along ``axis``, over the pixel
    pairs both in ``region``; NaN below ``MIN_ECHO_PAIRS`` pairs."""
    ahead = (slice(lag, None), slice(None)) if axis == 0 else (slice(None), slice(lag, None))
    behind = (slice(None, -lag), slice(None)) if axis == 0 else (slice(None), slice(None, -lag))
    pairs = region[ahead] & region[behind]
    if pairs.sum() < MIN_ECHO_PAIRS:
        return float("nan")
    return float(np.corrcoef(detail[behind][pairs], detail[ahead][pairs])[0, 1])


def lattice_echo(result: np.ndarray, truth: np.ndarray, region: np.ndarray,
                 step: int = LATTICE_STEP) -> float:
    """How much more the fill repeats itself at the lattice ``step`` than the truth does.

    Per image: the grey detail (grey minus its 2-px Gaussian) correlated with itself ``step``
    px further, minus the mean of its correlations at ``step`` - 1 and ``step`` + 1 (natural
    paint decorrelates smoothly with distance; a pattern of period ``step`` correlates more
    at ``step`` than around it), averaged over both axes, over pixel pairs both in
    ``region``. Returns result's minus truth's: 0 = no more periodic at the lattice step than
    the truth, > 0 = paint recurring at the lattice period (tests/test_texture_metrics.py:
    about 0.25 when runs of three cells copy one source, 0.08 when every cell copies its own).
    NaN when the region is too small. It compares fills of like texture only: the
    correlation of a smooth fill's faint detail falls off concavely with distance, which also
    scores above 0 (biharmonic 0.03 on unseen.py's crops, where FSR_FAST scores -0.01).
    """
    def echo(image):
        grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        detail = grey - ndimage.gaussian_filter(grey, 2.0)
        return np.mean([_lag_correlation(detail, region, step, axis)
                         - 0.5 * (_lag_correlation(detail, region, step - 1, axis)
                                  + _lag_correlation(detail, region, step + 1, axis))
                         for axis in (0, 1)])

    return float(echo(result) - echo(truth))


def score(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All measures of ``result`` (H, W, 3) uint8 against ``truth``; known pixels of the result
    are replaced by the truth first, so no method is judged outside the hole."""
    result = np.where(mask[:, :, None], result, truth)
    g_result, g_truth = grey_gradient(result), grey_gradient(truth)
    out = {"hole_psnr": hole_psnr(result, truth, mask),
           "ssim": float(structural_similarity(truth, result, channel_axis=-1, data_range=255)),
           "grad_ratio": gradient_ratio(g_result, g_truth, mask)}
    types = loss_types(mask)
    for kind, region in types.items():
        out[f"{kind}_psnr"] = hole_psnr(result, truth, region)
        out[f"{kind}_grad_ratio"] = gradient_ratio(g_result, g_truth, region)
        out[f"{kind}_share"] = float(region.sum() / max(mask.sum(), 1))
    out["lacuna_echo"] = lattice_echo(result, truth, types["lacuna"])
    return out
