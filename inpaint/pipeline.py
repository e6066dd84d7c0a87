"""``run``: inpaint one image in memory, and ``run_file``: the same from and to raster files.

Data flow (DESIGN.md section 3): scale to [0, 1] -> pre-fill the hole -> descriptor field (IR
once per pass) -> context, lattice, FAISS candidates, pruning, NCMP -> composition that writes
only missing pixels -> back to the input dtype.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from importlib import metadata
from typing import Callable

import numpy as np
import torch

from descriptor import IRField, PatchEncoderField, load_checkpoint
from masks import check_mask_usable, mask_stats
from mrf import ContextConfig, MRFConfig, PixelField, inpaint_mrf, prefill

from .device import choose_device, faiss_gpu_count
from .errors import InpaintError
from .io import from_float, to_float
from .memory import PeakMemory

log = logging.getLogger(__name__)

PIXEL_MODE = "none"


@dataclass(frozen=True)
class RunConfig:
    """Options of one inpainting run (the CLI's ``inpaint run`` flags)."""

    descriptor: str = "v128"      # built-in name, checkpoint path, or "none" (pixel mode)
    device: str = "auto"
    patch_step: int = 4           # g: lattice step; patches are 2g+1 unless patch_size is set
    patch_size: int | None = None
    labels: int = 10
    shortlist: int = 32
    iterations: int = 10
    passes: int = 2
    candidate_stride: int = 1
    unary: str = "field"
    correction: str = "harmonic"
    use_context: bool = True
    ir_dtype: str = "float32"
    seed: int = 0
    min_known_fraction: float = 0.05

    @property
    def patch(self) -> int:
        return self.patch_size if self.patch_size else 2 * self.patch_step + 1

    def mrf_config(self, use_gpu: bool) -> MRFConfig:
        return MRFConfig(
            patch_size=self.patch, step=self.patch_step, shortlist=self.shortlist,
            labels=self.labels, iterations=self.iterations, passes=self.passes,
            candidate_stride=self.candidate_stride, unary=self.unary,
            correction=self.correction, use_context=self.use_context,
            context=ContextConfig(seed=self.seed), faiss_gpu=use_gpu)


@dataclass
class RunResult:
    image: np.ndarray
    report: dict = field(default_factory=dict)


def field_factory(descriptor: str, hole: np.ndarray, patch: int, device: torch.device,
                  ir_dtype: str = "float32") -> tuple[Callable | None, dict]:
    """The patch-field builder for ``descriptor``, and a description of it for the report."""
    if descriptor == PIXEL_MODE:
        return (lambda img: PixelField(img, hole, patch, device=device)), {
            "name": PIXEL_MODE, "kind": "pixels", "dim": 3 * patch * patch}
    ck = load_checkpoint(descriptor, device=device)
    info = {"name": descriptor, "source": ck.source, "arch": ck.arch,
            "padding_mode": ck.config.padding_mode, "trained_patch": ck.config.patch_size}
    if ck.config.has_ir:
        dtype = {"float32": torch.float32, "float16": torch.float16}[ir_dtype]

        def make(img):
            return IRField(ck.model, img, hole, patch, device=device, dtype=dtype)
        info.update(kind="ir", ir_channels=ck.config.ir_channels, ir_dtype=ir_dtype)
        return make, info
    if patch != ck.config.patch_size:
        raise InpaintError(f"the {ck.arch} descriptor encodes {ck.config.patch_size}x"
                           f"{ck.config.patch_size} patches: use --patch-size "
                           f"{ck.config.patch_size}")
    info.update(kind="per-patch encoder")
    return (lambda img: PatchEncoderField(ck.model, img, hole, patch, device=device)), info


def split_bands(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(H, W[, B]) -> (colour (H, W, 1|3), alpha or None, colour band count)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise InpaintError(f"unsupported image shape {image.shape}: expected 1, 3 or 4 bands "
                           "(grey, RGB, RGB + alpha) or grey + alpha")
    bands = image.shape[2]
    if bands in (2, 4):
        return image[:, :, :bands - 1], image[:, :, bands - 1], bands - 1
    return image, None, bands


def run(image: np.ndarray, mask: np.ndarray, config: RunConfig | None = None, *,
        progress: bool = False) -> RunResult:
    """Inpaint the pixels of ``image`` where ``mask`` is True; no other pixel changes.

    image: (H, W) or (H, W, B) with B in 1..4 (the last band of 2 or 4 is alpha and is kept,
    not inpainted), uint8, uint16 or float in [0, 1]. mask: (H, W) bool, True = missing.
    Returns the image in the same dtype and shape, with a report (timings, memory, counts).
    """
    cfg = config or RunConfig()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise InpaintError(f"mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                           f"{image.shape[1]}x{image.shape[0]}")
    colour, alpha, bands = split_bands(image)
    stats = mask_stats(mask)
    report = {"mask": {"missing": stats.missing, "fraction": stats.fraction,
                       "components": stats.components}, "timings": {}, "versions": versions()}
    if stats.missing == 0:
        log.warning("the mask is empty: nothing to inpaint, the image is copied through")
        report["nothing_to_do"] = True
        return RunResult(image=image.copy(), report=report)
    check_mask_usable(mask, min_known_fraction=cfg.min_known_fraction)
    device = choose_device(cfg.device)
    use_gpu = device.type == "cuda" and faiss_gpu_count() > 0
    patch = cfg.patch
    if min(mask.shape) < patch + 1:
        raise InpaintError(f"image of {mask.shape[1]}x{mask.shape[0]} pixels is too small for "
                           f"{patch}x{patch} patches")
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        unit = to_float(colour)
        rgb = np.repeat(unit, 3, axis=2) if bands == 1 else unit
        filled = prefill(rgb, mask)
        report["timings"]["prefill"] = time.perf_counter() - t0
        make_field, field_info = field_factory(cfg.descriptor, mask, patch, device, cfg.ir_dtype)
        try:
            result = inpaint_mrf(filled, mask, make_field, cfg.mrf_config(use_gpu),
                                 progress=_progress_factory(progress), log=log.info)
        except ValueError as exc:
            raise InpaintError(str(exc)) from None
        report["timings"].update(result.timings)
        out_rgb = result.image[:, :, :1] if bands == 1 else result.image
        out = colour.copy()
        out[mask] = from_float(out_rgb[mask], colour.dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha[:, :, None]], axis=2)
    out = out.reshape(image.shape)
    report.update(
        descriptor=field_info, device=str(device), faiss_gpu=use_gpu,
        mrf={k: v for k, v in result.stats.items() if k != "config"},
        config=asdict(cfg), peak_rss_bytes=peak.peak_rss, peak_device_bytes=peak.peak_device,
        seconds=round(time.perf_counter() - t0, 3))
    return RunResult(image=out, report=report)


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    def make(iterable=None, **kwargs):
        return tqdm(iterable, leave=False, **kwargs)
    return make


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("inpaint", "torch", "numpy", "faiss-cpu", "rasterio", "scikit-image"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_file(
    input_path: str,
    mask_path: str,
    output_path: str,
    config: RunConfig | None = None,
    *,
    invert_mask: bool = False,
    dilate_radius: int = 0,
    force: bool = False,
    report_path: str | None = None,
    preview_path: str | None = None,
    progress: bool = False,
) -> dict:
    """``inpaint run``: read a raster and its loss mask, inpaint, write the result atomically
    with the input's profile; optionally a JSON report and a preview PNG. Returns the report."""
    from masks import dilate, read_mask

    from .io import RasterWriter, read_raster, write_preview
    from .report import write_report

    t_start = time.perf_counter()
    raster = read_raster(input_path)
    mask = read_mask(mask_path, shape=(raster.height, raster.width), invert=invert_mask)
    if dilate_radius:
        mask = dilate(mask, dilate_radius)
    writer = RasterWriter(output_path, raster, force=force)  # checks the output before working
    if report_path and Path(report_path).exists() and not force:
        raise InpaintError(f"{report_path} exists; pass --force to overwrite")
    t_read = time.perf_counter() - t_start
    result = run(raster.data, mask, config, progress=progress)
    t = time.perf_counter()
    with writer:
        writer.write_window(result.image, (0, 0, raster.height, raster.width))
    report = result.report
    report["timings"] = {"read": t_read, **report["timings"], "write": time.perf_counter() - t}
    report.update(input=str(input_path), mask=dict(report["mask"], path=str(mask_path),
                                                    inverted=invert_mask, dilated_by=dilate_radius),
                  output=str(output_path),
                  raster={"height": raster.height, "width": raster.width,
                          "bands": raster.bands, "dtype": str(raster.dtype)},
                  total_seconds=round(time.perf_counter() - t_start, 3))
    if preview_path:
        colour = to_float(raster.colour)
        result_colour = to_float(result.image[:, :, :colour.shape[2]])
        if colour.shape[2] == 1:
            colour, result_colour = (np.repeat(a, 3, axis=2) for a in (colour, result_colour))
        write_preview(preview_path, colour, mask, result_colour)
    if report_path:
        write_report(report_path, report)
    return report
