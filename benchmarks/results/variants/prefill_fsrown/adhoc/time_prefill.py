# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: FSR pre-fill seconds per window, full vs owned+band (4 MP panel, one process)."""

import sys
import time

import cv2
import numpy as np
import rasterio

sys.path.insert(0, "/work/wt-fsr")
from inpaint.inpainter import prefill_needed
from inpaint.regions import owned_pixels, plan_regions, with_enough_sources
from mrf.context import fsr_fill

mp = sys.argv[1] if len(sys.argv) > 1 else "4"
B = int(sys.argv[2]) if len(sys.argv) > 2 else 24
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
with rasterio.open(f"/tmp/fsr_panels/panel_{mp}MP_mask.tif") as m:
    mask = m.read(1).astype(bool)
src = rasterio.open(f"/tmp/fsr_panels/panel_{mp}MP.tif")
regions, labels = plan_regions(mask, 32, 512)
t_old = t_new = t_tel = 0.0
diffs = []
for r in regions[:limit]:
    r = with_enough_sources(r, mask, 9, 64)
    r0, c0, r1, c1 = r.window
    hole = mask[r0:r1, c0:c1]
    own = owned_pixels(r, labels)
    img = np.moveaxis(src.read(window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)), 0, 2)
    u8 = np.clip(np.rint(img / 65535.0 * 255), 0, 255).astype(np.uint8)
    t = time.process_time()
    full = fsr_fill(u8, hole)
    t_old += time.process_time() - t
    t = time.process_time()
    needed = prefill_needed(hole, own, B)
    tel = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    t_tel += time.process_time() - t
    if (hole & ~needed).any():
        base = np.where(hole[:, :, None] & ~needed[:, :, None], tel, u8)
        new = fsr_fill(base, needed)
        new = np.where(needed[:, :, None], new, tel)
    else:
        new = full
    t_new += time.process_time() - t
    d = np.abs(new.astype(int) - full.astype(int))
    diffs.append((d[own].max() if own.any() else 0, d[own].mean() if own.any() else 0))
print(
    f"B={B} regions={min(limit, len(regions))} old cpu {t_old:.1f}s new cpu {t_new:.1f}s (telea+dist {t_tel:.1f}s)"
)
dm = np.array(diffs)
print("owned |diff| max over windows", dm[:, 0].max(), "mean of means", dm[:, 1].mean())
