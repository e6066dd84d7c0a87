"""Raster I/O: read a panel with its profile, write results atomically with the same profile.

Conventions (modelled on rasterio and its ``rio`` CLI):

- Pixels are numpy arrays of shape ``(H, W, B)`` (pixel-interleaved, C-contiguous) in the file's
  native dtype. Supported dtypes: ``uint8``, ``uint16`` and ``float32`` (float32 values are taken
  to lie in [0, 1]). Supported band layouts: 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGB + alpha).
  The alpha band, if any, is always the last band; it is detected from the colour interpretation
  or, for 2- and 4-band files without one (e.g. a TIFF with an unspecified extra sample), by
  convention. Palette (indexed colour) images are expanded on reading to grey (grey palettes),
  RGB or RGB + alpha (palettes with transparency); the palette itself is not written back.
- :func:`to_float` / :func:`from_float` convert between the native dtype and float32 in [0, 1] by
  the dtype's range (uint8 / 255, uint16 / 65535); the round trip is exact.
- Outputs are written atomically: a hidden temporary file in the output folder
  (``.NAME.XXXXXXXX.tmp.EXT``), renamed over the output only once GDAL has closed it without error.
  On any error or interruption the temporary file is removed and no output appears. An existing
  output is never replaced unless ``force=True``; the input of a :class:`Raster` is never replaced
  or modified, even with ``force``.
- The output driver follows the output file's extension (:data:`DRIVERS_BY_EXTENSION`). dtype and
  band count are always kept; a target format that cannot hold them is refused with one clear line.
- User-caused problems raise :class:`RasterError` (a ``ValueError``, via
  :class:`inpaint.errors.InpaintError`) or :class:`OutputExistsError` with a one-line message.

What is preserved when writing ``like`` a source raster:

- GeoTIFF output: dtype, band count, nodata, CRS and transform, tiling and block size (or rows per
  strip), compression, predictor, NBITS, interleave, photometric (RGB / MINISBLACK, YCbCr for
  JPEG-compressed RGB), alpha, BigTIFF (kept when the input is BigTIFF; otherwise
  ``BIGTIFF=IF_SAFER``, or forced when the uncompressed output exceeds 3.5 GB), default-namespace
  tags (including ``TIFFTAG_XRESOLUTION`` / ``YRESOLUTION`` / ``RESOLUTIONUNIT``, software, artist,
  ...), the ``COLOR_PROFILE`` namespace (ICC profile, primaries, white point, transfer function),
  band descriptions and band tags (stale ``STATISTICS_*`` band tags are dropped).
- PNG output: dtype, bands, nodata (tRNS), ICC profile and colour primaries, default-namespace tags
  as PNG text chunks (resolution tags therefore survive a PNG round trip through this module, but
  are written as text, not as a ``pHYs`` chunk: GDAL neither reads nor writes ``pHYs``).
- JPEG output (uint8, 1 or 3 bands, no alpha; written through an in-memory dataset and GDAL's
  CreateCopy because JPEG is copy-only; ``QUALITY=95`` unless the profile says otherwise): ICC
  profile and, from a JPEG source, its EXIF tags. BMP and PNM: pixels only.
- Never preserved: XMP packets and other ``xml:`` namespaces (rasterio cannot write them; they are
  still available in :attr:`Raster.tags`), GCPs and RPCs, GDAL mask bands, overviews (stale after
  inpainting anyway), a COG's layout (a COG input becomes a tiled GeoTIFF), palettes, and
  georeferencing in non-GeoTIFF outputs. GDAL ``.aux.xml`` side-car files are never written.

Windowed access (:class:`RasterReader`, :func:`read_window`, :class:`RasterWriter`) lets a panel
larger than RAM be processed window by window. Only drivers that support random writes (GeoTIFF,
BMP, PNM) write windows straight to disk; PNG and JPEG outputs are buffered in memory until the
writer closes.

The pseudo-path ``skimage:NAME`` (e.g. ``skimage:astronaut``) loads an image shipped with
scikit-image (see :data:`SKIMAGE_IMAGES`), with a PNG-like profile; it needs no network.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window as _RioWindow

from .errors import InpaintError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DRIVERS_BY_EXTENSION",
    "SKIMAGE_IMAGES",
    "OutputExistsError",
    "Raster",
    "RasterError",
    "RasterMeta",
    "RasterReader",
    "RasterWriter",
    "Window",
    "from_float",
    "raster_info",
    "read_raster",
    "read_window",
    "to_float",
    "write_preview",
    "write_raster",
]


class RasterError(InpaintError):
    """A raster cannot be read or written as asked (missing, corrupt, unsupported, unwritable)."""


class OutputExistsError(RasterError):
    """The output file exists and overwriting was not allowed."""


Window = tuple[int, int, int, int]
"""A window ``(row0, col0, row1, col1)``: rows ``row0:row1`` and columns ``col0:col1``."""

SUPPORTED_DTYPES = ("uint8", "uint16", "float32")

SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page",
    "retina", "rocket", "text",
)
"""Images shipped inside scikit-image (no download) accepted as ``skimage:NAME``."""

DRIVERS_BY_EXTENSION = MappingProxyType({
    ".tif": "GTiff", ".tiff": "GTiff",
    ".png": "PNG",
    ".jpg": "JPEG", ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".ppm": "PNM", ".pgm": "PNM", ".pnm": "PNM",
})
"""Output driver chosen from the output file's extension (lower-cased)."""

