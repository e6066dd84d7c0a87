"""Masks: reading and normalising, morphology, synthetic paint-loss masks, statistics."""

import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from scipy import ndimage

from masks import (
    MAX_COVERAGE,
    MaskError,
    MaskStats,
    PaintLossConfig,
    check_mask_usable,
    dilate,
    disk,
    erode,
    mask_stats,
    normalise_mask,
    paint_loss_mask,
    read_mask,
)

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

# --------------------------------------------------------------------------------------------
# helpers


def _blocks(h=48, w=64):
    """A bool mask made of a few rectangles (edges on the 8-px JPEG grid) and one pixel."""
    m = np.zeros((h, w), bool)
    m[8:24, 16:40] = True
    m[32:40, 48:56] = True
    m[2, 3] = True
    return m


def _write(path, bands, driver="GTiff", **options):
    """Write (B, H, W) or (H, W) ``bands`` with rasterio (no georeferencing)."""
    bands = np.asarray(bands)
    if bands.ndim == 2:
        bands = bands[None]
    count, height, width = bands.shape
    colormap = options.pop("colormap", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver=driver, width=width, height=height, count=count,
                           dtype=bands.dtype, **options) as dst:
            dst.write(bands)
            if colormap:
                dst.write_colormap(1, colormap)
    return path


# --------------------------------------------------------------------------------------------
# read_mask


def test_reads_one_bit_tiff(tmp_path):
    m = _blocks()
    path = _write(tmp_path / "loss.tif", m.astype(np.uint8), nbits=1)
    with rasterio.open(path) as src:  # the file really is 1-bit, read back as 0/1
        assert src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "1"
        assert src.read(1).max() == 1
    out = read_mask(path)
    assert out.dtype == bool and out.shape == m.shape
    np.testing.assert_array_equal(out, m)


def test_one_bit_min_is_white_tiff_is_judged_by_displayed_colour(tmp_path):
    # GDAL shows MINISWHITE as a palette 0 -> white, 1 -> black: white (stored 0) is missing.
    m = _blocks()
    path = _write(tmp_path / "loss.tif", (~m).astype(np.uint8), nbits=1, photometric="MINISWHITE")
    np.testing.assert_array_equal(read_mask(path), m)


def test_reads_png_0_255_and_accepts_path_strings(tmp_path):
    m = _blocks()
    path = tmp_path / "loss.png"
    cv2.imwrite(str(path), m.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(path), m)
    np.testing.assert_array_equal(read_mask(str(path), shape=m.shape), m)


def test_png_with_small_non_zero_values_counts_them_as_missing(tmp_path):
    # lossless files: any non-zero value is missing, even 1
    m = _blocks()
    path = tmp_path / "loss.png"
    cv2.imwrite(str(path), m.astype(np.uint8))
    np.testing.assert_array_equal(read_mask(path), m)


def test_jpeg_mask_is_thresholded_at_half_range(tmp_path):
    m = _blocks(64, 96)
    rng = np.random.default_rng(0)
    noisy = np.where(m, 235, 20) + rng.integers(-15, 16, m.shape)
    path = _write(tmp_path / "loss.jpg", noisy.astype(np.uint8), driver="JPEG", quality=60)
    with rasterio.open(path) as src:
        raw = src.read(1)
    assert np.count_nonzero(raw[~m]) > 0.5 * np.count_nonzero(~m)  # "black" is not zero
    out = read_mask(path)
    assert np.mean(out != m) < 0.002


def test_jpeg_compressed_tiff_is_thresholded_too(tmp_path):
    m = _blocks(64, 64)
    noisy = np.where(m, 230, 25).astype(np.uint8)
    path = _write(tmp_path / "loss.tif", noisy, compress="jpeg", tiled=True,
                  blockxsize=16, blockysize=16)
    assert np.mean(read_mask(path) != m) < 0.002


def test_multi_band_mask_is_missing_where_any_band_is_non_zero(tmp_path):
    a, b = np.zeros((3, 30, 40), np.uint8), np.zeros((30, 40), bool)
    a[0, 2:5, 2:5] = 200   # red only
    a[1, 10:12, 20:30] = 1  # green only, tiny value
    a[2, 20:25, 0:3] = 255  # blue only
    b[2:5, 2:5] = b[10:12, 20:30] = b[20:25, 0:3] = True
    path = _write(tmp_path / "loss.tif", a, photometric="RGB")
    np.testing.assert_array_equal(read_mask(path), b)


