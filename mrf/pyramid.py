"""Coarse-to-fine fill of large lacunae: the MRF run on an image pyramid (``MRFConfig.levels``).

At half the resolution a patch of the same side covers four times the area: a structure wider
than a patch (a band, a fold, an edge across a lacuna) fits in one patch there, and sources
twice as far away, in fine pixels, are as near in patches as the next ones were. The coarse
level is the pre-filled image averaged over 2 x 2 blocks, with a coarse pixel missing when any of
its four fine pixels is; it runs ``coarse_passes`` search passes, each re-searching the nodes
without known pixels with the previous fill as the query, so that structures entering a lacuna
grow through it, and fills by plain copy (no structure/texture split, no texture term: those
act on fine detail). Its fill, upsampled (bicubic), gives the low frequencies (below a Gaussian of
2 px) of the lacunae (missing pixels deeper than ``crack_width``, cross-faded over 2 px) in the
image the fine level starts from, whose detail stays the pre-fill's: the query of its candidate
search, and the smooth part under ``structure_sigma`` with ``structure="prefill"``. Thin cracks
keep the pre-fill exactly. Levels recurse (level 3 is run on the coarse level's coarse level,
and so on).

A level is skipped (the fine level then runs on the pre-fill, as with ``levels=1``) when its
hole has no pixel deeper than half a patch (no node without a known pixel, where only the query
chooses the sources: crack-only masks cost nothing), or when the coarse image is smaller than a
patch or holds fewer fully known patches than a shortlist.

Memory: the coarse level runs before the fine level starts and its arrays are dropped when it
ends; its window has a quarter of the fine window's pixels (IR, context, compose buffers), its
label cache has the same cap (``PATCH_CACHE_BYTES``). The fine level holds one more float32 RGB
copy of the window (the guided start image, 12 bytes per pixel) beside the pre-fill. The plan
(``inpaint.plan``) is not changed: measured on a 512 x 512 image with 5 % synthetic loss, one
worker, the peak RSS grew from 766 to 866 MB with ``levels=2`` (freed heap is not all returned
to the system), under the plan's predicted 1450 MB: the +100 MB lies within the safety share
(130 MB) of that run's window term (651 MB). Larger windows were not measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np
from scipy import ndimage

from .devices import Device
from .field import PatchField, PixelField
from .inpainter import MRFConfig, MRFResult, inpaint_mrf
from .lattice import source_patches

#: Width (px) over which the pre-fill of cracks is cross-faded into the coarse fill of lacunae.
GUIDE_FADE = 2.0

#: Gaussian (px) that keeps the structure of the coarse fill and leaves the detail to the pre-fill.
GUIDE_SIGMA = 2.0

#: ``make(image, hole) -> patch field``: a field builder for any image size and hole.
FieldBuilder = Callable[[np.ndarray, np.ndarray], PatchField]

#: Reach (px) of ``scipy.ndimage.gaussian_filter`` (its default truncation, 4 sigma).
GAUSSIAN_TRUNCATE = 4.0


def _gaussian_reach(sigma: float) -> int:
    return int(GAUSSIAN_TRUNCATE * sigma + 0.5)


def prefill_reach(cfg: MRFConfig, field_radius: int) -> int:
    """How far (px, square neighbourhood) from a missing pixel ``inpaint_pyramid`` reads the
    pre-fill to fill that pixel: the pre-fill beyond it can be a cheaper guess (a work window
    fills its own losses only, see ``inpaint.inpainter``) without changing the pixel's result
    except through the context model and candidate descriptors (below).

    Per level: the candidate-search query of every node whose patch covers the pixel (its
    patch, ``patch - 1`` px away at most, plus ``field_radius``: the IR's receptive field, 0
    for pixel and per-patch fields) and of their lattice neighbours (``patch_step`` further),
    whose shortlists NCMP couples to theirs; with ``texture_weight`` the texture term's
    known patches (the node's patch + 4 patch widths + a patch + 4 px); each later pass
    queries with the previous pass's fill, which carries the pre-fill that far again; with
    ``structure`` "prefill" or "adaptive" the composition's Gaussian of the pre-fill. With
    levels, the coarse level's reach (coarse px: twice in fine px, plus the 2 px bicubic
    support) is added through ``guided_prefill``'s
    Gaussian. Unbounded and left out: the texton k-means of the context model (global) and the
    IR of candidates next to other losses (3 px around them); both change the pixel's result
    only through which candidates are found, not through what is compared. Also left out, with
    ``structure="adaptive"``: the fits of the chosen labels of nodes up to a Gaussian of one
    patch (4 sigma) away, which weigh the pixel's structure (``compose.match_weight``), and,
    with ``detail_gain`` > 1 or ``detail_damp`` < 1, the detail energies of the paint and of
    the fill as far away (``compose.structure_texture``); covering them would more than double
    the band (and FSR's time) for weights that far pixels move little (tests/test_prefill.py
    measures it). Left out too: ICM (``icm_sweeps``) followed by propagation rounds carries a
    node's chosen label a few more lattice steps (each half-sweep and round one step), through
    labels that mostly end with negligible belief (1e-7 of a pixel value in
    tests/test_prefill.py).
    """
    patch = cfg.patch_size
    query = patch - 1 + field_radius
    if cfg.texture_weight > 0:
        # the node's patch, known patches whose corners lie within a Gaussian of one patch
        # (or two patches, the bilateral mean's radius) of its corner, their extent, and the
        # 1-px Gaussian of the detail energy
        query = max(query, 2 * (patch - 1) + max(_gaussian_reach(float(patch)), 2 * patch)
                    + _gaussian_reach(1.0))
    reach = cfg.passes * (query + cfg.patch_step)
    if cfg.composition == "copy" and cfg.structure_sigma > 0 and \
            cfg.structure in ("prefill", "adaptive"):
        reach = max(reach, _gaussian_reach(cfg.structure_sigma))
    if cfg.levels > 1:
        coarse = prefill_reach(coarse_config(cfg), field_radius)
        reach += _gaussian_reach(GUIDE_SIGMA) + 2 * (coarse + 2) + 1
    return reach


def downsample(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-resolution image (2 x 2 area average) and hole (a coarse pixel is missing when any
    of its fine pixels is). Odd sides are padded by repeating the last row or column."""
    h, w = hole.shape
    pad = ((0, h % 2), (0, w % 2))
    img = np.pad(image, (*pad, (0, 0)), mode="edge")
    msk = np.pad(hole, pad, mode="edge")
    hh, ww = msk.shape[0] // 2, msk.shape[1] // 2
    coarse = img.reshape(hh, 2, ww, 2, -1).mean(axis=(1, 3), dtype=np.float64)
    return coarse.astype(np.float32), msk.reshape(hh, 2, ww, 2).any(axis=(1, 3))


def upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``coarse`` (h, w, C) brought back to ``shape`` (twice its size, cropped): bicubic,
    clipped to [0, 1]."""
    h, w = coarse.shape[:2]
    up = cv2.resize(np.ascontiguousarray(coarse, dtype=np.float32), (2 * w, 2 * h),
                    interpolation=cv2.INTER_CUBIC)
    up = up.reshape(2 * h, 2 * w, -1)[:shape[0], :shape[1]]
    return np.clip(up, 0.0, 1.0)


def skip_reason(depth: np.ndarray, coarse_hole: np.ndarray | None, cfg: MRFConfig) -> str | None:
    """Why the coarse level is not run, or None when it is. depth: distance (px) of every
    pixel to the nearest known one; coarse_hole: the downsampled hole."""
    if not depth.max(initial=0.0) > cfg.patch_size / 2:
        return "no lacuna wider than a patch"
    if coarse_hole is None or min(coarse_hole.shape) <= cfg.patch_size:
        return "coarse image smaller than a patch"
    if source_patches(coarse_hole, cfg.patch_size) < cfg.shortlist:
        return "too few fully known patches at the coarse level"
    return None


def guided_prefill(image: np.ndarray, hole: np.ndarray, coarse_fill: np.ndarray,
                   depth: np.ndarray, crack_width: float) -> np.ndarray:
    """``image`` (the pre-fill) whose lacunae take the low frequencies of ``coarse_fill`` (same
    size): the pre-fill plus the difference coarse - pre-fill smoothed by a Gaussian of sigma
    ``GUIDE_SIGMA`` px, so the coarse level brings the structure and the pre-fill keeps its
    detail (the upsampled coarse fill has none above half resolution; measured better than the
    plain coarse fill, see README ``--levels``). Its weight is 0 up to ``crack_width`` px from
    known paint (cracks keep the pre-fill) and rises to 1 over ``GUIDE_FADE`` px. Pixels outside
    ``hole`` are ``image``'s, bit for bit."""
    difference = np.where(hole[:, :, None], coarse_fill - image, 0.0)
    structure = ndimage.gaussian_filter(difference, (GUIDE_SIGMA, GUIDE_SIGMA, 0),
                                        mode="nearest")
    weight = np.clip((depth - crack_width) / GUIDE_FADE, 0.0, 1.0)[:, :, None]
    mixed = np.clip(image + weight * structure, 0.0, 1.0).astype(image.dtype)
    return np.where(hole[:, :, None], mixed, image)


