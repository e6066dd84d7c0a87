"""Composition: paste each node's chosen patch, writing only missing pixels.

Two ways to join overlapping patches (``COMPOSITIONS``):

* ``copy`` (after the paper's composition, section 5 of research/mrf_algorithm.md): nodes are
  pasted in pruning order, most confident first, and each writes only the pixels no earlier
  node has written, so every filled pixel is a copy of one source pixel and the texture of the
  sources survives. The seam between two nodes' pixels is smoothed by a small binomial filter
  of the ownership masks (the paper's smoothed seam). Unlike the paper, the seam is not moved
  by a minimum-error boundary cut: it lies where the earlier node's patch ends (NCMP chose the
  labels so that overlaps agree). Vectorised: "first pasted wins" is a scatter-min of the
  nodes' ranks over their footprints.
* ``blend``: every patch is pasted over its whole node patch with a separable tent weight
  (largest at its centre), optionally times a weight per patch (its NCMP belief); overlaps
  become a weighted average. The expectation of the texture: high hole-PSNR, smooth fills.

Then, for both, a harmonic offset correction: a copied patch seldom has exactly the brightness
of the place it is pasted to. On known pixels the pasted patches can be compared with the truth;
that residual is extended into the hole by solving Laplace's equation (a membrane, as in
seamless cloning) and added, so the fill keeps the patches' texture but meets the surrounding
paint without a step. Optionally (``structure_sigma`` > 0) a structure/texture split: the
fill's low frequencies from a smooth reconstruction (the pre-fill or the label blend), its
detail from the copies' sources (the known paint minus the Gaussian mean of its known
neighbours, ``known_detail``, pasted with the same weights: brightness steps between
neighbouring copies carry no detail, so no seams show),
that detail raised or lowered towards the surrounding paint's (``structure_texture``).
Finally thin cracks may keep the pre-fill or another smooth fill (``crack_blend``), or exact
copies where the labels agree (``crack_copy``). Only hole pixels are ever written.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy import ndimage

from patches import extract_patches

from .devices import ArrayLike, Device, as_tensor, patch_cutter, to_numpy

CORRECTIONS = ("harmonic", "none")
COMPOSITIONS = ("copy", "blend")

#: Scale (px) above which the copied detail that ``crack_detail`` adds to cracks is taken: the
#: finest grain, the cheapest in squared error per unit of gradient (quality benchmark).
CRACK_DETAIL_SIGMA = 1.0

#: Squared colour difference (RGB summed, 0-1 scale) between a crack pixel's copy and the
#: label average at which the copy counts exp(-1) in the crack (about 4 8-bit levels per
#: channel; unseen.py's synthetic paintings and a held-out flat-colour crop).
CRACK_AGREEMENT = 1e-3


def tent_weights(patch: int, power: float = 1.0) -> np.ndarray:
    """(patch, patch) separable tent: 1 at the border, largest at the centre, to ``power``."""
    ramp = np.minimum(np.arange(1, patch + 1), np.arange(patch, 0, -1)).astype(np.float64)
    return np.outer(ramp, ramp) ** power


def blend_patches(
    image: ArrayLike,
    node_tops: ArrayLike,
    node_lefts: ArrayLike,
    label_tops: ArrayLike,
    label_lefts: ArrayLike,
    patch: int,
    *,
    power: float = 2.0,
    patch_weights: ArrayLike | None = None,
    pixel_weights: ArrayLike | None = None,
    chunk: int = 16384,
    device: Device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """``blend_patches_tensor`` on ``device``, returned as host arrays (blend, weight sum)."""
    blend, wsum = blend_patches_tensor(image, node_tops, node_lefts, label_tops, label_lefts,
                                       patch, power=power, patch_weights=patch_weights,
                                       pixel_weights=pixel_weights, chunk=chunk, device=device)
    return to_numpy(blend), to_numpy(wsum)


def blend_patches_tensor(
    image: ArrayLike,
    node_tops: ArrayLike,
    node_lefts: ArrayLike,
    label_tops: ArrayLike,
    label_lefts: ArrayLike,
    patch: int,
    *,
    power: float = 2.0,
    patch_weights: ArrayLike | None = None,
    pixel_weights: ArrayLike | None = None,
    chunk: int = 16384,
    device: Device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted average of the label patches pasted at the node corners, accumulated on
    ``device``.

    image: (H, W, C); node_*, label_*: (n,) corners of each pasted patch and of its source;
    patch_weights: optional (n,) factor per pasted patch (e.g. its belief);
    pixel_weights: optional (n, patch, patch) weights of each patch's pixels, used instead of
    the tent of ``power``. Numpy arrays or tensors.
    Returns (blend (H, W, C) float64, weight sum (H, W) float64), tensors on ``device``; the
    blend is 0 where nothing was pasted.
    """
    dev = torch.device(device)
    height, width, channels = image.shape
    src = as_tensor(image, dev, torch.float32)
    acc = torch.zeros((height * width, channels), dtype=torch.float64, device=dev)
    wsum = torch.zeros(height * width, dtype=torch.float64, device=dev)
    weights = as_tensor(tent_weights(patch, power), dev).reshape(-1)
    cut_values = patch_cutter(src, patch)
    cut_targets = patch_cutter(torch.arange(height * width, device=dev).reshape(height, width),
                               patch)
    corners = [as_tensor(a, dev, torch.long)
               for a in (node_tops, node_lefts, label_tops, label_lefts)]
    for s in range(0, len(corners[0]), chunk):
        nt, nl, lt, ll = (a[s:s + chunk] for a in corners)
        values = cut_values(lt, ll).reshape(len(nt), -1, channels).double()   # (n, P*P, C)
        target = cut_targets(nt, nl).reshape(-1)                             # (n*P*P,)
        if pixel_weights is None:
            w = weights[None, :].expand(len(nt), -1)
        else:
            w = as_tensor(pixel_weights[s:s + chunk], dev, torch.float64).reshape(len(nt), -1)
        if patch_weights is not None:
            w = w * as_tensor(patch_weights[s:s + chunk], dev, torch.float64)[:, None]
        acc.index_add_(0, target, (values * w[:, :, None]).reshape(-1, channels))
        wsum.index_add_(0, target, w.reshape(-1))
    blend = torch.where(wsum[:, None] > 0, acc / wsum.clamp_min(1e-12)[:, None], 0.0)
    return blend.reshape(height, width, channels), wsum.reshape(height, width)


