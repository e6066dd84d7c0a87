# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: quality.py's default v128 run on some of its images (same masks), outputs saved."""

import sys
import time
from pathlib import Path

import numpy as np

root = Path(sys.argv[1])
tag = sys.argv[2]
names = sys.argv[3].split(",")
sys.path.insert(0, str(root))
sys.path.insert(0, str(root / "benchmarks"))
import quality

from inpaint.pipeline import RunConfig, run
from inpaint.regions import plan_regions
from masks import PaintLossConfig, paint_loss_mask

for k, (name, truth) in enumerate(quality.test_images(False)):
    if name not in names:
        continue
    mask = paint_loss_mask(truth.shape[:2], PaintLossConfig(coverage=0.05, seed=100 + k))
    damaged = truth.copy()
    damaged[mask] = 0
    t = time.perf_counter()
    res = run(damaged, mask, RunConfig(descriptor="v128"))
    regions, _ = plan_regions(mask, 32, res.report["plan"]["window"])
    np.save(f"/tmp/fsr_runs/q_{tag}_{name}.npy", res.image)
    print(
        tag,
        name,
        truth.shape,
        "regions",
        len(regions),
        {k: res.report["plan"].get(k) for k in ("window", "ir_dtype", "workers", "budget_bytes")},
        f"{time.perf_counter() - t:.1f}s",
        flush=True,
    )
