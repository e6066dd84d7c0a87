# ruff: noqa: E402, E501
# Ad hoc (fsrown, 2026-12-01): paths are those of that session (/tmp/fsr_panels: scaling.py panels;
# /tmp/fsr_base: the base commit 1f1915d exported; /tmp/fsr_runs: outputs).
import sys

sys.path.insert(0, "/work/wt-fsr/tests")
import numpy as np
import torch
from test_prefill import _image, _owned_and_foreign

import inpaint.inpainter as im
import mrf.context as cm
from inpaint.pipeline import RunConfig

image = _image()
own, foreign = _owned_and_foreign()
hole = own | foreign
colour = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
desc = sys.argv[1]
ctx = sys.argv[2] == "1"
sl = int(sys.argv[3])
cfg = RunConfig(descriptor=desc, workers=1, use_context=ctx, shortlist=sl, labels=min(sl, 10))
inp = im.RegionInpainter(cfg, torch.device("cpu"), use_gpu=False)
real = cm.telea_fill


def magenta(u8, hole, radius=3):
    out = u8.copy()
    out[hole] = (255, 0, 255)
    return out


print(desc, ctx, sl, "band", inp.prefill_band)
row = []
for w in [int(x) for x in sys.argv[4].split(",")]:
    inp.prefill_band = w
    cm.telea_fill = real
    a = inp.inpaint(colour, hole, own=own)[0]
    cm.telea_fill = magenta
    b = inp.inpaint(colour, hole, own=own)[0]
    row.append(
        f"{w}:{np.abs(a[own] - b[own]).mean() * 255:.3f}/{np.abs(a[own] - b[own]).max() * 255:.0f}"
    )
print(" ".join(row))
