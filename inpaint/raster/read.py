"""Reading rasters whole or window by window, with their profile; ``skimage:NAME`` pseudo-paths."""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import Affine
from rasterio.windows import Window as _RioWindow

from ..box import Box
from ..errors import RasterError
from .profile import (
    _GDAL_ERRORS,
    _SKIPPED_NAMESPACES,
    Raster,
    RasterMeta,
    _check_layout,
    _colour_layout,
    _gdal,
    _gdal_message,
    _is_bigtiff,
    _palette_lut,
)

if TYPE_CHECKING:
    from typing_extensions import Self


SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page",
    "retina", "rocket", "text",
)
"""Images shipped inside scikit-image (no download) accepted as ``skimage:NAME``."""


_READ_OPTIONS = MappingProxyType({
    # GDAL's whole-image PNG fast path silently returns zeros for a truncated file.
    "GDAL_PNG_WHOLE_IMAGE_OPTIM": "NO",
    # libjpeg only warns about truncated/corrupt data; make that an error.
    "GDAL_ERROR_ON_LIBJPEG_WARNING": "TRUE",
})


def _is_skimage(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and path.startswith("skimage:")


def _skimage_array(name: str) -> np.ndarray:
    if name not in SKIMAGE_IMAGES:
        raise RasterError(f"unknown image skimage:{name}: choose one of "
                          f"{', '.join(SKIMAGE_IMAGES)}")
    import skimage.data

    try:
        image = np.asarray(getattr(skimage.data, name)())
    except Exception as exc:  # a broken scikit-image install; report it on one line
        raise RasterError(f"cannot load skimage:{name}: {' '.join(str(exc).split())}") from exc
    if image.ndim == 2:
        image = image[:, :, None]
    return np.ascontiguousarray(image)


def _skimage_meta(name: str, image: np.ndarray) -> RasterMeta:
    height, width, count = image.shape
    colorinterp = _colour_layout((ColorInterp.undefined,) * count,
                                 count - 1 if count in (2, 4) else None)
    alpha_band = _check_layout(f"skimage:{name}", (str(image.dtype),) * count, colorinterp)
    profile = {"driver": "PNG", "dtype": str(image.dtype), "nodata": None, "width": width,
               "height": height, "count": count, "crs": None, "transform": Affine.identity(),
               "tiled": False, "interleave": "pixel"}
    return RasterMeta(profile, {"": {}}, colorinterp, alpha_band, f"skimage:{name}",
                      (None,) * count, tuple({} for _ in range(count)))


def _dataset_meta(src: Any, source: str) -> tuple[RasterMeta, np.ndarray | None]:
    """Metadata of an open rasterio dataset and, for palette images, the palette lookup table."""
    colorinterp = tuple(src.colorinterp)
    dtypes = tuple(src.dtypes)
    lut = None
    if src.count == 1 and colorinterp[0] == ColorInterp.palette:
        if dtypes[0] != "uint8":
            raise RasterError(f"{source}: {dtypes[0]} palette images are not supported")
        try:
            lut = _palette_lut(src.colormap(1))
        except ValueError:
            lut = None  # palette interpretation without a colour table: plain grey
        if lut is not None:
            dtypes = ("uint8",) * lut.shape[1]
            colorinterp = _colour_layout((ColorInterp.undefined,) * lut.shape[1],
                                         3 if lut.shape[1] == 4 else None)
    alpha_band = _check_layout(source, dtypes, colorinterp)
    colorinterp = _colour_layout(colorinterp, alpha_band)

    profile = dict(src.profile)
    profile.update(count=len(dtypes), dtype=dtypes[0])
    if lut is not None:
        profile.pop("photometric", None)
        profile["nodata"] = None
    structure = src.tags(ns="IMAGE_STRUCTURE")
    if src.driver == "GTiff":
        if "PREDICTOR" in structure:
            profile["predictor"] = int(structure["PREDICTOR"])
        # GDAL puts NBITS on the dataset or only on the bands (e.g. half-float TIFFs, read
        # as float32): either way it is the bit depth to write back
        nbits = structure.get("NBITS") or src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS")
        if nbits and lut is None:
            profile["nbits"] = int(nbits)
        if _is_bigtiff(source):
            profile["bigtiff"] = "YES"

    tags = {"": dict(src.tags())}
    for ns in src.tag_namespaces() or ():
        if ns not in _SKIPPED_NAMESPACES:
            tags[ns] = dict(src.tags(ns=ns))
    if lut is None:
        descriptions = tuple(src.descriptions)
        band_tags = tuple(dict(src.tags(b + 1)) for b in range(src.count))
    else:
        descriptions = (None,) * len(dtypes)
        band_tags = tuple({} for _ in dtypes)
    meta = RasterMeta(profile, tags, colorinterp, alpha_band, source, descriptions, band_tags)
    return meta, lut


def _check_window(window: Box, height: int, width: int) -> Box:
    try:
        row0, col0, row1, col1 = (int(v) for v in window)
    except (TypeError, ValueError):
        raise RasterError(f"invalid window {window!r}: expected (row0, col0, row1, col1)") from None
    if not (0 <= row0 < row1 <= height and 0 <= col0 < col1 <= width):
        raise RasterError(f"window (row0={row0}, col0={col0}, row1={row1}, col1={col1}) is "
                          f"empty or outside the {height} x {width} raster")
    return row0, col0, row1, col1


class RasterReader:
    """An open raster for repeated (windowed) reads; use as a context manager.

    ``with RasterReader("panel.tif") as r: r.meta; r.read((0, 0, 512, 512))``. Accepts any
    GDAL raster path or ``skimage:NAME``. Raises :class:`RasterError` for missing, unreadable,
    corrupt or unsupported files.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path) if _is_skimage(path) else os.fspath(path)
        self.meta: RasterMeta | None = None
        self._src: Any = None
        self._array: np.ndarray | None = None
        self._lut: np.ndarray | None = None

    def __enter__(self) -> Self:
        path = self.path
        if _is_skimage(path):
            name = path.split(":", 1)[1]
            self._array = _skimage_array(name)
            self.meta = _skimage_meta(name, self._array)
            return self
        if not os.path.exists(path):
            raise RasterError(f"cannot read {path}: no such file")
        if os.path.isdir(path):
            raise RasterError(f"cannot read {path}: it is a folder, not a raster file")
        if not os.access(path, os.R_OK):
            raise RasterError(f"cannot read {path}: permission denied")
        try:
            with _gdal(_READ_OPTIONS):
                self._src = rasterio.open(path)
        except _GDAL_ERRORS as exc:
            raise RasterError(f"cannot read {path}: not a recognised raster file "
                              f"(or the file is corrupt)") from exc
        try:
            with _gdal(_READ_OPTIONS):
                self.meta, self._lut = _dataset_meta(self._src, path)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def read(self, window: Box | None = None) -> np.ndarray:
        """Pixels of ``window`` (the whole raster if None): ``(h, w, B)``, native dtype."""
        meta = self.meta
        if meta is None:
            raise RuntimeError("RasterReader.read() called outside its with-block")
        row0, col0, row1, col1 = (0, 0, meta.height, meta.width) if window is None else \
            _check_window(window, meta.height, meta.width)
        if self._array is not None:
            return self._array[row0:row1, col0:col1].copy()
        h, w = row1 - row0, col1 - col0
        rio_window = _RioWindow(col0, row0, w, h)
        source_bands = 1 if self._lut is not None else meta.bands
        source_dtype = np.uint8 if self._lut is not None else meta.dtype
        try:
            out = np.empty((h, w, source_bands), dtype=source_dtype)
        except MemoryError:
            raise RasterError(f"not enough memory to read {self.path} ({h} x {w} x "
                              f"{source_bands} {np.dtype(source_dtype).name}): process it in "
                              "windows") from None
        try:
            with _gdal(_READ_OPTIONS):
                # A transposed view: GDAL writes straight into the pixel-interleaved buffer.
                self._src.read(out=out.transpose(2, 0, 1), window=rio_window)
        except _GDAL_ERRORS as exc:
            raise RasterError(f"cannot read {self.path}: the file is corrupt or truncated "
                              f"({_gdal_message(exc)})") from exc
        if self._lut is not None:
            out = self._lut[out[:, :, 0]]
        return out


def read_raster(path: str | os.PathLike) -> Raster:
    """Read a whole raster: any GDAL format (TIFF/BigTIFF/COG, PNG, JPEG, BMP, PPM...) or
    ``skimage:NAME``.

    Returns a :class:`Raster` whose ``data`` is ``(H, W, B)`` in the native dtype. Raises
    :class:`RasterError` for a missing path, a file GDAL does not recognise, a corrupt or
    truncated file, or an unsupported dtype / band layout.
    """
    with RasterReader(path) as reader:
        data = reader.read()
        assert reader.meta is not None
        return Raster.from_meta(data, reader.meta)


def raster_info(path: str | os.PathLike) -> RasterMeta:
    """Metadata of a raster without reading its pixels (validated like :func:`read_raster`,
    except that corruption inside the pixel data is only found when reading)."""
    with RasterReader(path) as reader:
        assert reader.meta is not None
        return reader.meta


def read_window(path: str | os.PathLike, window: Box) -> np.ndarray:
    """Pixels of ``window = (row0, col0, row1, col1)`` of a raster: ``(h, w, B)``, native dtype.

    Opens and closes the file on each call; keep a :class:`RasterReader` open for many windows.
    """
    with RasterReader(path) as reader:
        return reader.read(window)
