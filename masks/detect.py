"""Paint-loss and crack detection: pure functions on numpy arrays (``inpaint detect``).

Two methods, both returning a boolean ``(H, W)`` mask, ``True`` = loss (to be inpainted):

* **cracks** (:func:`detect_cracks`, no training): a multi-scale ridge filter (scikit-image's
  ``sato``, the largest response over the scales ``sigmas``) for dark and/or light thin
  structures, hysteresis thresholding (pixels above ``low`` are kept only when connected to a
  pixel above ``high``), for light losses also lighter *areas* (a white top-hat of radius
  ``area_radius`` with its own hysteresis: paint flaked off to a lighter ground), removal of
  connected components smaller than ``min_area`` pixels and an optional closing. The responses
  are in grey-level units (0..1) and the thresholds are absolute, so they do not depend on the
  image size or on where a window is cut. ``polarity="auto"`` decides dark or light from the
  whole image (:func:`polarity_sums`, :func:`choose_polarity`).
* **trained** (:func:`train_classifier` / :func:`predict_mask`): a per-panel random forest
  (scikit-learn, seeded, bounded ``n_jobs``) on per-pixel features (:func:`pixel_features`:
  ``skimage.feature.multiscale_basic_features`` on every colour band, plus the ridge responses
  of each scale, plus optional extra channels such as the autoencoder IR), trained on a few
  scribbled pixels (:func:`scribble_labels`).

Images are float arrays in [0, 1], ``(H, W)`` grey or ``(H, W, C)``; the caller converts from the
file's dtype. This module imports nothing else of the project: extra features come in as a
callable (:data:`FeatureFn`).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .io import MaskError

#: Scribble label values (single-band scribble images): 1 = loss, 2 = paint, anything else = not
#: labelled. In RGB scribbles, red strokes are loss and green or blue strokes are paint.
LOSS, PAINT = 1, 2
POLARITIES = ("dark", "light", "both")      # what ridge_response accepts
CRACK_POLARITIES = ("auto", *POLARITIES)    # what CrackConfig accepts
MODEL_FORMAT = "inpaint-detect-model"
MODEL_VERSION = 1

#: ``extra(image) -> (H, W, K)`` float features computed on the same window as ``image``.
FeatureFn = Callable[[np.ndarray], np.ndarray]


class DetectError(MaskError):
    """Detection cannot run as asked (bad scribbles, unusable model file, wrong parameters)."""


# --------------------------------------------------------------------------- shared helpers


def to_grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` float in [0, 1] -> float32 ``(H, W)``: the mean of the colour
    bands (alpha is the caller's business)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image.mean(axis=2, dtype=np.float32)
    if image.ndim != 2:
        raise DetectError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return image


def ridge_response(grey: np.ndarray, sigmas: tuple[float, ...], polarity: str = "dark"
                   ) -> np.ndarray:
    """Multi-scale ridge strength of ``grey`` ``(H, W)`` float in [0, 1]: float32 ``(H, W)``.

    The Sato tubeness filter at each scale (Hessian eigenvalues scaled by sigma^2, so the
    response grows with the line's contrast and peaks at the scale matching its width: a
    3-px line 0.5 darker than its surround answers about 0.3), maximised over scales;
    ``polarity`` picks dark lines (cracks seen as shadow), light lines (cracks filled with
    ground or retouching), or the larger of both.
    """
    from skimage.filters import sato

    if polarity not in POLARITIES:
        raise DetectError(f"polarity must be one of {', '.join(POLARITIES)}, not {polarity!r}")
    out = np.zeros(grey.shape, np.float32)
    for dark in (True, False):
        if polarity == ("light" if dark else "dark"):
            continue
        for s in sigmas:   # one scale at a time: sato's own max would hide a skipped scale
            np.maximum(out, sato(grey, sigmas=(s,), black_ridges=dark, mode="reflect"), out=out)
    return out


def _remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop 8-connected components of fewer than ``min_area`` pixels (vectorised labelling;
    skimage's remove_small_objects changed its signature across the supported versions)."""
    from scipy import ndimage as ndi

    if min_area <= 1 or not mask.any():
        return mask
    labels, _ = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_area
    keep[0] = False
    return keep[labels]


