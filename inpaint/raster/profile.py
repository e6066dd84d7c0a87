"""Raster profiles: the metadata classes, what each output driver can hold, and the
translation of a source's profile into creation options (GeoTIFF, PNG, JPEG...); GDAL helpers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import Affine

from ..dtypes import SUPPORTED_DTYPES
from ..errors import RasterError

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


_GDAL_ERRORS = (RasterioError, CPLE_BaseError)


_SKIPPED_NAMESPACES = ("DERIVED_SUBDATASETS",)


_UNSUPPORTED_COLOURS = MappingProxyType({
    ColorInterp.cyan: "CMYK", ColorInterp.magenta: "CMYK", ColorInterp.yellow: "CMYK",
    ColorInterp.black: "CMYK", ColorInterp.Y: "YCbCr", ColorInterp.Cb: "YCbCr",
    ColorInterp.Cr: "YCbCr", ColorInterp.hue: "HLS", ColorInterp.saturation: "HLS",
    ColorInterp.lightness: "HLS",
})


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


@dataclass(kw_only=True)
class Raster(RasterMeta):
    """A raster's pixels with everything needed to write a result back in the same format: a
    :class:`RasterMeta` plus ``data``, ``(H, W, B)`` in the file's native dtype (uint8, uint16 or
    float32), C-contiguous. ``profile``'s height, width, count and dtype agree with ``data``;
    build one with :meth:`from_meta`."""

    data: np.ndarray

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
        return RasterMeta(**{f.name: getattr(self, f.name) for f in fields(RasterMeta)})

    @classmethod
    def from_meta(cls, data: np.ndarray, meta: RasterMeta) -> Raster:
        """Pair pixels ``(H, W, B)`` with metadata (profile height/width follow ``data``)."""
        profile = {**meta.profile, "height": data.shape[0], "width": data.shape[1]}
        shared = {f.name: getattr(meta, f.name) for f in fields(RasterMeta)}
        return cls(**{**shared, "profile": profile}, data=data)


Like = Raster | RasterMeta | Mapping[str, Any]
"""What a writer copies the format from: a Raster, a RasterMeta or a rasterio profile."""


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


def _as_meta(like: Like) -> RasterMeta:
    if isinstance(like, Raster):
        return like.meta
    if isinstance(like, RasterMeta):
        return like
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
