"""MRF energies: masked pixel SSD for unaries, overlap-strip SSD for pairwise terms.

Both are torch computations on the run's device (a ``device`` argument, "cpu" by default) that
take numpy arrays or tensors; ``masked_ssd`` and ``edge_pairwise`` return host numpy arrays,
their ``*_tensor`` forms leave the result on the device (e.g. the pairwise costs for NCMP).

Pixels are float32 RGB in [0, 1]; SSDs are summed over channels (the authors' units, in which
their thresholds such as T_unc = 3.47 are expressed).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .devices import ArrayLike, Device, as_tensor, cut_patches, patch_cutter, to_numpy
from .threads import torch_threads


def masked_ssd(image: ArrayLike, hole: ArrayLike, node_tops: ArrayLike, node_lefts: ArrayLike,
               label_tops: ArrayLike, label_lefts: ArrayLike, patch: int,
               label_patches: ArrayLike | None = None, chunk: int = 128,
               device: Device = "cpu") -> np.ndarray:
    """``masked_ssd_tensor`` computed on ``device``, returned as a host (N, K) float64 array."""
    return to_numpy(masked_ssd_tensor(image, hole, node_tops, node_lefts, label_tops,
                                      label_lefts, patch, label_patches, chunk, device))


def masked_ssd_tensor(image: ArrayLike, hole: ArrayLike, node_tops: ArrayLike,
                      node_lefts: ArrayLike, label_tops: ArrayLike, label_lefts: ArrayLike,
                      patch: int, label_patches: ArrayLike | None = None, chunk: int = 128,
                      device: Device = "cpu") -> torch.Tensor:
    """SSD over each node's known pixels between the node patch and each of its labels.

    image: (H, W, C) or (H, W); hole: (H, W) bool; node_*: (N,); label_*: (N, K) corners;
    label_patches: the (N, K, P, P, C) label pixels when already cut (else cut here from
    ``image``). Numpy arrays or tensors; all is computed on ``device``, in ``chunk`` nodes at a
    time (the label pixels of a chunk are the memory peak), in the pixels' dtype ->
    (N, K) float64 tensor on ``device``.
    """
    dev = torch.device(device)
    pixels = as_tensor(image, dev)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]   # one band
    nt, nl, lt, ll = (as_tensor(a, dev, torch.long)
                      for a in (node_tops, node_lefts, label_tops, label_lefts))
    n_nodes, n_labels = lt.shape
    out = torch.empty((n_nodes, n_labels), dtype=torch.float64, device=dev)
    if n_nodes == 0:
        return out
    bands = pixels.shape[2]
    cut_pixels = patch_cutter(pixels, patch)
    cut_known = patch_cutter(~as_tensor(hole, dev, torch.bool), patch)
    diff = None
    with torch_threads(dev):
        for s in range(0, n_nodes, chunk):
            rows = slice(s, s + chunk)
            node = cut_pixels(nt[rows], nl[rows])                              # (n, P, P, C)
            n = len(node)
            labels = cut_pixels(lt[rows], ll[rows]) if label_patches is None \
                else as_tensor(label_patches[rows], dev)                       # (n, K, P, P, C)
            labels, node = labels.reshape(n, n_labels, -1), node.reshape(n, 1, -1)
            if diff is None:
                # one difference buffer for all chunks: a fresh (n, K, D) tensor per chunk cost
                # page faults worth 7x the subtraction itself (measured on the CPU)
                diff = torch.empty((min(chunk, n_nodes), *labels.shape[1:]),
                                   dtype=torch.result_type(labels, node), device=dev)
            sq = torch.sub(labels, node, out=diff[:n]).square_()               # (n, K, D)
            # the known-pixel sum as a batched (1, D) x (D, K) product: much faster than
            # reducing the short channel axis and then the pixels, and than the (K, D) x (D, 1)
            # mat-vec, which torch's CPU bmm runs 4-7x slower (measured on a 2-core machine)
            known = cut_known(nt[rows], nl[rows]).repeat_interleave(bands, dim=2)  # (n, P, P*C)
            out[rows] = torch.bmm(known.reshape(n, 1, -1).to(diff.dtype),
                                  sq.transpose(1, 2))[:, 0]
    return out


def strip_bounds(offset: tuple[int, int], patch: int) -> tuple[tuple[int, int, int, int],
                                                             tuple[int, int, int, int]]:
    """Overlap of two patches whose corners differ by ``offset`` = (dy, dx), dy, dx >= 0.

    Returns (row0, col0, height, width) of the overlap in the first and in the second patch.
    """
    dy, dx = offset
    h, w = patch - dy, patch - dx
    return (dy, dx, h, w), (0, 0, h, w)


def _float32(x: ArrayLike) -> ArrayLike:
    """``x`` as float32, without a copy when it is float32 already (numpy), or contiguous
    float32 (torch: its batched matmul rounds a strided batch differently with the batch size,
    so a result would depend on the chunking)."""
    return x.astype(np.float32, copy=False) if isinstance(x, np.ndarray) else \
        x.float().contiguous()


def _nonnegative(x: ArrayLike) -> ArrayLike:
    """max(x, 0): rounding can take an expanded SSD slightly below zero."""
    # np.maximum, not ndarray.clip: pruning calls this on small arrays thousands of times
    return np.maximum(x, 0.0) if isinstance(x, np.ndarray) else x.clamp_min(0.0)


def strip_ssd(first: ArrayLike, second: ArrayLike, offset: tuple[int, int]) -> ArrayLike:
    """SSD on the overlap strip of patches placed at two nodes ``offset`` = (dy, dx) apart.

    first: (..., A, P, P, C) patches at the upper/left node; second: (..., B, P, P, C) at the
    other -> (..., A, B) float32. Both numpy arrays (pruning, on the host) or both tensors (on
    their device); the result is of the same kind.
    """
    patch = first.shape[-2]
    (r1, c1, h, w), (r2, c2, _, _) = strip_bounds(offset, patch)
    return strips_ssd(first[..., r1:r1 + h, c1:c1 + w, :], second[..., r2:r2 + h, c2:c2 + w, :])


def strips_ssd(first: ArrayLike, second: ArrayLike) -> ArrayLike:
    """SSD between every pair of overlap strips: first (..., A, h, w, C), second
    (..., B, h, w, C) -> (..., A, B) float32, as ||a||^2 + ||b||^2 - 2 a.b (one batched
    matmul). Numpy arrays or tensors (the result is of the same kind)."""
    # the strips are copied by the reshape when they are not contiguous; no second copy when
    # the pixels are float32 already
    a = _float32(first.reshape(*first.shape[:-3], -1))
    b = _float32(second.reshape(*second.shape[:-3], -1))
    sq_a = (a * a).sum(-1)[..., :, None]
    sq_b = (b * b).sum(-1)[..., None, :]
    cross = a @ b.swapaxes(-1, -2)
    return _nonnegative(sq_a + sq_b - 2.0 * cross)


def overlap_ssd(image: torch.Tensor, first_tops: torch.Tensor, first_lefts: torch.Tensor,
                second_tops: torch.Tensor, second_lefts: torch.Tensor, offset: tuple[int, int],
                patch: int) -> torch.Tensor:
    """SSD on the overlap strip between labels placed at two neighbouring nodes.

    image: (H, W, C); first_*: (E, A) labels of the upper/left node; second_*: (E, B) labels of
    the node at ``offset`` from it, tensors on one device -> (E, A, B) float32 there:
    SSD(label a at first node, label b at second). Only the strips are cut, not the patches.
    """
    (r1, c1, h, w), (r2, c2, _, _) = strip_bounds(offset, patch)
    return strips_ssd(cut_patches(image, first_tops + r1, first_lefts + c1, h, w),
                      cut_patches(image, second_tops + r2, second_lefts + c2, h, w))


def edge_pairwise(image: ArrayLike, edges: ArrayLike, offsets: ArrayLike,
                  label_tops: ArrayLike, label_lefts: ArrayLike, patch: int,
                  chunk: int = 4096, device: Device = "cpu") -> np.ndarray:
    """``edge_pairwise_tensor`` computed on ``device``, returned as a host (E, L, L) array."""
    return to_numpy(edge_pairwise_tensor(image, edges, offsets, label_tops, label_lefts, patch,
                                         chunk, device))


def edge_pairwise_tensor(image: ArrayLike, edges: ArrayLike, offsets: ArrayLike,
                         label_tops: ArrayLike, label_lefts: ArrayLike, patch: int,
                         chunk: int = 4096, device: Device = "cpu") -> torch.Tensor:
    """Overlap SSDs for every edge (a, b): entry [e, x, y] = SSD(label x at a, label y at b).

    image: (H, W, C); edges: (E, 2) node pairs, b right of or below a; offsets: (E, 2) b's
    corner minus a's; label_*: (N, L) corners. Numpy arrays or tensors; computed on ``device``,
    ``chunk`` edges of one offset at a time (their label pixels are the memory peak) ->
    (E, L, L) float32 tensor on ``device``.
    """
    dev = torch.device(device)
    pixels = as_tensor(image, dev)
    ed = as_tensor(edges, dev, torch.long).reshape(-1, 2)
    lt, ll = as_tensor(label_tops, dev, torch.long), as_tensor(label_lefts, dev, torch.long)
    out = torch.empty((len(ed), lt.shape[1], lt.shape[1]), dtype=torch.float32, device=dev)
    # grouping edges by offset is bookkeeping on a few (E, 2) integers: done on the host
    offsets = to_numpy(as_tensor(offsets, "cpu")).reshape(-1, 2)
    with torch_threads(dev):
        for off in np.unique(offsets, axis=0):
            sel = np.flatnonzero((offsets == off).all(1))
            for s in range(0, len(sel), chunk):
                e = as_tensor(sel[s:s + chunk], dev)
                a, b = ed[e, 0], ed[e, 1]
                out[e] = overlap_ssd(pixels, lt[a], ll[a], lt[b], ll[b], tuple(off.tolist()),
                                     patch)
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


#: Patch-level expected detail: a node expects the detail of the known patches near it (within
#: two patches, Gaussian of one patch) whose mean colour is like its own (Gaussian of this RGB
#: distance), so a node on a straight edge expects the detail of edge patches, not of edge
#: pixels, and flat paint beside wood expects flat paint.
TEXTURE_RANGE_SIGMA = 0.08
#: floor of the detail energy before its log: 8-bit quantisation noise, (0.5 / 255)^2 x 3
DETAIL_FLOOR = 3 * (0.5 / 255) ** 2


def patch_means(values: np.ndarray, patch: int) -> np.ndarray:
    """Mean of ``values`` (H, W) or (H, W, C) over every ``patch`` x ``patch`` window, indexed
    by the window's top-left corner: (H - patch + 1, W - patch + 1[, C])."""
    integral = np.pad(values.astype(np.float64), ((1, 0), (1, 0)) + ((0, 0),) * (values.ndim - 2))
    integral = integral.cumsum(0).cumsum(1)
    total = (integral[patch:, patch:] - integral[:-patch, patch:] - integral[patch:, :-patch]
             + integral[:-patch, :-patch])
    return total / (patch * patch)


