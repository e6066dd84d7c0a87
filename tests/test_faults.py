"""Faults while writing and in batches: a full disk, SIGINT / SIGTERM in the middle of a write, a
report that cannot be written, a corrupt tile among good ones. Nothing partial is left, inputs
are untouched, the summary says what failed."""

import errno
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from rasters import write_raster as _write

from cli import main
from inpaint.raster import RasterWriter

INPAINT = str(Path(sys.executable).parent / "inpaint")
FAST = ["--descriptor", "none", "--passes", "1", "--iterations", "3", "--workers", "1", "-q"]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def panel(tmp_path):
    image = skimage.data.astronaut()[:192, :192].astype(np.uint16) * 257
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[90:96, 80:90] = 255
    return (tmp_path, _write(tmp_path / "in.tif", image, blockysize=16),
            _write(tmp_path / "mask.png", mask))


def _one_error_line(stderr, match):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and match in lines[0], lines


def test_disk_full_while_writing_leaves_nothing(panel):
    """A real write failure: the file-size limit (EFBIG, as ENOSPC would) hits mid-output."""
    tmp, img, msk = panel
    before = _digests(tmp)
    limit = 64 * 1024      # the output is 192 x 192 x 3 x 2 = 221 kB
    result = subprocess.run(
        [INPAINT, "run", img, "--mask", msk, "-o", tmp / "out.tif", *FAST],
        capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 1, result.stderr
    _one_error_line(result.stderr, "cannot write")     # and no libtiff message before it
    assert _digests(tmp) == before, "an output, a temporary file or a changed input was left"


def test_a_report_that_cannot_be_written_leaves_no_output(panel, monkeypatch):
    tmp, img, msk = panel
    import inpaint.report

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inpaint.report, "atomic_write_bytes", full)
    before = _digests(tmp)
    result = CliRunner().invoke(main, ["run", str(img), "--mask", str(msk), "-o",
                                       str(tmp / "out.tif"), "--report", str(tmp / "r.json"),
                                       "--preview", str(tmp / "p.png"), *FAST])
    assert result.exit_code == 1
    _one_error_line(result.stderr, "No space left on device")
    assert _digests(tmp) == before


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_a_signal_in_the_middle_of_a_write_leaves_nothing(panel, monkeypatch, sig, code, word):
    tmp, img, msk = panel
    real = RasterWriter.write_window
    calls = []

    def write_then_signal(self, data, window):
        real(self, data, window)
        calls.append(window)
        os.kill(os.getpid(), sig)       # delivered now, with the temporary file half written

    monkeypatch.setattr(RasterWriter, "write_window", write_then_signal)
    before = _digests(tmp)
    previous = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(main, ["run", str(img), "--mask", str(msk), "-o",
                                       str(tmp / "out.tif"), *FAST])
    assert signal.getsignal(signal.SIGTERM) == previous, "the SIGTERM handler was not restored"
    assert calls and result.exit_code == code, (calls, result.exit_code, result.output)
    assert result.stderr.strip() == word
    assert _digests(tmp) == before


def test_a_corrupt_tile_among_good_ones_is_recorded_and_the_others_done(tmp_path):
    image = skimage.data.astronaut()[:256, :256]
    mask = np.zeros(image.shape[:2], np.uint8)
    for r, c in ((40, 40), (40, 200), (200, 40), (200, 200)):
        mask[r:r + 5, c:c + 6] = 255
    full = _write(tmp_path / "full.tif", image, blockysize=16)
    panel = tmp_path / "panel.tif"
    data = full.read_bytes()
    panel.write_bytes(data[:int(len(data) * 0.72)])    # rows past ~184 are lost
    _write(tmp_path / "panel_mask.png", mask)
    out = tmp_path / "out"
    before = _digests(tmp_path)
    result = CliRunner().invoke(main, ["batch", str(panel), "-o", str(out), "--tile", "128",
                                       "--overlap", "16", "--workers", "1", *FAST])
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "summary.json").read_text())
    status = {r["name"]: r["status"] for r in summary["items"]}
    assert status == {"panel_r000000_c000000": "done", "panel_r000000_c000128": "done",
                      "panel_r000128_c000000": "failed", "panel_r000128_c000128": "failed"}
    failed = [r for r in summary["items"] if r["status"] == "failed"]
    assert all("corrupt or truncated" in r["error"] for r in failed)
    assert summary["stitched"] is None and not (out / "panel.tif").exists()
    assert sorted(p.name for p in (out / ".tiles").iterdir()) == \
        ["panel_r000000_c000000.npz", "panel_r000000_c000128.npz"]
    assert "failed: panel_r000128_c000000" in result.stderr
    assert _digests(tmp_path) == before


def test_a_worker_killed_mid_batch_is_replaced_and_its_leftovers_removed(tmp_path):
    import psutil

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    names = [f"t{k}" for k in range(6)]
    for k, name in enumerate(names):
        image = skimage.data.astronaut()[k * 30:k * 30 + 128, 100:228]
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[50:80, 20:50] = 255      # a second or so each: the batch is still running
        _write(src / f"{name}.png", image)
        _write(src / f"{name}_mask.png", mask)
    stale = out / ".t3.0123abcd.tmp.png"      # what a worker killed mid-write leaves behind
    stale.write_bytes(b"half a png")
    before = _digests(src)
    proc = subprocess.Popen([INPAINT, "batch", src, "-o", out, "--workers", "1", *FAST],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(out.glob("t*.png")):     # the worker is running the batch
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]   # not the resource tracker
        assert workers, "no worker process found"
        for worker in workers:
            worker.kill()                      # SIGKILL: no clean-up of its own
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = json.loads((out / "summary.json").read_text())
    status = {r["name"]: r["status"] for r in summary["items"]}
    assert set(status) == {f"{n}.png" for n in names}, status
    # the task of the killed worker is retried on its replacement (or recorded by name); a
    # retried item whose output the killed worker had already committed is skipped (resume)
    assert all(s in ("done", "skipped") or (s == "failed" and r["name"] != "?")
               for r, s in zip(summary["items"], status.values())), summary["items"]
    for name, s in status.items():
        if s in ("done", "skipped"):
            assert (out / name).is_file(), name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "leftovers"
    assert _digests(src) == before
