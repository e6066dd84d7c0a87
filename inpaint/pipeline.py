"""``run``: inpaint one image in memory, and ``run_file``: the same from and to raster files.
Both go through one core (``_inpaint_losses``): plan, work regions, inpaint.

Data flow (DESIGN.md section 3): scale to [0, 1] -> pre-fill the hole -> descriptor field (IR
once per pass) -> context, lattice, FAISS candidates, pruning, NCMP -> composition that writes
only missing pixels -> back to the input dtype. The parts: ``config`` (RunConfig),
``inpainter`` (one work region), ``executor`` (regions in this process or on workers, the
out-of-memory retry), ``streaming`` (the output written in row bands).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from descriptor import load_checkpoint
from masks import MaskStats, mask_stats, require_usable

from .box import Box
from .config import PIXEL_MODE, RunConfig
from .device import choose_device, faiss_gpu_count
from .dtypes import to_float
from .errors import InpaintError
from .executor import inpaint_regions
from .inpainter import RegionInpainter, RegionResult, field_factory
from .memory import PeakMemory, process_peak_rss
from .plan import Plan, default_budget, make_plan
from .regions import plan_regions
from .report import versions
from .streaming import preview_step, stream_output

log = logging.getLogger(__name__)

AUTO_MASK = "auto"   # run_file(mask_path="auto"): mask from inpaint.detect


@dataclass
class RunResult:
    image: np.ndarray
    report: dict = field(default_factory=dict)


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


def _summarise(results: list[RegionResult]) -> tuple[dict, dict]:
    """Timings summed over regions; node/label counts summed, last config kept."""
    timings: dict[str, float] = {}
    totals = {"regions": len(results), "nodes": 0, "edges": 0, "candidates": 0}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        for k in ("nodes", "edges", "candidates"):
            totals[k] += int(r.stats.get(k, 0))
    fallbacks = [{"window": list(r.region.window), **r.stats["fallback"]} for r in results
                 if "fallback" in r.stats]
    if fallbacks:
        totals["fallbacks"] = fallbacks
    levels = [level for r in results for level in r.stats.get("pyramid", [])]
    if levels:   # --levels > 1: coarse levels run, and the reasons of those skipped
        skipped = Counter(level["skipped"] for level in levels if "skipped" in level)
        totals["pyramid"] = {"coarse_levels_run": sum("skipped" not in v for v in levels),
                             "skipped": dict(skipped)}
    if results:
        last = results[-1].stats
        totals.update(shortlist=last.get("shortlist"), labels=last.get("labels"),
                      largest_window=max(r.region.pixels for r in results),
                      passes=[p["iterations"] for p in last.get("passes", [])])
    return timings, totals


def _prepare(mask: np.ndarray, shape: tuple[int, ...]) -> tuple[dict, MaskStats]:
    """The report's start, and the mask's statistics (the one labelling of the mask)."""
    if mask.shape != tuple(shape[:2]):
        raise InpaintError(f"mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                           f"{shape[1]}x{shape[0]}")
    stats = mask_stats(mask)
    return {"mask": {"missing": stats.missing, "fraction": stats.fraction,
                     "components": stats.components}, "timings": {}, "versions": versions()}, \
        stats


def plan_run(cfg: RunConfig, shape: tuple[int, int], bands: int, itemsize: int,
             missing: int) -> tuple[RunConfig, Plan, torch.device, bool, RegionInpainter]:
    """Device, memory plan, and the region inpainter configured by that plan."""
    device = choose_device(cfg.device)
    use_gpu = device.type == "cuda" and faiss_gpu_count() > 0
    # the descriptor is loaded (and its weights hashed) once per run, here
    checkpoint = None if cfg.descriptor == PIXEL_MODE else \
        load_checkpoint(cfg.descriptor, device=device)
    _, info = field_factory(cfg.descriptor, cfg.patch, device, cfg.ir_dtype, checkpoint)
    budget = cfg.memory_budget if cfg.memory_budget is not None else \
        default_budget(device.type)
    workers = cfg.workers or (os.cpu_count() or 1)
    if device.type != "cpu":
        workers = 1   # one process drives the GPU
    plan = make_plan(shape, bands, itemsize, missing, budget=budget, max_window=cfg.window,
                     margin=cfg.margin, ir_channels=info.get("ir_channels", 0),
                     descriptor_dim=info["dim"], ir_dtype=cfg.ir_dtype,
                     candidate_stride=cfg.candidate_stride, workers=workers, patch=cfg.patch)
    for line in plan.lines():
        log.info(line)
    planned = replace(cfg, window=plan.window, ir_dtype=plan.ir_dtype, workers=plan.workers)
    return planned, plan, device, use_gpu, RegionInpainter(planned, device, use_gpu,
                                                           checkpoint)


@dataclass
class _Inpainted:
    """What the core did: the configuration as planned, and what every work region wrote."""

    cfg: RunConfig
    plan: Plan
    device: torch.device
    use_gpu: bool
    inpainter: RegionInpainter
    results: list[RegionResult]

    def describe(self) -> dict:
        """The report's entries about the work: descriptor, device, MRF counts, plan."""
        return {"descriptor": self.inpainter.field_info, "device": str(self.device),
                "faiss_gpu": self.use_gpu, "mrf": _summarise(self.results)[1],
                "plan": self.plan.to_dict()}


