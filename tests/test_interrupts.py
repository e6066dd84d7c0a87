"""Ctrl-C (SIGINT) on the real command, in a subprocess: one line "interrupted", exit 130, no
traceback, nothing partial left; an interrupted batch resumes and finishes the rest."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import rasterio
import skimage.data

INPAINT = str(Path(sys.executable).parent / "inpaint")
WAIT = 120   # seconds: generous, the machine may be busy; never reached when things work


def _write(path, data):
    data = data if data.ndim == 3 else data[:, :, None]
    with rasterio.open(path, "w", driver="PNG", height=data.shape[0], width=data.shape[1],
                       count=data.shape[2], dtype=data.dtype.name) as dst:
        dst.write(np.moveaxis(data, 2, 0))


def _panel(folder, name, k=0, size=96, hole=5):
    image = skimage.data.astronaut()[k * 30:k * 30 + size, 100:100 + size]
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[size // 2:size // 2 + hole, 20:20 + hole + 3] = 255
    _write(folder / f"{name}.png", image)
    _write(folder / f"{name}_mask.png", mask)
    return folder / f"{name}.png", folder / f"{name}_mask.png"


def _start(args: list) -> subprocess.Popen:
    """The command as a terminal starts it: Ctrl-C's default disposition restored in the child
    (a shell's background job, e.g. ``nohup make test &``, inherits SIGINT ignored, and a
    command that ignores Ctrl-C cannot be tested for it)."""
    return subprocess.Popen(args, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(condition, proc):
    deadline = time.monotonic() + WAIT
    while not condition():
        assert proc.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _stderr_reader(proc):
    lines: list[str] = []
    thread = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    thread.start()
    return lines, thread


def _interrupt(proc, lines, thread):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    thread.join(10)
    return [line.rstrip("\n") for line in lines if line.strip()]


def _loaded(proc, library: str) -> bool:
    try:
        return library in Path(f"/proc/{proc.pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_while_run_is_loading_its_libraries(tmp_path):
    image, mask = _panel(tmp_path, "p")
    proc = _start([INPAINT, "run", image, "--mask", mask, "-o", tmp_path / "o.png",
                   "--descriptor", "none"])
    lines, thread = _stderr_reader(proc)
    _wait_for(lambda: _loaded(proc, "libtorch"), proc)   # importing torch: seconds to go
    lines = _interrupt(proc, lines, thread)
    assert proc.returncode == 130 and lines == ["interrupted"], (proc.returncode, lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "p_mask.png"]


@pytest.mark.parametrize("workers", [["--workers", "1"],
                                     ["--workers", "2", "--window", "96"]])  # >= 4 regions
def test_ctrl_c_while_run_works(tmp_path, workers):
    image, mask = _panel(tmp_path, "p", size=200, hole=40)   # seconds of MRF work
    proc = _start([INPAINT, "run", image, "--mask", mask, "-o", tmp_path / "o.png",
                   "--descriptor", "none", *workers, "-v"])
    lines, thread = _stderr_reader(proc)
    _wait_for(lambda: any("memory budget" in line for line in lines), proc)  # planned
    if "2" in workers:   # the region workers are up and busy
        _wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 2, proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    lines = _interrupt(proc, lines, thread)
    psutil.wait_procs(children, timeout=30)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    assert proc.returncode == 130 and lines[-1] == "interrupted", (proc.returncode, lines)
    assert not any("Traceback" in line for line in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "p_mask.png"]


def test_ctrl_c_on_batch_then_resume_finishes_the_rest(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    names = [f"t{k}" for k in range(5)]
    for k, name in enumerate(names):
        _panel(src, name, k, size=128, hole=12)   # about a second each
    args = [INPAINT, "batch", src, "-o", out, "--workers", "1", "--descriptor", "none",
            "--passes", "1", "-q"]
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    proc = _start(args)
    lines, thread = _stderr_reader(proc)
    _wait_for(lambda: out.is_dir() and any(out.glob("t*.png")), proc)   # mid-batch
    children = psutil.Process(proc.pid).children(recursive=True)
    lines = _interrupt(proc, lines, thread)
    assert proc.returncode == 130 and lines == ["interrupted"], (proc.returncode, lines)
    psutil.wait_procs(children, timeout=30)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), \
        "worker processes left running"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "partial files left"
    done_first = {p.name for p in out.glob("t*.png")}
    assert 1 <= len(done_first) < len(names)
    result = subprocess.run(args, capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    status = {r["name"]: r["status"] for r in summary["items"]}
    assert {n for n, s in status.items() if s == "skipped"} == done_first
    assert all(s in ("done", "skipped") for s in status.values()) and len(status) == len(names)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_ctrl_c_while_the_batch_cluster_starts(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for k in range(2):
        _panel(src, f"t{k}", k)
    proc = _start([INPAINT, "batch", src, "-o", out, "--workers", "1", "--descriptor", "none",
                   "-q"])
    lines, thread = _stderr_reader(proc)
    # the first worker process exists: the cluster is starting
    _wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 1, proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    lines = _interrupt(proc, lines, thread)
    assert proc.returncode == 130 and lines == ["interrupted"], (proc.returncode, lines)
    psutil.wait_procs(children, timeout=30)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
