"""Memory against image size (seed paper 1, Fig. 3): the IR versus storing every patch descriptor.

For square images of 0.25 to 100 megapixels this gives the number of float32 values, and bytes,
needed for

* the **IR** of v32 (8 channels) and v128 (32 channels): ``H * W * C`` values, whatever the patch
  size or candidate stride, from which any patch descriptor is one 8x8 max-pool away;
* **every patch's descriptor** stored explicitly, for v32 (D = 32), v128 (D = 128) and the Chen
  et al. baseline (D = 128, no IR possible): ``ceil((H-P+1)/s) * ceil((W-P+1)/s) * D`` values
  for P = 16 and candidate stride s (default 1: every patch);
* the float32 RGB image itself, for scale.

The figures are **analytic** (research/descriptors.md section 1.5) for every size and, up to
``--budget-gb`` per tensor, **measured** on real tensors, each in a fresh process: the IR is
computed with ``compute_ir`` over the image, and the descriptor array is filled for real
(v32/v128 from the IR through ``DenseField``; Chen by encoding every patch). The measured value
count and the tensor's storage bytes are checked against the formula; each child's peak RSS
(runtime, image and everything else included) and its seconds are reported beside them.
Built-in weights are used when installed (memory does not depend on the weights, so a random
initialisation gives the same figures otherwise).

    .venv/bin/python benchmarks/memory.py [--quick] [--out DIR] [--budget-gb 2.5] [--stride 1]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from descriptor import (
    CheckpointError,
    DenseField,
    ModelConfig,
    build_model,
    builtin_names,
    compute_ir,
    load_checkpoint,
)

NAME = "memory"
MEGAPIXELS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 100)
PATCH = 16
FLOAT32 = 4
MB = 1e6  # decimal units, as in research/descriptors.md section 1.5
GB = 1e9
#: (key, label, kind, arch): the quantities compared, in plotting order.
ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("image", "image (RGB float32)", "image", ""),
    ("ir_v32", "IR v32 (C=8)", "ir", "v32"),
    ("ir_v128", "IR v128 (C=32)", "ir", "v128"),
    ("desc_v32", "all descriptors v32 (D=32)", "descriptors", "v32"),
    ("desc_v128", "all descriptors v128 (D=128)", "descriptors", "v128"),
    ("desc_chen", "all descriptors Chen (D=128)", "descriptors", "chen"),
)
IR_CHANNELS = {"v32": 8, "v128": 32}
DESCRIPTOR_DIM = {"v32": 32, "v128": 128, "chen": 128}


# --------------------------------------------------------------------------- analytic

def side_for(megapixels: float) -> int:
    """Side of the square image with (about) ``megapixels`` million pixels."""
    return round(math.sqrt(megapixels * 1e6))


def positions(side: int, stride: int, patch: int = PATCH) -> int:
    """Number of patch positions (top-left corners) on a stride-``stride`` grid."""
    per_axis = math.ceil((side - patch + 1) / stride)
    return per_axis * per_axis


def analytic_values(kind: str, arch: str, side: int, stride: int) -> int:
    """float32 values needed for one item (see the module docstring for the formulas)."""
    if kind == "image":
        return side * side * 3
    if kind == "ir":
        return side * side * IR_CHANNELS[arch]
    return positions(side, stride) * DESCRIPTOR_DIM[arch]


# --------------------------------------------------------------------------- measured (child)

def load_model(arch: str) -> tuple[nn.Module, str]:
    """The built-in ``arch`` model when installed and readable, else a seeded random one."""
    if arch in builtin_names():
        try:
            return load_checkpoint(arch, expected_arch=arch).model.eval(), f"built-in {arch}"
        except CheckpointError:
            pass
    torch.manual_seed(0)
    mode = "valid_context" if arch in IR_CHANNELS else "same"
    return build_model(ModelConfig(arch, padding_mode=mode)).eval(), "random init"


def chen_all_descriptors(model: nn.Module, image: torch.Tensor, stride: int,
                         out: torch.Tensor) -> None:
    """Fill ``out`` (N, 128) with the Chen descriptor of every patch, one band of rows at a time.

    A band of 16 image rows is unfolded into its (768, positions) patch matrix, whose column
    order (channel, row, col) is that of ``patches.flatten(1)``, and encoded in one product.
    """
    _, height, width = image.shape
    rows = range(0, height - PATCH + 1, stride)
    per_row = math.ceil((width - PATCH + 1) / stride)
    with torch.inference_mode():
        for r, top in enumerate(rows):
            band = image[None, :, top:top + PATCH, :]
            cols = F.unfold(band, PATCH, stride=stride)[0]           # (768, per_row)
            patches = cols.T.reshape(-1, 3, PATCH, PATCH)
            out[r * per_row:(r + 1) * per_row] = model.encode(patches)


def ir_all_descriptors(field: DenseField, height: int, width: int, stride: int,
                       out: torch.Tensor, chunk: int = 1 << 18) -> None:
    """Fill ``out`` (N, D) with the descriptor of every stride-``stride`` patch, from the IR."""
    tops_axis = torch.arange(0, height - PATCH + 1, stride)
    lefts_axis = torch.arange(0, width - PATCH + 1, stride)
    per_row = len(lefts_axis)
    rows_per_chunk = max(1, chunk // per_row)
    for r0 in range(0, len(tops_axis), rows_per_chunk):
        r1 = min(len(tops_axis), r0 + rows_per_chunk)
        tops = tops_axis[r0:r1].repeat_interleave(per_row)
        lefts = lefts_axis.repeat(r1 - r0)
        out[r0 * per_row:r1 * per_row] = field.at(tops, lefts)


def measure(kind: str, arch: str, side: int, stride: int, threads: int) -> dict[str, Any]:
    """(In a fresh process.) Build the item for a real ``side``^2 image; count its storage."""
    torch.set_num_threads(threads)
    image = common.sized_image(side)
    start = time.perf_counter()
    weights = "-"
    if kind == "image":
        tensor = torch.from_numpy(image)
    else:
        model, weights = load_model(arch)
        if kind == "ir":
            tensor = compute_ir(model.encoder, image, model.config.padding_mode)
        elif arch == "chen":
            tensor = torch.empty((positions(side, stride), DESCRIPTOR_DIM[arch]))
            chen_all_descriptors(model, torch.from_numpy(image).permute(2, 0, 1), stride, tensor)
        else:
            ir = compute_ir(model.encoder, image, model.config.padding_mode)
            tensor = torch.empty((positions(side, stride), DESCRIPTOR_DIM[arch]))
            ir_all_descriptors(DenseField(ir, PATCH), side, side, stride, tensor)
            del ir
    seconds = time.perf_counter() - start
    return {"values": int(tensor.numel()), "bytes": int(tensor.untyped_storage().nbytes()),
            "dtype": str(tensor.dtype), "shape": list(tensor.shape), "seconds": seconds,
            "weights": weights}


# --------------------------------------------------------------------------- parent

def run(megapixels: tuple[float, ...], stride: int, budget_bytes: float, threads: int,
        measure_sizes: int | None = None) -> list[dict[str, Any]]:
    """One row per (size, item): analytic values/bytes and, within the budget, measured ones
    (only for the first ``measure_sizes`` sizes when given)."""
    rows = []
    for index, mp in enumerate(megapixels):
        side = side_for(mp)
        for key, label, kind, arch in ITEMS:
            values = analytic_values(kind, arch, side, stride)
            row: dict[str, Any] = {"megapixels": side * side / 1e6, "side": side, "item": key,
                                   "label": label, "values": values, "bytes": values * FLOAT32,
                                   "measured": None}
            wanted = measure_sizes is None or index < measure_sizes
            if wanted and values * FLOAT32 <= budget_bytes:
                got = common.measure_subprocess(measure, {"kind": kind, "arch": arch,
                                                          "side": side, "stride": stride,
                                                          "threads": threads})
                if "error" not in got:
                    got["matches_analytic"] = (got["values"] == values
                                               and got["bytes"] == values * FLOAT32)
                row["measured"] = got
                status = got.get("error") or (f"{got['bytes'] / MB:.1f} MB measured, "
                                              f"peak RSS {got['child_peak_rss'] / MB:.0f} MB, "
                                              f"{got['seconds']:.1f} s")
                print(f"{mp:>6} MP  {label:<30} {status}", flush=True)
            rows.append(row)
    return rows


def size_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per size: analytic MB of every item (the printed / README table)."""
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(r["side"], {"megapixels": r["megapixels"], "side": r["side"]})
        entry[f"{r['item']}_values"] = r["values"]
        entry[f"{r['item']}_mb"] = r["bytes"] / MB
        entry[f"{r['item']}_measured"] = (r["measured"] is not None
                                          and r["measured"].get("matches_analytic", False))
    return list(out.values())