def _inpaint_losses(read_colour: Callable[[Box], np.ndarray], mask: np.ndarray,
                    stats: MaskStats, bands: int, itemsize: int, cfg: RunConfig,
                    progress: bool) -> _Inpainted:
    """The core shared by ``run`` and ``run_file``: check the mask, plan the run (device,
    memory, descriptor), cut the losses into work regions and inpaint them all;
    ``read_colour(box)`` gives the colour bands of a window in the image's dtype."""
    require_usable(stats, min_known_fraction=cfg.min_known_fraction)
    cfg, plan, device, use_gpu, inpainter = plan_run(cfg, mask.shape, bands, itemsize,
                                                     stats.missing)
    regions, labels = plan_regions(mask, cfg.margin, cfg.window)
    results = list(inpaint_regions(read_colour, mask, regions, labels, inpainter,
                                   workers=cfg.workers, progress=progress))
    return _Inpainted(cfg, plan, device, use_gpu, inpainter, results)


def run(image: np.ndarray, mask: np.ndarray, config: RunConfig | None = None, *,
        progress: bool = False) -> RunResult:
    """Inpaint the pixels of ``image`` where ``mask`` is True; no other pixel changes.

    image: (H, W) or (H, W, B) with B in 1..4 (the last band of 2 or 4 is alpha and is kept,
    not inpainted), uint8, uint16 or float in [0, 1]. mask: (H, W) bool, True = missing.
    The losses are processed in work regions (``inpaint.regions``). Returns the image in the
    same dtype and shape, with a report (plan, timings, memory, counts).
    """
    cfg = config or RunConfig()
    mask = np.asarray(mask, dtype=bool)
    report, stats = _prepare(mask, image.shape)
    colour, alpha, bands = split_bands(image)
    to_float(colour[:1, :1])  # refuses unsupported dtypes before any work
    if report["mask"]["missing"] == 0:
        log.warning("the mask is empty: nothing to inpaint, the image is copied through")
        report["nothing_to_do"] = True
        return RunResult(image=image.copy(), report=report)
    t0 = time.perf_counter()
    with PeakMemory(device=choose_device(cfg.device)) as peak:
        done = _inpaint_losses(lambda w: colour[w[0]:w[2], w[1]:w[3]], mask, stats,
                               image.shape[2] if image.ndim == 3 else 1, image.dtype.itemsize,
                               cfg, progress)
        out = colour.copy()
        for r in done.results:
            out[r.rows, r.cols] = r.values
    if alpha is not None:
        out = np.concatenate([out, alpha[:, :, None]], axis=2)
    report["timings"].update(_summarise(done.results)[0])
    report.update(done.describe(), config=asdict(done.cfg), peak_rss_bytes=peak.peak_rss,
                  peak_device_bytes=peak.peak_device,
                  peak_device_in_use_bytes=peak.peak_device_in_use,
                  seconds=round(time.perf_counter() - t0, 3))
    return RunResult(image=out.reshape(image.shape), report=report)


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
    """``inpaint run``: inpaint a raster file window by window and write the result atomically
    with the input's profile; optionally a JSON report and a preview PNG. Returns the report.

    Only the work regions' windows are read for inpainting; the output is then streamed in row
    bands (input copied, owned loss pixels patched), so a panel larger than memory can be run.
    """
    from masks import dilate, read_mask

    from .paths import check_outputs, checkpoint_file
    from .raster import RasterReader, RasterWriter, raster_info
    from .report import write_report

    cfg = config or RunConfig()
    t_start = time.perf_counter()
    # every output checked, against every input too, before the first pixel is read
    check_outputs([("output", output_path), ("--report", report_path),
                   ("--preview", preview_path)],
                  [("input image", input_path),
                   ("mask", None if mask_path == AUTO_MASK else mask_path),
                   ("descriptor checkpoint", checkpoint_file(cfg.descriptor))], force)
    if preview_path and Path(preview_path).suffix.lower() != ".png":
        raise InpaintError(f"preview {preview_path} must be a .png file")
    meta = raster_info(input_path)
    auto = mask_path == AUTO_MASK   # detect the losses first (inpaint detect's defaults)
    detection: dict | None = None
    mask = None if auto else read_mask(mask_path, shape=(meta.height, meta.width),
                                       invert=invert_mask)
    writer = RasterWriter(output_path, meta, force=force)  # checks the output before working
    if auto:
        from .detect import detect_mask

        mask, detection = detect_mask(input_path)
    if dilate_radius:
        mask = dilate(mask, dilate_radius)
    report, stats = _prepare(mask, (meta.height, meta.width))
    n_colour = meta.bands - (meta.alpha_band is not None)
    results: list[RegionResult] = []
    t0 = time.perf_counter()
    done: _Inpainted | None = None
    with PeakMemory(device=choose_device(cfg.device)) as peak, \
            RasterReader(input_path) as reader:
        to_float(np.zeros((1, 1), meta.dtype))  # refuses unsupported dtypes before any work
        if report["mask"]["missing"]:
            done = _inpaint_losses(lambda w: reader.read(w)[:, :, :n_colour], mask, stats,
                                   meta.bands, np.dtype(meta.dtype).itemsize, cfg, progress)
            cfg, results = done.cfg, done.results
        else:
            log.warning("the mask is empty: nothing to inpaint, the image is copied through")
            report["nothing_to_do"] = True
        t_write = time.perf_counter()
        preview = stream_output(reader, writer, results, meta, n_colour,
                                want_preview=bool(preview_path))
        t_write = time.perf_counter() - t_write
    report["timings"].update(_summarise(results)[0])
    report["timings"]["write"] = t_write
    report.update(input=str(input_path), output=str(output_path),
                  mask=dict(report["mask"], path=str(mask_path), inverted=invert_mask,
                            dilated_by=dilate_radius),
                  raster={"height": meta.height, "width": meta.width, "bands": meta.bands,
                          "dtype": str(meta.dtype)},
                  config=asdict(cfg), peak_rss_bytes=peak.peak_rss,
                  process_peak_rss_bytes=process_peak_rss(),
                  peak_device_bytes=peak.peak_device,
                  peak_device_in_use_bytes=peak.peak_device_in_use,
                  seconds=round(time.perf_counter() - t0, 3),
                  total_seconds=round(time.perf_counter() - t_start, 3))
    if detection is not None:
        report["detection"] = detection
    if done is not None:
        report.update(done.describe())
    try:
        if preview_path and preview is not None:
            from .raster import write_preview

            before, after = preview
            write_preview(preview_path, before,
                          mask[::preview_step(meta), ::preview_step(meta)], after)
        if report_path:
            write_report(report_path, report)
    except BaseException:
        # all or nothing: a run whose report or preview cannot be written leaves no output
        for path in (output_path, preview_path):
            if path:
                Path(path).unlink(missing_ok=True)
        raise
    return report
