"""``inpaint detect``: find paint loss / cracks in a panel, window by window, and write the mask.

The algorithms live in :mod:`masks.detect` (pure numpy functions); this module reads the panel
in windows with a halo (so the mask of each window's core is what a whole-image run gives for
every structure smaller than the halo), sizes the windows by the memory budget, trains the
``trained`` method's classifier on the scribbled windows, writes a single-band uint8 mask
(0 = paint, 255 = loss) aligned with the panel and with its georeferencing, atomically, and
optionally a preview PNG and a JSON report. It also wires the autoencoder IR in as extra
features for the classifier (``ir_features``), which masks/ cannot import.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from masks.detect import (
    CrackConfig,
    DetectError,
    FeatureFn,
    PixelClassifier,
    TrainedConfig,
    choose_polarity,
    detect_cracks,
    load_classifier,
    pixel_features,
    polarity_sums,
    predict_mask,
    save_classifier,
    scribble_labels,
    to_grey,
    train_classifier,
)

from .box import Box
from .dtypes import to_float
from .errors import InpaintError
from .raster import RasterMeta, RasterReader, RasterWriter, raster_info

log = logging.getLogger(__name__)

METHODS = ("cracks", "trained")

#: Memory per window pixel (bytes), about twice what was measured on a 2 MP craquelure image
#: (cracks: ~40 B/px, sato's float64 Hessian and eigenvalues per scale; trained: ~12 B per
#: feature per pixel for 19 features, the float32 feature stack plus multiscale_basic_features'
#: float64 temporaries and the forest's per-tree probabilities).
CRACK_BYTES_PER_PIXEL = 96
TRAINED_BYTES_PER_FEATURE = 20
TRAINED_BYTES_PER_PIXEL = 64
#: The process before any window (interpreter, numpy/scipy/skimage, torch imported by the CLI):
#: 360 MiB measured, with a margin.
BASELINE_BYTES = 512 * 2**20
#: Panel-wide maps per pixel: the loss mask and the scribble labels.
PANEL_BYTES_PER_PIXEL = 2
MIN_CORE = 128


@dataclass(frozen=True)
class DetectConfig:
    """Options of one detection run (the CLI's ``inpaint detect`` flags)."""

    method: str = "cracks"
    cracks: CrackConfig = field(default_factory=CrackConfig)
    trained: TrainedConfig = field(default_factory=TrainedConfig)
    ir_features: str | None = None    # descriptor whose IR channels join the trained features
    window: int = 2048                # largest window core side, px (the budget may lower it)
    memory_budget: int | None = None  # bytes; None = half the available memory

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InpaintError(f"unknown detection method {self.method!r}: use "
                               f"{' or '.join(METHODS)}")
        if self.window < MIN_CORE:
            raise InpaintError(f"window must be at least {MIN_CORE} pixels")

    @property
    def halo(self) -> int:
        return self.cracks.halo if self.method == "cracks" else self.trained.halo


def ir_feature_fn(descriptor: str) -> FeatureFn:
    """``extra(image) -> (H, W, C)``: the IR channels of a built-in or saved descriptor (v32,
    v128 or a checkpoint with an IR), computed on CPU."""
    import torch

    from descriptor import load_checkpoint
    from descriptor.ir import compute_ir

    ck = load_checkpoint(descriptor, device="cpu")
    if not ck.config.has_ir:
        raise InpaintError(f"the {descriptor} descriptor has no IR (use v32, v128 or a "
                           "checkpoint of those architectures)")

    def extra(image: np.ndarray) -> np.ndarray:
        rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        with torch.no_grad():
            ir = compute_ir(ck.model.encoder, rgb, ck.config.padding_mode)
        return ir.permute(1, 2, 0).numpy()

    return extra


# --------------------------------------------------------------------------- windows


def _n_features(cfg: DetectConfig, bands: int) -> int:
    t = cfg.trained
    per_band = 1 + 1 + 2   # intensity, edges, texture (2 Hessian eigenvalues) per scale
    ir = 32 if cfg.ir_features else 0      # at most v128's 32 IR channels
    return bands * per_band * t.num_sigma + len(t.ridge_sigmas) + ir


def window_core(cfg: DetectConfig, shape: tuple[int, int], bands: int) -> int:
    """Side of the square window core such that the process's peak (baseline, panel-wide
    maps, one window of core + 2 halo) stays within the memory budget."""
    from .plan import default_budget

    budget = cfg.memory_budget if cfg.memory_budget is not None else default_budget("cpu")
    per_pixel = CRACK_BYTES_PER_PIXEL if cfg.method == "cracks" else \
        TRAINED_BYTES_PER_FEATURE * _n_features(cfg, bands) + TRAINED_BYTES_PER_PIXEL
    fixed = BASELINE_BYTES + PANEL_BYTES_PER_PIXEL * shape[0] * shape[1]
    side = int(math.sqrt(max(budget - fixed, 0) / per_pixel)) - 2 * cfg.halo
    if side < MIN_CORE:
        need = fixed + per_pixel * (MIN_CORE + 2 * cfg.halo) ** 2
        raise InpaintError(f"a memory budget of {budget / 2**20:.0f} MiB is too small for "
                           f"detection on this image (needs at least {need / 2**20:.0f} MiB)")
    return min(side, cfg.window, max(shape))


def windows(shape: tuple[int, int], core: int, halo: int) -> Iterator[tuple[Box, Box]]:
    """(core, read window) pairs tiling ``shape``; the read window is the core grown by halo."""
    height, width = shape
    for r0 in range(0, height, core):
        for c0 in range(0, width, core):
            r1, c1 = min(height, r0 + core), min(width, c0 + core)
            yield (r0, c0, r1, c1), (max(0, r0 - halo), max(0, c0 - halo),
                                     min(height, r1 + halo), min(width, c1 + halo))


def float_colour(data: np.ndarray, meta: RasterMeta) -> tuple[np.ndarray, np.ndarray | None]:
    """Box (h, w, B) native -> (colour float (h, w[, 3]), alpha or None)."""
    alpha = data[:, :, meta.alpha_band] if meta.alpha_band is not None else None
    colour = data[:, :, :meta.alpha_band] if meta.alpha_band is not None else data
    unit = to_float(colour)
    return (unit[:, :, 0] if unit.shape[2] == 1 else unit), alpha


def _crop(mask: np.ndarray, core: Box, window: Box) -> np.ndarray:
    return mask[core[0] - window[0]:core[2] - window[0], core[1] - window[1]:core[3] - window[1]]


class Detector:
    """Detects one window at a time; holds the classifier and the extra-feature function."""

    def __init__(self, cfg: DetectConfig, classifier: PixelClassifier | None = None,
                 extra: FeatureFn | None = None):
        self.cfg, self.classifier, self.extra = cfg, classifier, extra
        self.timings = {"features": 0.0, "predict": 0.0}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Float window (h, w[, 3]) -> bool loss mask (h, w)."""
        t = time.perf_counter()
        if self.cfg.method == "cracks":
            mask = detect_cracks(image, self.cfg.cracks)
            self.timings["predict"] += time.perf_counter() - t
            return mask
        assert self.classifier is not None
        features = pixel_features(image, self.classifier.config, self.extra)
        self.timings["features"] += time.perf_counter() - t
        t = time.perf_counter()
        mask = predict_mask(self.classifier, features)
        self.timings["predict"] += time.perf_counter() - t
        return mask


def train_on_scribbles(reader: RasterReader, labels: np.ndarray, cfg: DetectConfig,
                       extra: FeatureFn | None, core: int) -> PixelClassifier:
    """Features of the labelled pixels, gathered window by window (only windows that hold
    scribbles are read), then the forest."""
    meta = reader.meta
    halo = cfg.trained.halo
    feats, labs, order = [], [], []
    for c, w in windows((meta.height, meta.width), core, halo):
        lab = labels[c[0]:c[2], c[1]:c[3]]
        if not lab.any():
            continue
        image, _ = float_colour(reader.read(w), meta)
        f = _crop(pixel_features(image, cfg.trained, extra), c, w)
        rows, cols = np.nonzero(lab)
        feats.append(f[rows, cols])
        labs.append(lab[rows, cols])
        order.append((rows + c[0]) * meta.width + cols + c[1])
    if not feats:
        feats, labs, order = [np.zeros((0, 1), np.float32)], [np.zeros(0, np.uint8)], [[]]
    # raster order, as in a whole-image run: the seeded forest then grows the same trees
    # whatever the window size
    sort = np.argsort(np.concatenate(order), kind="stable")
    stacked = np.concatenate(feats)[sort][:, None, :]
    return train_classifier(stacked, np.concatenate(labs)[sort][:, None], cfg.trained,
                            extra=f"ir:{cfg.ir_features}" if cfg.ir_features else None)


def decide_polarity(reader: RasterReader, cfg: DetectConfig, core: int
                    ) -> tuple[DetectConfig, dict]:
    """``--polarity auto``: the dark and light thin-structure masses summed over the window
    cores of the whole panel (so the choice does not depend on the window size), the choice,
    and the config with it. Transparent pixels (alpha 0) do not count."""
    meta = reader.meta
    crack = cfg.cracks
    sums = np.zeros(2)
    for c, w in windows((meta.height, meta.width), core, 2 * crack.auto_radius + 1):
        image, alpha = float_colour(reader.read(w), meta)
        keep = np.zeros(image.shape[:2], bool)
        keep[c[0] - w[0]:c[2] - w[0], c[1] - w[1]:c[3] - w[1]] = True
        if alpha is not None:
            keep &= alpha > 0
        sums += polarity_sums(to_grey(image), crack.auto_radius, keep)
    used = choose_polarity(sums[0], sums[1], crack.auto_ratio)
    n = meta.height * meta.width
    info = {"requested": "auto", "used": used, "dark_tophat_mean": round(sums[0] / n, 6),
            "light_tophat_mean": round(sums[1] / n, 6), "ratio": crack.auto_ratio,
            "radius": crack.auto_radius}
    return replace(cfg, cracks=replace(crack, polarity=used)), info


def read_scribbles(path: str, shape: tuple[int, int]) -> np.ndarray:
    """Scribble file -> uint8 labels (H, W) (see masks.detect.scribble_labels)."""
    from .raster import read_raster

    raster = read_raster(path)
    if (raster.height, raster.width) != shape:
        raise InpaintError(f"scribbles {path} are {raster.width}x{raster.height} pixels but the "
                           f"image is {shape[1]}x{shape[0]}")
    return scribble_labels(raster.data)


# --------------------------------------------------------------------------- file level


def mask_meta(meta: RasterMeta) -> RasterMeta:
    """Profile of the output mask: single band uint8, the panel's size, georeferencing, tiling
    and default-namespace tags (resolution); lossless compression; no ICC profile or alpha."""
    from rasterio.enums import ColorInterp

    profile = {k: v for k, v in meta.profile.items()
               if k not in ("nodata", "predictor", "nbits", "photometric", "compress",
                            "interleave", "quality")}
    profile.update(dtype="uint8", count=1, compress="deflate")
    tags = {"": dict(meta.tags.get("", {}))}
    return RasterMeta(profile, tags, (ColorInterp.gray,), None, meta.source)


def _check_outputs(outputs: dict[str, str | None], inputs: list[str | None], force: bool) -> None:
    """Every output path: not an input (even with force), absent unless force, folder exists."""
    import os

    real_inputs = {os.path.realpath(p) for p in inputs if p and not p.startswith("skimage:")}
    for what, path in outputs.items():
        if not path:
            continue
        if os.path.realpath(path) in real_inputs:
            raise InpaintError(f"{what} {path} is an input file; choose another name")
        folder = Path(path).parent
        if not folder.is_dir():
            raise InpaintError(f"output folder {folder} does not exist")
        if Path(path).is_dir():
            raise InpaintError(f"{what} {path} is a folder")
        if Path(path).exists() and not force:
            raise InpaintError(f"{path} exists; pass --force to overwrite")


def _prepare(image_path: str, cfg: DetectConfig, scribbles: str | None, model: str | None
             ) -> tuple[DetectConfig, PixelClassifier | None, FeatureFn | None]:
    """Validate the method's inputs before any pixel work; load the model if given."""
    if cfg.method == "cracks":
        if scribbles or model:
            raise InpaintError("--scribbles and --model belong to --method trained")
        return cfg, None, None
    if bool(scribbles) == bool(model):
        raise InpaintError("--method trained needs --scribbles S.png (to train) or --model M "
                           "(a saved classifier), not both")
    classifier = None
    if model:
        classifier = load_classifier(model)
        ir = classifier.extra.split(":", 1)[1] if classifier.extra else None
        if cfg.ir_features and cfg.ir_features != ir:
            raise InpaintError(f"the model was trained with IR features {ir or 'none'}, not "
                               f"{cfg.ir_features}")
        cfg = replace(cfg, trained=classifier.config, ir_features=ir)
    extra = ir_feature_fn(cfg.ir_features) if cfg.ir_features else None
    return cfg, classifier, extra


def detect_file(
    image_path: str,
    output_path: str | None,
    cfg: DetectConfig | None = None,
    *,
    scribbles: str | None = None,
    model: str | None = None,
    save_model: str | None = None,
    preview_path: str | None = None,
    report_path: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """Detect loss in a raster file window by window; write the mask (unless ``output_path``
    is None) as uint8 0/255, one band, aligned with the image. Returns (bool mask, report).
    """
    from tqdm.auto import tqdm

    from descriptor.checkpoint import atomic_write_bytes

    from .memory import PeakMemory
    from .report import versions, write_report

    cfg = cfg or DetectConfig()
    t_start = time.perf_counter()
    inputs = [image_path, scribbles, model]
    _check_outputs({"output": output_path, "report": report_path, "preview": preview_path,
                    "model output": save_model}, inputs, force)
    if output_path and Path(output_path).suffix.lower() in (".jpg", ".jpeg"):
        raise InpaintError(f"cannot write the mask {output_path} as JPEG (lossy): use .tif or "
                           ".png")
    if preview_path and Path(preview_path).suffix.lower() != ".png":
        raise InpaintError(f"preview {preview_path} must be a .png file")
    if save_model and not scribbles:
        raise InpaintError("--save-model needs --method trained with --scribbles")
    meta = raster_info(image_path)
    writer = RasterWriter(output_path, mask_meta(meta), force=force) if output_path else None
    cfg, classifier, extra = _prepare(image_path, cfg, scribbles, model)
    labels = read_scribbles(scribbles, (meta.height, meta.width)) if scribbles else None
    bands = meta.bands - (meta.alpha_band is not None)
    core = window_core(cfg, (meta.height, meta.width), bands)
    timings: dict[str, float] = {}
    mask = np.zeros((meta.height, meta.width), bool)
    with PeakMemory() as peak, RasterReader(image_path) as reader:
        to_float(np.zeros((1, 1), meta.dtype))   # refuses unsupported dtypes before any work
        polarity = None
        if cfg.method == "cracks" and cfg.cracks.polarity == "auto":
            t = time.perf_counter()
            cfg, polarity = decide_polarity(reader, cfg, core)
            timings["polarity"] = time.perf_counter() - t
            log.debug("polarity auto: %s (dark/light thin-structure mass %.4f / %.4f)",
                     polarity["used"], polarity["dark_tophat_mean"],
                     polarity["light_tophat_mean"])
        if labels is not None:
            t = time.perf_counter()
            try:
                classifier = train_on_scribbles(reader, labels, cfg, extra, core)
            except DetectError as exc:
                raise InpaintError(f"{scribbles}: {exc}") from None
            timings["train"] = time.perf_counter() - t
            if save_model:
                atomic_write_bytes(Path(save_model), save_classifier(classifier, save_model))
        detector = Detector(cfg, classifier, extra)
        pairs = list(windows((meta.height, meta.width), core, cfg.halo))
        t = time.perf_counter()
        for c, w in tqdm(pairs, desc="detect", unit="window", leave=False,
                         disable=None if progress and len(pairs) > 1 else True):
            image, alpha = float_colour(reader.read(w), meta)
            found = detector(image)
            if alpha is not None:
                found &= alpha > 0   # transparent background is not paint loss
            mask[c[0]:c[2], c[1]:c[3]] = _crop(found, c, w)
        timings["detect"] = time.perf_counter() - t
        timings.update({k: v for k, v in detector.timings.items() if v})
        t = time.perf_counter()
        if writer is not None:
            with writer:
                rows = writer.rows_per_write(64 << 20)
                for r0 in range(0, meta.height, rows):
                    r1 = min(meta.height, r0 + rows)
                    writer.write_window((mask[r0:r1, :, None] * np.uint8(255)),
                                        (r0, 0, r1, meta.width))
        timings["write"] = time.perf_counter() - t
    report = _report(image_path, output_path, cfg, meta, mask, core, len(pairs), classifier,
                     scribbles, model, save_model, timings, peak, versions(), t_start)
    if polarity is not None:
        report["polarity"] = polarity
    if preview_path:
        _preview(preview_path, image_path, meta, mask)
    if report_path:
        write_report(report_path, report)
    return mask, report


def _report(image_path, output_path, cfg, meta, mask, core, n_windows, classifier, scribbles,
            model, save_model, timings, peak, versions, t_start) -> dict:
    from scipy import ndimage as ndi

    from masks import mask_stats

    stats = mask_stats(mask)
    seconds = time.perf_counter() - t_start
    report = {"input": str(image_path), "output": str(output_path) if output_path else None,
              "method": cfg.method,
              "config": asdict(cfg.cracks) if cfg.method == "cracks" else
              {**asdict(cfg.trained), "ir_features": cfg.ir_features},
              "mask": {"loss_pixels": stats.missing, "fraction": stats.fraction,
                       "components": int(ndi.label(mask, np.ones((3, 3), bool))[1])},
              "raster": {"height": meta.height, "width": meta.width, "bands": meta.bands,
                         "dtype": str(meta.dtype)},
              "windows": {"count": n_windows, "core": core, "halo": cfg.halo},
              "timings": timings, "peak_rss_bytes": peak.peak_rss,
              "total_seconds": round(seconds, 3),
              "seconds_per_megapixel": round(seconds / (meta.height * meta.width / 1e6), 3),
              "versions": versions}
    if classifier is not None:
        report["classifier"] = {**classifier.info, "features": classifier.n_features,
                                "scribbles": scribbles, "model": model,
                                "saved_to": save_model}
    return report


def _preview(path: str, image_path: str, meta: RasterMeta, mask: np.ndarray) -> None:
    """input | mask in red over the input | mask (white = loss), subsampled to ~1600 px."""
    from .raster import write_preview

    step = max(1, -(-max(meta.height, meta.width) // 1600))
    with RasterReader(image_path) as reader:
        rows = []
        band = max(step, (64 << 20) // max(1, meta.width * meta.bands * meta.dtype.itemsize)
                   // step * step)
        for r0 in range(0, meta.height, band):
            data = reader.read((r0, 0, min(meta.height, r0 + band), meta.width))
            rows.append(data[::step, ::step])
    small, _ = float_colour(np.concatenate(rows), meta)
    small_mask = mask[::step, ::step]
    write_preview(path, small, small_mask, small_mask.astype(np.float32))


def detect_mask(image_path: str, cfg: DetectConfig | None = None) -> tuple[np.ndarray, dict]:
    """The loss mask of a raster file (bool (H, W)), nothing written, and what ``run --mask
    auto`` puts in its report: method, parameters (with the polarity used), detected pixels,
    fraction and components, seconds."""
    mask, report = detect_file(image_path, None, cfg or DetectConfig())
    log.info("detected %d loss pixels (%.2f %%) with the %s method%s in %.1f s",
             report["mask"]["loss_pixels"], 100 * report["mask"]["fraction"], report["method"],
             f" ({report['config']['polarity']} polarity)" if report["method"] == "cracks"
             else "", report["total_seconds"])
    details = {k: report[k] for k in ("method", "config", "polarity", "mask", "windows",
                                      "timings", "peak_rss_bytes") if k in report}
    details["seconds"] = report["total_seconds"]
    return mask, details


def detect_array(image: np.ndarray, cfg: DetectConfig | None = None,
                 classifier: PixelClassifier | None = None,
                 extra: FeatureFn | None = None) -> np.ndarray:
    """Loss mask of an in-memory image ((H, W) or (H, W, 1|3) float in [0, 1]) in one go."""
    return Detector(cfg or DetectConfig(), classifier, extra)(image)
