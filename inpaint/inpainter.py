"""One work region at a time: the descriptor's patch field (loaded once), the MRF settings,
and the fallbacks for windows too small for the configured patch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from descriptor import (
    RF_RADIUS,
    Checkpoint,
    IRField,
    PatchEncoderField,
    cell_bounds,
    load_checkpoint,
)
from mrf import PixelField, inpaint_mrf, inpaint_pyramid, prefill
from mrf.context import FSR_CONTEXT
from mrf.lattice import source_patches
from mrf.pyramid import prefill_reach

from .config import PIXEL_MODE, RunConfig
from .dtypes import check_float_range, from_float, to_float
from .errors import InpaintError
from .regions import Region, owned_pixels, with_enough_sources

log = logging.getLogger(__name__)

#: Patch sides tried, in pixel mode, for a window with no fully known patch of the configured
#: size, before the diffusion fill.
FALLBACK_PATCHES = (7, 5, 3)


def _has_sources(hole: np.ndarray, patch: int) -> bool:
    """Whether an MRF with ``patch`` px patches can run on this window: a lattice fits and at
    least one fully known patch exists to copy from."""
    return min(hole.shape) > patch and source_patches(hole, patch) > 0


FieldMaker = Callable[[np.ndarray, np.ndarray], object]


def prefill_needed(hole: np.ndarray, own: np.ndarray, band: int) -> np.ndarray:
    """The missing pixels of a window whose pre-fill its own losses' results read: those within
    ``band`` px (square neighbourhood, as patches are square) of an owned one. The others are
    losses owned by neighbouring windows (the margin), whose results this window discards."""
    if not own.any():
        return np.zeros_like(hole)
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    near = cv2.dilate(own.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                      borderValue=0) > 0
    return hole & near


def field_factory(descriptor: str, patch: int, device: torch.device,
                  ir_dtype: str = "float32", checkpoint: Checkpoint | None = None
                  ) -> tuple[FieldMaker, dict]:
    """A builder ``make(image, hole) -> patch field`` for ``descriptor``, and a description of
    it for the report. ``checkpoint``: the descriptor already loaded on ``device`` (else it is
    loaded here)."""
    if descriptor == PIXEL_MODE:
        def make_pixels(img, hole):
            return PixelField(img, hole, patch, device=device)
        return make_pixels, {"name": PIXEL_MODE, "kind": "pixels", "dim": 3 * patch * patch}
    ck = checkpoint if checkpoint is not None else load_checkpoint(descriptor, device=device)
    info = {"name": descriptor, "source": ck.source, "arch": ck.arch,
            "padding_mode": ck.config.padding_mode, "trained_patch": ck.config.patch_size,
            "dim": ck.config.descriptor_dim}
    if ck.config.has_ir:
        dtype = {"float32": torch.float32, "float16": torch.float16}[ir_dtype]

        def make_ir(img, hole):
            return IRField(ck.model, img, hole, patch, device=device, dtype=dtype)
        info.update(kind="ir", ir_channels=ck.config.ir_channels, ir_dtype=ir_dtype,
                    dim=ck.config.ir_channels * len(cell_bounds(patch)) ** 2)
        return make_ir, info
    if ck.config.channels != 3:
        # A grey descriptor would match patches by luminance only and ignore colour: refused
        # rather than silently converting the RGB patches (it can still be inverted).
        raise InpaintError(f"the {descriptor} descriptor is a grey (1-channel) {ck.arch}: "
                           "inpainting needs an RGB descriptor (train one with --channels 3)")
    if patch != ck.config.patch_size:
        raise InpaintError(f"the {ck.arch} descriptor encodes {ck.config.patch_size}x"
                           f"{ck.config.patch_size} patches: use --patch-size "
                           f"{ck.config.patch_size}")
    info.update(kind="per-patch encoder")

    def make_encoder(img, hole):
        return PatchEncoderField(ck.model, img, hole, patch, device=device)
    return make_encoder, info


@dataclass
class RegionResult:
    """What one work region wrote: the owned loss pixels (global coordinates) and their values."""

    region: Region
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray          # (n, colour bands) in the panel's dtype
    stats: dict
    timings: dict


class RegionInpainter:
    """The descriptor (loaded once) and MRF settings; inpaints one window at a time."""

    def __init__(self, cfg: RunConfig, device: torch.device, use_gpu: bool,
                 checkpoint: Checkpoint | None = None):
        self.cfg = cfg
        self.device = device
        self.make_field, self.field_info = field_factory(cfg.descriptor, cfg.patch, device,
                                                         cfg.ir_dtype, checkpoint)
        self.mrf_config = cfg.mrf_config(use_gpu)
        # an IR descriptor of a patch reads the IR's receptive field around it; pixel and
        # per-patch fields read the patch alone. The pixel-mode fallbacks (smaller patches, no
        # IR) read less than the configured MRF does.
        field_radius = RF_RADIUS if self.field_info["kind"] == "ir" else 0
        self.prefill_band = prefill_reach(self.mrf_config, field_radius) + FSR_CONTEXT

    def inpaint(self, colour: np.ndarray, hole: np.ndarray, progress=None,
                own: np.ndarray | None = None) -> tuple[np.ndarray, dict, dict]:
        """colour: (h, w, 1|3) native dtype window; hole: (h, w) bool -> float (h, w, 3).

        own: (h, w) bool, the losses whose results the caller keeps (``region_inputs``);
        missing pixels farther than ``prefill_band`` px from them get a cheap pre-fill
        (``prefill_needed``, ``mrf.context.prefill``). None: every missing pixel is kept.
        A window without a fully known patch of the configured size (a small panel, a loss
        filling most of it) is still restored: by pixel-mode MRF with smaller patches, else by
        a biharmonic (diffusion) fill; ``stats["fallback"]`` says which, and why.
        """
        t = time.perf_counter()
        unit = to_float(colour)
        rgb = np.repeat(unit, 3, axis=2) if unit.shape[2] == 1 else unit
        needed = None if own is None else prefill_needed(hole, own, self.prefill_band)
        filled = prefill(rgb, hole, method=self.cfg.prefill, needed=needed)
        prefill_seconds = time.perf_counter() - t
        patch = self.cfg.patch
        if not _has_sources(hole, patch):
            return self._fallback(rgb, filled, hole, prefill_seconds, progress)
        try:
            result = inpaint_pyramid(filled, hole, self.make_field, self.mrf_config,
                                     progress=progress, log=log.debug, device=self.device)
        except ValueError as exc:
            raise InpaintError(str(exc)) from None
        return result.image, result.stats, {"prefill": prefill_seconds, **result.timings}

    def _fallback(self, rgb: np.ndarray, filled: np.ndarray, hole: np.ndarray,
                  prefill_seconds: float, progress) -> tuple[np.ndarray, dict, dict]:
        h, w = hole.shape
        reason = (f"no fully known {self.cfg.patch}x{self.cfg.patch} patch in a {w}x{h} "
                  "window")
        for patch in FALLBACK_PATCHES:
            if patch >= self.cfg.patch or not _has_sources(hole, patch):
                continue
            small = replace(self.cfg, descriptor=PIXEL_MODE, patch_size=patch,
                            patch_step=max(1, patch // 2))
            result = inpaint_mrf(filled, hole,
                                 lambda img, p=patch: PixelField(img, hole, p, device=self.device),
                                 small.mrf_config(False), progress=progress, log=log.debug,
                                 device=self.device)
            stats = dict(result.stats, fallback={"method": f"pixel-mode MRF, {patch}x{patch} "
                                                           "patches", "reason": reason})
            return result.image, stats, {"prefill": prefill_seconds, **result.timings}
        from skimage.restoration import inpaint_biharmonic

        t = time.perf_counter()
        image = rgb.copy()   # only the hole changes; the known pixels stay bit-exact
        image[hole] = np.clip(inpaint_biharmonic(rgb, hole, channel_axis=-1), 0, 1)[hole]
        stats = {"nodes": 0, "fallback": {"method": "biharmonic diffusion fill",
                                          "reason": reason + " (nor of any smaller patch)"}}
        return image, stats, {"prefill": prefill_seconds, "diffusion": time.perf_counter() - t}


def region_inputs(read_colour, mask, region: Region, labels, patch: int, shortlist: int):
    """The region (window grown if it lacks sources), its colour, hole and owned pixels.

    A window too small for the patch is not refused: RegionInpainter falls back."""
    region = with_enough_sources(region, mask, patch, shortlist)
    r0, c0, r1, c1 = region.window
    hole = mask[r0:r1, c0:c1]
    colour = read_colour(region.window)
    check_float_range(colour, hole)
    return region, colour, hole, owned_pixels(region, labels)


def region_result(region: Region, colour: np.ndarray, own: np.ndarray, image: np.ndarray,
                  stats, timings) -> RegionResult:
    """The owned loss pixels of a region's inpainted ``image``, back in ``colour``'s dtype."""
    out = image[:, :, :1] if colour.shape[2] == 1 else image
    rows, cols = np.nonzero(own)
    return RegionResult(region=region, rows=rows + region.window[0], cols=cols + region.window[1],
                        values=from_float(out[own], colour.dtype), stats=stats, timings=timings)