def test_rgba_mask_ignores_the_alpha_band(tmp_path):
    m = _blocks()
    rgb = np.repeat(m[None].astype(np.uint8) * 255, 3, axis=0)
    alpha = np.full((1, *m.shape), 255, np.uint8)
    path = _write(tmp_path / "loss.png", np.concatenate([rgb, alpha]), driver="PNG")
    with rasterio.open(path) as src:
        assert src.colorinterp[-1] == ColorInterp.alpha
    np.testing.assert_array_equal(read_mask(path), m)


def test_grey_alpha_mask_ignores_the_alpha_band(tmp_path):
    m = _blocks()
    bands = np.stack([m.astype(np.uint8) * 255, np.full(m.shape, 255, np.uint8)])
    path = _write(tmp_path / "loss.png", bands, driver="PNG")
    np.testing.assert_array_equal(read_mask(path), m)


def test_palette_mask_is_judged_by_displayed_colour(tmp_path):
    # index 0 is white, index 1 black: the white pixels are the missing ones
    m = _blocks()
    index = np.where(m, 0, 1).astype(np.uint8)
    colormap = {0: (255, 255, 255, 255), 1: (0, 0, 0, 255)}
    path = _write(tmp_path / "loss.tif", index, photometric="PALETTE", colormap=colormap)
    with rasterio.open(path) as src:
        assert src.colorinterp[0] == ColorInterp.palette
    np.testing.assert_array_equal(read_mask(path), m)


def test_invert_flips_the_mask(tmp_path):
    m = _blocks()
    path = tmp_path / "loss.png"
    cv2.imwrite(str(path), (~m).astype(np.uint8) * 255)  # black = missing
    np.testing.assert_array_equal(read_mask(path, invert=True), m)


def test_size_mismatch_names_both_sizes(tmp_path):
    path = tmp_path / "loss.png"
    cv2.imwrite(str(path), np.zeros((200, 300), np.uint8))
    with pytest.raises(MaskError) as info:
        read_mask(path, shape=(342, 512))
    message = str(info.value)
    assert "300x200" in message and "512x342" in message and "loss.png" in message
    assert "\n" not in message


def test_missing_file_is_a_mask_error(tmp_path):
    with pytest.raises(MaskError, match="does not exist"):
        read_mask(tmp_path / "nope.png")


def test_directory_is_a_mask_error(tmp_path):
    with pytest.raises(MaskError, match="directory"):
        read_mask(tmp_path)


@pytest.mark.parametrize("content", [b"this is not an image" * 10, b""])
def test_corrupt_file_is_a_mask_error(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(MaskError, match=r"^cannot read mask .*x\.png: \S") as info:
        read_mask(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix,driver", [(".png", "PNG"), (".tif", "GTiff"), (".jpg", "JPEG")])
def test_truncated_file_is_a_mask_error(tmp_path, suffix, driver):
    # big enough that the image data (not just the header) is cut
    rng = np.random.default_rng(0)
    data = (rng.random((256, 256)) > 0.5).astype(np.uint8) * 255
    path = _write(tmp_path / f"loss{suffix}", data, driver=driver)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) * 6 // 10])
    with pytest.raises(MaskError, match="cannot read mask") as info:
        read_mask(path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# normalise_mask


def test_normalise_mask_rules():
    ints = np.array([[0, 1], [255, 0]], np.uint16)
    floats = np.array([[0.0, 0.2], [np.nan, -1.0]])
    bools = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(normalise_mask(ints), [[False, True], [True, False]])
    np.testing.assert_array_equal(normalise_mask(floats), [[False, True], [True, True]])
    out = normalise_mask(bools)
    np.testing.assert_array_equal(out, bools)
    assert out is not bools
    np.testing.assert_array_equal(normalise_mask(ints, invert=True), [[True, False], [False, True]])
    np.testing.assert_array_equal(normalise_mask(ints, threshold=127),
                                  [[False, False], [True, False]])


def test_normalise_mask_bands_and_alpha():
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 1] = 7
    expected = np.zeros((2, 3), bool)
    expected[0, 0] = True
    np.testing.assert_array_equal(normalise_mask(rgba, has_alpha=True), expected)
    assert normalise_mask(rgba).all()  # without has_alpha the opaque alpha marks everything


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 2, 2, 2)), np.zeros((0, 4)),
                                 np.array([["a", "b"]])])
