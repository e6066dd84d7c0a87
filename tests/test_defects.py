"""Regression tests for the defects found by issue 11 (each failed before its fix)."""

import hashlib
import json
import os

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from rasters import read_raster as _read
from rasters import write_raster as _write

from cli import main

FAST = ["--descriptor", "none", "--patch-step", "3", "--passes", "1", "-q"]


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_clean_failure(result, match, code=1):
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error:") and match in lines[0], lines[0]


# ------------------------------------------------------------------ finding 1: inputs overwritten
def _collisions(tmp, img, msk):
    """(extra options, -o) pairs where some output is an input, by name, symlink or hard link."""
    (tmp / "link_to_mask.png").symlink_to(msk)
    os.link(img, tmp / "hard_image.png")
    os.link(msk, tmp / "hard_mask.json")
    return {
        "-o is the mask": ([], msk),
        "--report is the image": (["--report", img], tmp / "o.png"),
        "--preview is the image": (["--preview", img], tmp / "o.png"),
        "-o is a symlink to the mask": ([], tmp / "link_to_mask.png"),
        "-o is a hard link of the image": ([], tmp / "hard_image.png"),
        "--report is a hard link of the mask": (["--report", tmp / "hard_mask.json"],
                                                tmp / "o.png"),
        "--preview through another folder name": (["--preview", tmp / "." / "panel.png"],
                                                  tmp / "o.png"),
    }


@pytest.mark.parametrize("case", ["-o is the mask", "--report is the image",
                                  "--preview is the image", "-o is a symlink to the mask",
                                  "-o is a hard link of the image",
                                  "--report is a hard link of the mask",
                                  "--preview through another folder name"])
def test_no_output_may_be_an_input_even_with_force(scene, case):
    tmp, img, msk, *_ = scene
    options, out = _collisions(tmp, img, msk)[case]
    before = _digests(tmp)
    result = _invoke(["run", img, "--mask", msk, "-o", out, *options, "--force", *FAST])
    _assert_clean_failure(result, "an input is never overwritten")
    assert _digests(tmp) == before
    assert not (tmp / "o.png").exists()


def test_no_output_may_be_the_descriptor_checkpoint(scene):
    from descriptor.checkpoint import resolve

    tmp, img, msk, *_ = scene
    ckpt = tmp / "mine.pt"
    ckpt.write_bytes(resolve("v32").read_bytes())
    before = _digests(tmp)
    result = _invoke(["run", img, "--mask", msk, "-o", tmp / "o.png", "--report", ckpt,
                      "--descriptor", ckpt, "--force", "-q"])
    _assert_clean_failure(result, "descriptor checkpoint")
    assert _digests(tmp) == before


def test_two_outputs_may_not_be_one_file(scene):
    tmp, img, msk, *_ = scene
    result = _invoke(["run", img, "--mask", msk, "-o", tmp / "o.png", "--preview",
                      tmp / "o.png", "--force", *FAST])
    _assert_clean_failure(result, "same file")
    assert not (tmp / "o.png").exists()


# ------------------------------------------------ findings 3 and 9: every output checked first
@pytest.mark.parametrize("case", ["report folder missing", "report parent is a file",
                                  "preview folder missing", "preview exists",
                                  "report exists", "preview not png"])
def test_a_bad_report_or_preview_path_writes_nothing(scene, case):
    tmp, img, msk, *_ = scene
    (tmp / "afile").write_text("x")
    (tmp / "old.json").write_text("{}")
    (tmp / "old.png").write_bytes(b"old")
    options, match = {
        "report folder missing": (["--report", tmp / "no" / "r.json"], "does not exist"),
        "report parent is a file": (["--report", tmp / "afile" / "r.json"], "not a folder"),
        "preview folder missing": (["--preview", tmp / "no" / "p.png"], "does not exist"),
        "preview exists": (["--preview", tmp / "old.png"], "--force"),
        "report exists": (["--report", tmp / "old.json"], "--force"),
        "preview not png": (["--preview", tmp / "p.jpg"], ".png"),
    }[case]
    before = _digests(tmp)
    result = _invoke(["run", img, "--mask", msk, "-o", tmp / "o.png", *options, *FAST])
    _assert_clean_failure(result, match)
    assert not (tmp / "o.png").exists(), "the image was written although an output was bad"
    assert _digests(tmp) == before


