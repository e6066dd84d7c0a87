"""Whole panels: work regions, windowed I/O, memory plan, device fallback and Dask batches."""

import json

import numpy as np
import pytest
import rasterio
import skimage.data
import torch
from click.testing import CliRunner

import inpaint.inpainter as inpainter_module
import inpaint.streaming as streaming
from cli import main
from inpaint.errors import InpaintError
from inpaint.pipeline import RunConfig, run, run_file
from inpaint.plan import make_plan, parse_size
from inpaint.regions import owned_pixels, plan_regions

PIXEL = dict(descriptor="none", patch_step=3, passes=1)
# Tests that are not about worker processes run in this one: with the default (one worker per
# core) a run of four or more regions starts a process pool, seconds of start-up per run, and
# the pool only computes (the parent reads the windows and writes the output either way).
# test_parallel_regions_give_the_same_pixels_as_one_process pins the pool to this result.
SERIAL = dict(PIXEL, workers=1)


def _panel(height=240, width=300):
    return np.ascontiguousarray(skimage.data.astronaut()[:height, :width])


def _spots(shape, spots, size=(6, 9)):
    mask = np.zeros(shape, bool)
    for y, x in spots:
        mask[y:y + size[0], x:x + size[1]] = True
    return mask


SPOTS = [(30, 30), (40, 200), (120, 120), (200, 40), (190, 250), (100, 270)]


def _write(path, data, **profile):
    data = data if data.ndim == 3 else data[:, :, None]
    meta = dict(driver="GTiff", height=data.shape[0], width=data.shape[1], count=data.shape[2],
                dtype=data.dtype.name)
    meta.update(profile)
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(np.moveaxis(data, 2, 0))
    return path


def test_every_loss_is_owned_by_exactly_one_region():
    mask = _spots((240, 300), SPOTS)
    mask[60:200, 60:90] = True          # one group larger than the window below
    regions, labels = plan_regions(mask, margin=16, max_side=80)
    owned = np.zeros(mask.shape, int)
    for r in regions:
        r0, c0, r1, c1 = r.window
        assert r1 - r0 <= 80 and c1 - c0 <= 80
        owned[r0:r1, c0:c1] += owned_pixels(r, labels)
    assert np.array_equal(owned, mask.astype(int))


def test_windowed_file_run_equals_in_memory_run(tmp_path, monkeypatch):
    """Regions read window by window from the file and an output streamed in bands of a few
    rows give exactly the in-memory result (same regions, same windows)."""
    image = _panel()
    mask = _spots(image.shape[:2], SPOTS)
    whole = run(image, mask, RunConfig(**SERIAL)).image
    src = _write(tmp_path / "panel.tif", image, tiled=True, blockxsize=64, blockysize=64)
    msk = _write(tmp_path / "mask.tif", mask.astype(np.uint8))
    monkeypatch.setattr(streaming, "STREAM_BAND_BYTES", 5000)      # ~5 rows per band
    report = run_file(str(src), str(msk), str(tmp_path / "out.tif"), RunConfig(**SERIAL))
    with rasterio.open(tmp_path / "out.tif") as out:
        got = np.moveaxis(out.read(), 0, 2)
    assert np.array_equal(got, whole)
    assert report["mrf"]["regions"] == len(plan_regions(mask, 32, 512)[0]) > 1


def test_result_inside_a_region_does_not_depend_on_the_window_beyond_the_margin_rule():
    """Groups that fit the window are unaffected by the window size; a group larger than the
    window is tiled (documented) but still filled, and nothing outside the mask changes."""
    image = _panel()
    mask = _spots(image.shape[:2], [(20, 20), (20, 150), (100, 40)])
    big = np.zeros_like(mask)
    big[180:230, 200:280] = True   # with its 32-px margins wider than the 110-px window: tiled
    mask_all = mask | big
    a = run(image, mask_all, RunConfig(**SERIAL, window=512)).image
    b = run(image, mask_all, RunConfig(**SERIAL, window=110)).image
    _, labels = plan_regions(mask_all, 32, 512)
    merged_with_big = np.isin(labels, np.unique(labels[big]))
    small_groups = mask_all & ~merged_with_big
    assert small_groups.sum() == 3 * 54   # three 6x9 groups far from the big one
    assert np.array_equal(a[small_groups], b[small_groups])
    assert not np.array_equal(a[big], b[big])  # the tiled group is the documented exception
    assert np.array_equal(a[~mask_all], image[~mask_all])
    assert np.array_equal(b[~mask_all], image[~mask_all])