def test_normalise_mask_rejects_bad_arrays(bad):
    with pytest.raises(MaskError):
        normalise_mask(bad)


# --------------------------------------------------------------------------------------------
# morphology


def _point(size=81):
    m = np.zeros((size, size), bool)
    m[size // 2, size // 2] = True
    return m


@pytest.mark.parametrize("radius", [1, 2, 5, 12, 20, 23, 35])
def test_dilating_a_pixel_gives_a_disk(radius):
    out = dilate(_point(), radius)
    lattice = sum(1 for y in range(-radius, radius + 1) for x in range(-radius, radius + 1)
                  if x * x + y * y <= radius * radius)
    assert out.dtype == bool
    assert out.sum() == lattice == disk(radius).sum()
    assert abs(out.sum() - np.pi * radius**2) < 4.5 * radius + 2  # Gauss circle problem
    c = 40
    np.testing.assert_array_equal(out[c - radius:c + radius + 1, c - radius:c + radius + 1],
                                  disk(radius).astype(bool))
    np.testing.assert_array_equal(erode(out, radius), _point())


@pytest.mark.parametrize("radius", [1, 4, 20, 21, 30])
def test_dilate_and_erode_match_scipy_including_borders(radius):
    rng = np.random.default_rng(radius)
    m = rng.random((90, 110)) > 0.995
    m[0, :5] = True
    structure = disk(radius).astype(bool)
    np.testing.assert_array_equal(dilate(m, radius), ndimage.binary_dilation(m, structure))
    blobs = dilate(m, radius + 3)
    np.testing.assert_array_equal(erode(blobs, radius),
                                  ndimage.binary_erosion(blobs, structure, border_value=1))


def test_radius_zero_is_a_copy_and_full_mask_is_not_eroded_from_the_border():
    m = _blocks()
    for op in (dilate, erode):
        out = op(m, 0)
        np.testing.assert_array_equal(out, m)
        assert out is not m
    full = np.ones((10, 12), bool)
    assert erode(full, 3).all()
    assert not dilate(np.zeros((10, 12), bool), 3).any()
    np.testing.assert_array_equal(dilate(m.astype(np.uint8) * 255, 1), dilate(m, 1))


@pytest.mark.parametrize("radius", [-1, 1.5, True, "2"])
def test_bad_radius_is_an_error(radius):
    with pytest.raises(MaskError, match="radius"):
        dilate(_blocks(), radius)


# --------------------------------------------------------------------------------------------
# synthetic paint-loss masks


def test_paint_loss_mask_is_deterministic_for_a_seed():
    a = paint_loss_mask((120, 160), seed=7)
    b = paint_loss_mask((120, 160), PaintLossConfig(seed=7))
    c = paint_loss_mask((120, 160), seed=8)
    assert a.dtype == bool and a.shape == (120, 160)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.02


@pytest.mark.parametrize("shape", [(32, 32), (100, 160), (384, 256)])
@pytest.mark.parametrize("coverage", [0.01, 0.05, 0.2])
def test_paint_loss_mask_reaches_the_target_coverage(shape, coverage):
    m = paint_loss_mask(shape, coverage=coverage, seed=1)
    assert abs(m.mean() - coverage) <= 0.2 * coverage


@pytest.mark.parametrize("crack_fraction", [0.0, 1.0])
def test_coverage_holds_for_pure_cracks_or_pure_blobs(crack_fraction):
    m = paint_loss_mask((200, 300), coverage=0.1, crack_fraction=crack_fraction, seed=2)
    assert abs(m.mean() - 0.1) <= 0.02


def test_paint_loss_mask_never_covers_everything():
    assert not paint_loss_mask((40, 40), coverage=MAX_COVERAGE).all()
    assert 0.85 < paint_loss_mask((40, 40), coverage=MAX_COVERAGE).mean() < 0.95
    assert not paint_loss_mask((1, 1), coverage=MAX_COVERAGE).any()
    assert not paint_loss_mask((50, 50), coverage=0.0).any()


def test_cracks_are_thin_and_blobs_are_not():
    shape, coverage = (256, 256), 0.08

    def kept_by_erosion(m):
        return erode(m, 1).sum() / m.sum()

    cracks = paint_loss_mask(shape, coverage=coverage, crack_fraction=1.0, seed=3)
    blobs = paint_loss_mask(shape, coverage=coverage, crack_fraction=0.0, seed=3)
    mixed = paint_loss_mask(shape, coverage=coverage, seed=3)
    assert kept_by_erosion(cracks) < 0.4     # 1-px erosion removes most of the cracks
    assert kept_by_erosion(blobs) > 0.6      # ... but not of the lacunae
    assert 0.35 < kept_by_erosion(mixed) < 0.75
    # width-1 cracks vanish entirely
    hairlines = paint_loss_mask(shape, coverage=coverage, crack_fraction=1.0, crack_width=(1, 1))
    assert kept_by_erosion(hairlines) < 0.05


def test_blobs_are_many_and_none_dominates():
    m = paint_loss_mask((400, 400), coverage=0.05, crack_fraction=0.0, seed=4)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    assert n - 1 >= 15
    assert areas.max() < 0.15 * m.sum()
    # sizes scale with max_blob_radius
    small = paint_loss_mask((400, 400), coverage=0.05, crack_fraction=0.0, seed=4,
                            min_blob_radius=1.0, max_blob_radius=3.0)
    assert mask_stats(small).components > 3 * (n - 1)


def test_overrides_do_not_change_the_given_config():
    config = PaintLossConfig(coverage=0.1)
    paint_loss_mask((64, 64), config, seed=5, coverage=0.02)
    assert config.coverage == 0.1 and config.seed == 0


@pytest.mark.parametrize("options", [
    {"coverage": 0.95}, {"coverage": -0.1}, {"coverage": float("nan")},
    {"crack_fraction": 1.5}, {"min_blob_radius": 0.0}, {"min_blob_radius": 5, "max_blob_radius": 4},
    {"crack_width": (0, 2)}, {"crack_width": (3, 2)}, {"crack_width": 2}, {"seed": -1},
    {"seed": 1.5}, {"colour": "red"},
])
def test_bad_synthetic_options_are_mask_errors(options):
    with pytest.raises(MaskError):
        paint_loss_mask((32, 32), **options)


@pytest.mark.parametrize("shape", [(0, 10), (10,), (10.0, 10), "big"])
def test_bad_synthetic_shape_is_a_mask_error(shape):
    with pytest.raises(MaskError, match="shape"):
        paint_loss_mask(shape)


# --------------------------------------------------------------------------------------------
# statistics


def test_mask_stats_counts_pixels_regions_and_extent():
    m = np.zeros((10, 20), bool)
    m[2:4, 3:6] = True      # 6 px
    m[4, 6] = True          # touches the first region diagonally: same 8-connected region
    m[7:9, 15:18] = True    # 6 px
    stats = mask_stats(m)
    assert stats == MaskStats(height=10, width=20, missing=13, fraction=13 / 200, components=2,
                              bbox=(2, 3, 9, 18))
    assert stats.known == 187 and not stats.empty
    empty = mask_stats(np.zeros((5, 6), bool))
    assert empty.missing == 0 and empty.components == 0 and empty.bbox is None and empty.empty


def test_check_mask_usable_refuses_nearly_full_masks():
    m = np.ones((50, 50), bool)
    m[0, :20] = False  # 0.8 % known
    with pytest.raises(MaskError, match=r"^mask covers 99\.2 % of the image: too few known"):
        check_mask_usable(m)
    with pytest.raises(MaskError, match=r"100\.0 %"):
        check_mask_usable(np.ones((4, 4), bool))
    assert check_mask_usable(m, min_known_fraction=0.005).missing == 2480


def test_check_mask_usable_accepts_empty_and_ordinary_masks():
    assert check_mask_usable(np.zeros((8, 8), bool)).empty
    stats = check_mask_usable(_blocks())
    assert stats.missing == _blocks().sum()


# --------------------------------------------------------------------------------------------
# package boundary


def test_masks_imports_nothing_else_of_the_project():
    code = ("import sys, masks; "
            "print(sorted(m for m in ('inpaint', 'descriptor', 'mrf', 'cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
