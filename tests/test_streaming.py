"""Streaming the output in row bands (inpaint/streaming.py) against a whole-array reference."""

from types import SimpleNamespace

import numpy as np
import pytest

from inpaint.streaming import stream_output


class ArrayReader:
    def __init__(self, data: np.ndarray):
        self.data = data

    def read(self, window):
        r0, c0, r1, c1 = window
        return self.data[r0:r1, c0:c1].copy()


class ArrayWriter:
    def __init__(self, shape, dtype):
        self.out = np.zeros(shape, dtype)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def rows_per_write(self, _bytes):
        return 4

    def write_window(self, data, window):
        r0, c0, r1, c1 = window
        self.out[r0:r1, c0:c1] = data


@pytest.mark.parametrize("band_rows", [None, 1, 3, 7, 40])
def test_regions_whose_rows_interleave_are_patched_in_every_band(band_rows):
    """Two regions' pixels, each region in raster order but the two interleaved in rows (a
    region's rows are not sorted against another's): every band gets exactly its pixels."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (23, 17, 3), dtype=np.uint8)
    results, expected = [], image.copy()
    for seed in (1, 2, 3):
        pick = np.random.default_rng(seed).random(image.shape[:2]) < 0.15
        rows, cols = np.nonzero(pick)
        order = np.random.default_rng(seed + 10).permutation(len(rows))   # any order
        rows, cols = rows[order], cols[order]
        values = np.full((len(rows), 3), 10 * seed, np.uint8)
        results.append(SimpleNamespace(rows=rows, cols=cols, values=values))
        expected[rows, cols] = values
    meta = SimpleNamespace(height=23, width=17, dtype=np.uint8)
    writer = ArrayWriter(image.shape, np.uint8)
    before_after = stream_output(ArrayReader(image), writer, results, meta, 3,
                                 want_preview=True, band_rows=band_rows)
    np.testing.assert_array_equal(writer.out, expected)
    before, after = before_after
    np.testing.assert_allclose(before, image / 255.0)
    np.testing.assert_allclose(after, expected / 255.0)
