"""Tests of inpaint.raster and inpaint.dtypes: reading/writing, profiles, atomic writes."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import Affine

from inpaint.dtypes import from_float, to_float
from inpaint.raster import (
    OutputExistsError,
    Raster,
    RasterError,
    RasterReader,
    RasterWriter,
    raster_info,
    read_raster,
    read_window,
    write_preview,
    write_raster,
)
from inpaint.raster import profile as raster_profile
from inpaint.raster import write as raster_write

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

RES_TAGS = {"TIFFTAG_XRESOLUTION": "600", "TIFFTAG_YRESOLUTION": "600",
            "TIFFTAG_RESOLUTIONUNIT": "2"}


def _random(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(0, int(info.max) + 1, shape).astype(dtype)


def _profile(height: int, width: int, count: int, dtype: str) -> dict:
    return {"driver": "GTiff", "dtype": dtype, "count": count, "height": height, "width": width}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _write_rio(path: Path, data: np.ndarray, **profile) -> None:
    """Write (H, W, B) data with rasterio directly (independent of the module under test)."""
    h, w, b = data.shape
    with rasterio.open(path, "w", width=w, height=h, count=b, dtype=data.dtype.name,
                       **profile) as dst:
        dst.write(data.transpose(2, 0, 1))


# ----------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("ext", [".tif", ".png"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_round_trip_keeps_pixels_dtype_bands_and_alpha(tmp_path, ext, dtype, bands):
    data = _random((37, 53, bands), dtype)
    data[..., -1] = data[..., -1] // 2  # make alpha distinct from the colour bands
    first = tmp_path / f"first{ext}"
    write_raster(first, data, _profile(37, 53, bands, dtype))

    raster = read_raster(first)
    assert raster.data.shape == (37, 53, bands)
    assert raster.dtype == np.dtype(dtype)
    assert raster.data.flags.c_contiguous
    np.testing.assert_array_equal(raster.data, data)
    expect_alpha = bands - 1 if bands in (2, 4) else None
    assert raster.alpha_band == expect_alpha
    assert raster.colour.shape == (37, 53, 3 if bands >= 3 else 1)
    if expect_alpha is None:
        assert raster.alpha is None
    else:
        assert raster.colorinterp[-1] == ColorInterp.alpha
        np.testing.assert_array_equal(raster.alpha, data[..., -1])

    second = tmp_path / f"second{ext}"
    write_raster(second, raster.data, raster)
    again = read_raster(second)
    np.testing.assert_array_equal(again.data, data)
    assert again.alpha_band == expect_alpha
    assert again.colorinterp == raster.colorinterp
    assert again.profile["driver"] == raster.profile["driver"]


def test_float32_tiff_round_trip(tmp_path):
    data = np.random.default_rng(1).random((16, 20, 3), dtype=np.float32)
    path = tmp_path / "f.tif"
    write_raster(path, data, _profile(16, 20, 3, "float32"))
    raster = read_raster(path)
    assert raster.dtype == np.float32
    np.testing.assert_array_equal(raster.data, data)
    np.testing.assert_array_equal(to_float(raster.data), data)


def _tiff_bits(path: Path) -> int:
    """BitsPerSample of a TIFF's first band, read from the file itself."""
    import struct

    raw = path.read_bytes()
    order = "<" if raw[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", raw[4:8])[0]
    for k in range(struct.unpack(order + "H", raw[ifd:ifd + 2])[0]):
        entry = raw[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
        tag, _, count = struct.unpack(order + "HHI", entry[:8])
        if tag == 258:
            if count <= 2:
                return struct.unpack(order + "H", entry[8:10])[0]
            at = struct.unpack(order + "I", entry[8:12])[0]
            return struct.unpack(order + "H", raw[at:at + 2])[0]
    raise AssertionError("no BitsPerSample tag")


def test_half_float_tiff_is_written_back_as_half_float(tmp_path):
    """GDAL reads a 16-bit float TIFF as float32 with NBITS=16 on its bands only; the output
    keeps the 16 bits (it had become a 32-bit float file)."""
    data = np.random.default_rng(2).random((16, 20, 3)).astype(np.float16).astype(np.float32)
    src = tmp_path / "half.tif"
    _write_rio(src, data, driver="GTiff", nbits=16)
    assert _tiff_bits(src) == 16
    raster = read_raster(src)
    assert raster.profile["nbits"] == 16 and raster.dtype == np.float32
    out = tmp_path / "out.tif"
    write_raster(out, raster.data, raster)
    assert _tiff_bits(out) == 16
    np.testing.assert_array_equal(read_raster(out).data, data)


def _geotiff(path: Path, icc: bytes | None = None) -> np.ndarray:
    data = _random((300, 520, 3), "uint16", seed=3)
    data[:5, :5] = 0
    extra = {"source_icc_profile": base64.b64encode(icc).decode()} if icc else {}
    with rasterio.open(path, "w", driver="GTiff", width=520, height=300, count=3,
                       dtype="uint16", crs="EPSG:32631",
                       transform=Affine(0.05, 0.0, 500000.0, 0.0, -0.05, 5650000.0), nodata=0,
                       tiled=True, blockxsize=256, blockysize=256, compress="lzw", predictor=2,
                       photometric="RGB", interleave="pixel", **extra) as dst:
        dst.write(data.transpose(2, 0, 1))
        dst.update_tags(**RES_TAGS, TIFFTAG_SOFTWARE="scanner 1.0", TIFFTAG_ARTIST="KIK-IRPA",
                        PANEL="Adam")
        dst.update_tags(1, STATISTICS_MEAN="123", CHANNEL="red")
        dst.set_band_description(2, "green channel")
    return data


def test_geotiff_profile_and_tags_preserved(tmp_path):
    src = tmp_path / "panel.tif"
    data = _geotiff(src)
    raster = read_raster(src)
    np.testing.assert_array_equal(raster.data, data)
    out = tmp_path / "out.tif"
    write_raster(out, raster.data, raster)

    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.crs == a.crs and b.crs.to_epsg() == 32631
        assert b.transform == a.transform
        assert b.nodata == 0
        assert b.profile["tiled"] and b.block_shapes == [(256, 256)] * 3
        assert b.compression == a.compression == rasterio.enums.Compression.lzw
        assert b.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        assert b.interleaving == a.interleaving
        # GTiff reports PHOTOMETRIC=RGB as red/green/blue (MINISBLACK would be gray, undefined).
        assert b.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert b.dtypes == a.dtypes
        tags = b.tags()
        assert tags["TIFFTAG_XRESOLUTION"] == "600"
        assert tags["TIFFTAG_YRESOLUTION"] == "600"
        assert tags["TIFFTAG_RESOLUTIONUNIT"].startswith("2")
        assert tags["TIFFTAG_SOFTWARE"] == "scanner 1.0"
        assert tags["TIFFTAG_ARTIST"] == "KIK-IRPA"
        assert tags["PANEL"] == "Adam"
        assert b.descriptions[1] == "green channel"
        assert b.tags(1) == {"CHANNEL": "red"}  # stale statistics dropped
        np.testing.assert_array_equal(b.read(), a.read())
    again = read_raster(out)
    assert again.tags[""] == raster.tags[""]
    assert not list(tmp_path.glob("*.aux.xml"))


def test_icc_profile_preserved(tmp_path):
    image_cms = pytest.importorskip("PIL.ImageCms")
    icc = image_cms.ImageCmsProfile(image_cms.createProfile("sRGB")).tobytes()
    src = tmp_path / "panel.tif"
    _geotiff(src, icc=icc)
    raster = read_raster(src)
    assert base64.b64decode(raster.tags["COLOR_PROFILE"]["SOURCE_ICC_PROFILE"]) == icc
    for name in ("out.tif", "out.png"):
        out = tmp_path / name
        write_raster(out, raster.data, raster)
        written = read_raster(out)
        assert base64.b64decode(written.tags["COLOR_PROFILE"]["SOURCE_ICC_PROFILE"]) == icc


def test_tiff_to_png_keeps_tags_as_text_and_drops_georeferencing(tmp_path):
    src = tmp_path / "panel.tif"
    _geotiff(src)
    raster = read_raster(src)
    out = tmp_path / "panel.png"
    write_raster(out, raster.data, raster)
    png = read_raster(out)
    assert png.profile["driver"] == "PNG"
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png.data, raster.data)
    assert png.tags[""]["TIFFTAG_XRESOLUTION"] == "600"
    assert png.profile["crs"] is None
    assert _listing(tmp_path) == ["panel.png", "panel.tif"]


def test_jpeg_output_and_refusals(tmp_path):
    rgb = _random((40, 48, 3), "uint8")
    src = tmp_path / "rgb.png"
    write_raster(src, rgb, _profile(40, 48, 3, "uint8"))
    raster = read_raster(src)
    write_raster(tmp_path / "rgb.jpg", raster.data, raster)
    jpeg = read_raster(tmp_path / "rgb.jpg")
    assert jpeg.data.shape == (40, 48, 3) and jpeg.dtype == np.uint8

    deep = _random((8, 8, 3), "uint16")
    with pytest.raises(RasterError, match="JPEG cannot hold uint16"):
        write_raster(tmp_path / "deep.jpg", deep, _profile(8, 8, 3, "uint16"))
    rgba = _random((8, 8, 4), "uint8")
    with pytest.raises(RasterError, match="JPEG cannot hold an alpha band"):
        write_raster(tmp_path / "rgba.jpg", rgba, _profile(8, 8, 4, "uint8"))
    floats = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(RasterError, match="PNG cannot hold float32"):
        write_raster(tmp_path / "f.png", floats, _profile(8, 8, 3, "float32"))
    with pytest.raises(RasterError, match="extension '.xyz'"):
        write_raster(tmp_path / "out.xyz", rgb, raster)
    assert _listing(tmp_path) == ["rgb.jpg", "rgb.png"]


def test_bmp_grey_round_trip(tmp_path):
    grey = _random((10, 12, 1), "uint8")
    path = tmp_path / "g.bmp"
    write_raster(path, grey, _profile(10, 12, 1, "uint8"))
    raster = read_raster(path)  # GDAL reads a grey BMP as a grey palette
    assert raster.data.shape == (10, 12, 1)
    np.testing.assert_array_equal(raster.data, grey)


def test_palette_image_is_expanded(tmp_path):
    index = np.arange(12, dtype=np.uint8).reshape(3, 4)[:, :, None] % 3
    path = tmp_path / "pal.tif"
    _write_rio(path, index, driver="GTiff", photometric="palette")
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {0: (255, 0, 0, 255), 1: (0, 255, 0, 255), 2: (0, 0, 255, 255)})
    raster = read_raster(path)
    assert raster.data.shape == (3, 4, 3) and raster.alpha_band is None
    np.testing.assert_array_equal(raster.data[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(raster.data[0, 1], [0, 255, 0])
    assert raster_info(path).bands == 3


def test_two_band_tiff_without_alpha_flag_is_grey_plus_alpha(tmp_path):
    path = tmp_path / "ga.tif"
    _write_rio(path, _random((5, 6, 2), "uint8"), driver="GTiff")
    raster = read_raster(path)
    assert raster.alpha_band == 1
    assert raster.colour.shape == (5, 6, 1)


def test_bigtiff_input_stays_bigtiff(tmp_path):
    src = tmp_path / "big.tif"
    _write_rio(src, _random((8, 8, 1), "uint8"), driver="GTiff", BIGTIFF="YES")
    raster = read_raster(src)
    write_raster(tmp_path / "out.tif", raster.data, raster)
    assert (tmp_path / "out.tif").read_bytes()[:4] == b"II+\x00"


# ----------------------------------------------------------------------------------------------
# Float conversion


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_float_conversion_round_trip_is_exact(dtype):
    values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 1, 1)
    floats = to_float(values)
    assert floats.dtype == np.float32
    assert floats.min() == 0.0 and floats.max() == 1.0
    np.testing.assert_array_equal(from_float(floats, dtype), values)


def test_float_conversion_clips_and_rejects():
    out = from_float(np.array([-0.5, 0.0, 0.5, 1.0, 7.0, np.nan]), np.uint8)
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255, 0])
    assert out.dtype == np.uint8
    f = to_float(np.array([-1.0, 0.25, 2.0, np.nan], dtype=np.float32))
    np.testing.assert_array_equal(f, [0.0, 0.25, 1.0, 0.0])
    with pytest.raises(RasterError, match="unsupported data type int32"):
        to_float(np.zeros(3, np.int32))
    with pytest.raises(RasterError, match="unsupported data type float64"):
        from_float(np.zeros(3), np.float64)


