"""Memory model and run plan: choose the work-window size (and IR storage type) so that a run
stays under a memory budget, before any pixel is processed.

Predicted peak = process baseline (interpreter, torch, FAISS, GDAL)
               + panel-wide maps (loss mask, loss-group labels, owned-pixel results)
               + output streaming buffers
               + one work window: bytes per window pixel x window area.

Bytes per window pixel (see DESIGN.md section 6): float RGB copies of the window (input,
pre-fill, current fill, composition accumulators), the Gabor/texton context features, the IR
(C channels x 4 or 2 bytes; 0 in pixel mode) and the candidate bookkeeping. The candidate
descriptors themselves are bounded by ``max_index_size`` per FAISS index, and the MRF's node
and label tensors grow with the missing area, not with pixels x candidates; their largest part,
the label-pixel cache, is capped (``PATCH_CACHE_BYTES``), so it is budgeted as a constant.
The constants were calibrated on this machine against the per-process RSS measured during
benchmarks/scaling.py runs and carry a safety factor; the report prints the prediction beside
the measured peak.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import psutil

from mrf.inpainter import PATCH_CACHE_BYTES

from .errors import InpaintError
from .raster import WRITE_CACHE_BYTES

#: Resident memory of the process before any panel work (imports, libraries), bytes.
BASELINE_BYTES = 600 * 2**20
#: Resident memory of each extra worker process (a parallel run), bytes.
WORKER_BASELINE_BYTES = 450 * 2**20
#: Per window pixel, independent of the descriptor: RGB float copies, compose, context, masks.
WINDOW_BYTES_PER_PIXEL = 420
#: Per window, for the node and label tensors: the label-pixel cache shared by re-ranking and
#: pruning (capped at this size, see mrf.inpainter.PATCH_CACHE_BYTES) and its temporaries.
LABEL_BYTES = PATCH_CACHE_BYTES
#: Per candidate FAISS index: descriptors + index copy for max_index_size candidates.
INDEX_OVERHEAD = 2
#: Per panel pixel: loss mask (1), group labels (4), grown-mask temporaries (2).
PANEL_BYTES_PER_PIXEL = 7
#: Safety factor on the window term (allocator fragmentation, transient copies).
SAFETY = 1.25
MIN_WINDOW = 64


def parse_size(text: str | int | None) -> int | None:
    """'4GB', '800MB', '1.5G' (decimal units), '2GiB', '512MiB' (binary) or plain bytes."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)b?\s*", str(text).lower())
    if not match:
        raise InpaintError(f"cannot read memory size {text!r}: use e.g. 4GB, 512MB or 2GiB")
    value, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(value) * base ** " kmgt".index(unit or " "))


def default_budget(device_type: str = "cpu") -> int:
    """Half of the memory available now (of the GPU's free memory on CUDA)."""
    if device_type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free * 0.5)
    return int(psutil.virtual_memory().available * 0.5)


@dataclass
class Plan:
    """How a run will be carried out, and what it is predicted to cost."""

    budget_bytes: int
    window: int
    margin: int
    ir_dtype: str
    candidate_stride: int
    max_index_size: int
    workers: int
    predicted_peak_bytes: int
    breakdown: dict

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        mib = 2**20
        b = self.breakdown
        return [
            f"memory budget {self.budget_bytes / mib:,.0f} MiB; predicted peak "
            f"{self.predicted_peak_bytes / mib:,.0f} MiB",
            f"  {self.workers} worker(s), windows up to {self.window}x{self.window} px (margin "
            f"{self.margin}), IR "
            f"{self.ir_dtype}, candidate stride {self.candidate_stride}, FAISS flat indexes of "
            f"<= {self.max_index_size:,} candidates",
            f"  baseline {b['baseline'] / mib:,.0f} + workers {b['workers'] / mib:,.0f} + panel "
            f"maps {b['panel'] / mib:,.0f} + "
            f"results {b['results'] / mib:,.0f} + streaming {b['streaming'] / mib:,.0f} + "
            f"{self.workers} x window {b['window'] / mib:,.0f} (IR {b['ir'] / mib:,.0f}, index "
            f"{b['index'] / mib:,.0f}) MiB",
        ]


