"""Work done once per run: the mask is labelled once, the descriptor loaded and hashed once;
and the CLI starts without the heavy libraries (torch, FAISS, Dask, rasterio)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import skimage.data

import inpaint.inpainter
import inpaint.pipeline
import masks.stats
from inpaint.config import RunConfig
from inpaint.pipeline import run
from masks import paint_loss_mask

ROOT = Path(__file__).resolve().parent.parent


def _counting(monkeypatch, calls: list, *targets):
    """Replace the function at every (module, name) of ``targets`` by one that counts calls."""
    real = getattr(*targets[0])

    def counted(*args, **kwargs):
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)
    for module, name in targets:
        monkeypatch.setattr(module, name, counted)


def test_one_mask_labelling_and_one_checkpoint_load_per_run(monkeypatch):
    image = skimage.data.astronaut()[150:230, 180:260]
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=3)
    stats_calls, loads = [], []
    _counting(monkeypatch, stats_calls, (masks.stats, "mask_stats"),
              (inpaint.pipeline, "mask_stats"))
    _counting(monkeypatch, loads, (inpaint.inpainter, "load_checkpoint"),
              (inpaint.pipeline, "load_checkpoint"))
    out = run(image, mask, RunConfig(descriptor="v32", workers=1))
    assert len(stats_calls) == 1
    assert loads == ["v32"]
    assert out.report["descriptor"]["arch"] == "v32"
    assert np.array_equal(out.image[~mask], image[~mask])


HEAVY = ("torch", "faiss", "dask", "distributed", "rasterio", "cv2", "sklearn", "scipy")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stderr.split()


def test_the_cli_starts_without_the_heavy_libraries():
    """``import cli`` and ``inpaint --help`` load none of them (they take seconds)."""
    assert _loaded_after("import cli") == []
    help_code = ("import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass")
    assert _loaded_after(help_code) == []
    # the probe sees a heavy import when there is one
    assert _loaded_after("import cli, inpaint.config") != []
