"""Pixel data types: scaling between a raster's native dtype and float32 in [0, 1] by the
dtype's range, and the float32 rule (known pixels finite and in [0, 1])."""

from __future__ import annotations

import numpy as np

from .errors import InpaintError, RasterError

SUPPORTED_DTYPES = ("uint8", "uint16", "float32")


def to_float(data: np.ndarray) -> np.ndarray:
    """Native pixels (any shape) to float32 in [0, 1] by the dtype's range.

    uint8 -> /255, uint16 -> /65535; float32 is clipped to [0, 1] (NaN -> 0). Always a new array.
    """
    data = np.asarray(data)
    if data.dtype == np.uint8 or data.dtype == np.uint16:
        out = data.astype(np.float32)
        out /= np.float32(np.iinfo(data.dtype).max)
        return out
    if data.dtype == np.float32:
        out = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0, out=out)
    raise RasterError(f"unsupported data type {data.dtype}: expected uint8 or uint16 "
                      "(or float32 in [0,1])")


def from_float(values: np.ndarray, dtype: np.dtype | str | type) -> np.ndarray:
    """Float values in [0, 1] (any shape) to ``dtype``: the inverse of :func:`to_float`.

    Values are clipped to [0, 1] (NaN -> 0), scaled by the dtype's maximum and rounded to the
    nearest integer (uint8, uint16); float32 is returned clipped. Always a new array.
    """
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise RasterError(f"from_float expects floating-point values, got {values.dtype}")
    if dtype.name not in SUPPORTED_DTYPES:
        raise RasterError(f"unsupported data type {dtype}: expected uint8 or uint16 "
                          "(or float32 in [0,1])")
    out = np.clip(values, 0.0, 1.0)
    np.nan_to_num(out, copy=False, nan=0.0)
    if dtype == np.float32:
        return out.astype(np.float32, copy=False)
    out *= np.iinfo(dtype).max
    np.rint(out, out=out)
    return out.astype(dtype)


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