def _close(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)


# --------------------------------------------------------------------------- cracks


@dataclass(frozen=True)
class CrackConfig:
    """Parameters of the ``cracks`` method. ``sigmas``, ``low``, ``high`` and ``min_area`` were
    tuned on the three craquelure images of benchmarks/detection.py; ``area_*`` on two of its
    five manuscript pages (101 and 106); ``auto_ratio`` between those two sets (README,
    "Loss and crack detection")."""

    sigmas: tuple[float, ...] = (1.0, 2.0, 3.0)  # ridge scales, px: cracks ~2-6 px wide
    polarity: str = "auto"       # auto, dark, light or both
    low: float = 0.08            # hysteresis: weak ridge contrast kept when linked to a strong one
    high: float = 0.15           # hysteresis: strong ridge contrast that seeds a crack
    min_area: int = 150          # components smaller than this (px) are dropped as speckle
    closing: int = 0             # radius of a final closing that bridges small gaps (0 = none)
    area_radius: int = 20        # light/both: white top-hat radius for lighter areas (0 = off)
    area_low: float = 0.2        # light areas: hysteresis on how much lighter than around (0..1)
    area_high: float = 0.3
    auto_radius: int = 3         # auto: top-hat radius of the polarity statistic (px)
    auto_ratio: float = 1.15     # auto: dark when dark top-hat mass >= ratio x light mass

    def __post_init__(self) -> None:
        if not self.sigmas or any(not (s > 0) for s in self.sigmas):
            raise DetectError("crack scales (sigmas) must be positive numbers")
        if self.polarity not in CRACK_POLARITIES:
            raise DetectError(f"polarity must be one of {', '.join(CRACK_POLARITIES)}")
        if not 0 <= self.low <= self.high:
            raise DetectError(f"thresholds must satisfy 0 <= low <= high (got low={self.low}, "
                              f"high={self.high})")
        if not 0 <= self.area_low <= self.area_high:
            raise DetectError(f"area thresholds must satisfy 0 <= low <= high (got "
                              f"{self.area_low}, {self.area_high})")
        if self.min_area < 0 or self.closing < 0 or self.area_radius < 0:
            raise DetectError("min_area, closing and area radius must not be negative")
        if self.auto_radius < 1 or not self.auto_ratio > 0:
            raise DetectError("auto_radius must be at least 1 and auto_ratio positive")

    @property
    def uses_areas(self) -> bool:
        return self.area_radius > 0 and self.polarity != "dark"

    @property
    def halo(self) -> int:
        """Context pixels a window needs on each side for its core to come out as in a
        whole-image run: the filters' support (4 sigma; the white top-hat's opening, 2 x
        area_radius; the polarity statistic's top-hat), the closing, and the minimum area (a
        component that reaches the core and leaves the window has at least ``halo`` pixels in
        it, so it is never dropped as small). Hysteresis links longer than the halo (a faint
        stretch whose strong seed lies outside the window) are the one thing a window can
        miss."""
        support = max(int(math.ceil(4 * max(self.sigmas))),
                      2 * self.area_radius if self.uses_areas else 0, 2 * self.auto_radius)
        return support + self.closing + self.min_area + 1


