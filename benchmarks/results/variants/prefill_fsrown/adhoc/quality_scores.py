# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: quality.py's scores of saved old/new outputs (same images, masks as quality.py)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "/work/wt-fsr")
sys.path.insert(0, "/work/wt-fsr/benchmarks")
import quality

from masks import PaintLossConfig, paint_loss_mask

rows = []
for k, (name, truth) in enumerate(quality.test_images(False)):
    a_path, b_path = (
        Path(f"/tmp/fsr_runs/q_{sys.argv[1]}_{name}.npy"),
        Path(f"/tmp/fsr_runs/q_{sys.argv[2]}_{name}.npy"),
    )
    if not (a_path.exists() and b_path.exists()):
        continue
    mask = paint_loss_mask(truth.shape[:2], PaintLossConfig(coverage=0.05, seed=100 + k))
    a, b = np.load(a_path), np.load(b_path)
    sa, sb = quality.score(a, truth, mask), quality.score(b, truth, mask)
    same = np.array_equal(a, b)
    print(
        f"{name:<20} {'identical' if same else 'changed  '} hole-PSNR {sa['hole_psnr']:.3f} -> {sb['hole_psnr']:.3f} "
        f"({sb['hole_psnr'] - sa['hole_psnr']:+.3f} dB)  SSIM {sa['ssim']:.4f} -> {sb['ssim']:.4f}  grad {sa['grad_ratio']:.3f} -> {sb['grad_ratio']:.3f}"
        f"  changed px {(np.abs(a.astype(int) - b.astype(int)).max(2)[mask] > 0).mean():.2f}"
    )
