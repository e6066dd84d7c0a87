"""Work regions: the losses of a panel grouped into windows that are inpainted one at a time.

Losses closer than twice the margin form one group; a group's window is its bounding box grown by
the margin (clipped to the panel), so the MRF of the group sees at least ``margin`` pixels of
context and source patches around every loss. A group whose window is larger than the allowed
window side is cut into tiles: each tile owns the group's losses inside its core and sees
``margin`` pixels beyond it.

Rule that follows (tested): the pixels a region writes depend only on the panel content inside
its window and on (margin, window side), never on how the rest of the panel is processed or
windowed; a panel cut into tiles for ``inpaint batch`` gives the same result as one ``run``
for every loss group whose window lies inside the tile's window.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mrf.lattice import source_patches

from .box import Box


@dataclass(frozen=True)
class Region:
    """A window of the panel and the box of losses it owns (inside the window)."""

    window: Box
    core: Box
    group: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.window[2] - self.window[0], self.window[3] - self.window[1]

    @property
    def pixels(self) -> int:
        h, w = self.shape
        return h * w


def _grow(box: Box, margin: int, shape: tuple[int, int]) -> Box:
    r0, c0, r1, c1 = box
    return (max(0, r0 - margin), max(0, c0 - margin), min(shape[0], r1 + margin),
            min(shape[1], c1 + margin))


def loss_groups(mask: np.ndarray, margin: int) -> tuple[np.ndarray, list[Box]]:
    """Label map of loss groups (0 = no loss) and each group's bounding box of losses.

    Two losses share a group when their ``margin``-dilations touch (8-connectivity).
    """
    if not mask.any():
        return np.zeros(mask.shape, np.int32), []
    k = 2 * margin + 1
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) if margin else \
        mask.astype(np.uint8)
    n, labels = cv2.connectedComponents(grown, connectivity=8)
    labels = np.where(mask, labels, 0).astype(np.int32)
    return labels, _boxes_of_labels(labels, n)


def _boxes_of_labels(labels: np.ndarray, n: int) -> list[Box]:
    rows, cols = np.nonzero(labels)
    g = labels[rows, cols]
    r0 = np.full(n, np.iinfo(np.int64).max)
    c0 = r0.copy()
    r1 = np.full(n, -1)
    c1 = r1.copy()
    np.minimum.at(r0, g, rows)
    np.minimum.at(c0, g, cols)
    np.maximum.at(r1, g, rows)
    np.maximum.at(c1, g, cols)
    return [(int(r0[k]), int(c0[k]), int(r1[k]) + 1, int(c1[k]) + 1) for k in range(1, n)]


def plan_regions(mask: np.ndarray, margin: int, max_side: int) -> tuple[list[Region], np.ndarray]:
    """Regions covering every loss of ``mask``, and the loss-group label map.

    max_side: largest window side allowed (from the memory budget); must exceed 2 * margin.
    """
    if max_side <= 2 * margin:
        raise ValueError(f"window side {max_side} must exceed twice the margin ({margin})")
    labels, boxes = loss_groups(mask, margin)
    regions: list[Region] = []
    core_side = max_side - 2 * margin
    for g, box in enumerate(boxes, start=1):
        window = _grow(box, margin, mask.shape)
        if window[2] - window[0] <= max_side and window[3] - window[1] <= max_side:
            regions.append(Region(window=window, core=box, group=g))
            continue
        r0, c0, r1, c1 = box
        for tr in range(r0, r1, core_side):
            for tc in range(c0, c1, core_side):
                core = (tr, tc, min(r1, tr + core_side), min(c1, tc + core_side))
                if not (labels[core[0]:core[2], core[1]:core[3]] == g).any():
                    continue
                regions.append(Region(window=_grow(core, margin, mask.shape), core=core, group=g))
    return regions, labels


def owned_pixels(region: Region, labels: np.ndarray) -> np.ndarray:
    """(h, w) bool over the region's window: the losses this region writes."""
    r0, c0, r1, c1 = region.window
    own = labels[r0:r1, c0:c1] == region.group
    cr0, cc0, cr1, cc1 = region.core
    inside = np.zeros_like(own)
    inside[cr0 - r0:cr1 - r0, cc0 - c0:cc1 - c0] = True
    return own & inside


def _margin_of(region: Region) -> int:
    """The margin a region was grown by (its widest side; sides at the panel edge are clipped)."""
    (r0, c0, r1, c1), (a, b, c, d) = region.window, region.core
    return max(a - r0, b - c0, r1 - c, c1 - d)


def split_region(region: Region, shape: tuple[int, int], min_core: int = 16) -> list[Region]:
    """The region's core cut into four quarters, each with the same margin as before (used to
    retry a window that did not fit in device memory). Empty when the core is already small."""
    r0, c0, r1, c1 = region.core
    if r1 - r0 < 2 * min_core and c1 - c0 < 2 * min_core:
        return []
    margin = _margin_of(region)
    rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
    cores = [(a, b, c, d) for a, c in ((r0, rm), (rm, r1)) for b, d in ((c0, cm), (cm, c1))
             if c > a and d > b]
    return [Region(window=_grow(core, margin, shape), core=core, group=region.group)
            for core in cores]


def with_enough_sources(region: Region, mask: np.ndarray, patch: int, minimum: int) -> Region:
    """The region, its window grown (by its margin, repeatedly) until it holds at least
    ``minimum`` fully known patches to copy from, or covers the panel. A window that is mostly
    loss (a tile deep inside a large lacuna, a panel corner) otherwise has nothing to copy."""
    margin = max(8, _margin_of(region))
    full = (0, 0, *mask.shape)
    while region.window != full:
        r0, c0, r1, c1 = region.window
        if source_patches(mask[r0:r1, c0:c1], patch) >= minimum:
            break
        region = Region(window=_grow(region.window, margin, mask.shape), core=region.core,
                        group=region.group)
    return region
