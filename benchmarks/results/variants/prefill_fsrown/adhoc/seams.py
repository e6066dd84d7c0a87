# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: errors of old/new next to work-window borders (core edges of tiled regions) vs
elsewhere, and a zoomed crop montage at a border."""

import sys

import cv2
import numpy as np
import rasterio
from scipy import ndimage

sys.path.insert(0, "/work/wt-fsr")
from inpaint.regions import plan_regions

panel, mask_path, a_path, b_path, out_png = sys.argv[1:6]
rd = lambda p: np.moveaxis(rasterio.open(p).read(), 0, 2).astype(np.float64) / 257.0
truth, a, b = rd(panel), rd(a_path), rd(b_path)
mask = rasterio.open(mask_path).read(1).astype(bool)
regions, labels = plan_regions(mask, 32, 512)
edge = np.zeros_like(mask)
for r in regions:
    r0, c0, r1, c1 = r.core
    H, W = mask.shape
    for rr in (r0, r1 - 1):
        if 0 < rr < H - 1:
            edge[rr, c0:c1] = True
    for cc in (c0, c1 - 1):
        if 0 < cc < W - 1:
            edge[r0:r1, cc] = True
near = ndimage.binary_dilation(edge, iterations=3) & mask
far = mask & ~near


def psnr(x, sel):
    return 10 * np.log10(255.0**2 / ((x[sel] - truth[sel]) ** 2).mean())


print(f"missing px within 3 px of a core edge: {near.sum()}; elsewhere {far.sum()}")
for name, x in (("old", a), ("new", b)):
    print(
        f"{name}: hole-PSNR near core edges {psnr(x, near):.3f} dB, elsewhere {psnr(x, far):.3f} dB"
    )
d = np.abs(a - b).max(2)
print(
    f"|old-new| mean near edges {d[near].mean():.3f}, elsewhere {d[far].mean():.3f} (8-bit levels)"
)
# crop: the core-edge point with most missing pixels around it
dens = cv2.boxFilter(
    (near * np.abs(a - b).max(2)).astype(np.float32), -1, (48, 48), normalize=False
)
y, x = np.unravel_index(np.argmax(dens), dens.shape)
y0, x0 = max(0, y - 48), max(0, x - 48)
sl = (slice(y0, y0 + 96), slice(x0, x0 + 96))


def tile(img):
    t = np.clip(img[sl], 0, 255).astype(np.uint8)
    return cv2.resize(t, (384, 384), interpolation=cv2.INTER_NEAREST)


damaged = truth.copy()
damaged[mask] = (255, 0, 255)
diff = np.repeat((np.clip(np.abs(a - b).max(2) * 8, 0, 255))[:, :, None], 3, 2)
ed = damaged.copy()
ed[edge] = (0, 255, 0)
row = np.concatenate([tile(ed), tile(truth), tile(a), tile(b), tile(diff)], 1)
cv2.imwrite(out_png, row[:, :, ::-1])
print("crop at", (y0, x0), "-> panels: damaged (core edges green), truth, old, new, |old-new| x8")
