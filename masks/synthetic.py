"""Synthetic paint-loss masks for training, tests and benchmarks.

A mask is made of two kinds of loss seen on old panels:

* **cracks**: thin branching lines (random walks with a persistent direction, 1-3 px wide, with
  side branches), drawn first;
* **lacunae**: irregular blobs (star-shaped polygons with a smooth random radius profile and some
  elongation), log-uniformly sized between ``min_blob_radius`` and ``max_blob_radius``, grouped in
  clusters, many of them along the cracks (flaking starts at cracks).

Shapes are drawn with OpenCV in batches until the target coverage is almost reached, then one by
one; the last shape is clipped to the pixels nearest its origin so that the missing area matches
the target to the pixel. Everything is drawn from ``numpy.random.default_rng(seed)``: the same
shape, config and OpenCV version give the same mask.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .io import MaskError

__all__ = ["MAX_COVERAGE", "PaintLossConfig", "paint_loss_mask"]

MAX_COVERAGE = 0.9
"""Largest accepted coverage: a mask must leave known pixels to inpaint from."""

_MAX_BATCH = 50_000      # shapes drawn per batch (bounds temporary memory)
_MIN_BATCH = 16          # below this many shapes per batch, draw one by one
_MAX_ROUNDS = 200        # batch rounds per phase
_MAX_SINGLE = 20_000     # one-by-one shapes per phase
_BATCH_SHARE = 0.7       # share of the remaining deficit a batch aims to fill


@dataclass
class PaintLossConfig:
    """Parameters of :func:`paint_loss_mask`.

    Attributes
    ----------
    coverage : float
        Target share of missing pixels, in [0, ``MAX_COVERAGE``].
    crack_fraction : float
        Share of the missing area drawn as thin cracks (the rest are blob lacunae), in [0, 1].
    min_blob_radius, max_blob_radius : float
        Range of the blobs' mean radius in pixels (``0 < min <= max``). On small images the
        radius is also capped at a sixth of the shorter side.
    crack_width : (int, int)
        Inclusive range of crack widths in pixels, ``1 <= low <= high <= 15``.
    seed : int
        Seed of the random generator, ``>= 0``.
    """

    coverage: float = 0.05
    crack_fraction: float = 0.4
    min_blob_radius: float = 2.0
    max_blob_radius: float = 12.0
    crack_width: tuple[int, int] = (1, 3)
    seed: int = 0

    def __post_init__(self) -> None:
        self.coverage = _real(self.coverage, "coverage")
        self.crack_fraction = _real(self.crack_fraction, "crack_fraction")
        self.min_blob_radius = _real(self.min_blob_radius, "min_blob_radius")
        self.max_blob_radius = _real(self.max_blob_radius, "max_blob_radius")
        if not 0.0 <= self.coverage <= MAX_COVERAGE:
            raise MaskError(f"coverage must be in [0, {MAX_COVERAGE}], got {self.coverage}")
        if not 0.0 <= self.crack_fraction <= 1.0:
            raise MaskError(f"crack_fraction must be in [0, 1], got {self.crack_fraction}")
        if not 0.0 < self.min_blob_radius <= self.max_blob_radius:
            raise MaskError(
                "blob radii must satisfy 0 < min_blob_radius <= max_blob_radius, got "
                f"{self.min_blob_radius} and {self.max_blob_radius}"
            )
        try:
            low, high = self.crack_width
        except (TypeError, ValueError):
            raise MaskError(
                f"crack_width must be a (low, high) pair of integers, got {self.crack_width!r}"
            ) from None
        if not (_is_int(low) and _is_int(high) and 1 <= low <= high <= 15):
            raise MaskError(
                "crack_width must be integers with 1 <= low <= high <= 15, "
                f"got {self.crack_width!r}"
            )
        self.crack_width = (int(low), int(high))
        if not _is_int(self.seed) or self.seed < 0:
            raise MaskError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.seed = int(self.seed)


def paint_loss_mask(
    shape: tuple[int, int],
    config: PaintLossConfig | None = None,
    **overrides: object,
) -> np.ndarray:
    """A random but reproducible paint-loss mask.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of the mask.
    config : PaintLossConfig or None
        Parameters; the defaults when None.
    **overrides
        Fields of :class:`PaintLossConfig` replacing those of ``config``
        (``paint_loss_mask((512, 512), coverage=0.1, seed=3)``).

    Returns
    -------
    ndarray of bool, shape (H, W)
        True = missing. ``round(coverage * H * W)`` pixels are missing (never all of them);
        about ``crack_fraction`` of them come from cracks.
    """
    height, width = _check_shape(shape)
    cfg = config if config is not None else PaintLossConfig()
    if not isinstance(cfg, PaintLossConfig):
        raise TypeError(f"config must be a PaintLossConfig, got {type(cfg).__name__}")
    if overrides:
        fields = {f.name for f in dataclasses.fields(PaintLossConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise MaskError(
                f"unknown paint-loss option {unknown[0]!r}; expected one of {sorted(fields)}"
            )
        cfg = dataclasses.replace(cfg, **overrides)

    rng = np.random.default_rng(cfg.seed)
    canvas = np.zeros((height, width), np.uint8)
    total = min(round(cfg.coverage * height * width), height * width - 1)
    if total <= 0:
        return canvas.view(bool)
    crack_target = round(cfg.crack_fraction * total)

    # cracks first ...
    anchors: list[np.ndarray] = []
    crack_gen = _CrackGenerator(height, width, cfg.crack_width)

    def make_cracks(n: int) -> list[_Shape]:
        shapes = crack_gen(rng, n)
        anchors.extend(s.lines[0][::4] for s in shapes[:2000])
        return shapes

    if crack_target > 0:
        _fill(canvas, crack_target, make_cracks, crack_gen.area_guess)

    # ... then lacunae, clustered partly along the cracks
    anchor_points = np.concatenate(anchors).astype(np.float64) if anchors else None
    blob_gen = _BlobGenerator(height, width, cfg.min_blob_radius, cfg.max_blob_radius,
                              anchor_points)
    _fill(canvas, total, lambda n: blob_gen(rng, n), blob_gen.area_guess)
    return canvas.view(bool)


# --------------------------------------------------------------------------------------------
# shapes


@dataclass
class _Shape:
    """Something to draw: a filled polygon (``width == 0``) or open polylines ``width`` px wide.

    ``lines`` are int32 (N, 2) arrays of (x, y) vertices; ``origin`` (x, y) is the point whose
    nearest pixels are kept when only part of the shape fits in the remaining budget.
    """

    lines: list[np.ndarray]
    width: int
    origin: tuple[float, float]


class _BlobGenerator:
    """Irregular lacunae: star-shaped polygons with a smooth random radius profile."""

    def __init__(self, height: int, width: int, r_min: float, r_max: float,
                 anchors: np.ndarray | None) -> None:
        self.height, self.width = height, width
        self.r_max = min(r_max, max(1.0, min(height, width) / 6))
        self.r_min = min(r_min, self.r_max)
        self.vertices = int(np.clip(2 * math.pi * self.r_max / 2.5, 16, 64))
        self.anchors = anchors if anchors is not None and len(anchors) else None
        # E[r^2] for log-uniform r, times the mean area gain of the radius noise (generous)
        lo, hi = math.log(self.r_min), math.log(self.r_max)
        mean_r2 = (self.r_max**2 - self.r_min**2) / (2 * (hi - lo)) if hi > lo else self.r_max**2
        self.area_guess = 1.5 * math.pi * mean_r2 + 1.0

    def __call__(self, rng: np.random.Generator, n: int) -> list[_Shape]:
        k = self.vertices
        radius = np.exp(rng.uniform(math.log(self.r_min), math.log(self.r_max), n))
        theta = (np.arange(k) + rng.uniform(-0.3, 0.3, (n, k))) * (2 * math.pi / k)
        harmonics = np.arange(1, 5)
        amplitude = rng.normal(0.0, 0.22 / harmonics, (n, 4))
        phase = rng.uniform(0.0, 2 * math.pi, (n, 4))
        log_profile = np.einsum(
            "nh,nhk->nk", amplitude,
            np.cos(harmonics[None, :, None] * theta[:, None, :] + phase[:, :, None]),
        )
        rad = radius[:, None] * np.exp(log_profile) * (1.0 + rng.normal(0.0, 0.06, (n, k)))
        elongation = np.sqrt(rng.uniform(1.0, 1.8, n))[:, None]
        u = rad * np.cos(theta) * elongation
        v = rad * np.sin(theta) / elongation
        rotation = rng.uniform(0.0, math.pi, n)[:, None]
        dx = u * np.cos(rotation) - v * np.sin(rotation)
        dy = u * np.sin(rotation) + v * np.cos(rotation)

        centres = self._centres(rng, n)
        xs = np.rint(centres[:, :1] + dx).astype(np.int32)
        ys = np.rint(centres[:, 1:] + dy).astype(np.int32)
        polygons = np.stack([xs, ys], axis=2)  # (n, k, 2)
        return [_Shape([polygons[i]], 0, (centres[i, 0], centres[i, 1])) for i in range(n)]

    def _centres(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) float (x, y): 30 % scattered, 70 % in clusters (half of them on cracks)."""
        size = np.array([self.width, self.height], np.float64)
        n_clusters = max(1, n // 6)
        clusters = rng.uniform(0.0, 1.0, (n_clusters, 2)) * size
        if self.anchors is not None:
            on_crack = rng.random(n_clusters) < 0.5
            picks = rng.integers(0, len(self.anchors), n_clusters)
            clusters[on_crack] = self.anchors[picks[on_crack]]
        members = clusters[rng.integers(0, n_clusters, n)]
        members += rng.normal(0.0, 2.0 * self.r_max, (n, 2))
        scattered = rng.uniform(0.0, 1.0, (n, 2)) * size
        centres = np.where((rng.random(n) < 0.3)[:, None], scattered, members)
        return np.clip(centres, 0.0, size - 1)


class _CrackGenerator:
    """Thin cracks: persistent random walks with a few side branches."""

    def __init__(self, height: int, width: int, widths: tuple[int, int]) -> None:
        self.height, self.width = height, width
        self.widths = widths
        side = min(height, width)
        self.max_length = float(np.clip(0.25 * side, 6.0, 400.0))
        self.step = 2.0 if side < 128 else 3.0
        mean_width = (widths[0] + widths[1]) / 2
        # main crack 0.7 * max_length plus ~1 branch of ~0.42 of it; generous by 1.3
        self.area_guess = 1.3 * 0.7 * self.max_length * 1.45 * (mean_width + 0.5) + 1.0

    def __call__(self, rng: np.random.Generator, n: int) -> list[_Shape]:
        size = np.array([self.width, self.height], np.float64)
        starts = rng.uniform(0.0, 1.0, (n, 2)) * size
        lengths = rng.uniform(0.4, 1.0, n) * self.max_length
        main, angles, steps = self._walks(rng, starts, rng.uniform(0, 2 * math.pi, n), lengths)

        n_branches = np.minimum(rng.poisson(1.0, n), 3)
        parent = np.repeat(np.arange(n), n_branches)
        at = (rng.random(len(parent)) * steps[parent]).astype(np.int64) + 1  # vertex 1..steps
        side = np.where(rng.random(len(parent)) < 0.5, -1.0, 1.0)
        branch_theta = angles[parent, at - 1] + side * rng.uniform(0.5, 1.3, len(parent))
        branch_length = rng.uniform(0.25, 0.6, len(parent)) * lengths[parent]
        branches, _, branch_steps = self._walks(rng, main[parent, at], branch_theta, branch_length)
        widths = rng.integers(self.widths[0], self.widths[1] + 1, n)

        main_i = np.rint(main).astype(np.int32)
        branch_i = np.rint(branches).astype(np.int32)
        lines: list[list[np.ndarray]] = [[main_i[i, : steps[i] + 1]] for i in range(n)]
        for b, p in enumerate(parent):
            lines[p].append(branch_i[b, : branch_steps[b] + 1])
        return [_Shape(lines[i], int(widths[i]), (starts[i, 0], starts[i, 1])) for i in range(n)]

    def _walks(self, rng: np.random.Generator, starts: np.ndarray, theta0: np.ndarray,
               lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random walks with a persistent direction.

        Returns float (n, S+1, 2) vertices, (n, S) step angles and (n,) int step counts
        (walk i uses vertices ``0..steps[i]``).
        """
        n = len(starts)
        steps = np.maximum(2, np.ceil(lengths / self.step)).astype(np.int64)
        s = int(steps.max()) if n else 2
        turns = rng.normal(0.0, 0.2, (n, s))
        kinks = rng.random((n, s)) < 0.04
        turns[kinks] += rng.normal(0.0, 0.7, int(kinks.sum()))
        angles = theta0[:, None] + np.cumsum(turns, axis=1)
        moves = self.step * np.stack([np.cos(angles), np.sin(angles)], axis=2)
        vertices = np.concatenate([starts[:, None, :], starts[:, None, :] + np.cumsum(moves, 1)], 1)
        return vertices, angles, steps


# --------------------------------------------------------------------------------------------
# drawing


def _fill(canvas: np.ndarray, target: int, make_shapes: Callable[[int], list[_Shape]],
          area_guess: float) -> int:
    """Draw shapes onto ``canvas`` (uint8 0/1, in place) until ``target`` pixels are set.

    Batches aim at a share of the remaining deficit (a batch that would overshoot is undone and
    retried smaller); the last few shapes are drawn one by one, the final one clipped. Returns
    the number of set pixels.
    """
    current = cv2.countNonZero(canvas)
    per_shape = area_guess
    for _ in range(_MAX_ROUNDS):
        n = int(_BATCH_SHARE * (target - current) / per_shape)
        if n < _MIN_BATCH:
            break
        n = min(n, _MAX_BATCH)
        saved = canvas.copy()
        _draw(canvas, make_shapes(n))
        now = cv2.countNonZero(canvas)
        if now > target:  # shapes larger than expected: undo, retry with fewer
            canvas[...] = saved
            per_shape *= 2.0
            continue
        per_shape = max((now - current) / n, per_shape / 4, 0.05)
        current = now
    for _ in range(_MAX_SINGLE):
        if current >= target:
            break
        current += _draw_partial(canvas, make_shapes(1)[0], target - current)
    return current


def _draw(canvas: np.ndarray, shapes: list[_Shape]) -> None:
    """Draw whole shapes (value 1) onto ``canvas``."""
    by_width: dict[int, list[np.ndarray]] = {}
    for shape in shapes:
        if shape.width == 0:
            # one call per polygon: several polygons in one fillPoly call would XOR overlaps
            cv2.fillPoly(canvas, shape.lines, 1)
        else:
            by_width.setdefault(shape.width, []).extend(shape.lines)
    for width, lines in sorted(by_width.items()):
        _polylines(canvas, lines, width)


def _polylines(canvas: np.ndarray, lines: list[np.ndarray], width: int) -> None:
    """Open polylines ``width`` px wide (OpenCV thickness t draws 2t-1 px; even widths are an
    odd line plus copies shifted by one pixel right and down)."""
    thickness = (width + 1) // 2 if width % 2 else width // 2
    cv2.polylines(canvas, lines, False, 1, thickness, cv2.LINE_8)
    if width % 2 == 0:
        for shift in (np.array([1, 0], np.int32), np.array([0, 1], np.int32)):
            cv2.polylines(canvas, [line + shift for line in lines], False, 1, thickness,
                          cv2.LINE_8)


def _draw_partial(canvas: np.ndarray, shape: _Shape, budget: int) -> int:
    """Draw ``shape``, keeping at most ``budget`` new pixels (those nearest ``shape.origin``).

    Works on the shape's bounding box only. Returns the number of pixels newly set.
    """
    height, width = canvas.shape
    points = np.concatenate(shape.lines)
    pad = shape.width + 2
    x0 = max(0, int(points[:, 0].min()) - pad)
    y0 = max(0, int(points[:, 1].min()) - pad)
    x1 = min(width, int(points[:, 0].max()) + pad + 1)
    y1 = min(height, int(points[:, 1].max()) + pad + 1)
    if x0 >= x1 or y0 >= y1 or budget <= 0:
        return 0
    patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
    offset = np.array([x0, y0], np.int32)
    _draw(patch, [_Shape([line - offset for line in shape.lines], shape.width, shape.origin)])
    window = canvas[y0:y1, x0:x1]
    rows, cols = np.nonzero((patch != 0) & (window == 0))
    if len(rows) > budget:
        d2 = (cols + x0 - shape.origin[0]) ** 2 + (rows + y0 - shape.origin[1]) ** 2
        keep = np.argpartition(d2, budget - 1)[:budget]
        rows, cols = rows[keep], cols[keep]
    window[rows, cols] = 1
    return len(rows)


# --------------------------------------------------------------------------------------------
# validation


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise MaskError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = shape
    except (TypeError, ValueError):
        raise MaskError(f"shape must be (height, width), got {shape!r}") from None
    if not (_is_int(height) and _is_int(width) and height > 0 and width > 0):
        raise MaskError(f"shape must be two positive integers (height, width), got {shape!r}")
    return int(height), int(width)