def harmonic_extension(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Solve Laplace's equation inside ``hole`` with ``values`` outside as boundary condition.

    values: (H, W, C); returns (n_hole, C) float64, in the raster order of the hole pixels.
    5-point Laplacian with Dirichlet data from the known 4-neighbours; image borders are
    natural (Neumann) boundaries.
    """
    height, width = hole.shape
    flat_hole = np.flatnonzero(hole.ravel())
    n = len(flat_hole)
    index = np.full(height * width, -1, dtype=np.int64)
    index[flat_hole] = np.arange(n)
    y, x = np.divmod(flat_hole, width)
    flat_values = values.reshape(-1, values.shape[2])
    degree = np.zeros(n)
    rhs = np.zeros((n, values.shape[2]))
    rows, cols = [], []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        degree += inside
        q = yy[inside] * width + xx[inside]
        i = np.flatnonzero(inside)
        in_hole = index[q] >= 0
        rows.append(i[in_hole])
        cols.append(index[q[in_hole]])
        np.add.at(rhs, i[~in_hole], flat_values[q[~in_hole]])
    off_r, off_c = np.concatenate(rows), np.concatenate(cols)
    matrix = sp.csr_matrix(
        (np.r_[degree, -np.ones(len(off_r))],
         (np.r_[np.arange(n), off_r], np.r_[np.arange(n), off_c])),
        shape=(n, n))
    # A component with no known neighbour at all (cannot happen for a usable mask) would make
    # the system singular; a tiny diagonal shift keeps it well posed and its solution near 0.
    matrix = (matrix + sp.identity(n) * 1e-9).tocsc()
    # Direct sparse factorisation, once for all channels: windows are bounded, so the system
    # is at most a few hundred thousand unknowns, where this beats conjugate gradients on
    # blob-shaped holes by an order of magnitude.
    return spla.splu(matrix, permc_spec="COLAMD").solve(rhs)


def first_owner(node_tops: np.ndarray, node_lefts: np.ndarray, rank: np.ndarray, patch: int,
                shape: tuple[int, int]) -> np.ndarray:
    """(N, patch, patch) bool: which pixels of each node's patch that node owns.

    A pixel covered by several patches belongs to the covering node of smallest ``rank`` (N,
    distinct integers): what pasting the nodes in rank order, each writing only pixels no earlier
    node wrote, would give. Every covered pixel has exactly one owner.
    """
    pixels = extract_patches(np.arange(shape[0] * shape[1]).reshape(shape), node_tops,
                             node_lefts, patch).reshape(len(node_tops), -1)
    rank = np.asarray(rank, dtype=np.int64)
    first = np.full(shape[0] * shape[1], np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, pixels.ravel(), np.repeat(rank, patch * patch))
    return (first[pixels] == rank[:, None]).reshape(-1, patch, patch)


def seam_weights(owned: np.ndarray, smooth: int = 1) -> np.ndarray:
    """Smoothed ownership: (N, P, P) bool -> (N, P, P) float weights.

    Each mask is filtered ``smooth`` times with the binomial [1 2 1]/4 (both axes, zero outside
    the patch, which holds no label pixels), so two patches are cross-faded over about
    ``2 * smooth`` pixels at their seam instead of meeting at a hard step. Owned pixels keep a
    small floor so that every covered pixel has a positive total weight.
    """
    weights = owned.astype(np.float64)
    for _ in range(smooth):
        padded = np.pad(weights, ((0, 0), (1, 1), (1, 1)))
        weights = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4
        weights = (weights[:, :, :-2] + 2 * weights[:, :, 1:-1] + weights[:, :, 2:]) / 4
    return weights + 1e-6 * owned


def compose(
    image: np.ndarray,
    hole: np.ndarray,
    node_tops: np.ndarray,
    node_lefts: np.ndarray,
    label_tops: np.ndarray,
    label_lefts: np.ndarray,
    patch: int,
    *,
    power: float = 2.0,
    correction: str = "harmonic",
    patch_weights: np.ndarray | None = None,
    composition: str = "blend",
    rank: np.ndarray | None = None,
    seam_smooth: int = 1,
    crack_width: float = 0.0,
    structure: np.ndarray | None = None,
    structure_sigma: float = 0.0,
    copy_share: np.ndarray | None = None,
    detail_gain: float = 1.0,
    detail_damp: float = 1.0,
    crack_fill: np.ndarray | None = None,
    crack_detail: float = 0.0,
    crack_reference: np.ndarray | None = None,
    device: Device = "cpu",
) -> np.ndarray:
    """Fill ``hole`` of ``image`` (H, W, C) float in [0, 1] with the label patches placed at the
    node corners. Returns a new float32 image; pixels outside ``hole`` are ``image``'s, unchanged.

    composition: ``blend`` (tent-weighted average, times ``patch_weights`` when given) or
    ``copy`` (one patch per node, pasted in ``rank`` order with smoothed seams; ``rank`` (N,)
    distinct integers, smaller = pasted first).
    crack_width: missing pixels at most this far (px) from known paint keep ``image``'s value
    there, i.e. the pre-fill (see ``crack_blend``); 0 = the patches fill every missing pixel.
    structure, structure_sigma: when sigma > 0, the fill's frequencies below a Gaussian of
    ``structure_sigma`` px come from ``structure`` (H, W, C; default ``image``, i.e. the
    pre-fill), the detail above it from the patches' sources (see ``structure_texture``);
    detail_gain, detail_damp: that detail raised or lowered towards the surrounding paint's;
    copy_share (H, W) in [0, 1]: where given, the patches keep this share of their own low
    frequencies, ``structure`` gives the rest.
    crack_fill, crack_detail: what the crack pixels take instead of ``image`` (H, W, C), plus
    ``crack_detail`` times the patches' detail above a Gaussian of ``CRACK_DETAIL_SIGMA`` px.
    crack_reference (H, W, C): with ``copy_share``, crack pixels take the copies where they are
    exact and agree with this (the label average; see ``crack_copy``).
    device: where the patches are accumulated (``blend_patches``); the rest runs on the host.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}")
    if composition not in COMPOSITIONS:
        raise ValueError(f"composition must be one of {COMPOSITIONS}")
    pixel_weights = None
    if composition == "copy":
        if rank is None or len(rank) != len(node_tops):
            raise ValueError("copy composition needs one rank per pasted patch")
        pixel_weights = seam_weights(
            first_owner(node_tops, node_lefts, rank, patch, hole.shape), seam_smooth)
        patch_weights = None
    elif patch_weights is not None:
        # a patch of weight 0 adds exactly nothing (0 * value, 0 to the weight sum): skip it,
        # e.g. the nine zeros of every one-hot row, instead of cutting and pasting its pixels
        used = np.flatnonzero(np.asarray(patch_weights) != 0)
        node_tops, node_lefts, label_tops, label_lefts, patch_weights = (
            np.asarray(a)[used] for a in (node_tops, node_lefts, label_tops, label_lefts,
                                          patch_weights))
    blend, wsum = blend_patches(image, node_tops, node_lefts, label_tops, label_lefts, patch,
                                power=power, patch_weights=patch_weights,
                                pixel_weights=pixel_weights, device=device)
    if not (wsum[hole] > 0).all():
        raise RuntimeError("some missing pixels are covered by no node; lattice bug")
    fill = blend[hole]
    if correction == "harmonic":
        # residual = truth - blend on known pixels that patches covered; 0 where none did
        residual = np.where(((wsum > 0) & ~hole)[:, :, None], image - blend, 0.0)
        fill = fill + harmonic_extension(residual, hole)
    if structure_sigma > 0:
        target = image if structure is None else structure
        if copy_share is not None:
            share = np.asarray(copy_share, np.float64)[hole][:, None]
            target = target.astype(np.float64, copy=True)
            target[hole] = share * fill + (1.0 - share) * target[hole]
        # the detail of each copy's own source (the paint minus its Gaussian), pasted with the
        # same weights: a brightness step between two neighbouring copies or between a copy
        # and the paint around the loss is low frequency and adds no detail (no seams)
        source_detail, _ = blend_patches(
            known_detail(image, hole, structure_sigma).astype(np.float32),
            node_tops, node_lefts, label_tops, label_lefts, patch, power=power,
            patch_weights=patch_weights, pixel_weights=pixel_weights, device=device)
        fill = structure_texture(fill, target, hole, structure_sigma, image, detail_gain,
                                 float(patch), detail_damp, copy_share,
                                 source_detail[hole].astype(np.float64))
    if crack_width > 0:
        thin = (image if crack_fill is None else crack_fill)[hole]
        if crack_detail > 0:
            thin = thin + crack_detail * detail_above(image, hole, fill, CRACK_DETAIL_SIGMA)[hole]
        if copy_share is not None and crack_reference is not None:
            thin = crack_copy(fill, thin, crack_reference[hole], np.asarray(copy_share)[hole])
        fill = crack_blend(fill, thin, hole, crack_width)
    out = image.astype(np.float32, copy=True)
    out[hole] = np.clip(fill, 0.0, 1.0)
    return out