# ----------------------------------------------------------------------------------------------
# Overwriting and atomicity


def test_refuses_overwrite_without_force(tmp_path):
    data = _random((10, 10, 3), "uint8")
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=r"out\.tif exists; pass --force to overwrite"):
        write_raster(out, data, _profile(10, 10, 3, "uint8"))
    assert out.read_bytes() == b"precious"
    assert _listing(tmp_path) == ["out.tif"]

    write_raster(out, data, _profile(10, 10, 3, "uint8"), force=True)
    np.testing.assert_array_equal(read_raster(out).data, data)
    assert _listing(tmp_path) == ["out.tif"]


def test_never_replaces_the_input_even_with_force(tmp_path):
    src = tmp_path / "panel.tif"
    write_raster(src, _random((6, 6, 3), "uint8"), _profile(6, 6, 3, "uint8"))
    raster = read_raster(src)
    before = _sha(src)
    with pytest.raises(RasterError, match="is the input file"):
        write_raster(src, raster.data, raster, force=True)
    assert _sha(src) == before


def test_input_is_never_modified(tmp_path):
    src = tmp_path / "panel.tif"
    _geotiff(src)
    before, listing, mtime = _sha(src), _listing(tmp_path), src.stat().st_mtime_ns
    raster = read_raster(src)
    raster_info(src)
    read_window(src, (0, 0, 10, 10))
    (tmp_path / "out").mkdir()
    write_raster(tmp_path / "out" / "panel.tif", raster.data, raster)
    assert _sha(src) == before and src.stat().st_mtime_ns == mtime
    assert _listing(tmp_path) == sorted(listing + ["out"])


