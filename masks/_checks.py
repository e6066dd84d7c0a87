"""Input validation shared by the mask functions (private)."""

from __future__ import annotations

import numbers

import numpy as np

from .io import MaskError


def as_mask_2d(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A 2-D mask of any bool/integer/float dtype -> bool (H, W) (non-zero = True).

    Boolean input is returned as is (no copy); other dtypes give a new array.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise MaskError(f"{name} has unsupported dtype {arr.dtype}")
    return arr != 0


def as_radius(radius: int) -> int:
    """Validate a structuring-element radius: a non-negative integer."""
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral):
        raise MaskError(f"radius must be a non-negative integer, got {radius!r}")
    if radius < 0:
        raise MaskError(f"radius must be a non-negative integer, got {radius}")
    return int(radius)