def _tophat(grey: np.ndarray, radius: int, dark: bool) -> np.ndarray:
    """Black (``dark``) or white top-hat of ``grey`` with a disc of ``radius``: float32, how much
    darker (lighter) than its surround each pixel is, for structures narrower than the disc."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    op = cv2.MORPH_BLACKHAT if dark else cv2.MORPH_TOPHAT
    return cv2.morphologyEx(np.ascontiguousarray(grey, np.float32), op, kernel,
                            borderType=cv2.BORDER_REFLECT)


def polarity_sums(grey: np.ndarray, radius: int, keep: np.ndarray | None = None
                  ) -> tuple[float, float]:
    """(dark, light) mass of thin structures in ``grey``: the sums of the black and the white
    top-hat of ``radius`` (structures up to 2 radius + 1 px wide) over the pixels where ``keep``
    (bool, same shape; default all) is True. Sums, so that window cores add up to the whole
    image's figure."""
    dark, light = _tophat(grey, radius, True), _tophat(grey, radius, False)
    if keep is not None:
        dark, light = dark[keep], light[keep]
    return float(dark.sum(dtype=np.float64)), float(light.sum(dtype=np.float64))


def choose_polarity(dark: float, light: float, ratio: float) -> str:
    """``dark`` when the dark thin-structure mass is at least ``ratio`` times the light one
    (open cracks are thin dark lines on lighter paint), else ``light`` (flaked paint showing a
    lighter ground, white losses). A flat image (both 0) counts as dark."""
    return "dark" if dark >= ratio * light else "light"


def resolve_polarity(grey: np.ndarray, config: CrackConfig) -> str:
    """The polarity :func:`detect_cracks` uses on ``grey``: the configured one, or for ``auto``
    the one :func:`choose_polarity` picks from the image itself."""
    if config.polarity != "auto":
        return config.polarity
    return choose_polarity(*polarity_sums(grey, config.auto_radius), config.auto_ratio)


def detect_cracks(image: np.ndarray, config: CrackConfig | None = None) -> np.ndarray:
    """Thin dark/light structures (and, for light losses, lighter areas) of ``image``
    ((H, W) or (H, W, C) float in [0, 1]).

    Returns bool ``(H, W)``: polarity (auto: decided on this image) -> ridge response at several
    scales -> hysteresis (low, high) [| light areas: white top-hat -> hysteresis (area_low,
    area_high)] -> components below ``min_area`` removed -> optional closing.
    """
    from skimage.filters import apply_hysteresis_threshold

    cfg = config or CrackConfig()
    grey = to_grey(image)
    cfg = replace(cfg, polarity=resolve_polarity(grey, cfg))
    response = ridge_response(grey, cfg.sigmas, cfg.polarity)
    mask = apply_hysteresis_threshold(response, cfg.low, cfg.high)
    del response
    if cfg.uses_areas:
        mask |= apply_hysteresis_threshold(_tophat(grey, cfg.area_radius, False),
                                           cfg.area_low, cfg.area_high)
    return _close(_remove_small(mask, cfg.min_area), cfg.closing)


# --------------------------------------------------------------------------- trained


@dataclass(frozen=True)
class TrainedConfig:
    """Parameters of the ``trained`` method (features and random forest)."""

    sigma_min: float = 1.0        # scales of multiscale_basic_features
    sigma_max: float = 8.0
    num_sigma: int = 4
    ridge_sigmas: tuple[float, ...] = (1.0, 2.0, 3.0)  # dark-ridge responses added as features
    trees: int = 100
    max_depth: int | None = None
    max_samples: int = 200_000    # labelled pixels used for training at most (seeded subsample)
    n_jobs: int = 2               # bounded: the machine is shared
    seed: int = 0
    threshold: float = 0.5        # loss probability above which a pixel is loss
    min_area: int = 0             # components smaller than this (px) are dropped

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min <= self.sigma_max or self.num_sigma < 1:
            raise DetectError("feature scales must satisfy 0 < sigma_min <= sigma_max")
        if self.trees < 1 or self.max_samples < 2 or self.n_jobs == 0:
            raise DetectError("trees and max_samples must be positive, n_jobs non-zero")
        if not 0 < self.threshold < 1:
            raise DetectError("threshold must lie strictly between 0 and 1")

    @property
    def halo(self) -> int:
        """Context a window needs: the largest Gaussian's support (4 sigma) plus the derivative
        stencils taken after it."""
        return int(math.ceil(4 * max(self.sigma_max, *self.ridge_sigmas))) + 4 + \
            self.min_area // 2