def test_output_folder_must_exist(tmp_path):
    data = _random((4, 4, 1), "uint8")
    with pytest.raises(RasterError, match="output folder .*missing does not exist"):
        write_raster(tmp_path / "missing" / "out.tif", data, _profile(4, 4, 1, "uint8"))
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(RasterError, match=r"dir\.tif is a folder"):
        write_raster(tmp_path / "dir.tif", data, _profile(4, 4, 1, "uint8"), force=True)


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    data = _random((20, 20, 3), "uint8")

    def boom(self, data, window):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(RasterWriter, "write_window", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_raster(tmp_path / "out.tif", data, _profile(20, 20, 3, "uint8"))
    assert _listing(tmp_path) == []


def test_failure_inside_writer_block_leaves_nothing(tmp_path):
    data = _random((20, 20, 1), "uint16")
    out = tmp_path / "out.png"
    with pytest.raises(KeyboardInterrupt), \
            RasterWriter(out, _profile(20, 20, 1, "uint16")) as writer:
        writer.write_window(data[:10], (0, 0, 10, 20))
        assert len(_listing(tmp_path)) == 1  # only the hidden temporary file
        raise KeyboardInterrupt
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("bad", [
    {"tiled": True, "blockxsize": 17, "blockysize": 16},  # GDAL refuses at creation
    {"compress": "jpeg"},  # GDAL fails while writing: no 16-bit JPEG
])
def test_gdal_failure_is_a_raster_error_and_leaves_nothing(tmp_path, bad):
    profile = {**_profile(8, 8, 1, "uint16"), **bad}
    with pytest.raises(RasterError, match=r"cannot write .*out\.tif: ") as info:
        write_raster(tmp_path / "out.tif", _random((8, 8, 1), "uint16"), profile)
    assert "\n" not in str(info.value)
    assert _listing(tmp_path) == []


def test_failure_at_commit_leaves_nothing(tmp_path, monkeypatch):
    def full(tmp, path, force):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(raster_write, "_commit", full)
    with pytest.raises(RasterError, match="No space left on device"):
        write_raster(tmp_path / "out.png", _random((8, 8, 3), "uint8"),
                     _profile(8, 8, 3, "uint8"))
    assert _listing(tmp_path) == []


def test_write_checks_dtype_and_bands(tmp_path):
    like = _profile(4, 4, 3, "uint16")
    with pytest.raises(RasterError, match="does not match the output's uint16"):
        write_raster(tmp_path / "o.tif", np.zeros((4, 4, 3), np.uint8), like)
    with pytest.raises(RasterError, match="data has 1 band"):
        write_raster(tmp_path / "o.tif", np.zeros((4, 4, 1), np.uint16), like)
    assert _listing(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# Bad input


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(RasterError, match=r"cannot read .*nope\.tif: no such file"):
        read_raster(tmp_path / "nope.tif")
    with pytest.raises(RasterError, match="is a folder"):
        read_raster(tmp_path)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.002])