def window_bytes(side: int, ir_channels: int, ir_bytes: int, descriptor_dim: int,
                 max_index_size: int, panel: tuple[int, int] | None = None) -> dict:
    """Predicted bytes of one square work window of ``side`` pixels (clipped to the ``panel``
    (height, width) when given: a window never extends past the panel)."""
    area = side * side if panel is None else min(side, panel[0]) * min(side, panel[1])
    ir = area * ir_channels * ir_bytes
    index = min(area, max_index_size) * descriptor_dim * 4 * INDEX_OVERHEAD
    rest = area * WINDOW_BYTES_PER_PIXEL
    return {"ir": ir, "index": index, "labels": LABEL_BYTES, "rest": rest,
            "window": int(SAFETY * (ir + index + LABEL_BYTES + rest))}


def make_plan(
    shape: tuple[int, int],
    bands: int,
    itemsize: int,
    missing: int,
    *,
    budget: int | None,
    max_window: int,
    margin: int,
    ir_channels: int,
    descriptor_dim: int,
    ir_dtype: str = "float32",
    candidate_stride: int = 1,
    max_index_size: int = 131_072,
    workers: int = 1,
    patch: int = 16,
) -> Plan:
    """The most workers (<= ``workers``) and the largest window (<= max_window) whose
    predicted peak fits ``budget`` bytes.

    A single worker runs in the main process; a parallel run starts ``workers`` processes,
    each costing its own baseline plus one window. Parallel plans keep
    windows of at least 256 px; fp16 IR storage is tried before shrinking a single worker's
    window below the minimum; InpaintError when even the smallest window does not fit.
    """
    height, width = shape
    budget = budget if budget is not None else default_budget()
    panel = height * width * PANEL_BYTES_PER_PIXEL
    results = missing * (16 + bands * itemsize)
    row_bytes = width * bands * itemsize
    # the row band read and patched, its write copy, and GDAL's (bounded) block cache
    streaming = 2 * max(row_bytes, min(64 * 2**20, height * row_bytes)) + WRITE_CACHE_BYTES
    fixed = BASELINE_BYTES + panel + results + streaming
    # a window must hold a patch inside its margins (RunConfig's rule); a small panel's window
    # is budgeted at that size even though its region is clipped to the panel
    smallest = max(MIN_WINDOW, 2 * margin + patch + 1)
    dtypes = [ir_dtype] if ir_dtype == "float16" or ir_channels == 0 else [ir_dtype, "float16"]
    largest = max(smallest, min(max_window, max(height, width) + 2 * margin))
    for n_workers in range(max(1, workers), 0, -1):
        floor = smallest if n_workers == 1 else max(smallest, min(256, largest))
        # a parallel run has the main process plus n_workers worker processes
        extra = n_workers * WORKER_BASELINE_BYTES if n_workers > 1 else 0
        for dtype in dtypes:
            ir_bytes = 2 if dtype == "float16" else 4
            side = largest
            while True:
                w = window_bytes(side, ir_channels, ir_bytes, descriptor_dim, max_index_size,
                                 panel=shape)
                peak = fixed + extra + n_workers * w["window"]
                if peak <= budget:
                    breakdown = {"baseline": BASELINE_BYTES, "workers": extra, "panel": panel,
                                 "results": results, "streaming": streaming, **w}
                    return Plan(budget_bytes=budget, window=side, margin=margin, ir_dtype=dtype,
                                candidate_stride=candidate_stride,
                                max_index_size=max_index_size, workers=n_workers,
                                predicted_peak_bytes=peak, breakdown=breakdown)
                if side <= floor:
                    break
                side = max(floor, int(side / math.sqrt(2)))   # the floor itself is tried too
    # the cheapest plan tried: one worker, the smallest window, the smallest IR type
    need = fixed + window_bytes(smallest, ir_channels, 2 if dtypes[-1] == "float16" else 4,
                                descriptor_dim, max_index_size, panel=shape)["window"]
    raise InpaintError(f"memory budget {budget / 2**20:,.0f} MiB is too small: even one "
                       f"{smallest}x{smallest} window needs about {need / 2**20:,.0f} MiB "
                       f"for this {width}x{height} panel")
