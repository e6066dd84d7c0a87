"""Small raster helpers shared by the file-level tests."""

from __future__ import annotations

import numpy as np
import rasterio


def write_raster(path, data: np.ndarray, **profile):
    """Write (H, W[, B]) ``data`` as a GeoTIFF (``.tif``) or PNG; ``profile`` overrides."""
    data = data if data.ndim == 3 else data[:, :, None]
    meta = dict(driver="GTiff" if str(path).endswith(".tif") else "PNG", height=data.shape[0],
                width=data.shape[1], count=data.shape[2], dtype=data.dtype.name)
    meta.update(profile)
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(np.moveaxis(data, 2, 0))
    return path


def read_raster(path) -> np.ndarray:
    """(H, W, B) array of a raster file."""
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, 2)
