# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: hole-PSNR (vs the panel, which is the ground truth under the synthetic mask) of
two outputs, their difference, and per-window-border statistics."""

import sys

import numpy as np
import rasterio

panel, mask_path, a_path, b_path = sys.argv[1:5]
with rasterio.open(panel) as s:
    truth = s.read().astype(np.float64)
with rasterio.open(mask_path) as m:
    mask = m.read(1).astype(bool)
with rasterio.open(a_path) as s:
    a = s.read().astype(np.float64)
with rasterio.open(b_path) as s:
    b = s.read().astype(np.float64)
peak = 65535.0


def psnr(x, sel):
    mse = ((x[:, sel] - truth[:, sel]) ** 2).mean()
    return 10 * np.log10(peak**2 / mse)


print("missing", mask.sum())
print(f"hole-PSNR A {psnr(a, mask):.3f} dB  B {psnr(b, mask):.3f} dB")
d = np.abs(a - b)[:, mask] / 257.0
print(
    f"|A-B| on missing px (8-bit levels): mean {d.mean():.3f}  p99 {np.percentile(d, 99):.1f}  max {d.max():.1f}; share of px changed {(d.max(0) > 0).mean():.3f}"
)
print(
    "outside mask identical:",
    np.array_equal(a[:, ~mask], truth[:, ~mask]),
    np.array_equal(b[:, ~mask], truth[:, ~mask]),
)
