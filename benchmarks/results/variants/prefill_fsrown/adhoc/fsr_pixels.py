# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
"""Ad-hoc: missing pixels FSR fills (window + mirrored FSR_PAD), old vs owned+band."""

import sys

import cv2
import numpy as np
import rasterio

sys.path.insert(0, "/work/wt-fsr")
from inpaint.inpainter import prefill_needed
from inpaint.regions import owned_pixels, plan_regions, with_enough_sources

mp = sys.argv[1]
mask = rasterio.open(f"/tmp/fsr_panels/panel_{mp}MP_mask.tif").read(1).astype(bool)
regions, labels = plan_regions(mask, 32, 512)
pad = lambda m: int(
    cv2.copyMakeBorder(m.astype(np.uint8), 32, 32, 32, 32, cv2.BORDER_REFLECT_101).sum()
)
old = {}
new = {}
for B in [int(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "0,14,24,37").split(",")]:
    o = n = 0
    for r in regions:
        r = with_enough_sources(r, mask, 9, 64)
        r0, c0, r1, c1 = r.window
        hole = mask[r0:r1, c0:c1]
        own = owned_pixels(r, labels)
        need = prefill_needed(hole, own, B)
        o += pad(hole)
        n += pad(need) if (hole & ~need).any() else pad(hole)
    print(
        f"{mp} MP: missing {mask.sum()}, regions {len(regions)}; FSR-filled px incl. pad: old {o}, band {B}: {n} ({n / o:.2f})"
    )