def pixel_features(image: np.ndarray, config: TrainedConfig | None = None,
                   extra: FeatureFn | None = None) -> np.ndarray:
    """Per-pixel features of ``image`` ((H, W) or (H, W, C) float in [0, 1]): float32 (H, W, F).

    multiscale_basic_features (intensity, edges, texture at ``num_sigma`` scales) on every band,
    the dark-ridge response at each ``ridge_sigmas`` scale of the grey image, and ``extra(image)``
    when given.
    """
    from skimage.feature import multiscale_basic_features

    cfg = config or TrainedConfig()
    image = np.asarray(image, dtype=np.float32)
    parts = [multiscale_basic_features(
        image, channel_axis=-1 if image.ndim == 3 else None, sigma_min=cfg.sigma_min,
        sigma_max=cfg.sigma_max, num_sigma=cfg.num_sigma).astype(np.float32, copy=False)]
    grey = to_grey(image)
    parts += [ridge_response(grey, (s,), "dark")[:, :, None] for s in cfg.ridge_sigmas]
    if extra is not None:
        more = np.asarray(extra(image), dtype=np.float32)
        if more.ndim == 2:
            more = more[:, :, None]
        if more.shape[:2] != grey.shape:
            raise DetectError(f"extra features are {more.shape[:2]}, image is {grey.shape}")
        parts.append(more)
    return np.concatenate(parts, axis=2)


def scribble_labels(scribbles: np.ndarray) -> np.ndarray:
    """Scribble image -> uint8 labels (H, W): 0 = not labelled, 1 (LOSS), 2 (PAINT).

    Single band: the values 1 = loss and 2 = paint; every other value is unlabelled. Three or
    four bands (RGB[A], uint8 or uint16): red strokes (red at least half the range, green and
    blue below a quarter) are loss; green or blue strokes (that band at least half the range,
    red below a quarter) are paint; pixels with alpha 0 and everything else are unlabelled.
    """
    s = np.asarray(scribbles)
    if s.ndim == 3 and s.shape[2] == 1:
        s = s[:, :, 0]
    if s.ndim == 2:
        labels = np.zeros(s.shape, np.uint8)
        labels[s == LOSS] = LOSS
        labels[s == PAINT] = PAINT
        return labels
    if s.ndim != 3 or s.shape[2] not in (3, 4):
        raise DetectError(f"scribbles must have 1, 3 or 4 bands, got shape {s.shape}")
    top = float(np.iinfo(s.dtype).max) if np.issubdtype(s.dtype, np.integer) else 1.0
    r, g, b = (s[:, :, i].astype(np.float32) / top for i in range(3))
    high, low = 0.5, 0.25
    labels = np.zeros(s.shape[:2], np.uint8)
    labels[(r >= high) & (g < low) & (b < low)] = LOSS
    labels[((g >= high) | (b >= high)) & (r < low)] = PAINT
    if s.shape[2] == 4:
        labels[s[:, :, 3] == 0] = 0
    return labels


@dataclass
class PixelClassifier:
    """A trained loss/paint pixel classifier: the forest and how its features were made."""

    model: Any                    # sklearn RandomForestClassifier
    config: TrainedConfig
    n_features: int
    extra: str | None = None      # name of the extra feature set (e.g. "ir:v32"), or None
    info: dict = field(default_factory=dict)


