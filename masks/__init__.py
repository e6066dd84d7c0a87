"""Paint-loss masks: reading and normalising, morphology, statistics and synthetic masks.

A mask is a boolean ``(H, W)`` numpy array, ``True`` where the painting is missing (to be
inpainted). This package imports nothing else of the project.
"""

from .io import MaskError, normalise_mask, read_mask
from .morphology import dilate, disk, erode
from .stats import MaskStats, check_mask_usable, mask_stats, require_usable
from .synthetic import MAX_COVERAGE, PaintLossConfig, paint_loss_mask

__all__ = [
    "MAX_COVERAGE",
    "MaskError",
    "MaskStats",
    "PaintLossConfig",
    "check_mask_usable",
    "require_usable",
    "dilate",
    "disk",
    "erode",
    "mask_stats",
    "normalise_mask",
    "paint_loss_mask",
    "read_mask",
]
