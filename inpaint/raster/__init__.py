"""Raster I/O (``read``, ``write``, ``profile``, ``preview``; pixel scaling is ``inpaint.dtypes``):
read a panel with its profile, write results atomically with the same profile.

Conventions (modelled on rasterio and its ``rio`` CLI):

- Pixels are numpy arrays of shape ``(H, W, B)`` (pixel-interleaved, C-contiguous) in the file's
  native dtype. Supported dtypes: ``uint8``, ``uint16`` and ``float32`` (float32 values are taken
  to lie in [0, 1]). Supported band layouts: 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGB + alpha).
  The alpha band, if any, is always the last band; it is detected from the colour interpretation
  or, for 2- and 4-band files without one (e.g. a TIFF with an unspecified extra sample), by
  convention. Palette (indexed colour) images are expanded on reading to grey (grey palettes),
  RGB or RGB + alpha (palettes with transparency); the palette itself is not written back.
- ``inpaint.dtypes.to_float`` / ``from_float`` convert between the native dtype and float32 in
  [0, 1] by the dtype's range (uint8 / 255, uint16 / 65535); the round trip is exact.
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

Windowed access (:class:`RasterReader`, :func:`read_window`, :class:`RasterWriter`; a window is
an ``inpaint.box.Box``) lets a panel
larger than RAM be processed window by window. Only drivers that support random writes (GeoTIFF,
BMP, PNM) write windows straight to disk; PNG and JPEG outputs are buffered in memory until the
writer closes.

The pseudo-path ``skimage:NAME`` (e.g. ``skimage:astronaut``) loads an image shipped with
scikit-image (see :data:`SKIMAGE_IMAGES`), with a PNG-like profile; it needs no network.
"""

from ..errors import OutputExistsError, RasterError
from .preview import write_preview
from .profile import DRIVERS_BY_EXTENSION, Raster, RasterMeta
from .read import SKIMAGE_IMAGES, RasterReader, raster_info, read_raster, read_window
from .write import WRITE_CACHE_BYTES, RasterWriter, write_raster

__all__ = [
    "DRIVERS_BY_EXTENSION",
    "SKIMAGE_IMAGES",
    "WRITE_CACHE_BYTES",
    "OutputExistsError",
    "Raster",
    "RasterError",
    "RasterMeta",
    "RasterReader",
    "RasterWriter",
    "raster_info",
    "read_raster",
    "read_window",
    "write_preview",
    "write_raster",
]