def detail_above(image: np.ndarray, hole: np.ndarray, fill: np.ndarray,
                 sigma: float) -> np.ndarray:
    """``image`` (H, W, C) with its hole holding ``fill`` (n_hole, C, raster order of ``hole``),
    minus its Gaussian of ``sigma`` px: the detail above that scale, (H, W, C) float64."""
    composed = image.astype(np.float64, copy=True)
    composed[hole] = fill
    return composed - ndimage.gaussian_filter(composed, (sigma, sigma, 0), mode="mirror")


def known_detail(image: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """The known paint's detail above a Gaussian of ``sigma`` px: image minus the Gaussian mean
    of its known pixels (a normalised convolution), so that a source next to a loss does not
    read the loss's guessed fill. (H, W, C) float64; meaningless deep inside the hole (no
    source lies there)."""
    known = (~hole).astype(np.float64)
    paint = image.astype(np.float64) * known[:, :, None]
    mean = (ndimage.gaussian_filter(paint, (sigma, sigma, 0), mode="mirror")
            / np.maximum(ndimage.gaussian_filter(known, sigma, mode="mirror"), 1e-12)[:, :, None])
    return image.astype(np.float64) - mean


def structure_texture(patch_fill: np.ndarray, structure: np.ndarray, hole: np.ndarray,
                      sigma: float, image: np.ndarray | None = None, gain: float = 1.0,
                      width: float = 9.0, damp: float = 1.0, keep: np.ndarray | None = None,
                      detail: np.ndarray | None = None) -> np.ndarray:
    """Low frequencies from ``structure``, detail from the patches: patch_fill + G(S - C).

    C is the image with its hole holding ``patch_fill`` (n_hole, C), S the ``structure`` image
    (H, W, C); both equal the paint outside the hole, so S - C vanishes there and G (a Gaussian
    of ``sigma`` px) spreads only the hole's low-frequency disagreement. The result's
    difference to S is the detail of C - S above ``sigma``: copied texture keeps its grain, but
    its brightness and colour follow the smooth reconstruction, which is right more often than a
    copied patch's mean. Returns (n_hole, C) in the raster order of ``hole``.

    detail (n_hole, C): the detail to add instead of C's own (C minus its Gaussian), i.e.
    G(S) + detail, S taking ``image`` outside the hole (which is then required): ``compose``
    passes the copies' sources' own detail, free of the steps between neighbouring copies.

    gain > 1: where the detail is weaker than the known paint's around it (``image``; both as
    Gaussian averages of width ``width`` px), it is raised by their RMS ratio, at most
    ``gain``; damp < 1: where it is stronger, it is lowered by that ratio, down to ``damp``
    times itself (grain copied from busier paint than the loss's surroundings). keep (H, W) in
    [0, 1]: the share of the detail left as it is (exact copies: their detail is the paint's).
    """
    if detail is None:
        difference = np.zeros(structure.shape, np.float64)
        difference[hole] = structure[hole] - patch_fill
        low = ndimage.gaussian_filter(difference, (sigma, sigma, 0), mode="mirror")
        out = patch_fill + low[hole]
    else:
        if image is None:
            raise ValueError("structure_texture with a detail layer needs the image")
        smooth = image.astype(np.float64, copy=True)
        smooth[hole] = structure[hole]
        out = ndimage.gaussian_filter(smooth, (sigma, sigma, 0), mode="mirror")[hole] + detail
    if (gain > 1 or damp < 1) and image is not None:
        layer = detail_above(image, hole, patch_fill, sigma)
        if detail is not None:
            layer[hole] = detail
        energy = (layer ** 2).sum(axis=2)
        known = (~hole).astype(np.float64)
        holef = hole.astype(np.float64)
        expected = (ndimage.gaussian_filter(energy * known, width, mode="mirror")
                    / np.maximum(ndimage.gaussian_filter(known, width, mode="mirror"), 1e-12))
        actual = (ndimage.gaussian_filter(energy * holef, width, mode="mirror")
                  / np.maximum(ndimage.gaussian_filter(holef, width, mode="mirror"), 1e-12))
        factor = np.clip(np.sqrt(expected / np.maximum(actual, 1e-12)), damp, gain)
        if keep is not None:
            factor = 1.0 + (1.0 - keep) * (factor - 1.0)
        out = out + ((factor - 1.0)[:, :, None] * layer)[hole]
    return out


def noise_variance(image: np.ndarray, hole: np.ndarray) -> float:
    """Noise variance per channel of the known paint, after Immerkaer (1996) made robust: the
    response r to [[1,-2,1],[-2,4,-2],[1,-2,1]] (zero on planes; 6 sigma for white noise of
    sigma) over 3x3 neighbourhoods without a missing pixel; sigma = median |r| / (0.6745 x 6),
    the median so that edges and sparse texture do not count as noise. image (H, W, C)."""
    kernel = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    inside = ndimage.binary_erosion(~hole, np.ones((3, 3)), border_value=0)
    if not inside.any():
        return 0.0
    response = [ndimage.convolve(image[:, :, c].astype(np.float64), kernel, mode="mirror")[inside]
                for c in range(image.shape[2])]
    sigma = np.median(np.abs(np.concatenate(response))) / (0.6745 * 6.0)
    return float(sigma ** 2)


def match_weight(shape: tuple[int, int], node_tops: np.ndarray, node_lefts: np.ndarray,
                 ssd: np.ndarray, known: np.ndarray, patch: int, scale: float,
                 floor: float = 0.0) -> np.ndarray:
    """(H, W) share in [0, 1] of the copies' own structure: how well the chosen labels fit the
    known paint of their nodes, spread over the image.

    A node's fit is exp(-max(m - ``floor``, 0) / ``scale``), m its label's mean squared
    difference per known pixel (``ssd`` (N,) summed over the node's ``known`` (N,) pixels and
    the channels; ``floor``: what a perfect source scores in noisy paint). The
    node's fit counts, at its centre, in proportion to its known pixels (a node with none says
    nothing), and a Gaussian of one patch spreads the weighted mean into the hole: where the
    paint repeats (flat colour fields, a regular texture) the labels fit almost exactly and the
    weight is near 1; where no source fits (shading, unique structure) it falls towards 0.
    """
    centre = patch // 2
    known = np.asarray(known, np.float64)
    msd = np.asarray(ssd, np.float64) / np.maximum(known, 1.0)
    fit = np.exp(-np.maximum(msd - floor, 0.0) / scale)
    share = known / (patch * patch)
    num = np.zeros(shape)
    den = np.zeros(shape)
    np.add.at(num, (node_tops + centre, node_lefts + centre), share * fit)
    np.add.at(den, (node_tops + centre, node_lefts + centre), share)
    num = ndimage.gaussian_filter(num, float(patch), mode="constant")
    den = ndimage.gaussian_filter(den, float(patch), mode="constant")
    return np.where(den > 1e-9, num / np.maximum(den, 1e-12), 0.0)


def crack_blend(patch_fill: np.ndarray, prefill: np.ndarray, hole: np.ndarray,
                width: float) -> np.ndarray:
    """Thin losses from the pre-fill, wide ones from the patches.

    Within ``width`` px of known paint a smooth or sparse reconstruction that interpolates from
    pixels one or two steps away is more faithful than any copied patch (quality benchmark,
    crack pixels); deeper inside a lacuna there is nothing to interpolate from and copied
    texture wins. patch_fill, prefill: (n_hole, C) values in the raster order of ``hole``;
    the two are cross-faded over one pixel around ``width``.
    """
    distance = ndimage.distance_transform_edt(hole)[hole]   # to the nearest known pixel
    weight = np.clip(distance - width + 0.5, 0.0, 1.0)[:, None]   # 1 = patches
    return weight * patch_fill + (1.0 - weight) * prefill


def crack_copy(copy: np.ndarray, thin: np.ndarray, reference: np.ndarray,
               share: np.ndarray) -> np.ndarray:
    """Crack pixels from exact copies where the labels agree, from ``thin`` elsewhere.

    A smooth fill blurs a sharp edge that crosses a thin crack (flat-colour paint), where an
    exact copy rebuilds it; but exact fits on the known pixels do not pin the missing ones (a
    curved edge's staircase may fall elsewhere), so a copy counts only as far as it agrees
    with ``reference``, the average of the node's kept labels (a pixel they all agree on).
    copy, thin, reference: (n, C); share (n,) in [0, 1]: the exact-copy share
    (``match_weight`` at an exact scale). Returns (n, C).
    """
    gap = ((copy - reference) ** 2).sum(axis=1)
    weight = (np.asarray(share, np.float64) * np.exp(-gap / CRACK_AGREEMENT))[:, None]
    return weight * copy + (1.0 - weight) * thin
