"""``inpaint batch``: many panels (or the tiles of one large panel) on Dask distributed.

Two ways to give the work:

* a folder of images, each paired with a mask by a pattern (``{stem}_mask.png`` by default) in
  the same folder or in ``--masks DIR``; files that match the mask pattern are not panels;
* one panel file with ``--tile T``: the work regions ``inpaint run`` plans for the panel (a loss is
  never cut) are grouped by the T x T cell holding their core's corner, one item per cell; the
  owned pixels they return are stitched into one output exactly as ``inpaint run`` writes it
  (``region_items``). ``--overlap`` is no longer used.

Items run as Dask tasks on a LocalCluster (``--workers N``) or an existing cluster
(``--scheduler ADDRESS``). A finished item's output is kept and skipped on the next run unless
``--force``; one item's failure is recorded and the others go on; ``summary.json`` in the output
folder lists every item with its status, timings and peak memory.

A tiled panel gives ``inpaint run``'s output bit for bit when both plan the same window size (the
plan depends on the panel, the options and the memory budget; tested). ``tile_items`` (fixed
windows grown by an overlap) is kept for callers that want independent tiles.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .config import RunConfig
from .errors import InpaintError
from .pipeline import AUTO_MASK
from .regions import Region

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pnm"}
TILE_FOLDER = ".tiles"


@dataclass(frozen=True)
class BatchItem:
    """One unit of work: a panel and its mask, or one tile (window/core) of a panel."""

    name: str
    input: str
    mask: str
    output: str
    window: tuple[int, int, int, int] | None = None   # tile mode: window read from the panel
    core: tuple[int, int, int, int] | None = None     # tile mode: pixels this tile writes
    regions: tuple[RegionWork, ...] = ()              # region mode: work regions of the panel


@dataclass(frozen=True)
class RegionWork:
    """One work region of ``inpaint run``'s plan, with what a worker needs to inpaint it
    without the panel-wide maps: its window's loss mask and the loss pixels it owns."""

    region: Region
    hole: np.ndarray     # (h, w) bool over region.window
    own: np.ndarray      # (h, w) bool over region.window


def _is_mask_name(name: str, stems: set[str], pattern: str) -> bool:
    return any(name == pattern.format(stem=s) for s in stems)


def _mask_name_regex(pattern: str) -> re.Pattern:
    """Names the mask pattern can produce, for any stem."""
    return re.compile("(.+)".join(re.escape(part) for part in pattern.split("{stem}")) + r"\Z")


def _absolute(path: Path) -> Path:
    """Items carry absolute paths: Dask workers run in their own working directories (they
    need the same filesystem, at the same paths, as the client)."""
    return Path(os.path.abspath(path))


def folder_items(folder: Path, out_dir: Path, mask_pattern: str,
                 masks_dir: Path | None = None) -> list[BatchItem]:
    """Panels of ``folder`` paired with masks by ``mask_pattern`` (``{stem}`` = panel stem)."""
    if "{stem}" not in mask_pattern:
        raise InpaintError(f"mask pattern {mask_pattern!r} must contain {{stem}}")
    folder, out_dir = _absolute(folder), _absolute(out_dir)
    masks_dir = _absolute(masks_dir) if masks_dir is not None else None
    mask_like = _mask_name_regex(mask_pattern)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in
                   IMAGE_SUFFIXES)
    stems = {p.stem for p in files}
    mask_folder = masks_dir or folder
    items = []
    for path in files:
        if masks_dir is None and _is_mask_name(path.name, stems, mask_pattern):
            continue   # a mask of another panel in the same folder
        mask = mask_folder / mask_pattern.format(stem=path.stem)
        if masks_dir is None and mask_like.fullmatch(path.name) and not mask.exists():
            log.warning("%s is named like a mask but its panel is missing: skipped", path.name)
            continue
        items.append(BatchItem(name=path.name, input=str(path), mask=str(mask),
                               output=str(out_dir / path.name)))
    if not items:
        raise InpaintError(f"no panels found in {folder}")
    return items


def tile_items(panel: Path, mask: Path, out_dir: Path, tile: int, overlap: int) -> list[BatchItem]:
    """Tiles of one panel: cores of ``tile`` px, windows grown by ``overlap`` px."""
    from .raster import raster_info

    if tile < 64 or overlap < 0:
        raise InpaintError("--tile must be at least 64 and --overlap not negative")
    panel, mask, out_dir = _absolute(panel), _absolute(mask), _absolute(out_dir)
    meta = raster_info(panel)
    tiles_dir = out_dir / TILE_FOLDER
    items = []
    for r0 in range(0, meta.height, tile):
        for c0 in range(0, meta.width, tile):
            core = (r0, c0, min(meta.height, r0 + tile), min(meta.width, c0 + tile))
            window = (max(0, r0 - overlap), max(0, c0 - overlap),
                      min(meta.height, core[2] + overlap), min(meta.width, core[3] + overlap))
            name = f"{panel.stem}_r{r0:06d}_c{c0:06d}"
            items.append(BatchItem(name=name, input=str(panel), mask=str(mask),
                                   output=str(tiles_dir / f"{name}.tif"), window=window,
                                   core=core))
    return items


