"""``inpaint batch --scheduler`` against a real Dask scheduler and worker, started as separate
processes on 127.0.0.1, the worker in another working directory (as on any real cluster)."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
import skimage.data
from click.testing import CliRunner

from cli import main

START_TIMEOUT = 60   # seconds for the scheduler and worker to come up on a busy machine


def _write(path, data):
    data = data if data.ndim == 3 else data[:, :, None]
    with rasterio.open(path, "w", driver="PNG", height=data.shape[0], width=data.shape[1],
                       count=data.shape[2], dtype=data.dtype.name) as dst:
        dst.write(np.moveaxis(data, 2, 0))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, worker cwd): one scheduler, one single-threaded worker process."""
    info = tmp_path / "scheduler.json"
    elsewhere = tmp_path / "worker_cwd"
    elsewhere.mkdir()
    log = open(tmp_path / "cluster.log", "w")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(info)],
            cwd=tmp_path, stdout=log, stderr=log, start_new_session=True))
        deadline = time.monotonic() + START_TIMEOUT
        while not info.exists() or not info.read_text().strip():
            assert procs[0].poll() is None, (tmp_path / "cluster.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(info),
             "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--local-directory",
             str(elsewhere), "--name", "w0"],
            cwd=elsewhere, stdout=log, stderr=log, start_new_session=True))
        address = json.loads(info.read_text())["address"]
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=START_TIMEOUT)
        yield address, elsewhere
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


def test_batch_on_a_real_scheduler_with_workers_in_another_directory(tmp_path, cluster,
                                                                      monkeypatch):
    address, elsewhere = cluster
    src = tmp_path / "src"
    src.mkdir()
    images, masks = {}, {}
    for k, name in enumerate(["t0", "t1"]):
        image = skimage.data.astronaut()[k * 50:k * 50 + 64, 120:184]
        mask = np.zeros(image.shape[:2], bool)
        mask[28:33, 20:27] = True
        _write(src / f"{name}.png", image)
        _write(src / f"{name}_mask.png", mask.astype(np.uint8) * 255)
        images[name], masks[name] = image, mask
    monkeypatch.chdir(tmp_path)          # relative paths on the command line, as a user types
    result = CliRunner().invoke(main, ["batch", "src", "-o", "out", "--scheduler", address,
                                       "--descriptor", "none", "--passes", "1", "-q"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert result.exit_code == 0, (result.output, summary)
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    for name, image in images.items():
        with rasterio.open(tmp_path / "out" / f"{name}.png") as dst:
            got = np.moveaxis(dst.read(), 0, 2)
        assert np.array_equal(got[~masks[name]], image[~masks[name]])
        assert not np.array_equal(got[masks[name]], image[masks[name]])
    assert not any(elsewhere.glob("*.png")) and not (elsewhere / "out").exists()
