"""The command line: main job end to end, and every expected bad input ends with one clear line,
a non-zero exit, no traceback, no output file and an untouched input."""

import hashlib
import importlib
import json

import numpy as np
import pytest
import rasterio
import skimage.data
import torch
from click.testing import CliRunner
from hardware import cuda_devices, faiss_gpus
from rasters import write_raster as _write

from cli import main
from masks import paint_loss_mask

FAST = ["--descriptor", "none", "--patch-step", "3", "--passes", "1", "-q"]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _invoke(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def _assert_clean_failure(result, match):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error:") and match in lines[0], lines[0]


def test_run_writes_only_masked_pixels_and_a_report(scene):
    tmp, img, msk, image, mask = scene
    out, report, preview = tmp / "out.png", tmp / "r.json", tmp / "p.png"
    result = _invoke(["run", img, "--mask", msk, "-o", out, "--report", report, "--preview",
                      preview, *FAST])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        got = np.moveaxis(src.read(), 0, 2)
    assert np.array_equal(got[~mask], image[~mask])
    assert not np.array_equal(got[mask], image[mask] * 0)
    data = json.loads(report.read_text())
    assert data["mrf"]["nodes"] > 0 and "search" in data["timings"]
    assert preview.stat().st_size > 0


def test_run_16_bit_geotiff_keeps_dtype_and_profile(tmp_path):
    rgb = skimage.data.astronaut()[100:180, 100:180].astype(np.uint16) * 257
    profile = dict(crs="EPSG:32631", transform=rasterio.Affine(0.1, 0, 500000, 0, -0.1, 5600000),
                   tiled=True, blockxsize=32, blockysize=32, compress="lzw", photometric="RGB")
    img = _write(tmp_path / "panel.tif", rgb, **profile)
    mask = paint_loss_mask(rgb.shape[:2], coverage=0.05, seed=1)
    msk = _write(tmp_path / "loss.tif", mask.astype(np.uint8), nbits=1)
    out = tmp_path / "out.tif"
    result = _invoke(["run", img, "--mask", msk, "-o", out, *FAST])
    assert result.exit_code == 0, result.output
    with rasterio.open(img) as a, rasterio.open(out) as b:
        assert b.dtypes == a.dtypes == ("uint16",) * 3
        assert b.crs == a.crs and b.transform == a.transform
        assert b.profile["compress"] == "lzw" and b.profile["blockxsize"] == 32
        before, after = a.read(), b.read()
    assert np.array_equal(after[:, ~mask], before[:, ~mask])


def test_empty_mask_copies_through_and_says_so(scene):
    tmp, img, msk, image, mask = scene
    empty = _write(tmp / "empty.png", np.zeros(image.shape[:2], np.uint8))
    out = tmp / "out.png"
    result = _invoke(["run", img, "--mask", empty, "-o", out, *FAST[:-1]])
    assert result.exit_code == 0
    assert "mask is empty" in result.output
    with rasterio.open(out) as src:
        assert np.array_equal(np.moveaxis(src.read(), 0, 2), image)


def test_existing_output_is_not_overwritten_without_force(scene):
    tmp, img, msk, *_ = scene
    out = tmp / "out.png"
    out.write_bytes(b"keep me")
    _assert_clean_failure(_invoke(["run", img, "--mask", msk, "-o", out, *FAST]), "--force")
    assert out.read_bytes() == b"keep me"
    assert _invoke(["run", img, "--mask", msk, "-o", out, "--force", *FAST]).exit_code == 0
    assert out.read_bytes() != b"keep me"


def _bad_cases(tmp, img, msk, image):
    small = _write(tmp / "small.png", np.zeros((50, 40), np.uint8))
    full = _write(tmp / "full.png", np.full(image.shape[:2], 255, np.uint8))
    corrupt = tmp / "corrupt.png"
    corrupt.write_bytes(img.read_bytes()[:300])
    garbage_mask = tmp / "garbage.png"
    garbage_mask.write_bytes(b"\x89PNG not really")
    int32 = _write(tmp / "int32.tif", image.astype(np.int32))
    bad_ckpt = tmp / "bad.pt"
    bad_ckpt.write_bytes(b"not a checkpoint")
    tampered = tmp / "tampered.pt"
    payload = torch.load(
        importlib.import_module("descriptor.checkpoint").resolve("v32"), weights_only=True)
    payload["state_dict"]["encoder.0.bias"] += 1.0
    torch.save(payload, tampered)
    # a CUDA device that does not exist: any on a CPU-only machine, one past the last on a GPU one
    absent_cuda = f"cuda:{cuda_devices()}" if cuda_devices() else "cuda"
    return {
        "size mismatch": (["--mask", small], "is 40x50 pixels but the image is 96x96"),
        "mask covers everything": (["--mask", full], "too few known pixels"),
        "missing image": (["--mask", msk], "no such file", tmp / "nope.png"),
        "corrupt image": (["--mask", msk], "corrupt", corrupt),
        "corrupt mask": (["--mask", garbage_mask], "cannot read mask"),
        "unsupported dtype": (["--mask", msk], "unsupported data type", int32),
        "corrupt checkpoint": (["--mask", msk, "--descriptor", bad_ckpt], "not a readable"),
        "tampered checkpoint": (["--mask", msk, "--descriptor", tampered], "integrity"),
        "unknown descriptor": (["--mask", msk, "--descriptor", "v999"], "not found"),
        "no cuda": (["--mask", msk, "--device", absent_cuda], "CUDA"),
        # malformed on any machine, GPU or not: not a question of what torch sees
        "malformed cuda": (["--mask", msk, "--device", "cuda:-1"], "unknown device"),
        "unwritable folder": (["--mask", msk], "does not exist", None, tmp / "no" / "out.png"),
    }


@pytest.mark.parametrize("case", ["size mismatch", "mask covers everything", "missing image",
                                  "corrupt image", "corrupt mask", "unsupported dtype",
                                  "corrupt checkpoint", "tampered checkpoint",
                                  "unknown descriptor", "no cuda", "malformed cuda",
                                  "unwritable folder"])
def test_bad_input_gives_one_clear_error_and_no_output(scene, case):
    tmp, img, msk, image, mask = scene
    spec = _bad_cases(tmp, img, msk, image)[case]
    options, match = spec[0], spec[1]
    source = spec[2] if len(spec) > 2 and spec[2] is not None else img
    out = spec[3] if len(spec) > 3 else tmp / "out.png"
    before = {p.name: _digest(p) for p in tmp.iterdir() if p.is_file()}
    args = ["run", source, *options, "-o", out, "--descriptor", "none", "-q"]
    if "--descriptor" in options:
        args = ["run", source, *options, "-o", out, "-q"]
    result = _invoke(args)
    _assert_clean_failure(result, match)
    assert not out.exists()
    after = {p.name: _digest(p) for p in tmp.iterdir() if p.is_file()}
    assert after == before, "an input was modified or a stray file was left behind"


def test_usage_errors_exit_2(scene):
    tmp, img, msk, *_ = scene
    result = _invoke(["run", img, "-o", tmp / "x.png"])
    assert result.exit_code == 2 and "--mask" in result.output


def test_info_lists_builtin_descriptors():
    result = _invoke(["info"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()
            if line.startswith("  v")}
    assert rows["v32"][2] == "32" and rows["v128"][2] == "128"
    assert f"FAISS GPUs: {faiss_gpus()}" in result.output


def test_train_reads_folders_and_reduces_large_images(tmp_path):
    """A folder contributes its image files (any depth, sorted, other and hidden files skipped);
    --max-side reduces only the larger images and is recorded in the checkpoint."""
    from inpaint.training import load_training_image

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / ".hidden").mkdir()
    big = (skimage.data.astronaut()[:300, :200]).copy()
    _write(photos / "sub" / "b.png", big)
    _write(photos / "a.tif", skimage.data.coffee()[:90, :120].copy())
    _write(photos / ".hidden" / "c.png", big)
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "folder.pt"
    result = _invoke(["train", "skimage:brick", photos, "--arch", "v32", "--patches", "300",
                      "--epochs", "1", "--max-side", "150", "-o", out, "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    meta = __import__("descriptor").load_checkpoint(out).training
    assert meta["data"] == ["skimage:brick", str(photos / "a.tif"), str(photos / "sub" / "b.png")]
    assert meta["max_side"] == 150
    # reduced: longer side 150, aspect kept, area-averaged (the mean survives), still in [0, 1]
    reduced = load_training_image(str(photos / "sub" / "b.png"), max_side=150)
    full = load_training_image(str(photos / "sub" / "b.png"))
    assert reduced.shape == (150, 100, 3) and full.shape == (300, 200, 3)
    assert 0.0 <= reduced.min() and reduced.max() <= 1.0
    np.testing.assert_allclose(reduced.mean(axis=(0, 1)), full.mean(axis=(0, 1)), atol=2e-3)
    np.testing.assert_allclose(reduced[10, 20], full[20:22, 40:42].mean(axis=(0, 1)), atol=1e-6)
    small = load_training_image(str(photos / "a.tif"), max_side=150)
    assert small.shape == (90, 120, 3)


def test_train_refuses_empty_folders_and_masks_with_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images")
    out = tmp_path / "x.pt"
    _assert_clean_failure(_invoke(["train", empty, "--patches", "100", "-o", out, "-q"]),
                          "holds no image files")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        _write(photos / name, skimage.data.coffee()[:64, :64].copy())
    mask = _write(tmp_path / "m.png", np.zeros((64, 64), np.uint8))
    _assert_clean_failure(_invoke(["train", photos, "--mask", mask, "--patches", "100", "-o",
                                   out, "-q"]), "cannot be combined with folders")
    _assert_clean_failure(_invoke(["train", photos / "a.png", "--mask", mask, "--max-side", "32",
                                   "--patches", "100", "-o", out, "-q"]),
                          "cannot be combined with max_side")
    assert not out.exists()
    # an image found inside a folder is an input too: never overwritten, --force or not
    inside = photos / "b.png"
    before = inside.read_bytes()
    _assert_clean_failure(_invoke(["train", photos, "--patches", "100", "-o", inside, "--force",
                                   "-q"]), "an input is never overwritten")
    assert inside.read_bytes() == before
    # images too small for one training crop: one line, no traceback
    _assert_clean_failure(_invoke(["train", photos, "--max-side", "8", "--patches", "100",
                                   "-o", out, "-q"]), "no fully known")
    assert not out.exists()


def test_train_then_finetune_small(tmp_path):
    out = tmp_path / "tiny.pt"
    result = _invoke(["train", "skimage:brick", "skimage:coins", "--arch", "v32", "--patches",
                      "400", "--epochs", "2", "--batch-size", "64", "-o", out, "-q",
                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    tuned = tmp_path / "tuned.pt"
    mask = _write(tmp_path / "m.png", (paint_loss_mask((512, 512), coverage=0.05) * 255)
                  .astype(np.uint8))
    result = _invoke(["finetune", out, "skimage:brick", "--mask", mask, "--patches", "300",
                      "--epochs", "1", "-o", tuned, "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    meta = __import__("descriptor").load_checkpoint(tuned).training
    assert meta["finetuned_from"].endswith("tiny.pt") and meta["patches"] == 300
    again = _invoke(["train", "skimage:brick", "--arch", "v32", "--patches", "400", "-o", out,
                     "-q"])
    _assert_clean_failure(again, "--force")