# What each output driver can hold: dtypes and band counts.
_DRIVER_DTYPES = MappingProxyType({
    "GTiff": ("uint8", "uint16", "float32"),
    "PNG": ("uint8", "uint16"),
    "JPEG": ("uint8",),
    "BMP": ("uint8",),
    "PNM": ("uint8", "uint16"),
})
_DRIVER_BANDS = MappingProxyType({
    "GTiff": (1, 2, 3, 4),
    "PNG": (1, 2, 3, 4),
    "JPEG": (1, 3),
    "BMP": (1, 3),
    "PNM": (1, 3),
})
# COLOR_PROFILE keys each driver accepts as creation options.
_COLOR_PROFILE_KEYS = MappingProxyType({
    "GTiff": ("SOURCE_ICC_PROFILE", "SOURCE_PRIMARIES_RED", "SOURCE_PRIMARIES_GREEN",
              "SOURCE_PRIMARIES_BLUE", "SOURCE_WHITEPOINT", "TIFFTAG_TRANSFERFUNCTION_RED",
              "TIFFTAG_TRANSFERFUNCTION_GREEN", "TIFFTAG_TRANSFERFUNCTION_BLUE",
              "TIFFTAG_TRANSFERRANGE_BLACK", "TIFFTAG_TRANSFERRANGE_WHITE"),
    "PNG": ("SOURCE_ICC_PROFILE", "SOURCE_ICC_PROFILE_NAME", "SOURCE_PRIMARIES_RED",
            "SOURCE_PRIMARIES_GREEN", "SOURCE_PRIMARIES_BLUE", "SOURCE_WHITEPOINT", "PNG_GAMMA"),
    "JPEG": ("SOURCE_ICC_PROFILE",),
})
_BIGTIFF_BYTES = 3.5e9  # uncompressed output size above which BigTIFF is forced
_WRITE_STRIP_BYTES = 64 * 2**20  # write_raster hands GDAL strips of about this size
_READ_OPTIONS = MappingProxyType({
    # GDAL's whole-image PNG fast path silently returns zeros for a truncated file.
    "GDAL_PNG_WHOLE_IMAGE_OPTIM": "NO",
    # libjpeg only warns about truncated/corrupt data; make that an error.
    "GDAL_ERROR_ON_LIBJPEG_WARNING": "TRUE",
})
#: GDAL block-cache bound while writing. GDAL's default (5 % of RAM) lets written blocks of a
#: streamed panel pile up in memory: a 64 MP 16-bit RGB copy grew the process by 492 MiB with
#: it, 322 MiB bounded, same time and file size (benchmarks/write_cache.py).
WRITE_CACHE_BYTES = 128 * 2**20
_WRITE_OPTIONS = MappingProxyType({
    "GDAL_PAM_ENABLED": "NO",   # no .aux.xml side-cars
    "GDAL_CACHEMAX": WRITE_CACHE_BYTES,
})
_GDAL_ERRORS = (RasterioError, CPLE_BaseError)
_SKIPPED_NAMESPACES = ("DERIVED_SUBDATASETS",)
_UNSUPPORTED_COLOURS = MappingProxyType({
    ColorInterp.cyan: "CMYK", ColorInterp.magenta: "CMYK", ColorInterp.yellow: "CMYK",
    ColorInterp.black: "CMYK", ColorInterp.Y: "YCbCr", ColorInterp.Cb: "YCbCr",
    ColorInterp.Cr: "YCbCr", ColorInterp.hue: "HLS", ColorInterp.saturation: "HLS",
    ColorInterp.lightness: "HLS",
})
_PREVIEW_GAP = 8