@pytest.mark.parametrize("ext", [".tif", ".png", ".jpg"])
def test_truncated_file_is_a_raster_error(tmp_path, ext, fraction):
    good = tmp_path / f"good{ext}"
    write_raster(good, _random((120, 150, 3), "uint8"), _profile(120, 150, 3, "uint8"))
    raw = good.read_bytes()
    bad = tmp_path / f"bad{ext}"
    bad.write_bytes(raw[: max(8, int(len(raw) * fraction))])
    with pytest.raises(RasterError, match=r"cannot read .*bad") as info:
        read_raster(bad)
    assert "\n" not in str(info.value)


def test_not_a_raster(tmp_path):
    junk = tmp_path / "notes.tif"
    junk.write_text("hello")
    with pytest.raises(RasterError, match="not a recognised raster file"):
        read_raster(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(RasterError, match="not a recognised raster file"):
        raster_info(empty)


@pytest.mark.parametrize("dtype", ["int32", "float64", "int16"])
def test_unsupported_dtype(tmp_path, dtype):
    path = tmp_path / f"{dtype}.tif"
    _write_rio(path, np.zeros((4, 4, 1), dtype=dtype), driver="GTiff")
    with pytest.raises(RasterError, match=f"unsupported data type {dtype}: expected uint8"):
        read_raster(path)
    with pytest.raises(RasterError, match="unsupported data type"):
        raster_info(path)


def test_unsupported_band_count(tmp_path):
    path = tmp_path / "five.tif"
    _write_rio(path, np.zeros((4, 4, 5), np.uint8), driver="GTiff")
    with pytest.raises(RasterError, match="unsupported band count 5"):
        read_raster(path)


# ----------------------------------------------------------------------------------------------
# skimage pseudo-paths


def test_skimage_astronaut():
    raster = read_raster("skimage:astronaut")
    assert raster.data.shape == (512, 512, 3) and raster.dtype == np.uint8
    assert raster.alpha_band is None and raster.source == "skimage:astronaut"
    assert raster.profile["driver"] == "PNG"
    camera = read_raster("skimage:camera")
    assert camera.data.shape == (512, 512, 1)
    np.testing.assert_array_equal(read_window("skimage:astronaut", (10, 20, 30, 60)),
                                  raster.data[10:30, 20:60])
    with pytest.raises(RasterError, match="unknown image skimage:nope"):
        read_raster("skimage:nope")


def test_skimage_image_written_as_tiff(tmp_path):
    raster = read_raster("skimage:coffee")
    write_raster(tmp_path / "coffee.tif", raster.data, raster)
    np.testing.assert_array_equal(read_raster(tmp_path / "coffee.tif").data, raster.data)


# ----------------------------------------------------------------------------------------------
# Windows


def test_windowed_writer_matches_write_raster(tmp_path, monkeypatch):
    src = tmp_path / "panel.tif"
    data = _geotiff(src)
    raster = read_raster(src)
    whole = tmp_path / "whole.tif"
    # write_raster in one-block-high strips
    monkeypatch.setattr(raster_write, "_WRITE_STRIP_BYTES", 1)
    write_raster(whole, raster.data, raster)

    windowed = tmp_path / "windowed.tif"
    with RasterWriter(windowed, raster_info(src)) as writer:
        for row0 in range(0, 300, 128):
            for col0 in range(0, 520, 200):
                window = (row0, col0, min(row0 + 128, 300), min(col0 + 200, 520))
                writer.write_window(read_window(src, window), window)
        assert not windowed.exists()  # committed only on exit
    a, b = read_raster(whole), read_raster(windowed)
    np.testing.assert_array_equal(b.data, data)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.profile == b.profile
    assert a.tags == b.tags and a.colorinterp == b.colorinterp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.tif", "whole.tif",
                                                          "windowed.tif"]


