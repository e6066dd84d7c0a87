"""Quality pins of the MRF inpainter on synthetic images whose answer is known.

Each pin compares the hole error of ``inpaint_mrf`` with that of its own pre-fill (OpenCV
Telea, what the MRF starts from) as a ratio, not an exact value, so that a change in how the
composition blends patches keeps them green while skipping a stage or taking the wrong labels
fails them. Errors are mean squared errors over the hole pixels, RGB in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mrf import MRFConfig, inpaint_mrf, prefill

#: The configuration these pins were measured with (13 px patches on a 6 px step, field unary,
#: hard composition, two passes, patches up to the hole's edge): the MRF library's defaults
#: before they became the product's (tests/test_defaults.py).
PINNED = dict(patch_size=13, patch_step=6, shortlist=32, passes=2, unary="field", temperature=1.0,
              soft_compose=False, crack_width=0.0)


def _hole_mse(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    return float(np.mean((result[hole].astype(np.float64) - truth[hole]) ** 2))


def _run(truth: np.ndarray, hole: np.ndarray, config: MRFConfig):
    damaged = truth.copy()
    damaged[hole] = 0.0
    filled = prefill(damaged, hole, method="telea")   # the pins compare with a smooth fill
    result = inpaint_mrf(filled, hole, None, config)
    assert np.array_equal(result.image[~hole], filled[~hole]), "a known pixel changed"
    return _hole_mse(filled, truth, hole), _hole_mse(result.image, truth, hole), result


@pytest.mark.parametrize("seed", [0, 1])
def test_periodic_texture_lacuna_is_copied_back(seed):
    """A tiled random 8x8 pattern with a 20x20 lacuna (wider than the 13 px patch, so the
    centre nodes see no known pixel). Every period of the pattern is an exact source, so the
    shipped configuration recreates the lacuna exactly (measured error 0); Telea can only
    smear the surrounding colours inwards (error ~0.1, the variance of the pattern).
    Floor: a quarter of the pre-fill's error, loose enough for any composition that blends
    aligned copies, far below what a fill ignoring the pattern's phase reaches."""
    rng = np.random.default_rng(seed)
    truth = np.tile(rng.random((8, 8, 3)), (12, 12, 1)).astype(np.float32)
    hole = np.zeros(truth.shape[:2], bool)
    hole[38:58, 40 + seed:60 + seed] = True
    pre, mrf, _ = _run(truth, hole, MRFConfig(**PINNED))
    assert pre > 0.05                     # the case is hard for a smoothing fill
    assert mrf < 0.25 * pre


def _smooth_noise(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(noise * 2.0 - 0.5, 0.0, 1.0)


def _copy_move(seed: int):
    """Non-repeating smooth noise whose top-left 46x46 square is copied to the bottom right;
    a 20x20 lacuna sits in the copy, its 13 px ring known. The one right answer is the copy
    of the original square: every node has exactly one label with zero cost (unary on its
    known pixels, pairwise with its neighbours' right labels); any other patch costs more."""
    truth = _smooth_noise(seed)
    truth[48:94, 48:94] = truth[2:48, 2:48]
    hole = np.zeros(truth.shape[:2], bool)
    hole[61:81, 61:81] = True
    return truth, hole


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copy_moved_region_is_found_and_pasted(seed):
    """Without context restriction (the copy and its source are the same statistics, so the
    texton blocks are arbitrary here) the MRF must find the unique source: measured hole error
    <= 1e-4 against ~0.01 for Telea. Floor: a tenth of the pre-fill's error. Keeping the worst
    labels after pruning, pasting a label other than NCMP's choice or dropping the pairwise
    term at the fully missing centre nodes all land near or above the pre-fill's error."""
    truth, hole = _copy_move(seed)
    pre, mrf, _ = _run(truth, hole, MRFConfig(use_context=False, **PINNED))
    assert pre > 0.005
    assert mrf < 0.1 * pre


@pytest.mark.parametrize("seed", [0, 1])
def test_straight_edge_through_a_lacuna_stays_sharp(seed):
    """Two flat colours (plus noise of sigma 0.02) split by a slanted straight edge crossing a
    24x24 lacuna. Patches copied along the edge continue it; Telea blurs it over the width of
    the lacuna (error ~0.006). The MRF reaches the noise floor, 2 sigma^2 = 0.0008 (its copied
    noise is independent of the lost noise): measured 0.0006-0.001. Floor: 0.4 x the pre-fill's
    error, i.e. at most a few pixels of blur or misplacement along the edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    above = (yy - 48) - 0.35 * (xx - 48) > 0
    truth = np.where(above[..., None], [0.8, 0.6, 0.3], [0.2, 0.3, 0.5])
    truth = (truth + rng.normal(0.0, 0.02, truth.shape)).astype(np.float32)
    hole = np.zeros(truth.shape[:2], bool)
    hole[36:60, 36:60] = True
    pre, mrf, _ = _run(truth, hole, MRFConfig(**PINNED))
    assert pre > 0.004
    assert mrf < 0.4 * pre