def test_output_naming_an_existing_folder_exits_1(scene):
    tmp, img, msk, *_ = scene
    (tmp / "outdir").mkdir()
    result = _invoke(["run", img, "--mask", msk, "-o", tmp / "outdir", *FAST])
    _assert_clean_failure(result, "is a folder")
    assert not any((tmp / "outdir").iterdir())


def test_report_and_preview_are_written_when_all_paths_are_good(scene):
    tmp, img, msk, image, mask = scene
    out, report, preview = tmp / "o.png", tmp / "r.json", tmp / "p.png"
    result = _invoke(["run", img, "--mask", msk, "-o", out, "--report", report, "--preview",
                      preview, *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["mask"]["missing"] == int(mask.sum())
    assert np.array_equal(_read(out)[~mask], image[~mask]) and preview.stat().st_size > 0


# ------------------------------------------------- finding 2: no traceback for impossible plans
def test_plan_tries_the_smallest_window_and_its_error_is_consistent():
    import re

    from inpaint.errors import InpaintError
    from inpaint.plan import make_plan

    kw = dict(shape=(1000, 1000), bands=3, itemsize=1, missing=5000, margin=32, ir_channels=0,
              descriptor_dim=243, workers=1, patch=9)
    smallest = 2 * 32 + 9 + 1
    floor_cost = make_plan(**kw, budget=10**12, max_window=smallest).predicted_peak_bytes
    plan = make_plan(**kw, budget=floor_cost, max_window=512)   # 512 -> 362 -> ... -> 74
    assert plan.window == smallest
    for budget in range(floor_cost - 50 * 2**20, floor_cost + 400 * 2**20, 25 * 2**20):
        try:
            plan = make_plan(**kw, budget=budget, max_window=512)
        except InpaintError as exc:
            need = float(re.search(r"needs about ([\d,]+) MiB", str(exc))[1].replace(",", ""))
            assert need > budget / 2**20, str(exc)   # never "X is too small ... needs < X"
        else:
            assert smallest <= plan.window <= 512 and plan.predicted_peak_bytes <= budget


@pytest.mark.parametrize("options", [["--patch-size", "200", "--memory-budget", "2GB"],
                                     ["--patch-size", "31", "--workers", "1",
                                      "--memory-budget", "1100MiB"],
                                     ["--patch-size", "31", "--workers", "1",
                                      "--memory-budget", "1400MiB"]])
def test_large_patches_never_give_a_traceback(tmp_path, options):
    # 128 px: the plan used to step 192 -> 135 -> 95, a window too small for a 31 px patch
    image = skimage.data.astronaut()[140:268, 170:298]
    mask = np.zeros(image.shape[:2], bool)
    mask[60:64, 50:56] = True
    img = _write(tmp_path / "panel.png", image)
    msk = _write(tmp_path / "loss.png", (mask * 255).astype(np.uint8))
    out = tmp_path / "o.png"
    result = _invoke(["run", img, "--mask", msk, "-o", out, "--descriptor", "none",
                      "--passes", "1", "--iterations", "2", "-q", *options])
    if result.exit_code == 0:
        assert np.array_equal(_read(out)[~mask], image[~mask])
    else:
        _assert_clean_failure(result, "memory budget")
        assert not out.exists()


# ------------------------------------------------------------ finding 4: small images restored
@pytest.mark.parametrize("size", [(1, 2), (3, 3), (5, 5), (9, 11), (15, 15), (2, 40), (24, 17)])
def test_small_images_are_restored_not_refused(tmp_path, size):
    h, w = size
    rng = np.random.default_rng(h * 100 + w)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 2, w // 2] = True
    img = _write(tmp_path / "s.png", image)
    msk = _write(tmp_path / "m.png", mask.astype(np.uint8) * 255)
    out, report = tmp_path / "o.png", tmp_path / "r.json"
    result = _invoke(["run", img, "--mask", msk, "-o", out, "--report", report,
                      "--memory-budget", "100GB", "--descriptor", "none", "--passes", "1"])
    assert result.exit_code == 0, result.output
    got = _read(out)
    assert np.array_equal(got[~mask], image[~mask]), "only masked pixels may change"
    fallbacks = json.loads(report.read_text())["mrf"].get("fallbacks", [])
    if min(h, w) <= 9:   # no 9x9 patch fits: the report and the log say how it was restored
        assert fallbacks and fallbacks[0]["method"] and "9x9" in fallbacks[0]["reason"]
        assert "restored by" in result.stderr
    if max(h, w) < 5:    # nothing but diffusion can work: the fill blends the neighbours
        lo, hi = image[~mask].min(0), image[~mask].max(0)
        assert np.all(got[mask] >= lo) and np.all(got[mask] <= hi)


def test_a_window_without_known_patches_falls_back_in_run():
    from inpaint.pipeline import RunConfig, run

    rng = np.random.default_rng(3)
    image = rng.random((30, 30, 3)).astype(np.float32)
    mask = np.zeros((30, 30), bool)
    mask[::6, :] = True      # every 9x9 patch meets a masked row; 5x5 ones do not
    out = run(image, mask, RunConfig(descriptor="none", passes=1, workers=1))
    assert np.array_equal(out.image[~mask], image[~mask])
    assert np.isfinite(out.image).all() and not np.array_equal(out.image[mask], image[mask])
    assert out.report["mrf"]["fallbacks"][0]["method"].startswith("pixel-mode MRF, 5x5")


# ------------------------------------------------------ finding 5: the float32 rule, enforced
@pytest.mark.parametrize("bad", ["above 1", "negative", "nan", "inf"])
def test_float32_outside_0_1_or_nan_is_refused_with_the_rule(tmp_path, bad):
    image = (skimage.data.astronaut()[140:236, 170:266] / 255.0).astype(np.float32)
    mask = np.zeros(image.shape[:2], bool)
    mask[40:46, 40:50] = True
    value = {"above 1": 3.5, "negative": -0.25, "nan": np.nan, "inf": np.inf}[bad]
    image[30, 35, 1] = value                # a known pixel next to the loss
    img = _write(tmp_path / "f.tif", image)
    msk = _write(tmp_path / "m.png", mask.astype(np.uint8) * 255)
    before = _digests(tmp_path)
    result = _invoke(["run", img, "--mask", msk, "-o", tmp_path / "o.tif", *FAST])
    _assert_clean_failure(result, "float32 images must hold finite values in [0, 1]")
    assert _digests(tmp_path) == before and not (tmp_path / "o.tif").exists()


def test_float32_in_range_with_nan_inside_the_mask_is_restored_in_range():
    from inpaint.pipeline import RunConfig, run

    image = (skimage.data.astronaut()[140:236, 170:266] / 255.0).astype(np.float32)
    mask = np.zeros(image.shape[:2], bool)
    mask[40:46, 40:50] = True
    image[mask] = np.nan                    # missing pixels may hold anything
    out = run(image, mask, RunConfig(descriptor="none", passes=1, workers=1)).image
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert np.array_equal(out[~mask], image[~mask])


# ------------------------------------------------ finding 6: batch outputs are never its inputs
def _panels(folder, names=("a", "b")):
    folder.mkdir(exist_ok=True)
    for k, name in enumerate(names):
        image = skimage.data.astronaut()[k * 40:k * 40 + 64, 100:164]
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[30:34, 30:36] = 255
        _write(folder / f"{name}.png", image)
        _write(folder / f"{name}_mask.png", mask)
    return folder


@pytest.mark.parametrize("case", ["same folder", "same folder via a symlink",
                                  "tile output is the panel"])
def test_batch_refuses_an_output_folder_that_holds_its_inputs(tmp_path, case):
    src = _panels(tmp_path / "src")
    (tmp_path / "alias").symlink_to(src)
    args = {"same folder": [src, "-o", src],
            "same folder via a symlink": [src, "-o", tmp_path / "alias"],
            "tile output is the panel": [src / "a.png", "-o", src, "--tile", "64"]}[case]
    before = _digests(src)
    result = _invoke(["batch", *args, "--force", *FAST])
    _assert_clean_failure(result, "choose another")
    assert _digests(src) == before and not (src / "summary.json").exists()


@pytest.mark.parametrize("where", ["afile/out", "afile"])
def test_batch_output_folder_under_a_file_is_one_clear_error(tmp_path, where):
    src = _panels(tmp_path / "src")
    (tmp_path / "afile").write_text("x")
    result = _invoke(["batch", src, "-o", tmp_path / where, *FAST])
    _assert_clean_failure(result, "is a file, not a folder")     # exit 1, not a usage error
    assert (tmp_path / "afile").read_text() == "x"


def test_a_mask_without_its_panel_is_not_a_panel(tmp_path, caplog):
    from inpaint.batch import folder_items

    src = _panels(tmp_path / "src")
    (src / "b.png").unlink()                      # b_mask.png is left without its panel
    items = folder_items(src, tmp_path / "out", "{stem}_mask.png")
    assert [item.name for item in items] == ["a.png"]
    assert "b_mask.png" in caplog.text
    assert all(os.path.isabs(p) for item in items for p in (item.input, item.mask, item.output))


# ------------------------------------------------ finding 8: one Error line, no GDAL noise
@pytest.mark.parametrize("case", ["truncated tiff", "truncated tiled lzw tiff", "empty file",
                                  "text file", "random bytes"])
def test_unreadable_images_give_only_the_error_line(tmp_path, case):
    image = skimage.data.astronaut()[:128, :128]
    full = _write(tmp_path / "full.tif", image)
    lzw = _write(tmp_path / "lzw.tif", image, tiled=True, blockxsize=32, blockysize=32,
                 compress="lzw")
    bad = tmp_path / "bad.tif"
    bad.write_bytes({"truncated tiff": full.read_bytes()[:20000],
                     "truncated tiled lzw tiff": lzw.read_bytes()[:len(lzw.read_bytes()) // 2],
                     "empty file": b"",
                     "text file": b"hello, this is not an image\n" * 20,
                     "random bytes": np.random.default_rng(0).bytes(5000)}[case])
    np_mask = np.zeros((128, 128), np.uint8)
    np_mask[60:64, 60:64] = 255
    msk = _write(tmp_path / "m.png", np_mask)
    result = _invoke(["run", bad, "--mask", msk, "-o", tmp_path / "o.png", "--descriptor",
                      "none", "-q"])
    _assert_clean_failure(result, "cannot read")
    # without -q the plan's progress lines may come first, but no GDAL message
    result = _invoke(["run", bad, "--mask", msk, "-o", tmp_path / "o.png", "--descriptor",
                      "none"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and lines[-1].startswith("Error: cannot read"), lines
    assert not any("GDAL" in line or "TIFF" in line for line in lines[:-1]), lines
    assert sum(line.startswith("Error") for line in lines) == 1


# ------------------------------------- finding 11: tile mode gives the result of one run, exactly
def test_tile_mode_equals_inpaint_run_bit_for_bit(tmp_path):
    image = skimage.data.astronaut()[:256, 150:406]
    mask = np.zeros(image.shape[:2], bool)
    mask[100:136, 110:146] = True           # a lacuna cut by the tile edges at 128
    mask[30:230, 200] = True                # a crack crossing two tile rows
    for r, c in ((15, 15), (15, 240), (240, 15), (240, 240)):
        mask[r:r + 6, c:c + 7] = True       # losses of other tiles
    img = _write(tmp_path / "p.png", image)
    _write(tmp_path / "p_mask.png", mask.astype(np.uint8) * 255)
    common = ["--descriptor", "none", "--passes", "1", "-q", "--memory-budget", "8GB"]
    single = _invoke(["run", img, "--mask", tmp_path / "p_mask.png", "-o", tmp_path / "run.png",
                      "--workers", "1", *common])
    assert single.exit_code == 0, single.output
    tiled = _invoke(["batch", img, "-o", tmp_path / "out", "--tile", "128", "--overlap", "32",
                     "--workers", "1", *common])
    assert tiled.exit_code == 0, tiled.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["done"] >= 2          # the work really was spread over items
    assert np.array_equal(_read(tmp_path / "out" / "p.png"), _read(tmp_path / "run.png"))


@pytest.mark.parametrize("command", ["finetune", "train", "invert"])
def test_other_commands_never_overwrite_an_input(scene, command):
    from descriptor.checkpoint import resolve

    tmp, img, msk, *_ = scene
    ckpt = tmp / "mine.pt"
    ckpt.write_bytes(resolve("v32").read_bytes())
    (tmp / "alias.pt").symlink_to(ckpt)
    small = ["--patches", "64", "--epochs", "1", "--device", "cpu"]   # if it ever ran
    args = {"finetune": ["finetune", ckpt, img, "--mask", msk, "-o", tmp / "alias.pt", *small],
            "train": ["train", img, "--mask", msk, "--arch", "v32", "-o", msk, *small],
            "invert": ["invert", ckpt, img, "-o", img]}[command]
    before = _digests(tmp)
    result = _invoke([*args, "--force"])
    _assert_clean_failure(result, "an input is never overwritten")
    assert _digests(tmp) == before


# ------------------------------------------------------- the hostile tester's findings (round 2)
@pytest.mark.parametrize("option", ["-o", "--report", "--preview"])
def test_a_file_name_too_long_is_one_clear_error(scene, option):
    tmp, img, msk, *_ = scene
    name = tmp / ("a" * 300 + (".json" if option == "--report" else ".png"))
    args = ["run", img, "--mask", msk, *FAST]
    args += ["-o", name] if option == "-o" else ["-o", tmp / "o.png", option, name]
    before = _digests(tmp)
    _assert_clean_failure(_invoke(args), "File name too long")
    assert _digests(tmp) == before


def test_seed_outside_faiss_range_is_a_usage_error(scene):
    from inpaint.config import MAX_SEED, RunConfig

    tmp, img, msk, image, mask = scene
    for seed in (MAX_SEED + 1, 2**64, -1):
        result = _invoke(["run", img, "--mask", msk, "-o", tmp / "o.png", "--seed", seed, *FAST])
        assert result.exit_code == 2 and "--seed" in result.stderr, result.output
        assert "Traceback" not in result.output
    with pytest.raises(ValueError, match=f"^seed must lie in 0..{MAX_SEED}$"):
        RunConfig(seed=MAX_SEED + 1)
    result = _invoke(["run", img, "--mask", msk, "-o", tmp / "o.png", "--seed", MAX_SEED, *FAST])
    assert result.exit_code == 0, result.output
    assert np.array_equal(_read(tmp / "o.png")[~mask], image[~mask])


def test_quiet_run_on_a_small_image_prints_only_its_warning(tmp_path, capfd):
    """-q means only warnings and errors: the fallback restoration is said in one line, and
    FAISS's own k-means notice about few training points (printed by its C++ code straight to
    the process's stderr) is not."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (15, 15, 3), dtype=np.uint8)
    mask = np.zeros((15, 15), bool)
    mask[7, 7] = True
    img = _write(tmp_path / "s.png", image)
    msk = _write(tmp_path / "m.png", mask.astype(np.uint8) * 255)
    result = _invoke(["run", img, "--mask", msk, "-o", tmp_path / "o.png", "-q",
                      "--descriptor", "none"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "restored by pixel-mode MRF" in lines[0], lines
    assert capfd.readouterr().err == ""
