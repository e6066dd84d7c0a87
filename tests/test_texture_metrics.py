"""The benchmarks' texture measures (benchmarks/texture_metrics.py): the lattice echo sees
paint recurring at the lattice step and nothing in grain without it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from texture_metrics import LATTICE_STEP, lattice_echo, score  # noqa: E402


def _grain(seed: int, size: int = 96) -> np.ndarray:
    """Grainy paint: noise smoothed by a 1-px Gaussian, as uint8 RGB."""
    rng = np.random.default_rng(seed)
    grey = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.0)
    grey = np.clip(128 + 60 * grey, 0, 255)
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)


def _repeats(source: np.ndarray, cell: int, seed: int, run: int = 3) -> np.ndarray:
    """Cells of ``cell`` px; along each row, ``run`` cells in a row copy one random place of
    ``source``: what neighbouring nodes that chose one source (or sources shifted unlike the
    nodes) paste, the same paint recurring every ``cell`` px. ``run`` 1: unrelated cells."""
    rng = np.random.default_rng(seed)
    out = source.copy()
    size = source.shape[0]
    for y in range(0, size, cell):
        for start in range(0, size, cell * run):
            sy, sx = rng.integers(0, size - cell, 2)
            for x in range(start, min(size, start + cell * run), cell):
                out[y:y + cell, x:x + cell] = source[sy:sy + cell, sx:sx + cell]
    return out


def _region(size: int = 96) -> np.ndarray:
    region = np.zeros((size, size), bool)
    region[16:80, 16:80] = True
    return region


def test_paint_recurring_at_the_lattice_step_echoes_and_grain_does_not():
    """Measured: runs of 3 cells 0.25-0.30, unrelated cells 0.08-0.09, runs of 6-px cells
    0.02-0.05, another grain of the same statistics 0.00-0.02."""
    truth, other = _grain(0), _grain(1)
    region = _region()
    assert lattice_echo(truth, truth, region) == 0.0
    # another grain of the same statistics (a perfect texture fill that is not the truth)
    assert abs(lattice_echo(other, truth, region)) < 0.03
    recurring = lattice_echo(_repeats(other, LATTICE_STEP, 2), truth, region)
    assert recurring > 0.2
    # unrelated cells: seams at the step, but no paint recurring at it
    assert lattice_echo(_repeats(other, LATTICE_STEP, 2, run=1), truth, region) < 0.5 * recurring
    # recurring at twice the step: not a pattern at the step
    assert lattice_echo(_repeats(other, 2 * LATTICE_STEP, 2), truth, region) < 0.1


def test_echo_is_nan_on_a_tiny_region_and_scored_for_lacunae():
    truth = _grain(0)
    tiny = np.zeros(truth.shape[:2], bool)
    tiny[10:13, 10:13] = True
    assert np.isnan(lattice_echo(truth, truth, tiny))
    mask = _region()
    result = truth.copy()
    result[mask] = _repeats(_grain(1), LATTICE_STEP, 3)[mask]
    scores = score(result, truth, mask)
    assert scores["lacuna_echo"] > 0.1
    assert scores["lacuna_echo"] == pytest.approx(
        lattice_echo(result, truth, mask & (ndimage.distance_transform_edt(mask) > 2)))
