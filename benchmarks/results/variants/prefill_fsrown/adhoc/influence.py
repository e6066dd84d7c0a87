# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: |FSR(owned+band, foreign known as Telea) - FSR(all)| against distance to the
nearest Telea-filled (foreign, beyond the band) pixel; 4 MP panel windows, 8-bit levels."""

import sys

import cv2
import numpy as np
import rasterio
from scipy import ndimage

sys.path.insert(0, "/work/wt-fsr")
from inpaint.regions import owned_pixels, plan_regions, with_enough_sources
from mrf.context import fsr_fill

B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 25
with rasterio.open("/tmp/fsr_panels/panel_4MP_mask.tif") as m:
    mask = m.read(1).astype(bool)
src = rasterio.open("/tmp/fsr_panels/panel_4MP.tif")
regions, labels = plan_regions(mask, 32, 512)
edges = np.array([0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 1000])
sums = np.zeros(len(edges) - 1)
counts = np.zeros(len(edges) - 1)
maxs = np.zeros(len(edges) - 1)
for r in regions[:limit]:
    r = with_enough_sources(r, mask, 9, 64)
    r0, c0, r1, c1 = r.window
    hole = mask[r0:r1, c0:c1]
    own = owned_pixels(r, labels)
    img = np.moveaxis(src.read(window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)), 0, 2)
    u8 = np.clip(np.rint(img / 65535.0 * 255), 0, 255).astype(np.uint8)
    needed = hole & (ndimage.distance_transform_edt(~own) <= B)
    cheap = hole & ~needed
    if not cheap.any():
        continue
    full = fsr_fill(u8, hole)
    tel = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    new = fsr_fill(np.where(cheap[:, :, None], tel, u8), needed)
    d = np.abs(new.astype(int) - full.astype(int)).max(axis=2)
    dist = ndimage.distance_transform_edt(~cheap)
    sel = needed
    k = np.digitize(dist[sel], edges) - 1
    np.add.at(sums, k, d[sel])
    np.add.at(counts, k, 1)
    np.maximum.at(maxs, k, d[sel])
for i in range(len(edges) - 1):
    if counts[i]:
        print(
            f"dist to cheap fill [{edges[i]},{edges[i + 1]}): n={int(counts[i])} mean|d|={sums[i] / counts[i]:.3f} max={maxs[i]:.0f}"
        )
