"""The MRF lattice: patch positions on a grid over the hole, and their 4-neighbour edges."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Lattice:
    """Nodes are patches (top-left corners) that contain at least one missing pixel.

    ``edges`` (E, 2) holds node-index pairs (a, b) with b right of or below a;
    ``offsets`` (E, 2) holds b's corner minus a's corner, (0, d) or (d, 0) with 0 < d < patch.
    """

    patch: int
    step: int
    tops: np.ndarray       # (N,)
    lefts: np.ndarray      # (N,)
    edges: np.ndarray      # (E, 2)
    offsets: np.ndarray    # (E, 2)
    missing: np.ndarray    # (N,) missing pixels in each node's patch

    @property
    def n_nodes(self) -> int:
        return len(self.tops)

    @property
    def colours(self) -> np.ndarray:
        """(N,) 0/1 checkerboard colours: grid row index plus column index, modulo 2. An edge
        joins nodes on consecutive grid rows or columns, so never two nodes of one colour
        (grid lines without nodes hold no edges, so ranks among the occupied ones serve)."""
        rows = np.searchsorted(np.unique(self.tops), self.tops)
        cols = np.searchsorted(np.unique(self.lefts), self.lefts)
        return (rows + cols) % 2

    def subset(self, nodes: np.ndarray) -> Lattice:
        """The given nodes alone (no edges): for searching labels of part of the lattice."""
        empty = np.empty((0, 2), dtype=np.int64)
        return Lattice(patch=self.patch, step=self.step, tops=self.tops[nodes],
                       lefts=self.lefts[nodes], edges=empty, offsets=empty,
                       missing=self.missing[nodes])


def grid_positions(size: int, patch: int, step: int) -> np.ndarray:
    """0, step, 2 step, ... plus a last position flush with the border when the grid misses it."""
    if size < patch:
        raise ValueError(f"image side {size} is smaller than the patch ({patch})")
    pos = np.arange(0, size - patch + 1, step)
    if pos[-1] != size - patch:
        pos = np.r_[pos, size - patch]
    return pos


def source_patches(hole: np.ndarray, patch: int) -> int:
    """Number of fully known ``patch`` x ``patch`` patches in a window (by centre pixel)."""
    if min(hole.shape) < patch:
        return 0
    known = (~hole).astype(np.uint8)
    return int(np.count_nonzero(cv2.erode(known, np.ones((patch, patch), np.uint8),
                                          borderType=cv2.BORDER_CONSTANT, borderValue=0)))


def missing_counts(hole: np.ndarray, tops: np.ndarray, lefts: np.ndarray, patch: int) -> np.ndarray:
    """Number of missing pixels in each patch, via an integral image."""
    integral = np.pad(np.cumsum(np.cumsum(hole, 0, dtype=np.int64), 1), ((1, 0), (1, 0)))
    b, r = tops + patch, lefts + patch
    return integral[b, r] - integral[tops, r] - integral[b, lefts] + integral[tops, lefts]


def build_lattice(hole: np.ndarray, patch: int, step: int) -> Lattice:
    """Lattice of ``patch``-sized nodes every ``step`` pixels, kept where a patch touches the hole.

    Nodes also lie flush with the bottom and right borders so holes there are covered.
    """
    if not 0 < step < patch:
        raise ValueError(f"step must lie in (0, patch={patch}), got {step}")
    rows = grid_positions(hole.shape[0], patch, step)
    cols = grid_positions(hole.shape[1], patch, step)
    grid_t, grid_l = np.meshgrid(rows, cols, indexing="ij")
    counts = missing_counts(hole, grid_t.ravel(), grid_l.ravel(), patch).reshape(grid_t.shape)
    present = counts > 0
    index = np.full(grid_t.shape, -1, dtype=np.int64)
    index[present] = np.arange(int(present.sum()))
    edges, offsets = [], []
    for axis in (0, 1):  # vertical then horizontal neighbours in the grid
        a = index[:-1, :] if axis == 0 else index[:, :-1]
        b = index[1:, :] if axis == 0 else index[:, 1:]
        both = (a >= 0) & (b >= 0)
        edges.append(np.stack([a[both], b[both]], 1))
        steps = (np.diff(rows)[:, None] * np.ones(len(cols), int)) if axis == 0 else \
            (np.ones(len(rows), int)[:, None] * np.diff(cols)[None, :])
        d = steps[both]
        offsets.append(np.stack([d, np.zeros_like(d)], 1) if axis == 0
                       else np.stack([np.zeros_like(d), d], 1))
    return Lattice(patch=patch, step=step, tops=grid_t[present], lefts=grid_l[present],
                   edges=np.concatenate(edges).astype(np.int64),
                   offsets=np.concatenate(offsets).astype(np.int64),
                   missing=counts[present])
