"""Composition: paste each node's chosen patch, writing only missing pixels, blending overlaps.

Each pasted patch contributes with a separable tent weight (largest at its centre), so where
patches overlap the result fades from one to the other instead of showing a hard seam; because the
weighted sum is order-independent, it is computed for all nodes at once.
"""

from __future__ import annotations

import numpy as np
import torch


def tent_weights(patch: int, power: float = 1.0) -> np.ndarray:
    """(patch, patch) separable tent, 1 at the border, largest at the centre, raised to ``power``."""
    ramp = np.minimum(np.arange(1, patch + 1), np.arange(patch, 0, -1)).astype(np.float64)
    return np.outer(ramp, ramp) ** power


def compose(
    image: np.ndarray,
    hole: np.ndarray,
    node_tops: np.ndarray,
    node_lefts: np.ndarray,
    label_tops: np.ndarray,
    label_lefts: np.ndarray,
    patch: int,
    *,
    power: float = 2.0,
    chunk: int = 16384,
) -> np.ndarray:
    """Fill ``hole`` of ``image`` (H, W, C) with the label patches placed at the node corners.

    Returns a new float32 image; pixels outside ``hole`` are copied from ``image`` unchanged.
    """
    height, width, channels = image.shape
    src = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    acc = torch.zeros((height * width, channels), dtype=torch.float64)
    wsum = torch.zeros(height * width, dtype=torch.float64)
    weights = torch.from_numpy(tent_weights(patch, power)).reshape(-1)
    offsets = torch.arange(patch)
    for s in range(0, len(node_tops), chunk):
        nt, nl = (torch.from_numpy(np.asarray(a[s:s + chunk])) for a in (node_tops, node_lefts))
        lt, ll = (torch.from_numpy(np.asarray(a[s:s + chunk])) for a in (label_tops, label_lefts))
        rows = (lt[:, None] + offsets)[:, :, None]
        cols = (ll[:, None] + offsets)[:, None, :]
        values = src[rows, cols].reshape(len(nt), -1, channels).double()     # (n, P*P, C)
        target = ((nt[:, None] + offsets)[:, :, None] * width
                  + (nl[:, None] + offsets)[:, None, :]).reshape(len(nt), -1)  # (n, P*P)
        acc.index_add_(0, target.reshape(-1), (values * weights[None, :, None]).reshape(-1, channels))
        wsum.index_add_(0, target.reshape(-1), weights.repeat(len(nt)))
    out = image.astype(np.float32, copy=True)
    flat_hole = np.flatnonzero(hole.ravel())
    covered = wsum[flat_hole] > 0
    if not bool(covered.all()):
        raise RuntimeError("some missing pixels are covered by no node; lattice bug")
    filled = (acc[flat_hole] / wsum[flat_hole, None]).float().numpy()
    out.reshape(-1, channels)[flat_hole] = filled
    return out