def measured_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per measured (size, item)."""
    out = []
    for r in rows:
        m = r["measured"]
        if m is None:
            continue
        out.append({"megapixels": r["megapixels"], "item": r["label"],
                    "analytic_mb": r["bytes"] / MB,
                    "measured_mb": None if "error" in m else m["bytes"] / MB,
                    "matches": None if "error" in m else ("yes" if m["matches_analytic"] else "NO"),
                    "peak_rss_mb": m.get("child_peak_rss", 0) / MB if "error" not in m else None,
                    "seconds": m.get("seconds"), "error": m.get("error")})
    return out


SIZE_COLUMNS: list[common.Column] = [
    ("megapixels", "MP", ".2f"),
    ("image_mb", "image MB", ".0f"),
    ("ir_v32_mb", "IR v32 MB", ".0f"),
    ("ir_v128_mb", "IR v128 MB", ".0f"),
    ("desc_v32_mb", "all desc. v32 MB", ".0f"),
    ("desc_v128_mb", "all desc. v128 MB", ".0f"),
    ("desc_chen_mb", "all desc. Chen MB", ".0f"),
]
VALUE_COLUMNS: list[common.Column] = [
    ("megapixels", "MP", ".2f"),
    ("ir_v32_values", "IR v32 values", ","),
    ("ir_v128_values", "IR v128 values", ","),
    ("desc_v32_values", "desc. v32 values", ","),
    ("desc_v128_values", "desc. v128 values", ","),
    ("desc_chen_values", "desc. Chen values", ","),
]
MEASURED_COLUMNS: list[common.Column] = [
    ("megapixels", "MP", ".2f"),
    ("item", "item", "s"),
    ("analytic_mb", "analytic MB", ".1f"),
    ("measured_mb", "tensor MB", ".1f"),
    ("matches", "equal", "s"),
    ("peak_rss_mb", "child peak RSS MB", ".0f"),
    ("seconds", "seconds", ".1f"),
]


def plot(rows: list[dict[str, Any]], out_dir: Path, stride: int, ram_bytes: int | None) -> Path:
    """Bytes against megapixels (log-log): analytic lines, measured tensors as markers."""
    fig, ax = common.new_figure(figsize=(8.0, 5.0))
    styles = {"image": ("grey", ":", "x"), "ir_v32": ("tab:blue", "-", "o"),
              "ir_v128": ("tab:orange", "-", "s"), "desc_v32": ("tab:blue", "--", "o"),
              "desc_v128": ("tab:orange", "--", "s"), "desc_chen": ("tab:red", "-.", "^")}
    for key, label, _, _ in ITEMS:
        mine = [r for r in rows if r["item"] == key]
        colour, line, marker = styles[key]
        ax.plot([r["megapixels"] for r in mine], [r["bytes"] for r in mine], line, color=colour,
                label=label)
        done = [r for r in mine if r["measured"] and "error" not in r["measured"]]
        if done:
            ax.plot([r["megapixels"] for r in done], [r["measured"]["bytes"] for r in done],
                    marker, color=colour, linestyle="none", markerfacecolor="none")
    if ram_bytes:
        ax.axhline(ram_bytes, color="black", linewidth=0.8)
        ax.text(rows[0]["megapixels"], ram_bytes * 1.15, f"this machine's RAM "
                f"({ram_bytes / GB:.0f} GB)", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("image size (megapixels)")
    ax.set_ylabel("float32 bytes")
    ax.set_title(f"IR vs every patch's descriptor (16x16 patches, stride {stride}); "
                 "markers: measured tensors", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return common.save_plot(fig, out_dir, NAME)


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--budget-gb", type=float, default=None,
                   help="measure items of at most this many GB on real tensors (default 2.5; "
                        "--quick measures the smallest size only)")
    p.add_argument("--stride", type=int, default=1,
                   help="candidate stride for the stored-descriptor figures (default 1: every "
                        "patch)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the children")
    args = p.parse_args()
    if args.stride < 1:
        p.error("--stride must be positive")
    budget = (args.budget_gb if args.budget_gb is not None else 2.5) * GB
    args.out.mkdir(parents=True, exist_ok=True)

    rows = run(MEGAPIXELS, args.stride, budget, args.threads,
               measure_sizes=1 if args.quick else None)
    sizes = size_table(rows)
    measured = measured_table(rows)
    common.print_table(sizes, VALUE_COLUMNS, title="float32 values (analytic)")
    common.print_table(sizes, SIZE_COLUMNS,
                       title=f"MB (analytic; descriptors of every patch at stride {args.stride})")
    print(common.markdown_table(sizes, SIZE_COLUMNS))
    common.print_table(measured, MEASURED_COLUMNS, title="measured on real tensors")

    # Ratios of section 1.5: every descriptor vs the IR it can be pooled from (D/C at s = 1).
    ref = next(r for r in sizes if r["side"] == side_for(1))
    ratios = {
        "desc_v32_over_ir_v32": ref["desc_v32_mb"] / ref["ir_v32_mb"],
        "desc_v128_over_ir_v128": ref["desc_v128_mb"] / ref["ir_v128_mb"],
        "desc_chen_over_ir_v32": ref["desc_chen_mb"] / ref["ir_v32_mb"],
        "desc_chen_over_ir_v128": ref["desc_chen_mb"] / ref["ir_v128_mb"],
    }
    print("\nat 1 MP: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    mismatched = [m for m in measured if m["matches"] == "NO" or m["error"]]
    if mismatched:
        print(f"WARNING: {len(mismatched)} measured item(s) differ from the formula or failed")

    ram = common.machine_info().get("total_ram_bytes")
    plot(rows, args.out, args.stride, ram)
    payload = {
        "description": "float32 values and bytes of the IR (v32, v128) and of every patch's "
                       "descriptor (v32, v128, Chen), analytic and measured",
        "formulas": {
            "image": "H*W*3",
            "ir": "H*W*C, C = 8 (v32) or 32 (v128)",
            "descriptors": "ceil((H-P+1)/s) * ceil((W-P+1)/s) * D, P = 16, "
                           "D = 32 (v32), 128 (v128, Chen)",
            "bytes": "values * 4 (float32)",
        },
        "patch_size": PATCH, "stride": args.stride, "budget_bytes": budget,
        "ratios_at_1mp": ratios,
        "sizes": sizes,
        "rows": rows,
    }
    path = common.write_json(args.out, NAME, payload, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