def train_classifier(features: np.ndarray, labels: np.ndarray,
                     config: TrainedConfig | None = None, extra: str | None = None
                     ) -> PixelClassifier:
    """Fit a random forest on the labelled pixels.

    features: (H, W, F) float32 (:func:`pixel_features`); labels: (H, W) uint8 from
    :func:`scribble_labels` (0 = unlabelled). Raises :class:`DetectError` unless both classes
    are present.
    """
    from sklearn.ensemble import RandomForestClassifier

    cfg = config or TrainedConfig()
    if features.shape[:2] != labels.shape:
        raise DetectError(f"scribbles are {labels.shape[1]}x{labels.shape[0]} pixels but the "
                          f"image is {features.shape[1]}x{features.shape[0]}")
    n_loss, n_paint = int((labels == LOSS).sum()), int((labels == PAINT).sum())
    if n_loss == 0 or n_paint == 0:
        raise DetectError(f"the scribbles must mark both classes: {n_loss} loss pixels (red, or "
                          f"value 1) and {n_paint} paint pixels (green/blue, or value 2)")
    idx = np.flatnonzero(labels)
    if idx.size > cfg.max_samples:
        idx = np.sort(np.random.default_rng(cfg.seed).choice(idx, cfg.max_samples,
                                                              replace=False))
    flat = features.reshape(-1, features.shape[2])
    model = RandomForestClassifier(n_estimators=cfg.trees, max_depth=cfg.max_depth,
                                   n_jobs=cfg.n_jobs, random_state=cfg.seed)
    model.fit(flat[idx], labels.reshape(-1)[idx])
    return PixelClassifier(model=model, config=cfg, n_features=features.shape[2], extra=extra,
                           info={"loss_pixels": n_loss, "paint_pixels": n_paint,
                                 "trained_on": int(idx.size)})


def loss_probability(classifier: PixelClassifier, features: np.ndarray) -> np.ndarray:
    """Probability of loss per pixel: float32 (H, W)."""
    if features.shape[2] != classifier.n_features:
        raise DetectError(f"the model expects {classifier.n_features} features per pixel but "
                          f"got {features.shape[2]} (trained with extra features "
                          f"{classifier.extra or 'none'}?)")
    flat = features.reshape(-1, features.shape[2])
    column = list(classifier.model.classes_).index(LOSS)
    return classifier.model.predict_proba(flat)[:, column].astype(np.float32).reshape(
        features.shape[:2])


def predict_mask(classifier: PixelClassifier, features: np.ndarray) -> np.ndarray:
    """Loss mask bool (H, W): probability above the threshold, small components removed."""
    cfg = classifier.config
    return _remove_small(loss_probability(classifier, features) > cfg.threshold, cfg.min_area)


def save_classifier(classifier: PixelClassifier, path: str | Path) -> bytes:
    """Serialise ``classifier`` (pickle, with format and version fields); returns the bytes
    (the caller writes them atomically). A model file is code: load only files you trust."""
    import sklearn

    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION,
               "sklearn": sklearn.__version__, "config": asdict(classifier.config),
               "n_features": classifier.n_features, "extra": classifier.extra,
               "info": classifier.info, "model": classifier.model}
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def load_classifier(path: str | Path) -> PixelClassifier:
    """Read a model written by :func:`save_classifier`. Unpickling runs code from the file:
    only load model files you trust. Raises :class:`DetectError` for a missing, corrupt or
    foreign file, another format version, or another scikit-learn version."""
    import sklearn

    path = Path(path)
    if not path.is_file():
        raise DetectError(f"model file {path} does not exist")
    try:
        with path.open("rb") as f:
            payload = pickle.load(f)
    except Exception as exc:   # noqa: BLE001 - any unpickling failure means "not our model"
        raise DetectError(f"cannot read model {path}: not an inpaint detect model "
                          f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise DetectError(f"cannot read model {path}: not an inpaint detect model")
    if payload.get("version") != MODEL_VERSION:
        raise DetectError(f"model {path} has format version {payload.get('version')}; this "
                          f"inpaint reads version {MODEL_VERSION}: retrain it")
    if payload.get("sklearn") != sklearn.__version__:
        raise DetectError(f"model {path} was saved with scikit-learn {payload.get('sklearn')}, "
                          f"this is {sklearn.__version__}: retrain it")
    cfg = dict(payload["config"])
    cfg["ridge_sigmas"] = tuple(cfg["ridge_sigmas"])
    return PixelClassifier(model=payload["model"], config=TrainedConfig(**cfg),
                           n_features=int(payload["n_features"]), extra=payload.get("extra"),
                           info=dict(payload.get("info", {})))
