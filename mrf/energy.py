"""MRF energies: masked pixel SSD for unaries, overlap-strip SSD for pairwise terms.

Pixels are float32 RGB in [0, 1]; SSDs are summed over channels (the authors' units, in which
their thresholds such as T_unc = 3.47 are expressed).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from patches import extract_patches, patch_view


def masked_ssd(image: np.ndarray, hole: np.ndarray, node_tops: np.ndarray, node_lefts: np.ndarray,
               label_tops: np.ndarray, label_lefts: np.ndarray, patch: int,
               label_patches: np.ndarray | None = None, chunk: int = 128) -> np.ndarray:
    """SSD over each node's known pixels between the node patch and each of its labels.

    node_*: (N,); label_*: (N, K); label_patches: the (N, K, P, P, C) label pixels when already
    cut -> (N, K) float64.
    """
    out = np.empty(label_tops.shape, dtype=np.float64)
    bands = image.shape[2] if image.ndim == 3 else 1
    pixels, holes = patch_view(image, patch), patch_view(hole, patch)
    for s in range(0, len(node_tops), chunk):
        e = s + chunk
        node = pixels[node_tops[s:e], node_lefts[s:e]]                          # (n, P, P, C)
        n = len(node)
        known = ~holes[node_tops[s:e], node_lefts[s:e]]                         # (n, P, P)
        labels = label_patches[s:e] if label_patches is not None else \
            pixels[label_tops[s:e], label_lefts[s:e]]                          # (n, K, P, P, C)
        diff = labels.reshape(n, labels.shape[1], -1) - node.reshape(n, 1, -1)  # (n, K, D)
        np.square(diff, out=diff)
        # the known-pixel sum as a batched mat-vec: much faster than reducing the short
        # channel axis and then the pixels
        weights = np.repeat(known.reshape(n, -1), bands, axis=1).astype(diff.dtype)
        out[s:e] = np.matmul(diff, weights[:, :, None])[..., 0]
    return out


def strip_bounds(offset: tuple[int, int], patch: int) -> tuple[tuple[int, int, int, int],
                                                             tuple[int, int, int, int]]:
    """Overlap of two patches whose corners differ by ``offset`` = (dy, dx), dy, dx >= 0.

    Returns (row0, col0, height, width) of the overlap in the first and in the second patch.
    """
    dy, dx = offset
    h, w = patch - dy, patch - dx
    return (dy, dx, h, w), (0, 0, h, w)


def strip_ssd(first: np.ndarray, second: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """SSD on the overlap strip of patches placed at two nodes ``offset`` = (dy, dx) apart.

    first: (..., A, P, P, C) patches at the upper/left node; second: (..., B, P, P, C) at the
    other -> (..., A, B) float32.
    """
    patch = first.shape[-2]
    (r1, c1, h, w), (r2, c2, _, _) = strip_bounds(offset, patch)
    # the strips are copied by the reshape (they are not contiguous); no second copy when the
    # pixels are float32 already
    a = first[..., r1:r1 + h, c1:c1 + w, :].reshape(*first.shape[:-3], -1)
    b = second[..., r2:r2 + h, c2:c2 + w, :].reshape(*second.shape[:-3], -1)
    a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    sq_a = (a * a).sum(-1)[..., :, None]
    sq_b = (b * b).sum(-1)[..., None, :]
    cross = np.matmul(a, np.swapaxes(b, -1, -2))
    return np.maximum(sq_a + sq_b - 2.0 * cross, 0.0)


def overlap_ssd(image: np.ndarray, first_tops: np.ndarray, first_lefts: np.ndarray,
                second_tops: np.ndarray, second_lefts: np.ndarray, offset: tuple[int, int],
                patch: int) -> np.ndarray:
    """SSD on the overlap strip between labels placed at two neighbouring nodes.

    first_*: (E, A) labels of the upper/left node; second_*: (E, B) labels of the node at
    ``offset`` from it -> (E, A, B) float32: SSD(label a at first node, label b at second).
    """
    return strip_ssd(extract_patches(image, first_tops, first_lefts, patch),
                     extract_patches(image, second_tops, second_lefts, patch), offset)


def edge_pairwise(image: np.ndarray, edges: np.ndarray, offsets: np.ndarray,
                  label_tops: np.ndarray, label_lefts: np.ndarray, patch: int,
                  chunk: int = 4096) -> np.ndarray:
    """(E, L, L) overlap SSDs for every edge (a, b): entry [e, x, y] = SSD(x at a, y at b)."""
    n_edges, n_labels = len(edges), label_tops.shape[1]
    out = np.empty((n_edges, n_labels, n_labels), dtype=np.float32)
    for off in np.unique(offsets, axis=0):
        sel = np.flatnonzero((offsets == off).all(1))
        for s in range(0, len(sel), chunk):
            e = sel[s:s + chunk]
            a, b = edges[e, 0], edges[e, 1]
            out[e] = overlap_ssd(image, label_tops[a], label_lefts[a], label_tops[b],
                                 label_lefts[b], tuple(off), patch)
    return out


def uncertainty_threshold(match_threshold: float, patch: int) -> float:
    """T_unc = 4.6854 exp(-2 Tb) for 13x13 patches (authors' code), scaled by patch area."""
    return 4.6854 * np.exp(-2.0 * match_threshold) * (patch * patch) / 169.0


def calibrate_scale(field_distance: np.ndarray, pixel_ssd: np.ndarray) -> float:
    """Factor taking field distances to pixel-SSD units: ratio of medians over sampled pairs.

    Descriptor distances live on their own scale; the thresholds and temperatures of the MRF are
    in pixel-SSD units, so descriptor unaries are multiplied by this per-image factor.
    """
    fd = np.median(field_distance)
    return float(np.median(pixel_ssd) / fd) if fd > 0 else 1.0


def detail_energy(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(H, W) squared detail: the image minus its Gaussian blur of ``sigma``, summed over
    channels (the texture a smooth fill lacks). Image (H, W, C) float in [0, 1]."""
    blurred = ndimage.gaussian_filter(image.astype(np.float64), (sigma, sigma, 0))
    return ((image - blurred) ** 2).sum(axis=2)


def texture_unary(image: np.ndarray, hole: np.ndarray, node_tops: np.ndarray,
                  node_lefts: np.ndarray, missing: np.ndarray, label_tops: np.ndarray,
                  label_lefts: np.ndarray, patch: int, sigma: float = 1.0) -> np.ndarray:
    """Texture term of the unary, (N, K), in pixel-SSD units.

    The masked SSD says nothing about a node's missing pixels, and a query pre-filled by a
    smooth guess favours smooth sources: lacunae then receive smudges. The paint around a
    node tells how much fine detail it should hold: the detail energy of the known pixels
    near it (normalised Gaussian average of ``detail_energy``, width ~ a patch). A label whose
    RMS detail s differs from the expected e is charged missing * (s - e)^2, a lower bound of
    the SSD its missing pixels would have against a truth of RMS detail e.
    """
    energy = detail_energy(image, sigma)
    known = (~hole).astype(np.float64)
    width = float(patch)
    num = ndimage.gaussian_filter(energy * known, width)
    den = ndimage.gaussian_filter(known, width)
    centre = patch // 2
    expected = np.sqrt(num[node_tops + centre, node_lefts + centre]
                       / np.maximum(den[node_tops + centre, node_lefts + centre], 1e-12))
    # mean detail energy of every patch from an integral image, looked up at the labels
    integral = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    b, r = label_tops + patch, label_lefts + patch
    total = (integral[b, r] - integral[label_tops, r] - integral[b, label_lefts]
             + integral[label_tops, label_lefts])
    rms = np.sqrt(np.maximum(total, 0) / (patch * patch))
    return missing[:, None] * (rms - expected[:, None]) ** 2