# ----------------------------------------------------------------------------------------------
# Data classes


@dataclass
class RasterMeta:
    """A raster's metadata, without pixels (what :func:`raster_info` returns).

    ``profile`` is a rasterio profile (driver, dtype, count, height, width, nodata, crs,
    transform, tiled, blockxsize, blockysize, compress, interleave, and when known predictor,
    nbits, photometric, bigtiff) describing the pixels as this module returns them (palette
    images already expanded). ``tags`` maps a metadata namespace ('' is the default one, then
    e.g. 'IMAGE_STRUCTURE', 'COLOR_PROFILE', 'xml:XMP', 'EXIF') to its tags. ``colorinterp``
    has one ``rasterio.enums.ColorInterp`` per band; ``alpha_band`` is the index of the alpha band
    (always the last band) or None. ``descriptions`` and ``band_tags`` have one entry per band.
    """

    profile: dict[str, Any]
    tags: dict[str, dict[str, str]]
    colorinterp: tuple[ColorInterp, ...]
    alpha_band: int | None
    source: str
    descriptions: tuple[str | None, ...] = ()
    band_tags: tuple[dict[str, str], ...] = ()

    @property
    def height(self) -> int:
        return int(self.profile["height"])

    @property
    def width(self) -> int:
        return int(self.profile["width"])

    @property
    def bands(self) -> int:
        return int(self.profile["count"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.profile["dtype"])


@dataclass
class Raster:
    """A raster's pixels with everything needed to write a result back in the same format.

    ``data`` is ``(H, W, B)`` in the file's native dtype (uint8, uint16 or float32), C-contiguous.
    The other fields are as in :class:`RasterMeta`; ``profile``'s height, width, count and dtype
    agree with ``data``.
    """

    data: np.ndarray
    profile: dict[str, Any]
    tags: dict[str, dict[str, str]]
    colorinterp: tuple[ColorInterp, ...]
    alpha_band: int | None
    source: str
    descriptions: tuple[str | None, ...] = ()
    band_tags: tuple[dict[str, str], ...] = ()

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def bands(self) -> int:
        return int(self.data.shape[2])

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def colour(self) -> np.ndarray:
        """The colour bands, ``(H, W, 1)`` or ``(H, W, 3)``: a view of ``data`` without alpha."""
        if self.alpha_band is None:
            return self.data
        return self.data[..., : self.alpha_band]

    @property
    def alpha(self) -> np.ndarray | None:
        """The alpha band ``(H, W)`` (a view, native dtype), or None."""
        if self.alpha_band is None:
            return None
        return self.data[..., self.alpha_band]

    @property
    def meta(self) -> RasterMeta:
        """The metadata part of this raster."""
        return RasterMeta(self.profile, self.tags, self.colorinterp, self.alpha_band,
                          self.source, self.descriptions, self.band_tags)

    @classmethod
    def from_meta(cls, data: np.ndarray, meta: RasterMeta) -> Raster:
        """Pair pixels ``(H, W, B)`` with metadata (profile height/width follow ``data``)."""
        profile = {**meta.profile, "height": data.shape[0], "width": data.shape[1]}
        return cls(data, profile, meta.tags, meta.colorinterp, meta.alpha_band, meta.source,
                   meta.descriptions, meta.band_tags)


Like = Raster | RasterMeta | Mapping[str, Any]
"""What a writer copies the format from: a Raster, a RasterMeta or a rasterio profile."""


# ----------------------------------------------------------------------------------------------
# Small helpers


@contextmanager
def _gdal(options: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run GDAL calls with ``options`` set and rasterio's not-georeferenced warning silenced.

    Scoped to the block (``warnings.catch_warnings`` + ``rasterio.Env``); nothing global changes:
    GDAL's block-cache size, which rasterio.Env sets process-wide, is put back on exit.
    """
    options = dict(options or {})
    cache = options.pop("GDAL_CACHEMAX", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(**options), _cache_max(cache):
            yield


@contextmanager
def _cache_max(limit: int | None) -> Iterator[None]:
    """GDAL's block-cache size set to ``limit`` bytes inside the block (``None``: unchanged)."""
    if limit is None:
        yield
        return
    previous = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", limit)
    try:
        yield
    finally:
        set_gdal_config("GDAL_CACHEMAX", previous)


def _gdal_message(exc: BaseException) -> str:
    """The most specific GDAL message of a rasterio exception, on one line."""
    cause = exc.__cause__ or exc.__context__
    text = str(cause) if isinstance(cause, _GDAL_ERRORS) and str(cause) else str(exc)
    return " ".join(text.split())


def _is_skimage(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and path.startswith("skimage:")


def _colour_layout(colorinterp: tuple[ColorInterp, ...], alpha_band: int | None
                   ) -> tuple[ColorInterp, ...]:
    """Canonical colour interpretation for ``len(colorinterp)`` bands with alpha last (or not)."""
    count = len(colorinterp)
    colour = count - (alpha_band is not None)
    names = (ColorInterp.gray,) if colour == 1 else (ColorInterp.red, ColorInterp.green,
                                                      ColorInterp.blue)
    return names + ((ColorInterp.alpha,) if alpha_band is not None else ())


def _check_layout(where: str, dtypes: tuple[str, ...], colorinterp: tuple[ColorInterp, ...]
                  ) -> int | None:
    """Validate dtype and band layout; return the alpha band index (last band) or None."""
    count = len(dtypes)
    if len(set(dtypes)) > 1:
        raise RasterError(f"{where}: bands of different data types ({', '.join(dtypes)}) "
                          "are not supported")
    dtype = dtypes[0] if dtypes else "none"
    if dtype not in SUPPORTED_DTYPES:
        raise RasterError(f"{where}: unsupported data type {dtype}: expected uint8 or uint16 "
                          "(or float32 in [0,1])")
    if count not in (1, 2, 3, 4):
        raise RasterError(f"{where}: unsupported band count {count}: expected 1 (grey), "
                          "2 (grey + alpha), 3 (RGB) or 4 (RGB + alpha)")
    for ci in colorinterp:
        if ci in _UNSUPPORTED_COLOURS:
            raise RasterError(f"{where}: {_UNSUPPORTED_COLOURS[ci]} images are not supported: "
                              "convert to RGB first")
    if count in (1, 3):
        return None
    alphas = [i for i, ci in enumerate(colorinterp) if ci == ColorInterp.alpha]
    if alphas and alphas != [count - 1]:
        raise RasterError(f"{where}: unsupported band layout "
                          f"({', '.join(ci.name for ci in colorinterp)}): the alpha band must "
                          "be the last band")
    last = colorinterp[-1] if colorinterp else ColorInterp.undefined
    if last not in (ColorInterp.alpha, ColorInterp.undefined):
        raise RasterError(f"{where}: unsupported band layout "
                          f"({', '.join(ci.name for ci in colorinterp)}): expected grey + alpha "
                          "or RGB + alpha")
    return count - 1


def _palette_lut(colormap: Mapping[int, tuple[int, ...]]) -> np.ndarray:
    """A ``(256, B)`` uint8 lookup table from a GDAL colour map; B = 1 (grey), 3 or 4."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, 3] = 255
    for index, rgba in colormap.items():
        if 0 <= index < 256:
            lut[index, : len(rgba)] = rgba
    if (lut[:, 3] < 255).any():
        return lut
    if (lut[:, 0] == lut[:, 1]).all() and (lut[:, 1] == lut[:, 2]).all():
        return lut[:, :1]
    return lut[:, :3]


def _is_bigtiff(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"II+\x00", b"MM\x00+")
    except OSError:
        return False


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
        if "NBITS" in structure and lut is None:
            profile["nbits"] = int(structure["NBITS"])
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


def _check_window(window: Window, height: int, width: int) -> Window:
    try:
        row0, col0, row1, col1 = (int(v) for v in window)
    except (TypeError, ValueError):
        raise RasterError(f"invalid window {window!r}: expected (row0, col0, row1, col1)") from None
    if not (0 <= row0 < row1 <= height and 0 <= col0 < col1 <= width):
        raise RasterError(f"window (row0={row0}, col0={col0}, row1={row1}, col1={col1}) is "
                          f"empty or outside the {height} x {width} raster")
    return row0, col0, row1, col1


# ----------------------------------------------------------------------------------------------
# Reading


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

    def read(self, window: Window | None = None) -> np.ndarray:
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


def read_window(path: str | os.PathLike, window: Window) -> np.ndarray:
    """Pixels of ``window = (row0, col0, row1, col1)`` of a raster: ``(h, w, B)``, native dtype.

    Opens and closes the file on each call; keep a :class:`RasterReader` open for many windows.
    """
    with RasterReader(path) as reader:
        return reader.read(window)


# ----------------------------------------------------------------------------------------------
# Float conversion


def to_float(data: np.ndarray) -> np.ndarray:
    """Native pixels (any shape) to float32 in [0, 1] by the dtype's range.

    uint8 -> /255, uint16 -> /65535; float32 is clipped to [0, 1] (NaN -> 0). Always a new array.
    """
    data = np.asarray(data)
    if data.dtype == np.uint8 or data.dtype == np.uint16:
        out = data.astype(np.float32)
        out /= np.float32(np.iinfo(data.dtype).max)
        return out
    if data.dtype == np.float32:
        out = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0, out=out)
    raise RasterError(f"unsupported data type {data.dtype}: expected uint8 or uint16 "
                      "(or float32 in [0,1])")


def from_float(values: np.ndarray, dtype: np.dtype | str | type) -> np.ndarray:
    """Float values in [0, 1] (any shape) to ``dtype``: the inverse of :func:`to_float`.

    Values are clipped to [0, 1] (NaN -> 0), scaled by the dtype's maximum and rounded to the
    nearest integer (uint8, uint16); float32 is returned clipped. Always a new array.
    """
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise RasterError(f"from_float expects floating-point values, got {values.dtype}")
    if dtype.name not in SUPPORTED_DTYPES:
        raise RasterError(f"unsupported data type {dtype}: expected uint8 or uint16 "
                          "(or float32 in [0,1])")
    out = np.clip(values, 0.0, 1.0)
    np.nan_to_num(out, copy=False, nan=0.0)
    if dtype == np.float32:
        return out.astype(np.float32, copy=False)
    out *= np.iinfo(dtype).max
    np.rint(out, out=out)
    return out.astype(dtype)


# ----------------------------------------------------------------------------------------------
# Writing


def _as_meta(like: Like) -> RasterMeta:
    if isinstance(like, RasterMeta):
        return like
    if isinstance(like, Raster):
        return like.meta
    if isinstance(like, Mapping):
        profile = dict(like)
        count = int(profile.get("count", 1))
        alpha = count - 1 if count in (2, 4) else None
        colorinterp = _colour_layout((ColorInterp.undefined,) * count, alpha)
        return RasterMeta(profile, {"": {}}, colorinterp, alpha, "")
    raise TypeError(f"like must be a Raster, RasterMeta or profile dict, not {type(like)}")


def _output_driver(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in DRIVERS_BY_EXTENSION:
        known = ", ".join(sorted(DRIVERS_BY_EXTENSION))
        raise RasterError(f"cannot tell the output format of {path} from its extension "
                          f"'{ext}': use one of {known}")
    return DRIVERS_BY_EXTENSION[ext]


def _check_output_path(path: Path, force: bool, source: str = "") -> None:
    """Refuse outputs whose folder is missing/unwritable, that exist (without force), that are
    folders, or that are the input file itself."""
    folder = path.parent
    if not folder.is_dir():
        raise RasterError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RasterError(f"output folder {folder} is not writable")
    if path.is_dir():
        raise RasterError(f"output {path} is a folder")
    if source and not _is_skimage(source) and path.exists() and os.path.exists(source) \
            and os.path.samefile(path, source):
        raise RasterError(f"output {path} is the input file; choose another output name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite")


def _reserve_temp(path: Path) -> Path:
    """Create an empty hidden temporary file next to ``path`` (mode 0666 & ~umask)."""
    while True:
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RasterError(f"cannot write in {path.parent}: {exc.strerror}") from exc
        os.close(fd)
        return tmp


def _commit(tmp: Path, path: Path, force: bool) -> None:
    """Move the finished temporary file to ``path``; without force never replace a file that
    appeared meanwhile (hard link, which fails on an existing name, where the filesystem has
    them)."""
    try:
        if force:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(f"{path} exists; pass --force to overwrite") from None
        except OSError:  # no hard links on this filesystem
            if path.exists():
                raise OutputExistsError(f"{path} exists; pass --force to overwrite") from None
            os.replace(tmp, path)
            return
        os.unlink(tmp)
    except OutputExistsError:
        raise
    except OSError as exc:
        raise RasterError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _creation_profile(meta: RasterMeta, driver: str, height: int, width: int
                      ) -> dict[str, Any]:
    """The rasterio open() keywords (profile + creation options) for writing ``meta`` with
    ``driver`` at ``height`` x ``width``."""
    src = meta.profile
    count, dtype = meta.bands, meta.dtype.name
    profile: dict[str, Any] = {"driver": driver, "dtype": dtype, "count": count,
                               "height": height, "width": width}
    if src.get("nodata") is not None and driver in ("GTiff", "PNG"):
        profile["nodata"] = src["nodata"]
    colour = count - (meta.alpha_band is not None)
    if driver == "GTiff":
        transform = src.get("transform")
        if src.get("crs") is not None:
            profile["crs"] = src["crs"]
        if transform is not None and (src.get("crs") is not None
                                      or transform != Affine.identity()):
            profile["transform"] = transform
        if src.get("tiled") and src.get("blockxsize") and src.get("blockysize"):
            profile.update(tiled=True, blockxsize=int(src["blockxsize"]),
                           blockysize=int(src["blockysize"]))
        elif src.get("driver") == "GTiff" and src.get("blockysize"):
            profile["blockysize"] = max(1, min(int(src["blockysize"]), height))
        compress = str(src.get("compress") or "").lower()
        if compress and compress != "none":
            profile["compress"] = compress
            if src.get("predictor"):
                profile["predictor"] = int(src["predictor"])
            profile["num_threads"] = "ALL_CPUS"
        if count > 1 and src.get("interleave") in ("pixel", "band"):
            profile["interleave"] = src["interleave"]
        if src.get("nbits"):
            profile["nbits"] = int(src["nbits"])
        photometric = str(src.get("photometric") or "").lower()
        if photometric == "ycbcr" and compress == "jpeg" and colour == 3 and dtype == "uint8":
            profile["photometric"] = "YCBCR"
        else:
            profile["photometric"] = "RGB" if colour == 3 else "MINISBLACK"
        if meta.alpha_band is not None:
            profile["alpha"] = "YES"
        raw_bytes = height * width * count * meta.dtype.itemsize
        big = raw_bytes > _BIGTIFF_BYTES or str(src.get("bigtiff", "")).upper() == "YES"
        profile["bigtiff"] = "YES" if big else "IF_SAFER"
    elif driver == "PNG":
        if meta.tags.get(""):
            profile["write_metadata_as_text"] = "YES"
    elif driver == "JPEG":
        profile["quality"] = int(src.get("quality", 95))
    colour_profile = meta.tags.get("COLOR_PROFILE", {})
    for key in _COLOR_PROFILE_KEYS.get(driver, ()):
        if colour_profile.get(key):
            profile[key.lower()] = colour_profile[key]
    return profile


def _check_driver_can_hold(path: Path, driver: str, dtype: str, count: int,
                           alpha: bool) -> None:
    if dtype not in _DRIVER_DTYPES[driver]:
        hint = "write a .tif" if dtype == "float32" else "write a .tif or .png"
        raise RasterError(f"cannot write {path}: {driver} cannot hold {dtype} data; {hint}")
    if count not in _DRIVER_BANDS[driver]:
        what = "an alpha band" if alpha else f"{count} bands"
        raise RasterError(f"cannot write {path}: {driver} cannot hold {what}; "
                          "write a .tif or .png")


class RasterWriter:
    """Write a raster window by window, atomically; use as a context manager.

    ``like`` is a :class:`Raster`, :class:`RasterMeta` (e.g. from :func:`raster_info`) or a plain
    rasterio profile; its dtype, band layout, georeferencing, tags, ICC profile and structure are
    written (see the module docstring for what each format keeps). ``size = (H, W)`` overrides
    its height and width. The driver follows ``path``'s extension.

    The constructor checks the request (folder exists and is writable, output absent unless
    ``force``, output not the input, format can hold the data) so that a long computation is
    not started for nothing. ``__enter__`` creates a hidden temporary file next to ``path``;
    :meth:`write_window` writes ``(h, w, B)`` blocks of the output dtype; a successful exit
    closes the file and renames it to ``path``; an exception in the block (or a GDAL error)
    removes the temporary file and leaves no output. Windows never written hold nodata (or 0).
    """

    def __init__(self, path: str | os.PathLike, like: Like, *, force: bool = False,
                 size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.force = force
        self.meta = _as_meta(like)
        self.height, self.width = (int(size[0]), int(size[1])) if size is not None else \
            (self.meta.height, self.meta.width)
        self.bands = self.meta.bands
        self.dtype = self.meta.dtype
        _check_output_path(self.path, force, self.meta.source)
        self.driver = _output_driver(self.path)
        _check_driver_can_hold(self.path, self.driver, self.dtype.name, self.bands,
                               self.meta.alpha_band is not None)
        self.profile = _creation_profile(self.meta, self.driver, self.height, self.width)
        self._tmp: Path | None = None
        self._dst: Any = None

    def __enter__(self) -> Self:
        self._tmp = _reserve_temp(self.path)
        try:
            with _gdal(_WRITE_OPTIONS):
                self._dst = rasterio.open(self._tmp, "w", **self.profile)
                self._write_metadata(self._dst)
        except BaseException as exc:
            self._abort()
            if isinstance(exc, _GDAL_ERRORS):
                raise RasterError(f"cannot write {self.path}: {_gdal_message(exc)}") from exc
            raise
        return self

    def _write_metadata(self, dst: Any) -> None:
        """Colour interpretation, default-namespace tags, band descriptions and band tags."""
        meta = self.meta
        if self.driver in ("GTiff", "PNG"):
            dst.colorinterp = _colour_layout(meta.colorinterp, meta.alpha_band)
        default_tags = dict(meta.tags.get("", {}))
        if self.driver != "GTiff":
            default_tags.pop("AREA_OR_POINT", None)
        if self.driver in ("GTiff", "PNG") and default_tags:
            dst.update_tags(**default_tags)
        if self.driver == "GTiff":
            for b, description in enumerate(meta.descriptions[: self.bands]):
                if description:
                    dst.set_band_description(b + 1, description)
            for b, tags in enumerate(meta.band_tags[: self.bands]):
                kept = {k: v for k, v in tags.items() if not k.startswith("STATISTICS_")}
                if kept:
                    dst.update_tags(b + 1, **kept)

    def rows_per_write(self, target_bytes: int) -> int:
        """Rows of about ``target_bytes`` to hand to ``write_window`` at a time, whole blocks
        high: a block is then never left half written, so GDAL's bounded cache never flushes
        one early and rewrites it (which would grow a compressed file)."""
        block = int(self.profile.get("blockysize", 1)) if self.driver == "GTiff" else 1
        row_bytes = max(1, self.width * self.bands * self.dtype.itemsize)
        return max(block, target_bytes // row_bytes // block * block)

    def write_window(self, data: np.ndarray, window: Window) -> None:
        """Write ``data`` ``(h, w, B)`` (output dtype; ``(h, w)`` allowed for one band) into
        ``window = (row0, col0, row1, col1)``."""
        if self._dst is None:
            raise RuntimeError("RasterWriter.write_window() called outside its with-block")
        row0, col0, row1, col1 = _check_window(window, self.height, self.width)
        data = np.asarray(data)
        if data.ndim == 2 and self.bands == 1:
            data = data[:, :, None]
        expected = (row1 - row0, col1 - col0, self.bands)
        if data.shape != expected:
            raise RasterError(f"cannot write {self.path}: data of shape {data.shape} does not "
                              f"fit window {window} with {self.bands} band(s) {expected}")
        if data.dtype != self.dtype:
            raise RasterError(f"cannot write {self.path}: data type {data.dtype} does not "
                              f"match the output's {self.dtype} (convert with from_float)")
        rio_window = _RioWindow(col0, row0, col1 - col0, row1 - row0)
        try:
            with _gdal(_WRITE_OPTIONS):
                self._dst.write(data.transpose(2, 0, 1), window=rio_window)
        except _GDAL_ERRORS as exc:
            raise RasterError(f"cannot write {self.path}: {_gdal_message(exc)}") from exc

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is not None:
            self._abort()
            return
        assert self._tmp is not None
        try:
            with _gdal(_WRITE_OPTIONS):
                dst, self._dst = self._dst, None
                dst.close()  # copy-only drivers (PNG, JPEG) are encoded here
            _commit(self._tmp, self.path, self.force)
        except BaseException as error:
            self._abort()
            if isinstance(error, _GDAL_ERRORS):
                raise RasterError(f"cannot write {self.path}: {_gdal_message(error)}") \
                    from error
            if isinstance(error, OSError) and not isinstance(error, RasterError):
                raise RasterError(f"cannot write {self.path}: {error}") from error
            raise
        self._tmp = None

    def _abort(self) -> None:
        """Close quietly and remove the temporary file; never raises."""
        dst, self._dst = self._dst, None
        if dst is not None:
            # The file is being discarded: an error while closing it does not matter.
            with suppress(*_GDAL_ERRORS, OSError), _gdal(_WRITE_OPTIONS):
                dst.close()
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None


def write_raster(path: str | os.PathLike, data: np.ndarray, like: Like, *,
                 force: bool = False) -> None:
    """Write ``data`` ``(H, W, B)`` (in ``like``'s dtype and band count) to ``path`` atomically,
    with ``like``'s profile, tags and ICC profile as far as the output format allows.

    The format follows ``path``'s extension. Raises :class:`OutputExistsError` if ``path`` exists
    and not ``force``; :class:`RasterError` if the folder is missing or unwritable, ``path`` is
    the input file, the format cannot hold the data, or writing fails (no output is left behind).
    """
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise RasterError(f"cannot write {path}: expected (H, W, B) data, got shape {data.shape}")
    meta = _as_meta(like)
    if data.shape[2] != meta.bands:
        raise RasterError(f"cannot write {path}: data has {data.shape[2]} band(s) but the "
                          f"profile has {meta.bands}")
    height, width = data.shape[:2]
    with RasterWriter(path, meta, force=force, size=(height, width)) as writer:
        # Row strips keep GDAL's band-sequential copy of each strip small.
        step = writer.rows_per_write(_WRITE_STRIP_BYTES)
        for row0 in range(0, height, step):
            row1 = min(row0 + step, height)
            writer.write_window(data[row0:row1], (row0, 0, row1, width))


# ----------------------------------------------------------------------------------------------
# Preview


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