def inpaint_pyramid(
    image: np.ndarray,
    hole: np.ndarray,
    make_field: FieldBuilder | None = None,
    config: MRFConfig | None = None,
    *,
    progress=None,
    log=None,
    device: Device = "cpu",
) -> MRFResult:
    """``inpaint_mrf`` coarse to fine over ``config.levels`` levels (1 = ``inpaint_mrf`` alone).

    image: (H, W, 3) float32 in [0, 1], hole pre-filled; hole: (H, W) bool, True = missing;
    make_field: ``make(image, hole) -> PatchField`` (called for every level; ``None`` = raw
    pixels). ``stats["pyramid"]`` records, level by level, whether the coarse level ran (its
    size and nodes) or why it was skipped; ``timings["coarse"]`` the seconds it took.
    Only hole pixels of the returned image differ from ``image``. device: the run's torch
    device, handed to ``inpaint_mrf`` at every level.
    """
    cfg = config or MRFConfig()
    hole = np.asarray(hole, dtype=bool)
    say = log or (lambda msg: None)
    build = make_field or (lambda img, msk: PixelField(img, msk, cfg.patch_size))
    start, pyramid = image, None
    seconds = 0.0
    if cfg.levels > 1 and hole.any():
        t = time.perf_counter()
        start, pyramid = _coarse_start(image, hole, build, cfg, progress, say, device)
        seconds = time.perf_counter() - t
    result = inpaint_mrf(start, hole, lambda img: build(img, hole), cfg, progress=progress,
                         log=log, device=device)
    if pyramid is not None:
        result.stats["pyramid"] = pyramid
        result.timings["coarse"] = seconds
    return result


def coarse_config(cfg: MRFConfig) -> MRFConfig:
    """The next coarser level's settings: more search passes, plain copy (see
    ``_coarse_start``), no propagation: the coarse level exists to carry structures across
    the lacuna by re-searching with its own fill, and the rim's coherent copies (the paint on
    either side), propagated inwards pass after pass, would cut them (a band through a
    lacuna, tests/test_pyramid.py)."""
    return replace(cfg, levels=cfg.levels - 1, passes=max(cfg.passes, cfg.coarse_passes),
                   structure_sigma=0.0, detail_gain=1.0, texture_weight=0.0, propagation=0)


def _coarse_start(image, hole, build, cfg: MRFConfig, progress, say, device: Device
                  ) -> tuple[np.ndarray, list[dict]]:
    """The fine level's starting image (pre-fill with coarse lacunae) and the pyramid's record."""
    depth = ndimage.distance_transform_edt(hole)
    small, small_hole = None, None
    if depth.max(initial=0.0) > cfg.patch_size / 2:
        small, small_hole = downsample(image, hole)
    reason = skip_reason(depth, small_hole, cfg)
    if reason is not None:
        say(f"pyramid: coarse level skipped ({reason})")
        return image, [{"level": 2, "skipped": reason}]
    # several search passes: each re-searches the mostly missing nodes with the previous fill
    # as the query, so a structure entering the lacuna grows further in (a quarter of the
    # fine level's pixels: five coarse passes cost about one fine one). The coarse fill is the
    # plain copy: a structure/texture split there would take its low frequencies from the
    # label average or the pre-fill, which stop at the lacuna's rim, and the unary's texture
    # term would charge the sources that carry an edge for detail the ground around them
    # lacks (the band test fails with either); fine detail is the fine level's job
    coarse = inpaint_pyramid(small, small_hole, build, coarse_config(cfg), progress=progress,
                             log=say, device=device)
    h, w = small_hole.shape
    say(f"pyramid: coarse level {w}x{h} px, {coarse.stats.get('nodes', 0)} nodes")
    record = [{"level": 2, "size": [h, w], "nodes": int(coarse.stats.get("nodes", 0)),
               "seconds": round(sum(coarse.timings.values()), 3)}]
    record += [dict(r, level=r["level"] + 1) for r in coarse.stats.get("pyramid", [])]
    guide = guided_prefill(image, hole, upsample(coarse.image, hole.shape), depth,
                           cfg.crack_width)
    return guide, record
