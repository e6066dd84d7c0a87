"""Context-aware candidate selection (Ruzic & Pizurica 2015; research notes, section 2).

Gabor energies (3 scales x 6 orientations) of the grey image with the hole pre-filled,
contrast-normalised, are clustered into textons on known pixels; the image is split top-down into
variable-size blocks of homogeneous texton statistics, and each block is matched to the blocks
whose texton histograms are close (chi-square distance below Tb). A node then only searches
candidates in the blocks matched to the blocks it touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import scipy.fft

from .compose import harmonic_extension
from .threads import faiss_threads


@dataclass(frozen=True)
class ContextConfig:
    """Parameters of the context model (defaults are the authors' code values)."""

    orientations: int = 6        # per scale, 3 scales
    scales: int = 3
    textons: int = 18            # K of k-means
    split_threshold: float = 0.15    # Ts
    match_threshold: float = 0.15    # Tb
    min_block_fraction: int = 8      # f: min block side = side / f
    reliable_fraction: float = 0.5   # r: a block with more known pixels is "reliable"
    max_matches: int = 10
    kmeans_samples: int = 50_000     # known pixels used to fit the textons
    seed: int = 0


@dataclass
class Context:
    """Blocks (row0, col0, row1, col1), a block-id map and each block's matched blocks."""

    blocks: np.ndarray                 # (B, 4) int
    block_map: np.ndarray              # (H, W) int32 block id of every pixel
    histograms: np.ndarray             # (B, K) texton histogram over known pixels
    known_fraction: np.ndarray         # (B,)
    matches: list[np.ndarray] = field(default_factory=list)          # per block: block ids
    match_errors: list[np.ndarray] = field(default_factory=list)     # per block: chi2 distances
    textons: np.ndarray | None = None  # (H, W) int16 texton label, -1 in the hole

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


PREFILLS = ("fsr", "telea")


def prefill(image: np.ndarray, hole: np.ndarray, radius: int = 3,
            method: str = "fsr", needed: np.ndarray | None = None) -> np.ndarray:
    """A first guess of the hole, so that filters and the IR see no void and so that the
    candidate search has a query where pixels are missing.

    ``fsr``: OpenCV contrib's frequency-selective reconstruction (xphoto FSR_FAST), which
    extrapolates the surrounding texture; as a query it finds better-matching, less smooth
    candidates than a diffusion fill (benchmarks/results/variants/prefill_telea against the
    default in benchmarks/results/quality.json). ``telea``: fast marching (OpenCV
    Telea, ``radius``), a smooth fill, for when xphoto is not installed.
    needed: (H, W) bool, the missing pixels whose pre-fill is read where it matters (a work
    window's own losses and a band around them, ``inpaint.inpainter``); ``fsr`` then runs on
    those alone and the other missing pixels take the Telea fill (``fsr_fill_where_needed``).
    None, or a mask covering the hole: every missing pixel is FSR's, as without it.
    image: (H, W, 3) float32 in [0, 1]; returns a new float32 image, known pixels unchanged.
    """
    if method not in PREFILLS:
        raise ValueError(f"prefill must be one of {PREFILLS}")
    if not hole.any():
        return image.copy()
    u8 = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if method == "fsr":
        if not hasattr(cv2, "xphoto"):
            raise ValueError("the fsr prefill needs OpenCV contrib (opencv-contrib-python-"
                             "headless); use the telea prefill")
        cheap = None if needed is None else hole & ~needed
        filled = fsr_fill(u8, hole) if cheap is None or not cheap.any() else \
            fsr_fill_where_needed(u8, hole, hole & needed, radius)
    else:
        filled = telea_fill(u8, hole, radius)
    out = image.copy()
    out[hole] = filled[hole].astype(np.float32) / 255.0
    # Both fills work on 8 bits. For finer inputs (16-bit, float) the rounding residual of the
    # known pixels is extended smoothly into the hole, so that the fill (which thin cracks keep)
    # is not posterised to 256 levels next to 16-bit paint.
    residual = np.where(hole[:, :, None], 0.0, image - u8.astype(np.float32) / 255.0)
    if np.any(residual):
        out[hole] += harmonic_extension(residual, hole).astype(np.float32)
        out[hole] = np.clip(out[hole], 0.0, 1.0)
    return out


def telea_fill(u8: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV Telea (fast marching) fill of ``hole`` in a uint8 (H, W[, C]) image."""
    return cv2.inpaint(u8, hole.astype(np.uint8), radius, cv2.INPAINT_TELEA).reshape(u8.shape)


#: Mirrored margin around the image for FSR: it extrapolates from blocks around each loss and
#: fills losses that touch the image border badly, which every work window's losses may do
#: (pinned by tests/test_compose.py::test_fsr_prefill_fills_losses_that_cross_the_window_border).
FSR_PAD = 32


def fsr_fill(u8: np.ndarray, hole: np.ndarray, pad: int = FSR_PAD) -> np.ndarray:
    """xphoto FSR_FAST fill of ``hole`` in a uint8 (H, W, C) image, computed on a mirrored
    ``pad`` so that losses touching the border are filled from paint on every side."""
    padded = cv2.copyMakeBorder(u8, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    valid = np.where(hole, 0, 255).astype(np.uint8)   # xphoto: 255 = valid, 0 = to fill
    valid = cv2.copyMakeBorder(valid, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    if padded.ndim == 2:
        padded = padded[:, :, None]
    filled = np.zeros_like(padded)
    cv2.xphoto.inpaint(padded, valid, filled, cv2.xphoto.INPAINT_FSR_FAST)
    return filled[pad:pad + u8.shape[0], pad:pad + u8.shape[1]].reshape(u8.shape)


#: How far (px, square neighbourhood) FSR_FAST reads around a pixel it fills: it extrapolates
#: blocks of 16 px (split down to 4 px where busy) each from a 32 px window, the block plus
#: (32 - block) / 2 px on every side, so 15 + 8 px at most. Missing pixels within this distance
#: of what the MRF reads are FSR's own, so that no Telea pixel (``fsr_fill_where_needed``) lies
#: in the window FSR fills a read pixel from. Only FSR's block-by-block progress along a long
#: loss reaches further (ad hoc, 4 MP scaling panel, 30 windows, 8-bit levels: FSR's values
#: moved by 2.0 on average 8-10 px from a Telea pixel, 1.0 at 14-24 px, 0.2 at 32-48 px).
FSR_CONTEXT = 23


def fsr_fill_where_needed(u8: np.ndarray, hole: np.ndarray, needed: np.ndarray,
                          radius: int = 3) -> np.ndarray:
    """FSR fill of the ``needed`` missing pixels, OpenCV Telea fill of the other ones.

    FSR was the costliest stage of the 64 MP scaling run (899 of 1,975 worker-seconds), and a
    work window holds losses that other windows own (in its margin, and mirrored into
    ``FSR_PAD``): those need a first guess only so that nothing reads a void. Telea (fast
    marching, of the whole hole, from known paint only) gives one at a small fraction of
    FSR's cost; FSR then sees those pixels as known paint. u8: (H, W[, C]) uint8; hole,
    needed: (H, W) bool with ``needed`` inside ``hole``; returns the filled uint8 image.
    """
    telea = telea_fill(u8, hole, radius)
    if not needed.any():
        return telea
    cheap = hole & ~needed
    if u8.ndim == 3:
        cheap, needed = cheap[:, :, None], needed[:, :, None]
    fsr = fsr_fill(np.where(cheap, telea, u8), needed.reshape(hole.shape))
    return np.where(needed, fsr, telea)


def gabor_transfer_functions(height: int, width: int, scales: int = 3,
                             orientations: int = 6) -> np.ndarray:
    """(scales*orientations, height, width) one-sided Gabor transfer functions (GIST layout).

    G(f, theta) = exp(-3.5 (f/f_s - 1)^2 - 2 pi b (theta - theta_k)^2), f_s = 0.3 / 1.85^s
    cycles/pixel, theta_k = k pi / n, b = 16 n^2 / 32^2; the angle difference wraps to (-pi, pi].
    """
    fy = scipy.fft.fftfreq(height)[:, None]
    fx = scipy.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    theta = np.arctan2(fy, fx)
    b = 16.0 * orientations**2 / 32.0**2
    # angular terms depend on the orientation only: computed once, shared by the scales
    angular = []
    for k in range(orientations):
        d = np.angle(np.exp(1j * (theta - k * np.pi / orientations)))  # wrap to (-pi, pi]
        angular.append(2.0 * np.pi * b * d**2)
    bank = []
    for s in range(scales):
        f_s = 0.30 / 1.85**s
        radial = -3.5 * (radius / f_s - 1.0) ** 2
        bank += [np.exp(radial - a).astype(np.float32) for a in angular]
    return np.stack(bank)


def gabor_features(grey: np.ndarray, cfg: ContextConfig, pad: int = 32) -> np.ndarray:
    """(H, W) grey in [0, 1] -> (H, W, F) contrast-normalised Gabor energies (float32)."""
    height, width = grey.shape
    padded = np.pad(grey.astype(np.float32), pad, mode="symmetric")
    spectrum = scipy.fft.fft2(padded, workers=-1)
    bank = gabor_transfer_functions(*padded.shape, cfg.scales, cfg.orientations)
    feats = np.empty((height, width, len(bank)), dtype=np.float32)
    for k, transfer in enumerate(bank):  # one filter at a time bounds memory
        response = scipy.fft.ifft2(spectrum * transfer, workers=-1)
        feats[:, :, k] = np.abs(response[pad:pad + height, pad:pad + width])
    norm = np.linalg.norm(feats, axis=2, keepdims=True)
    scale = np.log10(1.0 + norm / 0.03) / np.maximum(norm, 1e-12)
    return feats * scale


def texton_map(image: np.ndarray, hole: np.ndarray, cfg: ContextConfig) -> np.ndarray:
    """(H, W) int16 texton labels of known pixels (k-means on Gabor energies), -1 in the hole."""
    import faiss

    grey = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)
    feats = gabor_features(grey, cfg)
    flat = feats.reshape(-1, feats.shape[2])
    known = np.flatnonzero(~hole.ravel())
    rng = np.random.default_rng(cfg.seed)
    sample = known if len(known) <= cfg.kmeans_samples else rng.choice(
        known, cfg.kmeans_samples, replace=False)
    k = min(cfg.textons, len(sample))
    # min_points_per_centroid only decides whether FAISS prints "please provide at least ...
    # training points" on small windows (the clustering is the same): -q means quiet
    kmeans = faiss.Kmeans(flat.shape[1], k, niter=25, seed=cfg.seed, verbose=False,
                          min_points_per_centroid=1)
    with faiss_threads(1):
        kmeans.train(np.ascontiguousarray(flat[np.sort(sample)]))
        _, labels = kmeans.index.search(np.ascontiguousarray(flat), 1)
    labels = labels.reshape(hole.shape).astype(np.int16)
    labels[hole] = -1
    return labels


def chi2_distance(g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """1/2 sum_t (g_t - h_t)^2 / (g_t + h_t), broadcasting over leading axes; range [0, 1]."""
    s = g + h
    d = np.where(s > 0, (g - h) ** 2 / np.where(s > 0, s, 1.0), 0.0)
    return 0.5 * d.sum(-1)


def _histogram(labels: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    counts = np.bincount(labels.ravel() + 1, minlength=k + 1)
    known = counts[1:].sum()
    fraction = known / max(labels.size, 1)
    return (counts[1:] / known if known else np.zeros(k)), fraction


def split_blocks(labels: np.ndarray, cfg: ContextConfig) -> np.ndarray:
    """Top-down splitting into variable-size blocks; returns (B, 4) rows of (r0, c0, r1, c1).

    A block is halved (first along its longer side, children alternating) when the texton
    histograms of its halves differ by more than Ts; no side gets shorter than side / f.
    Blocks that are mostly missing are not split further.
    """
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 1
    height, width = labels.shape
    min_h = max(1, height // cfg.min_block_fraction)
    min_w = max(1, width // cfg.min_block_fraction)
    hm, wm = height // 2, width // 2
    first_dir = 0 if height > width else 1
    queue = [(r0, c0, r1, c1, first_dir) for (r0, r1) in ((0, hm), (hm, height))
             for (c0, c1) in ((0, wm), (wm, width)) if r1 > r0 and c1 > c0]
    final = []

    def halves(b, d):
        r0, c0, r1, c1 = b
        if d == 0:
            m = (r0 + r1) // 2
            return (r0, c0, m, c1), (m, c0, r1, c1)
        m = (c0 + c1) // 2
        return (r0, c0, r1, m), (r0, m, r1, c1)

    def hist(b):
        return _histogram(labels[b[0]:b[2], b[1]:b[3]], k)

    while queue:
        r0, c0, r1, c1, direction = queue.pop()
        block = (r0, c0, r1, c1)
        _, fraction = hist(block)
        if fraction <= cfg.reliable_fraction:
            final.append(block)
            continue
        accepted = False
        for d in (direction, 1 - direction):
            side, minimum = (r1 - r0, min_h) if d == 0 else (c1 - c0, min_w)
            if side < 2 * minimum:
                continue
            b1, b2 = halves(block, d)
            (h1, f1), (h2, f2) = hist(b1), hist(b2)
            if f1 == 0 or f2 == 0:
                empty, other = (b1, b2) if f1 == 0 else (b2, b1)
                final.append(empty)
                queue.append((*other, 1 - d))
                accepted = True
            elif chi2_distance(h1, h2) > cfg.split_threshold:
                for b, f in ((b1, f1), (b2, f2)):
                    if f <= cfg.reliable_fraction:
                        final.append(b)
                    else:
                        queue.append((*b, 1 - d))
                accepted = True
            if accepted:
                break
        if not accepted:
            final.append(block)
    blocks = np.array(sorted(final), dtype=np.int64)
    return blocks


def _adjacency(blocks: np.ndarray) -> list[np.ndarray]:
    """4-adjacency of rectangles: they share an edge segment of positive length."""
    r0, c0, r1, c1 = (blocks[:, i] for i in range(4))
    touch_v = ((r1[:, None] == r0[None]) | (r0[:, None] == r1[None])) & \
        (np.minimum(c1[:, None], c1[None]) > np.maximum(c0[:, None], c0[None]))
    touch_h = ((c1[:, None] == c0[None]) | (c0[:, None] == c1[None])) & \
        (np.minimum(r1[:, None], r1[None]) > np.maximum(r0[:, None], r0[None]))
    adj = touch_v | touch_h
    np.fill_diagonal(adj, False)
    return [np.flatnonzero(row) for row in adj]


def match_blocks(histograms: np.ndarray, known_fraction: np.ndarray, blocks: np.ndarray,
                 cfg: ContextConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per block, the ids of up to ``max_matches`` blocks with chi2 distance < Tb (itself first).

    Unreliable blocks (mostly missing) inherit the lists of their reliable neighbours, plus their
    unreliable neighbours and themselves, with distances recomputed against their own partial
    histogram when they have known pixels.
    """
    n = len(blocks)
    dist = chi2_distance(histograms[:, None, :], histograms[None, :, :])
    has_known = known_fraction > 0
    reliable = known_fraction > cfg.reliable_fraction
    dist[:, ~has_known] = np.inf
    matches, errors = [None] * n, [None] * n
    for b in np.flatnonzero(reliable):
        order = np.argsort(dist[b], kind="stable")
        keep = order[dist[b, order] < cfg.match_threshold][:cfg.max_matches]
        if len(keep) == 0:
            keep = order[:2]
        keep = np.r_[b, keep[keep != b]][:cfg.max_matches]
        matches[b], errors[b] = keep, np.where(keep == b, 0.0, dist[b, keep])
    adjacency = _adjacency(blocks)
    for b in np.flatnonzero(~reliable):
        ids, errs = [np.array([b])], [np.array([0.0])]
        for a in adjacency[b]:
            if reliable[a]:
                ids.append(matches[a])
                errs.append(errors[a])
            else:
                ids.append(np.array([a]))
                errs.append(np.array([dist[b, a] if has_known[b] else cfg.match_threshold]))
        ids, errs = np.concatenate(ids), np.concatenate(errs)
        if has_known[b]:
            errs = np.where(ids == b, 0.0, dist[b, ids])
        unique, first = np.unique(ids, return_index=True)
        best = np.full(len(unique), np.inf)
        np.minimum.at(best, np.searchsorted(unique, ids), errs)
        order = np.argsort(best, kind="stable")
        usable = has_known[unique[order]] | (unique[order] == b)
        matches[b] = unique[order][usable]
        errors[b] = np.minimum(best[order][usable], 1.0)
    return matches, errors


def build_context(image: np.ndarray, hole: np.ndarray, cfg: ContextConfig | None = None) -> Context:
    """Textons, blocks and block matches of a pre-filled (H, W, 3) image with its hole mask."""
    cfg = cfg or ContextConfig()
    labels = texton_map(image, hole, cfg)
    blocks = split_blocks(labels, cfg)
    k = int(labels.max()) + 1 if labels.max() >= 0 else 1
    hists, fractions = zip(*(_histogram(labels[r0:r1, c0:c1], k) for r0, c0, r1, c1 in blocks))
    histograms, known_fraction = np.stack(hists), np.array(fractions)
    block_map = np.empty(hole.shape, dtype=np.int32)
    for i, (r0, c0, r1, c1) in enumerate(blocks):
        block_map[r0:r1, c0:c1] = i
    matches, errors = match_blocks(histograms, known_fraction, blocks, cfg)
    return Context(blocks=blocks, block_map=block_map, histograms=histograms,
                   known_fraction=known_fraction, matches=matches, match_errors=errors,
                   textons=labels)
