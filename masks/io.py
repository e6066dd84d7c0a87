"""Reading and normalising paint-loss masks.

A mask is a boolean ``(H, W)`` array, ``True`` where the painting is missing (to be inpainted).
On disk it may be any raster GDAL reads (PNG, TIFF including 1-bit TIFF, JPEG, BMP, PGM, ...).
The rules that turn pixel values into missing/known are the same for files and arrays:

* non-zero = missing, zero = known (``invert=True`` flips the result);
* several bands: missing where *any* band says missing; an alpha band (the last band of a raster
  whose colour interpretation says alpha) is ignored;
* palette (indexed) rasters are judged by the colour each index displays as, so that the rule is
  always "black = known" whatever order the palette has;
* lossy-compressed files (JPEG, lossy WebP, JPEG-compressed TIFF, ...) are thresholded at half
  the value range (``> 127`` for 8 bits) instead of non-zero, because compression noise makes
  black pixels slightly non-zero.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, Compression
from rasterio.errors import NotGeoreferencedWarning, RasterioError

__all__ = ["MaskError", "normalise_mask", "read_mask"]

# Compressions that lose information unless the file says otherwise.
_LOSSY_COMPRESSIONS = {Compression.jpeg, Compression.webp, Compression.jpeg2000}
_LOSSY_DRIVERS = {"JPEG", "WEBP", "JP2OpenJPEG", "JPEG2000", "JP2ECW", "JP2KAK", "JP2MrSID"}


class MaskError(ValueError):
    """A mask that cannot be used as given: missing, unreadable, wrong size or unusable.

    The message is one line meant for the end user (the CLI prints it as is).
    """


def normalise_mask(
    array: np.ndarray,
    *,
    invert: bool = False,
    has_alpha: bool = False,
    threshold: float | None = None,
) -> np.ndarray:
    """Turn an in-memory mask image into a boolean missing-pixel mask.

    Parameters
    ----------
    array : ndarray, shape (H, W) or (H, W, B)
        Mask values of any boolean, integer or floating dtype.
    invert : bool
        Flip the result (for masks where zero/black marks the missing area).
    has_alpha : bool
        The last band of a 3-D array is an alpha channel and is ignored. Only used when ``B >= 2``.
    threshold : float or None
        ``None`` (default): non-zero values are missing (NaN counts as non-zero). A number: values
        strictly greater than it are missing (use half the dtype range for JPEG-decoded masks).
        Boolean arrays are used as they are.

    Returns
    -------
    ndarray of bool, shape (H, W)
        ``True`` where the pixel is missing. Always a new array.

    Raises
    ------
    MaskError
        Wrong number of dimensions, an empty array or an unsupported dtype.
    """
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise MaskError(
            f"mask must be a 2-D (H, W) or 3-D (H, W, bands) array, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0 or (arr.ndim == 3 and arr.shape[2] == 0):
        raise MaskError(f"mask is empty (shape {arr.shape})")
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)
            or np.issubdtype(arr.dtype, np.floating)):
        raise MaskError(f"mask has unsupported dtype {arr.dtype}")
    if arr.ndim == 2:
        bands = [arr]
    else:
        count = arr.shape[2] - 1 if has_alpha and arr.shape[2] >= 2 else arr.shape[2]
        bands = [arr[:, :, b] for b in range(count)]
    missing = _missing_from_band(bands[0], threshold)
    for band in bands[1:]:
        missing |= _missing_from_band(band, threshold)
    if invert:
        np.logical_not(missing, out=missing)
    return missing


def read_mask(
    path: str | os.PathLike,
    *,
    shape: tuple[int, int] | None = None,
    invert: bool = False,
) -> np.ndarray:
    """Read a mask file as a boolean missing-pixel mask.

    Parameters
    ----------
    path : str or path-like
        Any raster GDAL can read (PNG, TIFF, 1-bit TIFF, JPEG, BMP, PGM, WebP, ...).
    shape : (int, int) or None
        Expected ``(height, width)``, normally the panel's; a mask of another size is an error.
    invert : bool
        Flip the result (for masks where zero/black marks the missing area).

    Returns
    -------
    ndarray of bool, shape (H, W)
        ``True`` where the pixel is missing (see the module docstring for the rules).

    Raises
    ------
    MaskError
        The file does not exist, cannot be read (corrupt, truncated, not a raster) or its size
        differs from ``shape``. The message is one line naming the file.
    """
    shape = _check_shape(shape)
    name = os.fspath(path)
    if _is_local(name):
        local = Path(name).expanduser()
        if not local.exists():
            raise MaskError(f"mask file {name} does not exist")
        if local.is_dir():
            raise MaskError(f"mask path {name} is a directory, not a file")
        name_to_open = str(local)
    else:
        name_to_open = name

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(name_to_open) as src:
                if src.count < 1:
                    raise MaskError(f"cannot read mask {name}: the file has no raster bands")
                if shape is not None and (src.height, src.width) != shape:
                    raise MaskError(
                        f"mask {name} is {src.width}x{src.height} pixels but the image is "
                        f"{shape[1]}x{shape[0]}"
                    )
                if src.driver == "PNG" and _is_local(name) and not _png_complete(name_to_open):
                    # GDAL's PNG driver returns whatever it decoded from a truncated file
                    raise MaskError(f"cannot read mask {name}: the PNG file is truncated")
                missing = _read_missing(src)
    except MaskError:
        raise
    except (RasterioError, OSError, MemoryError) as exc:
        reason = _short_reason(exc, name, name_to_open)
        raise MaskError(f"cannot read mask {name}: {reason}") from exc
    except Exception as exc:  # GDAL's CPLE_* errors do not share a public base class
        if type(exc).__module__.startswith("rasterio"):
            raise MaskError(
                f"cannot read mask {name}: {_short_reason(exc, name, name_to_open)}"
            ) from exc
        raise
    if invert:
        np.logical_not(missing, out=missing)
    return missing


# --------------------------------------------------------------------------------------------
# helpers


def _missing_from_band(band: np.ndarray, threshold: float | None) -> np.ndarray:
    """One band (H, W) -> bool (H, W): non-zero, or ``> threshold`` when a threshold is given."""
    if band.dtype == bool:
        return band.copy()
    if threshold is None:
        return band != 0
    return band > threshold


def _read_missing(src: rasterio.io.DatasetReader) -> np.ndarray:
    """Combine the bands of an open dataset into a bool (H, W) missing mask, band by band."""
    colorinterp = tuple(src.colorinterp)
    indexes = list(range(1, src.count + 1))
    if src.count >= 2 and colorinterp[-1] == ColorInterp.alpha:
        indexes = indexes[:-1]
    threshold = _lossy_threshold(src)

    missing: np.ndarray | None = None
    for index in indexes:
        band = src.read(index)
        if colorinterp[index - 1] == ColorInterp.palette:
            band_missing = _palette_missing(src, index, band)
        else:
            band_missing = _missing_from_band(band, threshold)
        if missing is None:
            missing = band_missing
        else:
            missing |= band_missing
    assert missing is not None
    return missing


def _palette_missing(src: rasterio.io.DatasetReader, index: int, band: np.ndarray) -> np.ndarray:
    """Indexed band -> missing where the displayed colour (RGB, alpha ignored) is not black."""
    try:
        colormap = src.colormap(index)
    except ValueError:  # declared palette without a colour table: use the indices themselves
        return band != 0
    if not colormap or not np.issubdtype(band.dtype, np.unsignedinteger) or band.itemsize > 2:
        return band != 0
    size = max(int(band.max()) + 1, max(colormap) + 1)
    lut = np.arange(size) != 0  # indices without a palette entry: non-zero = missing
    for value, rgba in colormap.items():
        lut[value] = any(channel != 0 for channel in rgba[:3])
    return lut[band]


def _lossy_threshold(src: rasterio.io.DatasetReader) -> float | None:
    """Half the value range for lossy-compressed files, ``None`` (= non-zero) otherwise."""
    structure = {k.upper(): str(v).upper() for k, v in src.tags(ns="IMAGE_STRUCTURE").items()}
    reversibility = structure.get("COMPRESSION_REVERSIBILITY", "")
    if reversibility.startswith("LOSSLESS") or structure.get("WEBP_LOSSLESS") == "TRUE":
        lossy = False
    elif reversibility.startswith("LOSSY"):
        lossy = True
    else:
        lossy = (
            src.driver in _LOSSY_DRIVERS
            or src.compression in _LOSSY_COMPRESSIONS
            or structure.get("COMPRESSION") in {"JPEG", "WEBP"}
        )
    if not lossy:
        return None
    dtype = np.dtype(src.dtypes[0])
    if np.issubdtype(dtype, np.floating):
        return 0.5
    nbits = src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") or structure.get("NBITS")
    if nbits is not None and str(nbits).isdigit():
        return (2 ** int(nbits) - 1) / 2
    return np.iinfo(dtype).max / 2


def _check_shape(shape: tuple[int, int] | None) -> tuple[int, int] | None:
    if shape is None:
        return None
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (height, width), got {shape!r}") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"shape must be two positive integers, got {shape!r}")
    return height, width


def _is_local(name: str) -> bool:
    """False for GDAL virtual paths and URLs, which cannot be checked with the file system."""
    return "://" not in name and not name.startswith("/vsi")


def _png_complete(path: str) -> bool:
    """Whether a PNG file still ends with its IEND chunk (a truncated file does not)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        return b"IEND\xaeB`\x82" in f.read()


def _short_reason(exc: BaseException, *names: str) -> str:
    """One short line from a (possibly chained, multi-line, path-repeating) GDAL error.

    rasterio wraps the specific GDAL message ("TIFFFillStrip: read error ...") in generic ones
    ("Read failed. See previous exception for details."): the innermost cause is used.
    """
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = re.sub(r"\s*\(this error can be turned.*\)", "", text)
    for n in sorted({*names, *(os.path.abspath(n) for n in names)}, key=len, reverse=True):
        text = text.replace(f"'{n}'", "").replace(n, "")
    text = " ".join(text.split()).strip(" .:")
    if not text:
        text = type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