def expected_detail(energy: np.ndarray, known: np.ndarray, guide: np.ndarray, rows: np.ndarray,
                    cols: np.ndarray, spatial_sigma: float, range_sigma: float, radius: int,
                    chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Cross-bilateral mean of ``energy`` over known positions around (``rows``, ``cols``).

    energy, known: (H, W); guide: (H, W, C) colours compared with the guide at each centre.
    Weight of position p for centre c: known(p) * exp(-|p - c|^2 / 2 s^2) *
    exp(-|guide(p) - guide(c)|^2 / 2 r^2), on a stride-2 grid of offsets within ``radius``
    (an average needs no more). Returns the (N,) means and (N,) weight sums (0 = no known
    position of the centre's colour within reach).
    """
    offsets = np.arange(-radius, radius + 1, 2)
    dy, dx = (o.ravel() for o in np.meshgrid(offsets, offsets, indexing="ij"))
    spatial = np.exp(-(dy ** 2 + dx ** 2) / (2 * spatial_sigma ** 2))
    pad = ((radius, radius), (radius, radius))
    energy_p = np.pad(energy * known, pad)
    known_p = np.pad(known.astype(np.float64), pad)
    guide_p = np.pad(guide, pad + ((0, 0),), mode="edge")
    means = np.zeros(len(rows))
    sums = np.zeros(len(rows))
    for start in range(0, len(rows), chunk):
        r = rows[start:start + chunk, None] + radius
        c = cols[start:start + chunk, None] + radius
        centre = guide_p[r, c]                                        # (n, 1, C)
        distance = ((guide_p[r + dy, c + dx] - centre) ** 2).sum(2)   # (n, offsets)
        weight = spatial * np.exp(-distance / (2 * range_sigma ** 2)) * known_p[r + dy, c + dx]
        total = weight.sum(1)
        sums[start:start + chunk] = total
        means[start:start + chunk] = (weight * energy_p[r + dy, c + dx]).sum(1) \
            / np.maximum(total, 1e-12)
    return means, sums


def texture_unary(image: np.ndarray, hole: np.ndarray, node_tops: np.ndarray,
                  node_lefts: np.ndarray, missing: np.ndarray, label_tops: np.ndarray,
                  label_lefts: np.ndarray, patch: int, sigma: float = 1.0) -> np.ndarray:
    """Texture term of the unary, (N, K), in pixel-SSD units.

    The masked SSD says nothing about a node's missing pixels, and a query pre-filled by a
    smooth guess favours smooth sources: lacunae then receive smudges. The paint around a
    node tells how much fine detail it should hold. A patch's detail d is the geometric mean,
    over the patch, of the energy above a Gaussian of ``sigma`` (a few bright specks do not
    make a flat patch "textured"). A node expects the d of the fully known patches near it
    whose mean colour is like that of its own (pre-filled) patch: a cross-bilateral mean of
    log d over top-left corners within two patches (``expected_detail``; where no such patch
    is in reach, a plain Gaussian mean of width one patch, then the image's mean). Judged patch
    against patch, a node on a straight edge expects the detail of edge patches (judged pixel
    against pixel, it expected that of edge pixels, and patches dense with edges won). A label
    whose d differs from the expected e is charged missing * (d - e)^2, a lower bound of the
    SSD its missing pixels would have against a truth of RMS detail e.
    """
    energy = np.log(detail_energy(image, sigma) + DETAIL_FLOOR)
    log_detail = patch_means(energy, patch)                 # (H - p + 1, W - p + 1)
    expected_log = np.zeros(len(node_tops))
    needed = np.flatnonzero(missing > 0)     # the term is zero for nodes with nothing missing
    if len(needed):
        known = patch_means(hole.astype(np.float64), patch) == 0    # fully known patches
        colour = patch_means(image, patch)
        rows, cols = node_tops[needed], node_lefts[needed]
        local, reach = expected_detail(log_detail, known, colour, rows, cols, float(patch),
                                       TEXTURE_RANGE_SIGMA, 2 * patch)
        far = reach < 1e-3      # no known patch of the node's colour within two patches
        if far.any():
            knownf = known.astype(np.float64)
            num = ndimage.gaussian_filter(log_detail * knownf, float(patch))
            den = ndimage.gaussian_filter(knownf, float(patch))
            overall = log_detail[known].mean() if known.any() else log_detail.mean()
            fr, fc = rows[far], cols[far]
            local[far] = np.where(den[fr, fc] > 1e-6,
                                  num[fr, fc] / np.maximum(den[fr, fc], 1e-12), overall)
        expected_log[needed] = local
    expected = np.sqrt(np.exp(expected_log))
    rms = np.sqrt(np.exp(log_detail[label_tops, label_lefts]))
    return missing[:, None] * (rms - expected[:, None]) ** 2