def test_profile_tags_nodata_and_icc_survive_a_run(tmp_path):
    image = (_panel(120, 120).astype(np.uint16) * 257)
    icc = bytes(range(256)) * 2
    src = _write(tmp_path / "panel.tif", image, crs="EPSG:32631", nodata=0,
                 transform=rasterio.Affine(0.05, 0, 4000, 0, -0.05, 9000), compress="deflate",
                 tiled=True, blockxsize=64, blockysize=64, photometric="RGB")
    with rasterio.open(src, "r+") as dst:
        dst.update_tags(TIFFTAG_XRESOLUTION="600", TIFFTAG_YRESOLUTION="600",
                        TIFFTAG_RESOLUTIONUNIT="2", TIFFTAG_ARTIST="Hubert van Eyck")
    mask = _spots(image.shape[:2], [(30, 30), (80, 70)])
    msk = _write(tmp_path / "mask.tif", mask.astype(np.uint8))
    run_file(str(src), str(msk), str(tmp_path / "out.tif"), RunConfig(**PIXEL))
    with rasterio.open(src) as a, rasterio.open(tmp_path / "out.tif") as b:
        assert b.dtypes == a.dtypes and b.count == a.count and b.nodata == a.nodata == 0
        assert b.crs == a.crs and b.transform == a.transform
        assert b.profile["compress"] == "deflate" and b.profile["tiled"]
        for key in ("TIFFTAG_XRESOLUTION", "TIFFTAG_RESOLUTIONUNIT", "TIFFTAG_ARTIST"):
            assert b.tags()[key] == a.tags()[key]
        before, after = a.read(), b.read()
    assert np.array_equal(after[:, ~mask], before[:, ~mask])
    assert del_icc_ok(tmp_path, icc)


def del_icc_ok(tmp_path, icc) -> bool:
    """An ICC profile carried by GDAL's COLOR_PROFILE metadata is written back."""
    import base64

    image = _panel(64, 64)
    src = tmp_path / "icc.tif"
    with rasterio.open(src, "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8",
                       SOURCE_ICC_PROFILE=base64.b64encode(icc).decode()) as dst:
        dst.write(np.moveaxis(image, 2, 0))
    mask = _spots((64, 64), [(20, 20)])
    msk = _write(tmp_path / "icc_mask.tif", mask.astype(np.uint8))
    run_file(str(src), str(msk), str(tmp_path / "icc_out.tif"), RunConfig(**PIXEL))
    with rasterio.open(tmp_path / "icc_out.tif") as out:
        written = out.tags(ns="COLOR_PROFILE").get("SOURCE_ICC_PROFILE")
    return written is not None and base64.b64decode(written) == icc


def test_memory_plan_shrinks_windows_then_refuses_a_budget_too_small():
    args = dict(shape=(8000, 8000), bands=3, itemsize=2, missing=2_000_000, margin=32,
                ir_channels=32, descriptor_dim=128)
    roomy = make_plan(budget=parse_size("8GB"), max_window=1024, **args)
    tight = make_plan(budget=parse_size("2GB"), max_window=1024, **args)
    assert roomy.window == 1024 and tight.window < roomy.window
    assert tight.predicted_peak_bytes <= parse_size("2GB")
    with pytest.raises(InpaintError, match="too small"):
        make_plan(budget=parse_size("600MB"), max_window=1024, **args)
    assert parse_size("4GB") == 4 * 10**9 and parse_size("512MiB") == 512 * 2**20


def test_budget_too_small_is_one_clear_error_and_nothing_is_written(tmp_path):
    image = _panel(96, 96)
    src = _write(tmp_path / "panel.tif", image)
    msk = _write(tmp_path / "mask.tif", _spots((96, 96), [(40, 40)]).astype(np.uint8))
    out = tmp_path / "out.tif"
    result = CliRunner().invoke(main, ["run", str(src), "--mask", str(msk), "-o", str(out),
                                       "--memory-budget", "100MB", "--descriptor", "none", "-q"])
    assert result.exit_code == 1
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "too small" in lines[0] and "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif",
                                                                               "panel.tif"]


