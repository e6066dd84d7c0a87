"""Parts of the paper-2 benchmark (benchmarks/vae_tables.py, benchmarks/paper_data.py) that the
quick smoke run cannot check: folder loading and de-duplication, the retrieval search, resumable
training, and the corpus step's file selection and licence parsing (no network)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import paper_data  # noqa: E402
import vae_tables as vt  # noqa: E402


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_folder_images_reduce_skip_small_and_near_duplicates(tmp_path):
    astronaut = skimage.data.astronaut()                      # 512x512 RGB
    _save(tmp_path / "a" / "astronaut.png", astronaut)
    _save(tmp_path / "a" / "astronaut_small.png", astronaut[::2, ::2])   # same photo, smaller
    _save(tmp_path / "b" / "camera.jpg", skimage.data.camera())
    _save(tmp_path / "b" / "tiny.png", skimage.data.camera()[:60, :60])
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    images, skipped = vt.folder_images([tmp_path], max_side=300)
    assert sorted(Path(n).name for n in images) == ["astronaut.png", "camera.jpg"]
    assert all(max(im.shape) == 300 and im.ndim == 2 for im in images.values())
    assert all(0.0 <= im.min() and im.max() <= 1.0 for im in images.values())
    reasons = " ".join(skipped)
    assert "astronaut_small.png: near-duplicate" in reasons and "tiny.png: smaller" in reasons
    train, held = vt.split_images(images, held_out=1, seed=0)
    assert len(train) == 1 and len(held) == 1 and not set(train) & set(held)


def test_nearest_skips_self_and_exact_duplicates_and_ranks_by_distance(monkeypatch):
    codes = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.5, 0.0]])
    found = vt.nearest(codes, torch.tensor([0, 2]), k=2)
    # query 0: itself and its exact duplicate (row 1) are skipped; nearest 4 (0.5), then 2 (1.0)
    assert found[0].tolist() == [4, 2]
    # query 2: nearest 4 (0.5 away), then rows 0 / 1 (1.0 away); never itself
    assert found[1, 0].item() == 4 and found[1, 1].item() in (0, 1)
    monkeypatch.setattr(vt, "EPS", 0.0)      # no duplicate rule: only the query itself skipped
    assert vt.nearest(codes, torch.tensor([0]), k=2)[0].tolist() == [1, 4]


def test_retrieval_fast_equals_brute_force_over_all_keypoint_patches():
    photo = vt.grey_image("camera")[150:280, 150:280]
    corners = vt.keypoint_corners(photo)              # overlapping patches, all kept
    fast = vt.retrieval_fast(lambda x: x, [photo], max_queries=10_000, seed=0)
    assert fast["candidates"] == len(corners) and fast["pairs"] == len(corners) * vt.K
    x = np.stack([photo[r:r + vt.SIZE, c:c + vt.SIZE] for r, c in corners])
    x = x.reshape(len(corners), -1)
    mse = ((x[:, None] - x[None]) ** 2).mean(-1)
    np.fill_diagonal(mse, np.inf)
    mse[mse < vt.EPS] = np.inf
    best = np.sort(mse, axis=1)[:, :vt.K]
    assert fast["psnr"] == pytest.approx(float(np.mean(-10 * np.log10(best))), abs=1e-3)
    grid = vt.retrieval_grid(lambda x: x, [photo, vt.grey_image("camera")[:200, :200]])
    assert grid["pairs"] == 9 * vt.K   # 3x3 non-overlapping positions; 2x2 (< k + 1) skipped


def _tiny_data(n: int = 48) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, vt.SIZE, vt.SIZE, generator=g)
    return {"train": x[:32], "validation": x[32:40], "test": x[40:]}


def _train(epochs: int, ckpt: Path | None, resume: bool, key: str = "k", patience: int = 5):
    torch.set_num_threads(1)
    model = vt.make_model(0)
    cfg = vt.FitConfig(epochs=epochs, batch=16, patience=patience)
    info = vt.fit(model, lambda x: vt.vae_loss(model, x, 10.0), _tiny_data(), cfg, "t", ckpt,
                  key, resume)
    return model, info


def test_fit_resumes_exactly_where_it_stopped(tmp_path):
    ckpt = tmp_path / "run.pt"
    straight, info3 = _train(3, None, False)
    _, info2 = _train(2, ckpt, False)
    assert info2["stopped"] == "epoch limit" and info2["epochs_run"] == 2
    resumed, info = _train(3, ckpt, True)
    assert info["epochs_run"] == 3
    assert [h["val_loss"] for h in info["history"]] == pytest.approx(
        [h["val_loss"] for h in info3["history"]], rel=1e-6)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    evaluated, again = _train(0, ckpt, True)           # --epochs 0: evaluate, train nothing
    assert again["epochs_run"] == 3 and again["stopped"] == "epoch limit"
    best = min(info["history"], key=lambda h: h["val_loss"])["epoch"]
    assert again["best_epoch"] == best
    with pytest.raises(SystemExit, match="other data or settings"):
        _train(4, ckpt, True, key="other")
    with pytest.raises(SystemExit, match="no checkpoint"):
        _train(0, tmp_path / "missing.pt", True)


def test_fit_early_stopping_is_final_on_resume(tmp_path):
    ckpt = tmp_path / "run.pt"
    _, info = _train(30, ckpt, False, patience=1)
    assert info["stopped"] == "early stopping" and info["epochs_run"] < 30
    _, again = _train(60, ckpt, True, patience=1)
    assert again["epochs_run"] == info["epochs_run"] and again["stopped"] == "early stopping"


def test_paper_data_selection_and_licences(tmp_path):
    root = tmp_path / "pkg"
    for rel in ("usr/share/wallpapers/A/contents/images/1920x1080.jpg",
                "usr/share/wallpapers/A/contents/images/5120x2880.jpg",
                "usr/share/wallpapers/A/contents/screenshot.jpg",
                "usr/share/wallpapers/B/contents/images/800x600.png",
                "usr/share/wallpapers/B/contents/images/readme.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * (100 if "5120" in rel else 10))
    package = paper_data.Package("p", ("usr/share/wallpapers/*/contents/images/*",),
                                 largest_per_folder=True)
    names = [p.relative_to(root).as_posix() for p in paper_data.selected(root, package)]
    assert names == ["usr/share/wallpapers/A/contents/images/5120x2880.jpg",
                     "usr/share/wallpapers/B/contents/images/800x600.png"]
    text = "Files: *\nLicense: GPL-2+\n\nFiles: a/*\nLicense: CC-BY-SA-4.0\nLicense: GPL-2+\n"
    assert paper_data.licences(text) == ["CC-BY-SA-4.0", "GPL-2+"]


def test_quick_learning_curve_on_a_folder_of_images(tmp_path):
    import json
    import subprocess

    folder = tmp_path / "photos"
    _save(folder / "a.png", skimage.data.astronaut())
    _save(folder / "sub" / "b.jpg", skimage.data.camera())
    _save(folder / "c.png", skimage.data.rocket())
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "benchmarks/vae_tables.py", "--quick", "--images", str(folder),
         "--heldout-images", "1", "--curve", "300,500", "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600,
        check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads((out / "vae_curve.json").read_text())
    sizes = [r["patches"] for r in result["rows"]]   # the per-image rule overshoots a little
    assert 300 <= sizes[0] < 400 and 500 <= sizes[1] < 600
    assert result["images"] == 4 + 2                  # 4 scikit-image photos + 2 folder ones
    held = [Path(n).name for n in result["held_out_images"] if not n.startswith("skimage:")]
    assert len(held) == 1 and held[0] in ("a.png", "b.jpg", "c.png")
    assert (out / "vae_curve.png").is_file()
