"""Preview montages (input | mask | result) as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..dtypes import from_float
from ..errors import RasterError
from .write import _remove, _reserve_temp

_PREVIEW_GAP = 8


def _as_rgb(name: str, image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[:2] != shape or image.shape[2] not in (1, 3):
        raise RasterError(f"preview: {name} must be (H, W, 3) or (H, W, 1) with (H, W) = "
                          f"{shape}, got {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0)


def write_preview(path: str | os.PathLike, image: np.ndarray, mask: np.ndarray,
                  result: np.ndarray, *, max_side: int = 1600) -> None:
    """Write a PNG montage ``input | mask in red over the input | result``.

    ``image`` and ``result`` are float ``(H, W, 3)`` (or ``(H, W, 1)`` / ``(H, W)`` grey) in
    [0, 1]; ``mask`` is ``(H, W)`` bool (True = missing). The three panels are downscaled with
    ``cv2.INTER_AREA`` (never upscaled) so that the montage, with 8 px white gaps, is at most
    ``max_side`` pixels on its longest side. A masked pixel stays visible after downscaling
    (a downscaled pixel is tinted if any of its source pixels is masked). Written atomically,
    but previews are disposable: an existing file is overwritten without ``force``.
    """
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise RasterError(f"preview: mask must be (H, W), got shape {mask.shape}")
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    image = _as_rgb("image", image, shape)
    result = _as_rgb("result", result, shape)
    if max_side < 2 * _PREVIEW_GAP + 3:
        raise RasterError(f"preview: max_side must be at least {2 * _PREVIEW_GAP + 3}")
    if path.suffix.lower() != ".png":
        raise RasterError(f"preview {path} must be a .png file")
    folder = path.parent
    if not folder.is_dir():
        raise RasterError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RasterError(f"output folder {folder} is not writable")

    height, width = shape
    scale = min(1.0, (max_side - 2 * _PREVIEW_GAP) / (3 * width), max_side / height)
    w = max(1, min(round(width * scale), (max_side - 2 * _PREVIEW_GAP) // 3))
    h = max(1, min(round(height * scale), max_side))

    def shrink(a: np.ndarray) -> np.ndarray:
        if (h, w) == a.shape[:2]:
            return a
        return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)

    small_image, small_result = shrink(image), shrink(result)
    small_mask = shrink(mask.astype(np.float32)) > 0
    red = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    overlay = small_image.copy()
    overlay[small_mask] = 0.5 * overlay[small_mask] + 0.5 * red

    montage = np.ones((h, 3 * w + 2 * _PREVIEW_GAP, 3), dtype=np.float32)
    for i, panel in enumerate((small_image, overlay, small_result)):
        x = i * (w + _PREVIEW_GAP)
        montage[:, x: x + w] = panel
    rgb = from_float(montage, np.uint8)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RasterError(f"cannot encode preview {path}")
    tmp = _reserve_temp(path)
    try:
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        raise RasterError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        _remove(tmp)