def test_device_out_of_memory_retries_in_smaller_windows(monkeypatch, caplog):
    image = _panel()
    mask = _spots(image.shape[:2], [(100, 100)], size=(40, 60))
    real = inpainter_module.RegionInpainter.inpaint
    calls = []

    def flaky(self, colour, hole, progress=None, own=None):
        calls.append(hole.shape)
        if max(hole.shape) > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, colour, hole, progress, own)

    monkeypatch.setattr(inpainter_module.RegionInpainter, "inpaint", flaky)
    out = run(image, mask, RunConfig(**SERIAL)).image
    assert len(calls) > 2 and "out of memory" in caplog.text
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask] * 0)


def _folder(tmp_path):
    import cv2

    from masks import paint_loss_mask

    folder = tmp_path / "in"
    folder.mkdir()
    for k, name in enumerate(["astronaut", "coffee"]):
        img = getattr(skimage.data, name)()[:96, :96]
        cv2.imwrite(str(folder / f"{name}.png"), img[:, :, ::-1])
        mask = paint_loss_mask(img.shape[:2], coverage=0.03, seed=k)
        cv2.imwrite(str(folder / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_batch_on_a_local_cluster_records_failures_and_resumes(tmp_path):
    folder, out = _folder(tmp_path), tmp_path / "out"
    args = ["batch", str(folder), "-o", str(out), "--workers", "1", "--descriptor", "none",
            "--patch-step", "3", "--passes", "1", "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1
    summary = json.loads((out / "summary.json").read_text())
    status = {r["name"]: r["status"] for r in summary["items"]}
    assert status == {"astronaut.png": "done", "coffee.png": "done", "broken.png": "failed"}
    assert "astronaut_mask.png" not in status                 # masks are not panels
    done = next(r for r in summary["items"] if r["name"] == "coffee.png")
    assert done["seconds"] > 0 and done["peak_rss_bytes"] > 0
    stamp = (out / "coffee.png").stat().st_mtime_ns
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 1
    status = {r["name"]: r["status"] for r in json.loads((out / "summary.json").read_text())
              ["items"]}
    assert status["coffee.png"] == "skipped" and status["astronaut.png"] == "skipped"
    assert (out / "coffee.png").stat().st_mtime_ns == stamp


def test_batch_of_tiles_equals_the_run_of_the_whole_panel(tmp_path):
    """Identical pixels for every loss group whose work region lies inside the window of each
    tile owning part of it (the documented overlap condition); checked group by group."""
    import cv2

    from inpaint.batch import tile_items

    image = _panel()
    mask = _spots(image.shape[:2], [(20, 20), (20, 120), (20, 200), (110, 60), (124, 160),
                                    (110, 250), (200, 20), (200, 122), (190, 225)])
    cv2.imwrite(str(tmp_path / "panel.png"), image[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "panel_mask.png"), mask.astype(np.uint8) * 255)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(tmp_path / "panel.png"), "-o", str(out),
                                       "--tile", "128", "--overlap", "48", "--workers", "1",
                                       "--descriptor", "none", "--patch-step", "3",
                                       "--passes", "1", "-q"])
    assert result.exit_code == 0, result.output
    stitched = cv2.imread(str(out / "panel.png"))[:, :, ::-1]
    whole = run(image, mask, RunConfig(**SERIAL)).image
    assert np.array_equal(stitched[~mask], image[~mask])
    tiles = tile_items(tmp_path / "panel.png", tmp_path / "panel_mask.png", out, 128, 48)
    regions, labels = plan_regions(mask, 32, 512)
    checked = 0
    for region in regions:
        own = labels == region.group
        owners = [t for t in tiles if own[t.core[0]:t.core[2], t.core[1]:t.core[3]].any()]
        inside = all(t.window[0] <= region.window[0] and t.window[1] <= region.window[1] and
                     t.window[2] >= region.window[2] and t.window[3] >= region.window[3]
                     for t in owners)
        if inside:
            assert np.array_equal(stitched[own], whole[own]), region
            checked += 1
    assert checked >= len(regions) // 2 and checked >= 3


def test_parallel_regions_give_the_same_pixels_as_one_process():
    image = _panel()
    mask = _spots(image.shape[:2], SPOTS)
    # region worker processes are a CPU feature (on a GPU one process drives the device):
    # the CPU is named so that the parallel path is tested on GPU machines too
    cpu = dict(PIXEL, device="cpu")
    one = run(image, mask, RunConfig(**cpu, workers=1))
    two = run(image, mask, RunConfig(**cpu, workers=2, memory_budget=parse_size("8GB")))
    assert two.report["plan"]["workers"] == 2 and two.report["mrf"]["regions"] >= 4
    assert np.array_equal(one.image, two.image)
