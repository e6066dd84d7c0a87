"""Writing rasters atomically (hidden temporary file renamed when complete) with a source's
profile, whole or window by window, under a bounded GDAL block cache."""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.windows import Window as _RioWindow

from ..box import Box
from ..errors import OutputExistsError, RasterError
from .profile import (
    _GDAL_ERRORS,
    Like,
    _as_meta,
    _check_driver_can_hold,
    _colour_layout,
    _creation_profile,
    _gdal,
    _gdal_message,
    _output_driver,
)
from .read import _check_window, _is_skimage

if TYPE_CHECKING:
    from typing_extensions import Self


_WRITE_STRIP_BYTES = 64 * 2**20  # write_raster hands GDAL strips of about this size


#: GDAL block-cache bound while writing. GDAL's default (5 % of RAM) lets written blocks of a
#: streamed panel pile up in memory: a 64 MP 16-bit RGB copy grew the process by 492 MiB with
#: it, 322 MiB bounded, same time and file size (benchmarks/write_cache.py).
WRITE_CACHE_BYTES = 128 * 2**20


_WRITE_OPTIONS = MappingProxyType({
    "GDAL_PAM_ENABLED": "NO",   # no .aux.xml side-cars
    "GDAL_CACHEMAX": WRITE_CACHE_BYTES,
})


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

    def write_window(self, data: np.ndarray, window: Box) -> None:
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
