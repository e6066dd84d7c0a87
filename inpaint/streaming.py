"""Streaming the output: the input copied to the output in row bands with the inpainted loss
pixels patched in, so that a panel larger than memory is written with bounded memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .dtypes import to_float

if TYPE_CHECKING:
    from .inpainter import RegionResult

PREVIEW_SIDE = 1600   # longest side of the preview montage's images
STREAM_BAND_BYTES = 64 << 20   # rows copied input -> output per write, bounded by this size


def preview_step(meta) -> int:
    """Subsampling step of the preview of a ``meta.height`` x ``meta.width`` raster."""
    return max(1, -(-max(meta.height, meta.width) // PREVIEW_SIDE))


def stream_output(reader, writer, results: list[RegionResult], meta, n_colour: int, *,
                  want_preview: bool, band_rows: int | None = None):
    """Copy the input to the output in row bands, patching the owned loss pixels of every region.

    Returns subsampled (input, output) float RGB images for the preview when asked.
    """
    rows = np.concatenate([r.rows for r in results]) if results else np.empty(0, np.int64)
    cols = np.concatenate([r.cols for r in results]) if results else np.empty(0, np.int64)
    values = np.concatenate([r.values for r in results]) if results else \
        np.empty((0, n_colour), meta.dtype)
    order = np.argsort(rows, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    band_rows = band_rows or writer.rows_per_write(STREAM_BAND_BYTES)
    step = preview_step(meta)
    before, after = [], []
    with writer:
        for r0 in range(0, meta.height, band_rows):
            r1 = min(meta.height, r0 + band_rows)
            data = reader.read((r0, 0, r1, meta.width))
            a, b = np.searchsorted(rows, [r0, r1])
            if want_preview:
                first = (-r0) % step
                before.append(data[first::step, ::step, :n_colour].copy())
            data[rows[a:b] - r0, cols[a:b], :n_colour] = values[a:b]
            if want_preview:
                after.append(data[first::step, ::step, :n_colour])
            writer.write_window(data, (r0, 0, r1, meta.width))
    if not want_preview:
        return None

    def rgb(parts):
        img = to_float(np.concatenate(parts))
        return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    return rgb(before), rgb(after)