def test_reader_windows_and_info(tmp_path):
    src = tmp_path / "panel.tif"
    data = _geotiff(src)
    meta = raster_info(src)
    assert (meta.height, meta.width, meta.bands, meta.dtype) == (300, 520, 3, np.uint16)
    assert meta.profile["compress"] == "lzw" and meta.profile["predictor"] == 2
    with RasterReader(src) as reader:
        np.testing.assert_array_equal(reader.read((100, 250, 200, 520)),
                                      data[100:200, 250:520])
        with pytest.raises(RasterError, match="outside the 300 x 520 raster"):
            reader.read((0, 0, 301, 10))


def test_raster_from_meta():
    data = np.zeros((3, 4, 2), np.uint8)
    raster = Raster.from_meta(data, raster_profile._as_meta(_profile(9, 9, 2, "uint8")))
    assert raster.profile["height"] == 3 and raster.alpha_band == 1
    assert raster.alpha.shape == (3, 4)


# ----------------------------------------------------------------------------------------------
# Preview


def test_preview_png(tmp_path):
    h, w = 60, 100
    rng = np.random.default_rng(0)
    image = rng.random((h, w, 3), dtype=np.float32) * 0.2
    result = np.full((h, w, 3), 0.5, np.float32)
    mask = np.zeros((h, w), bool)
    mask[10:20, 30:40] = True
    path = tmp_path / "preview.png"
    write_preview(path, image, mask, result)
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert png.shape == (h, 3 * w + 16, 3)
    assert (png[:, w: w + 8] == 255).all()  # white gap
    assert png[15, w + 8 + 35, 0] > 100 and png[15, w + 8 + 35, 1] < 60  # red overlay
    np.testing.assert_array_equal(png[:, 2 * w + 16:], 128)

    # Downscaled to fit, overwrites the previous preview, grey inputs accepted.
    write_preview(path, image[:, :, 0], mask, result, max_side=160)
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert max(png.shape[:2]) <= 160 and png.shape[1] == 3 * 48 + 16
    assert _listing(tmp_path) == ["preview.png"]


