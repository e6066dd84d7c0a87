"""``inpaint demo``: damage an image that ships with scikit-image by a seeded synthetic
paint-loss mask, inpaint it with a built-in descriptor, and report the hole-PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from masks import PaintLossConfig, paint_loss_mask

from .config import RunConfig
from .errors import InpaintError
from .pipeline import run_file
from .raster import read_raster, write_raster

DEMO_IMAGE = "skimage:coffee"   # held out from the built-in descriptors' training images


def hole_psnr(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the missing pixels only, in dB, peak = the dtype's maximum."""
    peak = float(np.iinfo(truth.dtype).max) if truth.dtype.kind == "u" else 1.0
    err = result[mask].astype(np.float64) - truth[mask].astype(np.float64)
    mse = float(np.mean(err**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def run_demo(out_dir: str | Path, *, image: str = DEMO_IMAGE, coverage: float = 0.05,
             seed: int = 0, config: RunConfig | None = None, force: bool = False,
             progress: bool = False) -> dict:
    """Write damaged.png, mask.png, result.png, preview.png and report.json into ``out_dir``."""
    out = Path(out_dir)
    if not out.is_dir():
        raise InpaintError(f"output folder {out} does not exist")
    truth = read_raster(image)
    mask = paint_loss_mask((truth.height, truth.width), PaintLossConfig(coverage=coverage,
                                                                         seed=seed))
    damaged = truth.data.copy()
    damaged[mask] = np.iinfo(damaged.dtype).max      # paint losses show as white ground
    write_raster(out / "damaged.png", damaged, truth, force=force)
    mask_u8 = (mask.astype(np.uint8) * 255)[:, :, None]
    write_raster(out / "mask.png", mask_u8, {"driver": "PNG", "dtype": "uint8", "count": 1,
                                             "height": truth.height, "width": truth.width},
                 force=force)
    report = run_file(str(out / "damaged.png"), str(out / "mask.png"), str(out / "result.png"),
                      config, force=force, report_path=str(out / "report.json"),
                      preview_path=str(out / "preview.png"), progress=progress)
    result = read_raster(out / "result.png").data
    report["demo"] = {"image": image, "coverage": coverage, "seed": seed,
                      "hole_psnr_db": hole_psnr(result, truth.data, mask)}
    return report
