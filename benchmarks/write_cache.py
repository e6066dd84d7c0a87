"""Streaming a whole panel to its output: peak memory, time and file size with GDAL's block cache
bounded while writing (the project's setting, ``inpaint.raster.WRITE_CACHE_BYTES``) and with GDAL's
default (5 % of RAM).

The synthetic panel of benchmarks/scaling.py (16-bit RGB, tiled, deflate) is copied to a new file
through ``RasterReader`` / ``RasterWriter`` in row bands of ``STREAM_BAND_BYTES``, whole blocks
high, the way ``inpaint run`` streams its output. Each variant runs in a fresh process; its peak
RSS is that process's high-water mark, and the growth is that peak minus the RSS before the copy
(the imported runtime).

    python benchmarks/write_cache.py [--quick] [--megapixels 64] [--work DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from scaling import make_panel  # noqa: E402

VARIANTS = ("bounded", "gdal default")


def stream_copy(panel: str, out: str, variant: str) -> dict:
    """(In a fresh process.) Copy ``panel`` to ``out`` band by band; seconds and file size."""
    from inpaint import raster as io
    from inpaint.raster import write as raster_write
    from inpaint.streaming import STREAM_BAND_BYTES

    if variant == "gdal default":
        raster_write._WRITE_OPTIONS = {k: v for k, v in raster_write._WRITE_OPTIONS.items()
                                       if k != "GDAL_CACHEMAX"}
    before = common.current_rss()
    start = time.perf_counter()
    with io.RasterReader(panel) as reader:
        meta = reader.meta
        with io.RasterWriter(out, meta, force=True) as writer:
            step = writer.rows_per_write(STREAM_BAND_BYTES)
            for r0 in range(0, meta.height, step):
                window = (r0, 0, min(meta.height, r0 + step), meta.width)
                writer.write_window(reader.read(window), window)
    return {"seconds": time.perf_counter() - start, "file_bytes": Path(out).stat().st_size,
            "rss_before": before}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, default=None,
                   help="panel size (default 64; --quick: 4)")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the generated panel (default: OUT/scaling_panels)")
    args = p.parse_args()
    megapixels = args.megapixels or (4.0 if args.quick else 64.0)
    work = args.work or (args.out / "scaling_panels")
    work.mkdir(parents=True, exist_ok=True)
    panel, _ = make_panel(work, megapixels, coverage=0.03, seed=7)
    out = work / f"{panel.stem}_copy.tif"
    rows = []
    for variant in VARIANTS:
        result = common.measure_subprocess(stream_copy, {"panel": str(panel), "out": str(out),
                                                         "variant": variant})
        if "error" in result:
            sys.exit(f"{variant}: {result['error']}")
        rows.append({"variant": variant, "megapixels": megapixels,
                     "peak_rss_mb": result["child_peak_rss"] / 2**20,
                     "growth_mb": (result["child_peak_rss"] - result["rss_before"]) / 2**20,
                     "seconds": result["seconds"], "file_mb": result["file_bytes"] / 2**20})
        out.unlink(missing_ok=True)
    columns = [("variant", "write cache", ""), ("megapixels", "MP", "g"),
               ("peak_rss_mb", "peak RSS MiB", ",.0f"),
               ("growth_mb", "growth while writing MiB", ",.0f"), ("seconds", "seconds", ".1f"),
               ("file_mb", "file MiB", ",.1f")]
    common.print_table(rows, columns, title="Streaming a panel to a tiled deflate GeoTIFF")
    print(common.markdown_table(rows, columns))
    fig, ax = common.new_figure(figsize=(5, 3.5))
    ax.bar([r["variant"] for r in rows], [r["growth_mb"] for r in rows])
    ax.set(ylabel="RSS growth while writing (MiB)",
           title=f"streamed write of a {megapixels:g} MP panel")
    common.save_plot(fig, args.out, "write_cache")
    path = common.write_json(args.out, "write_cache", {"rows": rows}, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
