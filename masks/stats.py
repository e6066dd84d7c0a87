"""Summary statistics of masks and the check that a mask leaves enough to inpaint from."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._checks import as_mask_2d
from .io import MaskError

__all__ = ["MaskStats", "check_mask_usable", "mask_stats", "require_usable"]


@dataclass(frozen=True)
class MaskStats:
    """What a mask covers.

    Attributes
    ----------
    height, width : int
        Mask size in pixels.
    missing : int
        Number of missing (True) pixels.
    fraction : float
        ``missing / (height * width)``, in [0, 1].
    components : int
        Number of 8-connected missing regions.
    bbox : (row0, col0, row1, col1) or None
        Half-open bounding box of the missing pixels (``mask[row0:row1, col0:col1]``); None when
        nothing is missing.
    """

    height: int
    width: int
    missing: int
    fraction: float
    components: int
    bbox: tuple[int, int, int, int] | None

    @property
    def known(self) -> int:
        """Number of known (False) pixels."""
        return self.height * self.width - self.missing

    @property
    def known_fraction(self) -> float:
        """``known / (height * width)``, in [0, 1]."""
        return 1.0 - self.fraction

    @property
    def empty(self) -> bool:
        """True when nothing is missing (nothing to inpaint)."""
        return self.missing == 0


def mask_stats(mask: np.ndarray) -> MaskStats:
    """Count the missing pixels, regions and extent of a mask.

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Boolean mask, True = missing (other numeric dtypes: non-zero = True).

    Returns
    -------
    MaskStats
    """
    m = as_mask_2d(mask)
    height, width = m.shape
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return MaskStats(height, width, 0, 0.0, 0, None)
    cols = np.flatnonzero(m.any(axis=0))
    row0, row1 = int(rows[0]), int(rows[-1]) + 1
    col0, col1 = int(cols[0]), int(cols[-1]) + 1
    # Labelling only the bounding box saves the int32 label image of the whole mask.
    crop = np.ascontiguousarray(m[row0:row1, col0:col1]).view(np.uint8)
    missing = int(cv2.countNonZero(crop))
    n_labels, _ = cv2.connectedComponents(crop, connectivity=8, ltype=cv2.CV_32S)
    return MaskStats(
        height=height,
        width=width,
        missing=missing,
        fraction=missing / (height * width),
        components=int(n_labels) - 1,
        bbox=(row0, col0, row1, col1),
    )


def check_mask_usable(mask: np.ndarray, *, min_known_fraction: float = 0.05) -> MaskStats:
    """Refuse a mask that leaves too few known pixels to inpaint from.

    An empty mask is *not* an error here: there is simply nothing to do, and callers copy the
    image through and say so (``stats.empty``).

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Boolean mask, True = missing.
    min_known_fraction : float
        Smallest acceptable share of known pixels, in [0, 1].

    Returns
    -------
    MaskStats
        The statistics of the mask, when it is usable.

    Raises
    ------
    MaskError
        When the known fraction is below ``min_known_fraction``.
    """
    return require_usable(mask_stats(mask), min_known_fraction=min_known_fraction)


def require_usable(stats: MaskStats, *, min_known_fraction: float = 0.05) -> MaskStats:
    """:func:`check_mask_usable` on statistics already computed (the mask is not labelled
    again)."""
    if not 0.0 <= min_known_fraction <= 1.0:
        raise ValueError(f"min_known_fraction must be in [0, 1], got {min_known_fraction}")
    if stats.known_fraction < min_known_fraction:
        raise MaskError(
            f"mask covers {_percent(stats.missing, stats.height * stats.width)} % of the image: "
            "too few known pixels remain to inpaint from"
        )
    return stats


def _percent(part: int, total: int) -> str:
    """``part / total`` as a percentage with one decimal, rounded down (exact integer arithmetic)
    so that only a full mask reads 100.0."""
    tenths = part * 1000 // total
    return f"{tenths // 10}.{tenths % 10}"
