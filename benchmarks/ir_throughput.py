"""IR throughput: megapixels per second of the IR and of dense descriptor extraction, against
encoding every patch on its own (the naive way).

For v32 and v128 at about 1, 4 and 16 megapixels (1024^2, 2048^2, 4096^2; ``--quick``: 512^2 and
1024^2), each in a fresh process:

* **IR**: ``compute_ir`` (fp32, default 512-px tiles) over the whole image.
* **dense**: given the IR, ``DenseField`` construction (one stride-1 8x8 running max) plus
  reading the descriptor of *every* stride-1 patch position, chunk by chunk (the chunks are
  discarded: all descriptors at once would need D/C = 4x the IR's memory, 8 GB for v128 at
  16 MP).
* **naive**: cut each patch (with its 3-px context in valid_context mode) and run ``model.encode``
  on batches. Far too slow for every position, so a random sample is timed and the per-position
  cost is *extrapolated* to all positions of the image.

The speed-up is naive seconds / (IR + dense seconds) for descriptors at every position. Peak RSS
comes from each child's own high-water mark (``ru_maxrss``) and includes the Python/torch runtime
and the image; the analytic IR size (H*W*C*4 bytes) is printed next to it. Also measured once:
the layouts of the stride-1 max-pool (design doc section 6), checked to give identical results.

Run from the repository root::

    .venv/bin/python benchmarks/ir_throughput.py [--quick] [--out DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # benchmarks/ is not a package: imported from this folder

from descriptor import (
    CheckpointError,
    DenseField,
    ModelConfig,
    build_model,
    builtin_names,
    compute_ir,
    load_checkpoint,
)
from descriptor.extract import gather_windows, running_max
from inpaint.memory import PeakMemory, process_peak_rss

NAME = "ir_throughput"
ARCHS = ("v32", "v128")
FULL_SIDES = (1024, 2048, 4096)
QUICK_SIDES = (512, 1024)
FULL_NAIVE_SAMPLES = 20_000
QUICK_NAIVE_SAMPLES = 1_000
NAIVE_BATCH = 1024
DENSE_CHUNK = 1 << 18  # positions read per DenseField.at call
IR_TILE = 512
MB = 1024 * 1024


# --------------------------------------------------------------------------- child-side helpers

def load_model(arch: str) -> tuple[nn.Module, str]:
    """The built-in ``arch`` descriptor when installed, else a random-initialised one.

    Speed does not depend on the weights, so random weights give the same figures.
    """
    reason = ""
    if arch in builtin_names():
        try:
            return load_checkpoint(arch, expected_arch=arch).model.eval(), f"built-in {arch}"
        except CheckpointError as exc:  # e.g. being rewritten by a training run
            reason = f" (built-in unusable: {exc})"
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, padding_mode="valid_context")).eval()
    return model, f"random init, valid_context{reason}"


def padded_image(image: np.ndarray, context: int) -> torch.Tensor:
    """(3, H+2c, W+2c) tensor, mirror-padded like ``compute_ir`` does in valid_context mode."""
    if context:
        image = np.pad(image, ((context, context), (context, context), (0, 0)), mode="reflect")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)


def naive_descriptors(model: nn.Module, padded: torch.Tensor, tops: torch.Tensor,
                      lefts: torch.Tensor, batch: int = NAIVE_BATCH,
                      keep: bool = False) -> torch.Tensor | None:
    """Descriptors by cutting every patch (plus context) and encoding it on its own, in batches.

    Positions are patch top-left corners in image coordinates; ``padded`` is the image padded by
    the model's context, so the crop of patch (i, j) starts at (i, j) in ``padded``.
    """
    size = model.config.input_size
    out = []
    with torch.inference_mode():
        for s in range(0, len(tops), batch):
            crops = gather_windows(padded, tops[s:s + batch], lefts[s:s + batch], size)
            codes = model.encode(crops.contiguous())
            if keep:
                out.append(codes)
    return torch.cat(out) if keep else None


def dense_all_positions(ir: torch.Tensor, patch_size: int) -> tuple[DenseField, float, float,
                                                                     int, int]:
    """Build the dense field and read the descriptor of every stride-1 position, chunk by chunk.

    A chunk is a band of whole rows of positions: the field's own ``band`` when it has one (it
    then pools each band on demand), else about ``DENSE_CHUNK`` positions. The chunks are
    discarded. Returns (field, construction seconds, read seconds, positions, rows per chunk).
    """
    start = time.perf_counter()
    field = DenseField(ir, patch_size)
    built = time.perf_counter()
    rows, cols = ir.shape[1] - patch_size + 1, ir.shape[2] - patch_size + 1
    rows_per_chunk = int(getattr(field, "band", 0)) or max(1, DENSE_CHUNK // cols)
    col_index = torch.arange(cols)
    for r0 in range(0, rows, rows_per_chunk):
        r1 = min(rows, r0 + rows_per_chunk)
        tops = torch.arange(r0, r1).repeat_interleave(cols)
        lefts = col_index.repeat(r1 - r0)
        field.at(tops, lefts)
    return field, built - start, time.perf_counter() - built, rows * cols, rows_per_chunk


def _warm_up(model: nn.Module, image: np.ndarray) -> None:
    """One small IR and one small batch, so one-off kernel set-up is not timed."""
    compute_ir(model.encoder, image[:64, :64], model.config.padding_mode)
    size = model.config.input_size
    with torch.inference_mode():
        model.encode(torch.from_numpy(np.ascontiguousarray(image[:size, :size]))
                     .permute(2, 0, 1)[None].repeat(64, 1, 1, 1))


# --------------------------------------------------------------------------- child measurements

def measure_ir_dense(arch: str, side: int, repeat: int, check: int = 256) -> dict[str, Any]:
    """(In a fresh process.) Time the IR and the dense field of a side x side image; peak RSS."""
    model, weights = load_model(arch)
    cfg = model.config
    image = common.sized_image(side)
    _warm_up(model, image)
    height, width = image.shape[:2]
    rss_baseline = common.current_rss()

    with PeakMemory() as mem_ir:
        ir_s, ir = common.timed(compute_ir, model.encoder, image, cfg.padding_mode,
                                tile=IR_TILE, repeat=repeat)
    peak_after_ir = process_peak_rss()

    best: tuple[float, float, float] | None = None
    field = None
    with PeakMemory() as mem_dense:
        for _ in range(max(1, repeat)):
            field = None  # release the previous field before building the next one
            field, build_s, read_s, positions, chunk_rows = dense_all_positions(ir,
                                                                                cfg.patch_size)
            if best is None or build_s + read_s < best[0]:
                best = (build_s + read_s, build_s, read_s)
    peak_after_dense = process_peak_rss()
    dense_s, build_s, read_s = best

    # Sanity check: dense descriptors against encoding the same patches one by one.
    rng = np.random.default_rng(1)
    tops = torch.from_numpy(rng.integers(0, height - cfg.patch_size + 1, check))
    lefts = torch.from_numpy(rng.integers(0, width - cfg.patch_size + 1, check))
    naive = naive_descriptors(model, padded_image(image, cfg.context), tops, lefts, keep=True)
    dense = field.at(tops, lefts)
    max_diff = float((naive - dense).abs().max())
    scale = float(naive.abs().max())

    channels = ir.shape[0]
    return {
        "arch": arch, "weights": weights, "padding_mode": cfg.padding_mode,
        "height": height, "width": width, "channels": channels,
        "descriptor_dim": cfg.descriptor_dim, "positions": positions,
        "ir_seconds": ir_s, "dense_seconds": dense_s,
        "dense_build_seconds": build_s, "dense_read_seconds": read_s,
        "repeat": repeat, "ir_tile": IR_TILE, "dense_chunk_rows": chunk_rows,
        "dense_chunk_bytes": chunk_rows * (width - cfg.patch_size + 1) * cfg.descriptor_dim * 4,
        "ir_bytes": height * width * channels * 4,
        "all_descriptors_bytes": positions * cfg.descriptor_dim * 4,
        "image_bytes": int(image.nbytes),
        "rss_baseline": rss_baseline,
        "peak_rss_ir": peak_after_ir, "peak_rss_ir_sampled": mem_ir.peak_rss,
        "peak_rss_dense": peak_after_dense, "peak_rss_dense_sampled": mem_dense.peak_rss,
        "check_positions": check, "check_max_abs_diff": max_diff,
        "check_descriptor_max": scale,
        "check_exact_expected": cfg.padding_mode == "valid_context",
        "torch_threads": torch.get_num_threads(),
    }


def measure_naive(arch: str, side: int, samples: int, batch: int = NAIVE_BATCH) -> dict[str, Any]:
    """(In a fresh process.) Time encoding ``samples`` random patches one by one (batched)."""
    model, weights = load_model(arch)
    cfg = model.config
    image = common.sized_image(side)
    _warm_up(model, image)
    height, width = image.shape[:2]
    padded = padded_image(image, cfg.context)
    rng = np.random.default_rng(0)
    tops = torch.from_numpy(rng.integers(0, height - cfg.patch_size + 1, samples))
    lefts = torch.from_numpy(rng.integers(0, width - cfg.patch_size + 1, samples))
    rss_baseline = common.current_rss()
    with PeakMemory() as mem:
        seconds, _ = common.timed(naive_descriptors, model, padded, tops, lefts, batch)
    return {
        "arch": arch, "weights": weights, "padding_mode": cfg.padding_mode,
        "samples": samples, "batch": batch, "crop_size": cfg.input_size,
        "sample_seconds": seconds, "seconds_per_position": seconds / samples,
        "rss_baseline": rss_baseline, "peak_rss": process_peak_rss(),
        "peak_rss_sampled": mem.peak_rss, "torch_threads": torch.get_num_threads(),
    }


def _doubling_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """(1, C, H, W) -> stride-1 k x k max-pool the way DenseField computes it (``running_max``
    on an (H, W, C) copy: rows, then columns), returned as a (1, C, H', W') view."""
    hwc = x[0].permute(1, 2, 0).contiguous()
    rows = running_max(hwc, [k], 0)[k]
    return running_max(rows, [k], 1)[k].permute(2, 0, 1)[None]


def measure_pool_layouts(side: int, repeat: int, arch: str = "v128") -> dict[str, Any]:
    """(In a fresh process.) Stride-1 8x8 max-pool of a real IR, five ways; same results?

    Times include converting the (NCHW) IR to channels_last where a variant uses it, since
    ``compute_ir`` returns NCHW.
    """
    model, weights = load_model(arch)
    image = common.sized_image(side)
    ir = compute_ir(model.encoder, image, model.config.padding_mode, tile=IR_TILE)
    x = ir[None]
    cl = torch.channels_last

    variants = {
        "default (NCHW)": lambda: F.max_pool2d(x, 8, stride=1),
        "channels_last": lambda: F.max_pool2d(x.contiguous(memory_format=cl), 8, stride=1),
        "separable 1x8, 8x1 (NCHW)": lambda: F.max_pool2d(
            F.max_pool2d(x, (1, 8), stride=1), (8, 1), stride=1),
        "separable 1x8, 8x1 (channels_last)": lambda: F.max_pool2d(
            F.max_pool2d(x.contiguous(memory_format=cl), (1, 8), stride=1), (8, 1), stride=1),
        "running max by doubling, (H, W, C) (used)": lambda: _doubling_pool(x, 8),
    }
    F.max_pool2d(x[:, :, :64, :64], 8, stride=1)  # warm-up
    reference = None
    rows = []
    for label, fn in variants.items():
        seconds, out = common.timed(fn, repeat=repeat)
        if reference is None:
            reference = out
        rows.append({"layout": label, "seconds": seconds,
                     "identical_to_default": bool(torch.equal(out, reference))})
        out = None
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup_vs_default"] = base / row["seconds"]
    return {"arch": arch, "weights": weights, "height": image.shape[0], "width": image.shape[1],
            "channels": ir.shape[0], "repeat": repeat, "layouts": rows,
            "torch_threads": torch.get_num_threads()}


# --------------------------------------------------------------------------- parent

def combine(arch: str, side: int, dense: dict[str, Any], naive: dict[str, Any]) -> dict[str, Any]:
    """One result row from the IR/dense child and the naive child (errors kept, not raised)."""
    row: dict[str, Any] = {"arch": arch, "side": side, "megapixels": side * side / 1e6,
                           "ir_dense": dense, "naive": naive}
    if "error" in dense or "error" in naive:
        row["error"] = dense.get("error") or naive.get("error")
        return row
    mp = dense["height"] * dense["width"] / 1e6
    naive_total = naive["seconds_per_position"] * dense["positions"]
    both = dense["ir_seconds"] + dense["dense_seconds"]
    row.update({
        "megapixels": mp,
        "weights": dense["weights"],
        "ir_mps": mp / dense["ir_seconds"],
        "dense_mps": mp / dense["dense_seconds"],
        "ir_plus_dense_mps": mp / both,
        "naive_seconds_extrapolated": naive_total,
        "naive_mps_extrapolated": mp / naive_total,
        "speedup": naive_total / both,
        "ir_mb": dense["ir_bytes"] / MB,
        "all_descriptors_mb": dense["all_descriptors_bytes"] / MB,
        "peak_rss_ir_mb": dense["peak_rss_ir"] / MB,
        "peak_rss_dense_mb": dense["peak_rss_dense"] / MB,
        "rss_baseline_mb": dense["rss_baseline"] / MB,
        "peak_rss_naive_mb": naive["peak_rss"] / MB,
        "check_max_abs_diff": dense["check_max_abs_diff"],
    })
    return row


SPEED_COLUMNS: list[common.Column] = [
    ("arch", "arch", "s"),
    ("megapixels", "MP", ".2f"),
    ("ir_mps", "IR MP/s", ".2f"),
    ("dense_mps", "dense MP/s", ".2f"),
    ("ir_plus_dense_mps", "IR+dense MP/s", ".2f"),
    ("naive_mps_extrapolated", "naive MP/s (extrap.)", ".4f"),
    ("speedup", "speed-up naive/(IR+dense)", ".0f"),
    ("check_max_abs_diff", "max |naive-dense|", ".1e"),
]
MEMORY_COLUMNS: list[common.Column] = [
    ("arch", "arch", "s"),
    ("megapixels", "MP", ".2f"),
    ("ir_mb", "IR MB (H*W*C*4)", ".0f"),
    ("all_descriptors_mb", "all descr. MB (not held)", ".0f"),
    ("rss_baseline_mb", "RSS before MB", ".0f"),
    ("peak_rss_ir_mb", "peak RSS IR MB", ".0f"),
    ("peak_rss_dense_mb", "peak RSS IR+dense MB", ".0f"),
    ("peak_rss_naive_mb", "peak RSS naive MB", ".0f"),
]
LAYOUT_COLUMNS: list[common.Column] = [
    ("layout", "stride-1 8x8 max-pool layout", "s"),
    ("seconds", "seconds", ".2f"),
    ("speedup_vs_default", "x default", ".2f"),
    ("identical_to_default", "identical", "s"),
]


def plot(rows: list[dict[str, Any]], out_dir: Path) -> Path | None:
    """MP/s vs megapixels (log y) for IR, dense, IR+dense and naive (extrapolated), per arch."""
    good = [r for r in rows if "error" not in r]
    if not good:
        return None
    fig, ax = common.new_figure()
    series = [("ir_mps", "IR"), ("dense_mps", "dense field (given IR)"),
              ("ir_plus_dense_mps", "IR + dense"), ("naive_mps_extrapolated",
                                                    "naive per patch (extrapolated)")]
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    styles = {"v32": ("--", "o"), "v128": ("-", "s")}
    for arch in ARCHS:
        data = sorted((r for r in good if r["arch"] == arch), key=lambda r: r["megapixels"])
        if not data:
            continue
        line, marker = styles.get(arch, ("-", "^"))
        mps = [r["megapixels"] for r in data]
        for (key, label), colour in zip(series, colours):
            ax.plot(mps, [r[key] for r in data], linestyle=line, marker=marker, color=colour,
                    label=f"{arch}: {label}")
    ax.set_xscale("log", base=2)
    sizes = sorted({r["megapixels"] for r in good})
    ax.set_xticks(sizes, [f"{mp:.3g}" for mp in sizes])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("image size (megapixels)")
    ax.set_ylabel("megapixels of image per second")
    ax.set_title(f"IR vs per-patch descriptors, CPU, {torch.get_num_threads()} threads, fp32")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return common.save_plot(fig, out_dir, NAME)


def main(argv: list[str] | None = None) -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    p.add_argument("--sides", nargs="+", type=int, default=None,
                   help="image sides in pixels (default 1024 2048 4096; --quick: 512 1024)")
    p.add_argument("--naive-samples", type=int, default=None,
                   help=f"patches timed the naive way (default {FULL_NAIVE_SAMPLES}; "
                        f"--quick: {QUICK_NAIVE_SAMPLES})")
    p.add_argument("--layout-side", type=int, default=None,
                   help="image side for the pooling-layout comparison (default 2048; "
                        "--quick: 512; 0 skips it)")
    args = p.parse_args(argv)
    sides = args.sides or list(QUICK_SIDES if args.quick else FULL_SIDES)
    samples = args.naive_samples or (QUICK_NAIVE_SAMPLES if args.quick else FULL_NAIVE_SAMPLES)
    layout_side = args.layout_side if args.layout_side is not None else (
        512 if args.quick else 2048)

    started = time.perf_counter()
    print(f"{NAME}: archs {args.archs}, sides {sides}, naive sample {samples} patches, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{' (quick)' if args.quick else ''}", flush=True)
    rows = []
    for arch in args.archs:
        for side in sides:
            repeat = 1 if args.quick or side * side > 4_200_000 else 2
            print(f"  {arch} {side}x{side}: IR + dense ...", end="", flush=True)
            dense = common.measure_subprocess(measure_ir_dense,
                                              {"arch": arch, "side": side, "repeat": repeat})
            print(" naive ...", end="", flush=True)
            naive = common.measure_subprocess(measure_naive,
                                              {"arch": arch, "side": side, "samples": samples})
            row = combine(arch, side, dense, naive)
            rows.append(row)
            print(f" {row.get('error') or 'done'} ({time.perf_counter() - started:.0f} s)",
                  flush=True)

    layouts: dict[str, Any] | None = None
    if layout_side > 0:
        print(f"  pool layouts, v128 {layout_side}x{layout_side} ...", end="", flush=True)
        layouts = common.measure_subprocess(measure_pool_layouts,
                                            {"side": layout_side, "repeat": 1 if args.quick else 2})
        print(f" {layouts.get('error') or 'done'} ({time.perf_counter() - started:.0f} s)",
              flush=True)

    good = [r for r in rows if "error" not in r]
    weights = sorted({r["weights"] for r in good})
    common.print_table(good, SPEED_COLUMNS, title="Throughput (megapixels of image per second; "
                       "naive extrapolated from a random sample of patches)")
    common.print_table(good, MEMORY_COLUMNS, title="Memory (MB = 2^20 bytes; peak RSS includes "
                       "the Python/torch runtime and the float32 image)")
    if layouts and "error" not in layouts:
        common.print_table(layouts["layouts"], LAYOUT_COLUMNS,
                           title=f"Stride-1 8x8 max-pool of the {layouts['arch']} IR "
                                 f"({layouts['height']}x{layouts['width']}x{layouts['channels']})")
    for row in rows:
        if "error" in row:
            print(f"FAILED {row['arch']} {row['side']}x{row['side']}: {row['error']}")
    print(f"\nweights: {', '.join(weights) or '-'} (speed does not depend on the weights)")

    payload = {
        "benchmark": NAME,
        "description": __doc__.strip().splitlines()[0],
        "settings": {
            "archs": args.archs, "sides": sides, "naive_samples": samples,
            "naive_batch": NAIVE_BATCH, "ir_tile": IR_TILE,
            "dtype": "float32", "device": "cpu", "patch_size": 16,
            "threads": f"torch default ({torch.get_num_threads()} threads), not changed",
            "weights": weights,
            "timing": "best of 2 runs up to 4 MP, single run above and in --quick; "
                      "each (arch, size) measured in fresh processes",
        },
        "definitions": {
            "megapixels": "H*W/1e6 of the image",
            "ir_mps": "megapixels / compute_ir seconds",
            "dense_mps": "megapixels / (DenseField construction + reading the descriptor of "
                         "every stride-1 position, in chunks of whole rows that are discarded) "
                         "seconds, given the IR; pooling included wherever DenseField does it",
            "ir_plus_dense_mps": "megapixels / (IR + dense) seconds: descriptors at every "
                                 "position from the image",
            "naive_mps_extrapolated": "megapixels / (seconds per patch from a random sample x "
                                      "number of positions): EXTRAPOLATED, not run in full",
            "speedup": "naive extrapolated seconds / (IR + dense) seconds",
            "peak_rss_*": "child's ru_maxrss after the stage (high-water mark of that fresh "
                          "process, includes runtime and image); *_sampled: PeakMemory samples",
            "check_max_abs_diff": "max |naive - dense| over random positions (0 up to float "
                                  "rounding expected in valid_context mode)",
        },
        "results": rows,
        "pool_layouts": layouts,
        "markdown": common.markdown_table(good, SPEED_COLUMNS),
        "total_seconds": time.perf_counter() - started,
    }
    path = common.write_json(args.out, NAME, payload, args=args)
    png = plot(rows, args.out)
    print(f"wrote {path}" + (f" and {png}" if png else ""))
    print(f"total {time.perf_counter() - started:.0f} s")
    if not good or any("error" in r for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
