"""``run``: inpaint one image in memory, and ``run_file``: the same from and to raster files.

Data flow (DESIGN.md section 3): scale to [0, 1] -> pre-fill the hole -> descriptor field (IR
once per pass) -> context, lattice, FAISS candidates, pruning, NCMP -> composition that writes
only missing pixels -> back to the input dtype.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from descriptor import IRField, PatchEncoderField, cell_bounds, load_checkpoint
from masks import check_mask_usable, mask_stats
from mrf import ContextConfig, MRFConfig, PixelField, SearchConfig, inpaint_mrf, prefill
from mrf.context import PREFILLS

from .device import choose_device, faiss_gpu_count
from .errors import InpaintError
from .io import from_float, to_float
from .memory import PeakMemory, process_peak_rss
from .plan import Plan, default_budget, make_plan
from .regions import (
    Box,
    Region,
    owned_pixels,
    plan_regions,
    source_patches,
    split_region,
    with_enough_sources,
)

log = logging.getLogger(__name__)

PIXEL_MODE = "none"
AUTO_MASK = "auto"   # run_file(mask_path="auto"): mask from inpaint.detect
#: Patch sides tried, in pixel mode, for a window with no fully known patch of the configured
#: size, before the diffusion fill.
FALLBACK_PATCHES = (7, 5, 3)


def _has_sources(hole: np.ndarray, patch: int) -> bool:
    """Whether an MRF with ``patch`` px patches can run on this window: a lattice fits and at
    least one fully known patch exists to copy from."""
    return min(hole.shape) > patch and source_patches(hole, patch) > 0


@dataclass(frozen=True)
class RunConfig:
    """Options of one inpainting run (the CLI's ``inpaint run`` flags)."""

    descriptor: str = "v128"      # built-in name, checkpoint path, or "none" (pixel mode)
    device: str = "auto"
    patch_step: int = 3           # g: lattice step
    patch_size: int | None = 9    # patch side; None = 2g+1 (9 on a 3-px step measured best)
    labels: int = 10
    shortlist: int = 64
    iterations: int = 10
    passes: int = 1
    candidate_stride: int = 1
    probe_fraction: float = 0.0625  # share of IVF cells a FAISS query probes (large blocks)
    unary: str = "pixel"          # exact re-ranking and unary: masked pixel SSD or "field"
    temperature: float = 10.0     # NCMP temperature (pixel-SSD units)
    soft_compose: bool = True     # blend: paste every kept label weighted by its belief
    prefill: str = "fsr"          # first guess of the hole: "fsr" (xphoto) or "telea"
    composition: str = "copy"     # "copy" (texture) or "blend" (average of labels)
    seam_smooth: int = 1          # copy: binomial smoothing passes of the seams
    texture_weight: float = 0.0   # weight of the unary's texture term (0 = off)
    crack_width: float = 2.0      # missing pixels this close (px) to known paint keep the pre-fill
    structure_sigma: float = 0.0  # > 0: lacunae's low frequencies (below this Gaussian, px)
    structure: str = "prefill"    #   from "prefill" or "blend" (label average), detail copied
    detail_gain: float = 1.0      # copied detail raised up to this factor to match the paint's
    crack_fill: str = "prefill"   # cracks keep the "prefill" or its "mean" with the label blend
    correction: str = "harmonic"
    use_context: bool = True
    ir_dtype: str = "float32"
    margin: int = 32              # context and source pixels around each loss group
    window: int = 512             # largest work-region side (the memory plan may lower it)
    memory_budget: int | None = None  # bytes; None = half the available memory
    workers: int = 0              # region worker processes; 0 = one per CPU core (CPU only)
    seed: int = 0
    min_known_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.patch_step < 1:
            raise ValueError("patch step must be at least 1")
        if self.window <= 2 * self.margin + self.patch:
            raise ValueError(f"window ({self.window}) must exceed twice the margin plus a patch "
                             f"({2 * self.margin + self.patch})")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise ValueError("memory budget must be positive")
        if self.workers < 0:
            raise ValueError("workers must be 0 (one per core) or more")
        for name in ("crack_width", "texture_weight"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', ' ')} must be a finite number >= 0")
        if self.prefill not in PREFILLS:
            raise ValueError(f"prefill must be one of {PREFILLS}")
        if self.ir_dtype not in ("float32", "float16"):
            raise ValueError("IR dtype must be float32 or float16")
        self.mrf_config(False)  # validates the MRF parameters

    @property
    def patch(self) -> int:
        return self.patch_size if self.patch_size else 2 * self.patch_step + 1

    def mrf_config(self, use_gpu: bool) -> MRFConfig:
        return MRFConfig(
            patch_size=self.patch, step=self.patch_step, shortlist=self.shortlist,
            labels=self.labels, iterations=self.iterations, passes=self.passes,
            candidate_stride=self.candidate_stride, unary=self.unary,
            temperature=self.temperature, soft_compose=self.soft_compose,
            composition=self.composition, seam_smooth=self.seam_smooth,
            texture_weight=self.texture_weight, crack_width=self.crack_width,
            structure_sigma=self.structure_sigma, structure=self.structure,
            detail_gain=self.detail_gain, crack_fill=self.crack_fill,
            correction=self.correction, use_context=self.use_context,
            context=ContextConfig(seed=self.seed),
            search=SearchConfig(probe_fraction=self.probe_fraction, use_gpu=use_gpu))


@dataclass
class RunResult:
    image: np.ndarray
    report: dict = field(default_factory=dict)


FieldMaker = Callable[[np.ndarray, np.ndarray], object]


def field_factory(descriptor: str, patch: int, device: torch.device,
                  ir_dtype: str = "float32") -> tuple[FieldMaker, dict]:
    """A builder ``make(image, hole) -> patch field`` for ``descriptor`` (loaded once), and a
    description of it for the report."""
    if descriptor == PIXEL_MODE:
        def make_pixels(img, hole):
            return PixelField(img, hole, patch, device=device)
        return make_pixels, {"name": PIXEL_MODE, "kind": "pixels", "dim": 3 * patch * patch}
    ck = load_checkpoint(descriptor, device=device)
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

    def __init__(self, cfg: RunConfig, device: torch.device, use_gpu: bool):
        self.cfg = cfg
        self.device = device
        self.make_field, self.field_info = field_factory(cfg.descriptor, cfg.patch, device,
                                                         cfg.ir_dtype)
        self.mrf_config = cfg.mrf_config(use_gpu)

    def inpaint(self, colour: np.ndarray, hole: np.ndarray,
                progress=None) -> tuple[np.ndarray, dict, dict]:
        """colour: (h, w, 1|3) native dtype window; hole: (h, w) bool -> float (h, w, 3).

        A window without a fully known patch of the configured size (a small panel, a loss
        filling most of it) is still restored: by pixel-mode MRF with smaller patches, else by
        a biharmonic (diffusion) fill; ``stats["fallback"]`` says which, and why.
        """
        t = time.perf_counter()
        unit = to_float(colour)
        rgb = np.repeat(unit, 3, axis=2) if unit.shape[2] == 1 else unit
        filled = prefill(rgb, hole, method=self.cfg.prefill)
        prefill_seconds = time.perf_counter() - t
        patch = self.cfg.patch
        if not _has_sources(hole, patch):
            return self._fallback(rgb, filled, hole, prefill_seconds, progress)
        try:
            result = inpaint_mrf(filled, hole, lambda img: self.make_field(img, hole),
                                 self.mrf_config, progress=progress, log=log.debug)
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
                                 small.mrf_config(False), progress=progress, log=log.debug)
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


def inpaint_regions(
    read_colour: Callable[[Box], np.ndarray],
    mask: np.ndarray,
    regions: list[Region],
    labels: np.ndarray,
    inpainter: RegionInpainter,
    *,
    workers: int = 1,
    progress: bool = False,
) -> Iterator[RegionResult]:
    """Inpaint every region; ``read_colour(window)`` gives the colour bands there.

    With ``workers`` > 1 (CPU only) regions run in that many worker processes, each holding
    its own copy of the descriptor; the parent reads windows and collects owned pixels.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(regions), desc="regions", unit="region", leave=False,
               disable=None if progress and len(regions) > 1 else True)
    inner = _progress_factory(progress and len(regions) == 1)
    if workers > 1 and len(regions) >= 2 * workers and inpainter.device.type == "cpu":
        results = _parallel_regions(read_colour, mask, regions, labels, inpainter, workers)
    else:
        results = (r for region in regions
                   for r in _inpaint_region(read_colour, mask, region, labels, inpainter, inner))
    for result in results:
        bar.update(1)
        if "fallback" in result.stats:
            r0, c0, r1, c1 = result.region.window
            log.warning("window rows %d:%d, columns %d:%d restored by %s: %s", r0, r1, c0, c1,
                        result.stats["fallback"]["method"], result.stats["fallback"]["reason"])
        yield result
    bar.close()


def _region_inputs(read_colour, mask, region: Region, labels, patch: int, shortlist: int):
    """The region (window grown if it lacks sources), its colour, hole and owned pixels.

    A window too small for the patch is not refused: RegionInpainter falls back."""
    region = with_enough_sources(region, mask, patch, shortlist)
    r0, c0, r1, c1 = region.window
    hole = mask[r0:r1, c0:c1]
    colour = read_colour(region.window)
    check_float_range(colour, hole)
    return region, colour, hole, owned_pixels(region, labels)


def check_float_range(colour: np.ndarray, hole: np.ndarray) -> None:
    """The float32 rule (README, *Images*): the known pixels an MRF copies from must be finite
    and in [0, 1]; masked pixels may hold anything (NaN included). Clipping them silently would
    change the fill, so they are refused with the rule."""
    if colour.dtype != np.float32:
        return
    known = colour[~hole]
    if known.size == 0:
        return
    finite = np.isfinite(known)
    if finite.all() and known.min() >= 0.0 and known.max() <= 1.0:
        return
    if not finite.all():
        found = "NaN or infinite values"
    else:
        found = f"values from {known.min():.6g} to {known.max():.6g}"
    raise InpaintError(f"float32 images must hold finite values in [0, 1] outside the mask, "
                       f"but the known pixels near the losses hold {found}: rescale the image "
                       "(or mask those pixels)")


def _finish(region: Region, colour: np.ndarray, own: np.ndarray, image: np.ndarray, stats,
            timings) -> RegionResult:
    out = image[:, :, :1] if colour.shape[2] == 1 else image
    rows, cols = np.nonzero(own)
    return RegionResult(region=region, rows=rows + region.window[0], cols=cols + region.window[1],
                        values=from_float(out[own], colour.dtype), stats=stats, timings=timings)


def _inpaint_region(read_colour, mask, region: Region, labels, inpainter: RegionInpainter,
                    progress) -> Iterator[RegionResult]:
    """One region; when the device runs out of memory, its core is split in four and retried."""
    cfg = inpainter.cfg
    region, colour, hole, own = _region_inputs(read_colour, mask, region, labels, cfg.patch,
                                               cfg.shortlist)
    try:
        image, stats, timings = inpainter.inpaint(colour, hole, progress=progress)
    except torch.cuda.OutOfMemoryError:
        parts = split_region(region, mask.shape)
        if not parts:
            raise InpaintError("the GPU ran out of memory even for the smallest work window: "
                               "use --device cpu") from None
        h, w = hole.shape
        log.warning("device out of memory on a %dx%d window: retrying in %d smaller windows",
                    h, w, len(parts))
        del colour
        torch.cuda.empty_cache()
        for part in parts:
            yield from _inpaint_region(read_colour, mask, part, labels, inpainter, progress)
        return
    yield _finish(region, colour, own, image, stats, timings)


# Worker processes of a parallel run each build one RegionInpainter at start-up and keep it
# for their lifetime (loading the descriptor once per process, not once per region).
WORKER_TASKS = 100
_worker_inpainter: RegionInpainter | None = None


def _init_worker(cfg: RunConfig, threads: int) -> None:
    global _worker_inpainter
    # Ctrl-C is the parent's to handle (it stops the pool); workers stay quiet
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _worker_inpainter = RegionInpainter(cfg, torch.device("cpu"), use_gpu=False)


def _worker_task(region: Region, colour: np.ndarray, hole: np.ndarray,
                 own: np.ndarray) -> RegionResult:
    image, stats, timings = _worker_inpainter.inpaint(colour, hole)
    result = _finish(region, colour, own, image, stats, timings)
    del image
    _release_free_memory()
    return result


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and a worker that
    processes hundreds of windows of varying sizes would creep up in resident memory)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: nothing to do
        pass


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C held back while worker processes may start: they (and the forkserver) inherit a
    blocked SIGINT, so only this process handles it and stops them; and a start is never cut
    half-way (the orphaned child would print a traceback once this process is gone). A Ctrl-C
    received meanwhile is raised on leaving the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)   # a pending SIGINT lands here
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _parallel_regions(read_colour, mask, regions, labels, inpainter: RegionInpainter,
                      workers: int) -> Iterator[RegionResult]:
    """Regions on a process pool; at most 2 per worker in flight, so memory stays bounded."""
    import concurrent.futures as cf
    import multiprocessing

    cfg = inpainter.cfg
    threads = max(1, (torch.get_num_threads() or 1) // workers)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    # workers are also replaced every WORKER_TASKS regions, a second guard against creeping RSS
    pool = cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                  initargs=(cfg, threads), max_tasks_per_child=WORKER_TASKS)
    try:
        pending: set = set()
        for region in regions:
            inputs = _region_inputs(read_colour, mask, region, labels, cfg.patch, cfg.shortlist)
            with _sigint_deferred():   # submit may start a worker process
                pending.add(pool.submit(_worker_task, *inputs))
            if len(pending) >= 2 * workers:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                yield from (f.result() for f in done)
        for future in cf.as_completed(pending):
            yield future.result()
    except BaseException:
        # Ctrl-C or a failed region: stop the workers now instead of finishing the regions in
        # flight (seconds each); the executor has no public way to do that
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


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
    if results:
        last = results[-1].stats
        totals.update(shortlist=last.get("shortlist"), labels=last.get("labels"),
                      largest_window=max(r.region.pixels for r in results),
                      passes=[p["iterations"] for p in last.get("passes", [])])
    return timings, totals


def _prepare(mask: np.ndarray, shape: tuple[int, ...], cfg: RunConfig) -> dict:
    if mask.shape != tuple(shape[:2]):
        raise InpaintError(f"mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                           f"{shape[1]}x{shape[0]}")
    stats = mask_stats(mask)
    return {"mask": {"missing": stats.missing, "fraction": stats.fraction,
                     "components": stats.components}, "timings": {}, "versions": versions()}


def plan_run(cfg: RunConfig, shape: tuple[int, int], bands: int, itemsize: int,
             missing: int) -> tuple[RunConfig, Plan, torch.device, bool, RegionInpainter]:
    """Device, memory plan, and the region inpainter configured by that plan."""
    device = choose_device(cfg.device)
    use_gpu = device.type == "cuda" and faiss_gpu_count() > 0
    _, info = field_factory(cfg.descriptor, cfg.patch, torch.device("cpu"), cfg.ir_dtype)
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
    return planned, plan, device, use_gpu, RegionInpainter(planned, device, use_gpu)


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
    report = _prepare(mask, image.shape, cfg)
    colour, alpha, bands = split_bands(image)
    to_float(colour[:1, :1])  # refuses unsupported dtypes before any work
    if report["mask"]["missing"] == 0:
        log.warning("the mask is empty: nothing to inpaint, the image is copied through")
        report["nothing_to_do"] = True
        return RunResult(image=image.copy(), report=report)
    check_mask_usable(mask, min_known_fraction=cfg.min_known_fraction)
    t0 = time.perf_counter()
    with PeakMemory() as peak:
        cfg, plan, device, use_gpu, inpainter = plan_run(
            cfg, mask.shape, image.shape[2] if image.ndim == 3 else 1, image.dtype.itemsize,
            report["mask"]["missing"])
        regions, labels = plan_regions(mask, cfg.margin, cfg.window)
        out = colour.copy()
        results = []
        for r in inpaint_regions(lambda w: colour[w[0]:w[2], w[1]:w[3]], mask, regions, labels,
                                 inpainter, workers=cfg.workers, progress=progress):
            out[r.rows, r.cols] = r.values
            results.append(r)
    if alpha is not None:
        out = np.concatenate([out, alpha[:, :, None]], axis=2)
    timings, totals = _summarise(results)
    report["timings"].update(timings)
    report.update(descriptor=inpainter.field_info, device=str(device), faiss_gpu=use_gpu,
                  mrf=totals, config=asdict(cfg), plan=plan.to_dict(),
                  peak_rss_bytes=peak.peak_rss,
                  peak_device_bytes=peak.peak_device, seconds=round(time.perf_counter() - t0, 3))
    return RunResult(image=out.reshape(image.shape), report=report)


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
    """``inpaint run``: inpaint a raster file window by window and write the result atomically
    with the input's profile; optionally a JSON report and a preview PNG. Returns the report.

    Only the work regions' windows are read for inpainting; the output is then streamed in row
    bands (input copied, owned loss pixels patched), so a panel larger than memory can be run.
    """
    from masks import dilate, read_mask

    from .io import RasterReader, RasterWriter, raster_info
    from .paths import check_outputs, checkpoint_file
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
    report = _prepare(mask, (meta.height, meta.width), cfg)
    n_colour = meta.bands - (meta.alpha_band is not None)
    results: list[RegionResult] = []
    t0 = time.perf_counter()
    device, use_gpu, inpainter, plan = None, False, None, None
    with PeakMemory() as peak, RasterReader(input_path) as reader:
        to_float(np.zeros((1, 1), meta.dtype))  # refuses unsupported dtypes before any work
        if report["mask"]["missing"]:
            check_mask_usable(mask, min_known_fraction=cfg.min_known_fraction)
            cfg, plan, device, use_gpu, inpainter = plan_run(
                cfg, mask.shape, meta.bands, np.dtype(meta.dtype).itemsize,
                report["mask"]["missing"])
            regions, labels = plan_regions(mask, cfg.margin, cfg.window)
            read = lambda w: reader.read(w)[:, :, :n_colour]
            results = list(inpaint_regions(read, mask, regions, labels, inpainter,
                                           workers=cfg.workers, progress=progress))
            del labels
        else:
            log.warning("the mask is empty: nothing to inpaint, the image is copied through")
            report["nothing_to_do"] = True
        t_write = time.perf_counter()
        preview = _stream_output(reader, writer, results, meta, n_colour,
                                 want_preview=bool(preview_path))
        t_write = time.perf_counter() - t_write
    timings, totals = _summarise(results)
    report["timings"].update(timings)
    report["timings"]["write"] = t_write
    report.update(input=str(input_path), output=str(output_path),
                  mask=dict(report["mask"], path=str(mask_path), inverted=invert_mask,
                            dilated_by=dilate_radius),
                  raster={"height": meta.height, "width": meta.width, "bands": meta.bands,
                          "dtype": str(meta.dtype)},
                  config=asdict(cfg), peak_rss_bytes=peak.peak_rss,
                  process_peak_rss_bytes=process_peak_rss(),
                  peak_device_bytes=peak.peak_device,
                  seconds=round(time.perf_counter() - t0, 3),
                  total_seconds=round(time.perf_counter() - t_start, 3))
    if detection is not None:
        report["detection"] = detection
    if inpainter is not None:
        report.update(descriptor=inpainter.field_info, device=str(device), faiss_gpu=use_gpu,
                      mrf=totals, plan=plan.to_dict())
    try:
        if preview_path and preview is not None:
            from .io import write_preview

            before, after = preview
            write_preview(preview_path, before,
                          mask[::_preview_step(meta), ::_preview_step(meta)], after)
        if report_path:
            write_report(report_path, report)
    except BaseException:
        # all or nothing: a run whose report or preview cannot be written leaves no output
        for path in (output_path, preview_path):
            if path:
                Path(path).unlink(missing_ok=True)
        raise
    return report


PREVIEW_SIDE = 1600
STREAM_BAND_BYTES = 64 << 20   # rows copied input -> output per write, bounded by this size


def _preview_step(meta) -> int:
    return max(1, -(-max(meta.height, meta.width) // PREVIEW_SIDE))


def _stream_output(reader, writer, results: list[RegionResult], meta, n_colour: int, *,
                   want_preview: bool, band_rows: int | None = None):
    """Copy the input to the output in row bands, patching the owned loss pixels of every region.

    Returns subsampled (input, output) float RGB images for the preview when asked.
    """
    rows = np.concatenate([r.rows for r in results]) if results else np.empty(0, np.int64)
    cols = np.concatenate([r.cols for r in results]) if results else np.empty(0, np.int64)
    values = np.concatenate([r.values for r in results]) if results else \
        np.empty((0, n_colour), meta.dtype)
    order = np.argsort(rows, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    band_rows = band_rows or writer.rows_per_write(STREAM_BAND_BYTES)
    step = _preview_step(meta)
    before, after = [], []
    with writer:
        for r0 in range(0, meta.height, band_rows):
            r1 = min(meta.height, r0 + band_rows)
            data = reader.read((r0, 0, r1, meta.width))
            a, b = np.searchsorted(rows, [r0, r1])
            if want_preview:
                first = (-r0) % step
                before.append(data[first::step, ::step, :n_colour].copy())
            data[rows[a:b] - r0, cols[a:b], :n_colour] = values[a:b]
            if want_preview:
                after.append(data[first::step, ::step, :n_colour])
            writer.write_window(data, (r0, 0, r1, meta.width))
    if not want_preview:
        return None

    def rgb(parts):
        img = to_float(np.concatenate(parts))
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    return rgb(before), rgb(after)
