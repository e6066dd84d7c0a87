"""JSON run reports, written atomically."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from descriptor.checkpoint import atomic_write_bytes

from .errors import InpaintError


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_report(path: str | Path, report: dict) -> None:
    text = json.dumps(_jsonable(report), indent=2, sort_keys=False)
    try:
        atomic_write_bytes(Path(path), (text + "\n").encode())
    except OSError as exc:   # disk full, folder gone...: one clear line, nothing left behind
        raise InpaintError(f"cannot write {path}: {exc.strerror or exc}") from None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("inpaint", "torch", "numpy", "faiss-cpu", "rasterio", "scikit-image"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
