"""Regression tests for the defects found by issue 11 (each failed before its fix)."""

import hashlib
import json
import os

import numpy as np
import pytest
import rasterio
import skimage.data
from click.testing import CliRunner

from cli import main
from masks import paint_loss_mask

FAST = ["--descriptor", "none", "--patch-step", "3", "--passes", "1", "-q"]


def _write(path, data, **profile):
    data = data if data.ndim == 3 else data[:, :, None]
    meta = dict(driver="GTiff" if str(path).endswith(".tif") else "PNG", height=data.shape[0],
                width=data.shape[1], count=data.shape[2], dtype=data.dtype.name)
    meta.update(profile)
    with rasterio.open(path, "w", **meta) as dst:
        dst.write(np.moveaxis(data, 2, 0))
    return path


def _read(path):
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, 2)


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


@pytest.fixture
def scene(tmp_path):
    image = skimage.data.astronaut()[140:236, 170:266]
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=0)
    img = _write(tmp_path / "panel.png", image)
    msk = _write(tmp_path / "loss.png", (mask * 255).astype(np.uint8))
    return tmp_path, img, msk, image, mask


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