def check_batch_outputs(items: list[BatchItem], out_dir: Path, source: Path, cfg: RunConfig,
                        stitched: Path | None = None) -> None:
    """Before any work: the output folder can be made and written, and no output (items,
    summary.json, the stitched panel) is an input (panels, masks, the descriptor checkpoint),
    through symlinks and hard links. Existing outputs are allowed: the batch resumes."""
    from .paths import checkpoint_file, same_file

    out_dir = _absolute(out_dir)
    if source.is_dir() and out_dir.exists() and same_file(out_dir, source):
        raise InpaintError(f"the output folder {out_dir} is the source folder: the outputs "
                           "would replace the panels; choose another folder")
    existing = out_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InpaintError(f"output folder {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InpaintError(f"output folder {existing} is not writable")
    inputs = {("panel", item.input) for item in items} | {("mask", item.mask) for item in items}
    if source.is_file():
        inputs.add(("panel", str(_absolute(source))))
    ckpt = checkpoint_file(cfg.descriptor)
    if ckpt:
        inputs.add(("descriptor checkpoint", ckpt))
    by_path = {os.path.realpath(p): (label, p) for label, p in inputs}
    by_inode = {}
    for label, p in inputs:
        try:
            st = os.stat(p)
        except OSError:
            continue
        by_inode[(st.st_dev, st.st_ino)] = (label, p)
    outputs = [item.output for item in items] + [str(out_dir / "summary.json")]
    if stitched is not None:
        outputs.append(str(stitched))
    for output in outputs:
        hit = by_path.get(os.path.realpath(output))
        if hit is None:
            try:
                st = os.stat(output)
                hit = by_inode.get((st.st_dev, st.st_ino))
            except OSError:
                pass
        if hit is not None:
            raise InpaintError(f"output {output} is the {hit[0]} {hit[1]}: an input is never "
                               "overwritten; choose another output folder")


def region_items(panel: Path, mask_path: Path, out_dir: Path, tile: int, cfg: RunConfig,
                 invert_mask: bool = False) -> tuple[list[BatchItem], RunConfig]:
    """Tile mode as ``inpaint run`` works: the work regions of the run's own plan (a loss is
    never cut by a tile edge), grouped into one item per ``tile`` x ``tile`` cell holding a
    region's core corner. Stitched (:func:`stitch`), the output equals ``inpaint run``'s bit for
    bit whenever both plan the same window size (the plan depends only on the panel, the
    options and the memory budget). Returns the items and the planned configuration."""
    from masks import check_mask_usable, read_mask

    from .pipeline import plan_run
    from .raster import raster_info
    from .regions import owned_pixels, plan_regions, with_enough_sources

    if tile < 64:
        raise InpaintError("--tile must be at least 64")
    panel, mask_path, out_dir = _absolute(panel), _absolute(mask_path), _absolute(out_dir)
    meta = raster_info(panel)
    mask = read_mask(mask_path, shape=(meta.height, meta.width), invert=invert_mask)
    missing = int(np.count_nonzero(mask))
    if not missing:
        return [], cfg
    check_mask_usable(mask, min_known_fraction=cfg.min_known_fraction)
    # the plan `inpaint run` makes (its default: one worker per core), device left to workers
    planned = plan_run(replace(cfg, workers=0, device="cpu"), mask.shape, meta.bands,
                       np.dtype(meta.dtype).itemsize, missing)[0]
    planned = replace(planned, device=cfg.device, workers=1)
    regions, labels = plan_regions(mask, planned.margin, planned.window)
    cells: dict[tuple[int, int], list[RegionWork]] = {}
    for region in regions:
        region = with_enough_sources(region, mask, planned.patch, planned.shortlist)
        r0, c0, r1, c1 = region.window
        cell = (region.core[0] // tile, region.core[1] // tile)
        cells.setdefault(cell, []).append(
            RegionWork(region, mask[r0:r1, c0:c1].copy(), owned_pixels(region, labels)))
    items = []
    for (tr, tc), works in sorted(cells.items()):
        name = f"{panel.stem}_r{tr * tile:06d}_c{tc * tile:06d}"
        items.append(BatchItem(name=name, input=str(panel), mask=str(mask_path),
                               output=str(out_dir / TILE_FOLDER / f"{name}.npz"),
                               regions=tuple(works)))
    return items, planned


def _process_regions(item: BatchItem, cfg: RunConfig) -> dict:
    """Inpaint an item's work regions as ``inpaint run`` does and save the owned pixels
    (rows, columns, values) atomically as a small .npz."""
    from .device import choose_device, faiss_gpu_count
    from .dtypes import check_float_range
    from .inpainter import RegionInpainter, region_result
    from .raster import RasterReader

    device = choose_device(cfg.device)
    inpainter = RegionInpainter(cfg, device, device.type == "cuda" and faiss_gpu_count() > 0)
    rows, cols, values = [], [], []
    with RasterReader(item.input) as reader:
        n_colour = reader.meta.bands - (reader.meta.alpha_band is not None)
        for work in item.regions:
            colour = reader.read(work.region.window)[:, :, :n_colour]
            check_float_range(colour, work.hole)
            image, stats, timings = inpainter.inpaint(colour, work.hole, own=work.own)
            result = region_result(work.region, colour, work.own, image, stats, timings)
            rows.append(result.rows)
            cols.append(result.cols)
            values.append(result.values)
    output = Path(item.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.npz")
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, rows=np.concatenate(rows), cols=np.concatenate(cols),
                     values=np.concatenate(values))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return {"mask": {"missing": int(sum(len(r) for r in rows))}}


def process_item(item: BatchItem, cfg: RunConfig, force: bool, invert_mask: bool,
                 threads: int | None = None) -> dict:
    """Run one item (in a Dask worker); never raises: failures are returned as records."""
    from inpaint.memory import PeakMemory

    record = {"name": item.name, "input": item.input, "mask": item.mask, "output": item.output}
    cfg = replace(cfg, workers=1)   # Dask worker processes are the parallelism here
    if os.path.exists(item.output) and not force:
        return {**record, "status": "skipped", "reason": "output exists"}
    if threads:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        with PeakMemory() as peak:
            if item.regions:
                report = _process_regions(item, cfg)
            elif item.window is None:
                from .pipeline import run_file

                report = run_file(item.input, item.mask, item.output, cfg,
                                  invert_mask=invert_mask, force=force)
            else:
                report = _process_tile(item, cfg, force, invert_mask)
        return {**record, "status": "done", "seconds": round(time.perf_counter() - start, 3),
                "peak_rss_bytes": peak.peak_rss, "timings": report.get("timings", {}),
                "missing": report.get("mask", {}).get("missing")}
    except Exception as exc:  # noqa: BLE001 - one failed item must not stop the batch
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {**record, "status": "failed", "error": f"{type(exc).__name__}: {message}",
                "seconds": round(time.perf_counter() - start, 3)}


def _process_tile(item: BatchItem, cfg: RunConfig, force: bool, invert_mask: bool) -> dict:
    """Inpaint a tile's window in memory and write its core as a small GeoTIFF."""
    from masks import read_mask

    from .pipeline import run
    from .raster import RasterReader, write_raster

    with RasterReader(item.input) as reader:
        meta = reader.meta
        r0, c0, r1, c1 = item.window
        window = reader.read(item.window)
        if item.mask == AUTO_MASK:   # detected on the tile's window (overlap = context)
            from .detect import detect_array, float_colour

            colour, _ = float_colour(window, meta)
            tile_mask = detect_array(colour)
        else:
            tile_mask = read_mask(item.mask, shape=(meta.height, meta.width),
                                  invert=invert_mask)[r0:r1, c0:c1]
    result = run(window, tile_mask, cfg)
    cr0, cc0, cr1, cc1 = item.core
    core = result.image.reshape(window.shape)[cr0 - r0:cr1 - r0, cc0 - c0:cc1 - c0]
    Path(item.output).parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": str(core.dtype), "count": core.shape[2],
               "height": core.shape[0], "width": core.shape[1]}
    write_raster(item.output, np.ascontiguousarray(core), profile, force=force)
    return result.report


def stitch(panel: Path, items: list[BatchItem], output: Path, force: bool) -> None:
    """Write the panel's tiles' cores into one output with the panel's profile."""
    from .raster import RasterWriter, raster_info, read_raster

    if not items or items[0].regions:
        _stitch_regions(panel, items, output, force)
        return
    meta = raster_info(panel)
    with RasterWriter(output, meta, force=force) as writer:
        for item in items:
            core = read_raster(item.output).data
            writer.write_window(core, item.core)


def _stitch_regions(panel: Path, items: list[BatchItem], output: Path, force: bool) -> None:
    """The panel copied to ``output`` in row bands with every item's owned pixels patched in:
    the streaming write of ``inpaint run`` itself."""
    from types import SimpleNamespace

    from .raster import RasterReader, RasterWriter
    from .streaming import stream_output

    results = []
    for item in items:
        with np.load(item.output) as saved:
            results.append(SimpleNamespace(rows=saved["rows"], cols=saved["cols"],
                                           values=saved["values"]))
    with RasterReader(panel) as reader:
        meta = reader.meta
        writer = RasterWriter(output, meta, force=force)
        stream_output(reader, writer, results, meta, meta.bands - (meta.alpha_band is not None),
                      want_preview=False)


def _remove_stale_temporaries(items: list[BatchItem]) -> None:
    """Temporary files a killed worker left beside the items' outputs (it could not remove
    them); called once every item has finished, when none can still be in use."""
    import glob

    for item in items:
        out = Path(item.output)
        for tmp in out.parent.glob(f".{glob.escape(out.stem)}.*.tmp{out.suffix}"):
            tmp.unlink(missing_ok=True)


def _client(scheduler: str | None, workers: int):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InpaintError("inpaint batch needs dask.distributed: pip install "
                           "'inpaint[distributed]'") from None
    # distributed configures its own loggers on import; keep only its warnings and errors
    for name in ("distributed", "distributed.scheduler", "distributed.nanny",
                 "distributed.worker", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as exc:
            raise InpaintError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    # Worker processes inherit a blocked SIGINT: Ctrl-C reaches the client only, which then
    # shuts the cluster down (each worker would otherwise print its own tracebacks); a Ctrl-C
    # while the cluster starts stays pending and is delivered here right after.
    # ... and after Ctrl-C the resource tracker (started here) would warn about the workers'
    # semaphores, which the OS reclaims anyway
    os.environ.setdefault("PYTHONWARNINGS",
                          "ignore::UserWarning:multiprocessing.resource_tracker")
    with _sigint_blocked():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
    return Client(cluster), cluster


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread (and so in the threads and processes started meanwhile)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_batch(items: list[BatchItem], cfg: RunConfig, out_dir: Path, *,
              scheduler: str | None = None, workers: int = 2, force: bool = False,
              invert_mask: bool = False, progress: bool = True,
              stitch_to: tuple[Path, Path] | None = None) -> dict:
    """Process ``items`` on Dask; write and return the summary (every item's record)."""
    from tqdm.auto import tqdm

    from .report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    client, cluster = _client(scheduler, workers)
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1)) if cluster is not None else None
    records = []
    try:
        from dask.distributed import as_completed

        futures = {client.submit(process_item, item, cfg, force, invert_mask, threads,
                                 pure=False, key=f"inpaint-{k}-{item.name}"): item
                   for k, item in enumerate(items)}
        bar = tqdm(total=len(futures), desc="batch", unit="item",
                   disable=None if progress else True)
        for future in as_completed(list(futures)):
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died: record, go on
                item = futures[future]
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                    type(exc).__name__
                record = {"name": item.name, "input": item.input, "mask": item.mask,
                          "output": item.output, "status": "failed",
                          "error": f"worker lost: {reason}"}
            records.append(record)
            bar.update(1)
            if record["status"] == "failed":
                log.info("%s failed: %s", record["name"], record["error"])
        bar.close()
        _remove_stale_temporaries(items)
    except BaseException:
        # interrupted: the scheduler's complaints about futures torn down mid-gather are noise
        # beside the one line the CLI prints
        for name in ("distributed", "distributed.scheduler", "distributed.client",
                     "distributed.core", "distributed.worker", "distributed.nanny"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {item.name: k for k, item in enumerate(items)}
    records.sort(key=lambda r: order.get(r["name"], len(order)))
    summary = {"items": records, "config": asdict(cfg),
               "counts": {s: sum(r["status"] == s for r in records)
                          for s in ("done", "skipped", "failed")},
               "seconds": round(time.perf_counter() - start, 3),
               "scheduler": scheduler or f"LocalCluster({workers} workers)"}
    if stitch_to is not None:
        panel, output = stitch_to
        if summary["counts"]["failed"]:
            summary["stitched"] = None
            log.warning("not stitching %s: %d tile(s) failed", output, summary["counts"]["failed"])
        elif output.exists() and summary["counts"]["done"] == 0:
            summary["stitched"] = str(output)   # stitched by an earlier run, nothing new
        else:
            stitch(panel, items, output, force=force)
            summary["stitched"] = str(output)
    write_report(out_dir / "summary.json", summary)
    return summary
