"""Whole-panel scaling: wall time per stage and peak RSS of ``inpaint run`` against panel size.

Synthetic 16-bit RGB panels of 4, 16 and 64 megapixels are mirror-tiled from a painting image
(../shared/data, else an image shipped with scikit-image) and cut by a seeded synthetic
paint-loss mask of about 3 %. Each (size, descriptor) is one ``inpaint run`` process with
``--memory-budget`` (default 4GB); its JSON report gives the stage timings and the memory plan
(predicted peak); the peak RSS is the summed RSS of the process and its worker processes,
sampled from outside every 0.1 s. ``--quick`` runs the 4 MP case only.

    python benchmarks/scaling.py [--quick] [--sizes 4,16,64] [--modes v128,v32,none] [--replot]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from masks import PaintLossConfig, paint_loss_mask  # noqa: E402

SOURCE = "peers/pureexe__thai-painting-restoration/images/painting/inpaint-domain-original.png"
STAGES = ("prefill", "context", "lattice", "field", "search", "unary", "pruning", "inference",
          "propagation", "compose", "write")


def source_tile() -> np.ndarray:
    """A uint16 RGB painting tile (Creation of Adam crop, else scikit-image's astronaut)."""
    path = common.shared_data(SOURCE)
    if path is not None:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    else:
        import skimage.data

        rgb = skimage.data.astronaut()
    return rgb.astype(np.uint16) * 257


def make_panel(folder: Path, megapixels: float, coverage: float, seed: int) -> tuple[Path, Path]:
    """Write panel_<MP>.tif (tiled, deflate, uint16 RGB) and its 1-bit loss mask, once."""
    side = int(round(np.sqrt(megapixels * 1e6)))
    panel = folder / f"panel_{megapixels:g}MP.tif"
    mask_path = folder / f"panel_{megapixels:g}MP_mask.tif"
    if panel.exists() and mask_path.exists():
        return panel, mask_path
    tile = source_tile()
    th, tw = tile.shape[:2]
    mirrored = np.concatenate([np.concatenate([tile, tile[:, ::-1]], 1),
                               np.concatenate([tile[::-1], tile[::-1, ::-1]], 1)], 0)
    profile = dict(driver="GTiff", height=side, width=side, count=3, dtype="uint16", tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", photometric="RGB",
                   BIGTIFF="IF_SAFER")
    band = 1024
    with rasterio.open(panel, "w", **profile) as dst:
        for r0 in range(0, side, band):
            rows = np.arange(r0, min(side, r0 + band)) % (2 * th)
            cols = np.arange(side) % (2 * tw)
            block = mirrored[rows][:, cols]
            dst.write(np.moveaxis(block, 2, 0), window=Window(0, r0, side, len(rows)))
    mask = paint_loss_mask((side, side), PaintLossConfig(coverage=coverage, seed=seed))
    with rasterio.open(mask_path, "w", driver="GTiff", height=side, width=side, count=1,
                       dtype="uint8", nbits=1, compress="deflate") as dst:
        dst.write(mask.astype(np.uint8)[None])
    return panel, mask_path


def run_case(panel: Path, mask: Path, out_dir: Path, descriptor: str, budget: str,
             extra: list[str]) -> dict:
    """One ``inpaint run`` in its own process; returns its report plus the wall time."""
    out = out_dir / f"{panel.stem}_{descriptor}.tif"
    report = out_dir / f"{panel.stem}_{descriptor}.json"
    cmd = [str(Path(sys.executable).parent / "inpaint"), "run", str(panel), "--mask", str(mask),
           "-o", str(out), "--descriptor", descriptor, "--memory-budget", budget,
           "--report", str(report), "--force", "-q", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = tree_peak_rss(proc)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": (stderr.strip().splitlines() or ["failed"])[-1], "wall": wall}
    data = json.loads(report.read_text())
    out.unlink(missing_ok=True)   # outputs are large; the report is what we keep
    return {**data, "wall": wall, "tree_peak_rss_bytes": peak}


def tree_peak_rss(proc: subprocess.Popen, interval: float = 0.1) -> int:
    """Highest summed RSS of a running process and all its children, sampled from outside."""
    import psutil

    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            total = root.memory_info().rss
            for child in root.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
        except psutil.Error:
            break
        time.sleep(interval)
    return peak


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="", help="comma-separated megapixels (default 4,16,64)")
    p.add_argument("--modes", default="v128,v32,none", help="descriptors to run")
    p.add_argument("--budget", default="4GB", help="--memory-budget of every run")
    p.add_argument("--coverage", type=float, default=0.03)
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the generated panels (default: OUT/scaling_panels)")
    p.add_argument("--extra", default="", help="extra options passed to inpaint run")
    p.add_argument("--replot", action="store_true",
                   help="only redraw the plot from OUT/scaling.json (no runs)")
    args = p.parse_args()
    if args.replot:
        saved = json.loads((args.out / "scaling.json").read_text())
        rows = [r for r in saved["rows"] if "error" not in r]
        modes = list(dict.fromkeys(r["descriptor"] for r in rows))
        plot(rows, modes, saved["meta"]["arguments"]["budget"], args.out)
        return
    sizes = [float(s) for s in args.sizes.split(",") if s] or ([4.0] if args.quick else
                                                             [4.0, 16.0, 64.0])
    modes = [m for m in args.modes.split(",") if m]
    work = args.work or (args.out / "scaling_panels")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for mp in sizes:
        panel, mask = make_panel(work, mp, args.coverage, seed=7)
        for mode in modes:
            result = run_case(panel, mask, work, mode, args.budget, args.extra.split())
            row = {"megapixels": mp, "descriptor": mode, "wall_s": result["wall"]}
            if "error" in result:
                row["error"] = result["error"]
                print(f"{mp:g} MP {mode}: FAILED {result['error']}", flush=True)
            else:
                timings = result["timings"]
                row.update({f"{s}_s": timings.get(s, 0.0) for s in STAGES})
                row.update(peak_rss_gb=result["tree_peak_rss_bytes"] / 1e9,
                           sampled_peak_gb=result["peak_rss_bytes"] / 1e9,
                           predicted_peak_gb=result["plan"]["predicted_peak_bytes"] / 1e9,
                           window=result["plan"]["window"], regions=result["mrf"]["regions"],
                           nodes=result["mrf"]["nodes"], missing=result["mask"]["missing"])
                print(f"{mp:g} MP {mode}: {row['wall_s']:.0f} s, peak {row['peak_rss_gb']:.2f} GB"
                      f" (predicted {row['predicted_peak_gb']:.2f})", flush=True)
            rows.append(row)
    columns = [("megapixels", "MP", "g"), ("descriptor", "descriptor", ""),
               ("wall_s", "wall s", ".0f"), ("context_s", "context", ".0f"),
               ("field_s", "field/IR", ".0f"), ("search_s", "search", ".0f"),
               ("pruning_s", "pruning", ".0f"), ("inference_s", "NCMP", ".0f"),
               ("compose_s", "compose", ".0f"), ("peak_rss_gb", "peak GB", ".2f"),
               ("predicted_peak_gb", "predicted GB", ".2f"), ("nodes", "nodes", "d")]
    ok = [r for r in rows if "error" not in r]
    common.print_table(rows, columns, title=f"inpaint run, {args.coverage:.0%} loss, "
                                            f"--memory-budget {args.budget}")
    print(common.markdown_table(ok, columns))
    plot(ok, modes, args.budget, args.out)
    path = common.write_json(args.out, "scaling", {"rows": rows}, args=args)
    print(f"wrote {path}")
    if len(ok) != len(rows):
        sys.exit(1)


def plot(rows: list[dict], modes: list[str], budget: str, out: Path) -> None:
    """Wall seconds and peak GB against megapixels, one line per descriptor (axes from 0)."""
    fig, (ax_t, ax_m) = common.new_figure(1, 2, figsize=(10, 4))
    for mode in modes:
        pts = [r for r in rows if r["descriptor"] == mode]
        if pts:
            ax_t.plot([r["megapixels"] for r in pts], [r["wall_s"] for r in pts], "o-", label=mode)
            ax_m.plot([r["megapixels"] for r in pts], [r["peak_rss_gb"] for r in pts], "o-",
                      label=mode)
    ax_t.set(xlabel="megapixels", ylabel="wall seconds", title="time")
    ax_m.set(xlabel="megapixels", ylabel="peak RSS (GB)", title="memory")
    ax_m.axhline(common_budget_gb(budget), color="grey", ls="--", label="budget")
    for ax in (ax_t, ax_m):
        ax.set_ylim(bottom=0)
        ax.legend()
        ax.grid(alpha=0.3)
    common.save_plot(fig, out, "scaling")


def common_budget_gb(text: str) -> float:
    from inpaint.plan import parse_size

    return parse_size(text) / 1e9


if __name__ == "__main__":
    main()
