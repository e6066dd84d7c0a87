"""The benchmark scripts run end to end in --quick mode and write their JSON.

Smoke tests only: they check that a script runs and writes well-formed output, never a figure
(timings on a shared CI machine mean nothing).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ir_throughput_quick_runs_and_writes_json(tmp_path):
    # Every stage runs for both architectures, in its own child process, but on one 640-px side
    # (--quick alone: 512 and 1024, 40 s): still wider than the 512-px IR tile, so the tiled IR
    # is what the dense-vs-naive check compares. Fewer naive samples and a smaller pooling-layout
    # image only shorten loops whose length nothing here looks at.
    proc = subprocess.run(
        [sys.executable, "benchmarks/ir_throughput.py", "--quick", "--out", str(tmp_path),
         "--sides", "640", "--naive-samples", "200", "--layout-side", "256"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((tmp_path / "ir_throughput.json").read_text())
    assert result["meta"]["quick"] is True
    assert result["results"], "no measurements recorded"
    assert all("error" not in row for row in result["results"])
    assert {row["arch"] for row in result["results"]} == {"v32", "v128"}
    # dense descriptors (IR pooled, tiles stitched) equal encoding each patch on its own
    assert all(row["check_max_abs_diff"] < 1e-4 for row in result["results"])
    assert all(layout["identical_to_default"] for layout in result["pool_layouts"]["layouts"])
    assert (tmp_path / "ir_throughput.png").is_file()


def _run_quick(tmp_path, script, *extra):
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick", "--out", str(tmp_path), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def test_quality_quick_runs_every_method_and_writes_json(tmp_path):
    _run_quick(tmp_path, "quality.py")
    result = json.loads((tmp_path / "quality.json").read_text())
    methods = {row["method"] for row in result["summary"]}
    assert {"v128", "v32", "pixel", "telea", "navier_stokes", "biharmonic"} <= methods
    assert (tmp_path / "quality_montage.png").is_file()


def test_unseen_quick_scores_its_crops_and_refuses_unknown_cases(tmp_path):
    _run_quick(tmp_path, "unseen.py", "--methods", "v32,biharmonic")
    result = json.loads((tmp_path / "unseen.json").read_text())
    assert [row["method"] for row in result["summary"]] == ["v32", "biharmonic"]
    assert [im["image"] for im in result["images"]] == ["chelsea", "rocket"]
    assert all(im["shape"] == [96, 96, 3] for im in result["images"])
    assert (tmp_path / "unseen_lacunae.png").is_file()
    bad = subprocess.run([sys.executable, "benchmarks/unseen.py", "--quick", "--out",
                          str(tmp_path), "--cases", "nosuchcase"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode != 0 and "unknown cases" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_frontier_quick_scores_the_grid_and_its_pareto_front(tmp_path):
    _run_quick(tmp_path, "frontier.py")
    result = json.loads((tmp_path / "frontier.json").read_text())
    points, front = result["points"], result["pareto"]
    assert len(points) == 4 and 1 <= len(front) <= len(points)
    # the front: no point beats a front point on both axes, and more lacuna detail (w) never
    # lowers the lacuna gradient ratio
    for p in front:
        assert not any(q["hole_psnr"] > p["hole_psnr"] and q["grad_ratio"] > p["grad_ratio"]
                       for q in points)
    by = {(p["c"], p["w"]): p for p in points}
    assert by[(0.0, 1.3)]["lacuna_grad_ratio"] > by[(0.0, 1.0)]["lacuna_grad_ratio"]
    assert by[(0.5, 1.0)]["grad_ratio"] > by[(0.0, 1.0)]["grad_ratio"]   # crack detail: texture
    assert (tmp_path / "frontier.png").is_file()


def test_weights_report_quick_lists_the_builtins(tmp_path):
    _run_quick(tmp_path, "weights_report.py")
    names = {row["name"] for row in json.loads((tmp_path / "weights_report.json").read_text())
             ["rows"]}
    assert {"v32", "v128"} <= names
    assert (tmp_path / "weights_loss_curves.png").is_file()


@pytest.fixture(scope="module")
def scaling_out(tmp_path_factory):
    """One scaling run on a tiny panel, shared by the two tests below: the replot test only needs
    its JSON (it redraws in a folder of its own, so nothing here is changed by a test)."""
    out = tmp_path_factory.mktemp("scaling")
    # --quick means the 4 MP case; the smoke test shrinks it to a 0.05 MP panel
    _run_quick(out, "scaling.py", "--sizes", "0.05", "--modes", "none", "--budget", "2GB")
    return out


def test_scaling_runs_on_a_tiny_panel(scaling_out):
    rows = json.loads((scaling_out / "scaling.json").read_text())["rows"]
    assert rows and "error" not in rows[0] and rows[0]["peak_rss_gb"] > 0
    assert (scaling_out / "scaling.png").is_file()


def test_quality_set_changes_our_run_options(tmp_path):
    _run_quick(tmp_path, "quality.py", "--methods", "v32", "--set", "passes=1")
    result = json.loads((tmp_path / "quality.json").read_text())
    assert result["meta"]["arguments"]["set"] == ["passes=1"]
    assert [row["method"] for row in result["summary"]] == ["v32"]
    bad = subprocess.run([sys.executable, "benchmarks/quality.py", "--quick", "--out",
                          str(tmp_path), "--set", "nonsense=1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "RunConfig field" in bad.stderr


def test_quality_descriptor_adds_rows_of_any_descriptor(tmp_path):
    _run_quick(tmp_path, "quality.py", "--methods", "pixel", "--descriptor", "px=none",
               "--descriptor", "descriptor/weights/v32.pt", "--images", "gravel")
    result = json.loads((tmp_path / "quality.json").read_text())
    assert [row["method"] for row in result["summary"]] == ["pixel", "px", "v32"]
    assert result["descriptors"] == {"px": "none", "v32": "descriptor/weights/v32.pt"}
    rows = {row["method"]: row for row in result["summary"]}
    # the same descriptor gives the same fill; another descriptor another one
    assert rows["px"]["hole_psnr"] == rows["pixel"]["hole_psnr"]
    assert rows["v32"]["hole_psnr"] != rows["pixel"]["hole_psnr"]
    # a bad checkpoint stops the script before any method runs, in one line
    for args, match in ((["--methods", "v32", "--descriptor", "v32"], "has the name of a method"),
                        (["--set", "descriptor=v32"], "--descriptor [LABEL=]"),
                        (["--methods", "pixel", "--descriptor", "x=/no/such.pt"], "not found")):
        bad = subprocess.run([sys.executable, "benchmarks/quality.py", "--quick", "--out",
                              str(tmp_path), *args], cwd=REPO, capture_output=True, text=True)
        assert bad.returncode != 0 and match in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and "pixel " not in bad.stdout, bad.stdout


def test_scaling_replot_redraws_from_the_saved_json(scaling_out, tmp_path):
    shutil.copy(scaling_out / "scaling.json", tmp_path)   # the JSON alone, no plot
    _run_quick(tmp_path, "scaling.py", "--replot")
    assert (tmp_path / "scaling.png").is_file()


def test_write_cache_compares_both_caches_on_a_tiny_panel(tmp_path):
    _run_quick(tmp_path, "write_cache.py", "--megapixels", "0.05")
    rows = json.loads((tmp_path / "write_cache.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["bounded", "gdal default"]
    assert rows[0]["file_mb"] == rows[1]["file_mb"] > 0


def test_detection_quick_scores_every_method_on_the_synthetic_cracks(tmp_path):
    _run_quick(tmp_path, "detection.py")
    result = json.loads((tmp_path / "detection.json").read_text())
    synthetic = {r["method"]: r for r in result["results"] if r["image"] == "synthetic"}
    assert set(synthetic) == {"cracks", "trained", "trained_ir", "otsu_tophat", "dark_threshold"}
    # both detectors find the drawn cracks; a global darkness threshold is fooled by the
    # uneven lighting and the dark paint blotches
    assert synthetic["cracks"]["f1"] > 0.8 and synthetic["trained"]["f1"] > 0.8
    assert synthetic["dark_threshold"]["f1"] < 0.5
    assert all(0 <= r["precision"] <= 1 and r["seconds_per_mp"] > 0 for r in result["results"])
    assert (tmp_path / "detection_montage.png").is_file()


def test_gpu_check_on_a_machine_without_cuda_says_so_and_exits_0(tmp_path):
    """CUDA hidden (so this holds on a GPU machine too): one line, exit 0, no JSON."""
    import os

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], proc.stdout
    assert not list(tmp_path.iterdir())