def test_preview_errors(tmp_path):
    image = np.zeros((10, 10, 3), np.float32)
    with pytest.raises(RasterError, match="does not exist"):
        write_preview(tmp_path / "no" / "p.png", image, np.zeros((10, 10), bool), image)
    with pytest.raises(RasterError, match="result must be"):
        write_preview(tmp_path / "p.png", image, np.zeros((10, 10), bool), image[:5])


def test_writes_bound_gdal_cache_and_put_it_back(tmp_path, monkeypatch):
    from rasterio.env import get_gdal_config

    seen = []
    real = raster_write._gdal

    def spy(options=None):
        seen.append(get_gdal_config("GDAL_CACHEMAX"))
        return real(options)

    with rasterio.Env():
        before = get_gdal_config("GDAL_CACHEMAX")
    src = _geotiff(tmp_path / "in.tif")
    like = read_raster(tmp_path / "in.tif")
    monkeypatch.setattr(raster_write, "_gdal", spy)
    write_raster(tmp_path / "out.tif", src, like)
    np.testing.assert_array_equal(read_raster(tmp_path / "out.tif").data, src)
    with rasterio.Env():
        assert get_gdal_config("GDAL_CACHEMAX") == before     # restored after every write
    with raster_write._gdal(raster_write._WRITE_OPTIONS), rasterio.Env():
        assert get_gdal_config("GDAL_CACHEMAX") == raster_write.WRITE_CACHE_BYTES
    assert seen and all(v == before for v in seen)            # never left bounded between calls
