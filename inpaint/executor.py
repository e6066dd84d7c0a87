"""Executing work regions: in this process or on a pool of worker processes (CPU), with the
device out-of-memory retry (a region that does not fit is split in four and retried)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .box import Box
from .config import RunConfig
from .errors import InpaintError
from .inpainter import RegionInpainter, RegionResult, region_inputs, region_result
from .regions import Region, split_region

log = logging.getLogger(__name__)


def inpaint_regions(
    read_colour: Callable[[Box], np.ndarray],
    mask: np.ndarray,
    regions: list[Region],
    labels: np.ndarray,
    inpainter: RegionInpainter,
    *,
    workers: int = 1,
    progress: bool = False,
) -> Iterator[RegionResult]:
    """Inpaint every region; ``read_colour(window)`` gives the colour bands there.

    With ``workers`` > 1 (CPU only) regions run in that many worker processes, each holding
    its own copy of the descriptor; the parent reads windows and collects owned pixels.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(regions), desc="regions", unit="region", leave=False,
               disable=None if progress and len(regions) > 1 else True)
    inner = _progress_factory(progress and len(regions) == 1)
    if workers > 1 and len(regions) >= 2 * workers and inpainter.device.type == "cpu":
        results = _parallel_regions(read_colour, mask, regions, labels, inpainter, workers)
    else:
        results = (r for region in regions
                   for r in _inpaint_region(read_colour, mask, region, labels, inpainter, inner))
    for result in results:
        bar.update(1)
        if "fallback" in result.stats:
            r0, c0, r1, c1 = result.region.window
            log.warning("window rows %d:%d, columns %d:%d restored by %s: %s", r0, r1, c0, c1,
                        result.stats["fallback"]["method"], result.stats["fallback"]["reason"])
        yield result
    bar.close()


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    def make(iterable=None, **kwargs):
        return tqdm(iterable, leave=False, **kwargs)
    return make


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the device ran out of memory: torch's CUDA out-of-memory error, or
    the plain ``RuntimeError`` FAISS GPU raises (its message names the failed allocation)."""
    cuda_oom = getattr(getattr(sys.modules.get("torch"), "cuda", None), "OutOfMemoryError", None)
    if cuda_oom is not None and isinstance(exc, cuda_oom):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc)
    return "out of memory" in text.lower() or "cudaErrorMemoryAllocation" in text


def _inpaint_region(read_colour, mask, region: Region, labels, inpainter: RegionInpainter,
                    progress) -> Iterator[RegionResult]:
    """One region; when the device runs out of memory, its core is split in four and retried.

    The retry runs after the failed attempt has returned: its window, IR and frames (which the
    exception's traceback would keep alive inside an ``except`` clause) are released first."""
    region, result = _attempt_region(read_colour, mask, region, labels, inpainter, progress)
    if result is not None:
        yield result
        return
    parts = split_region(region, mask.shape)
    if not parts:
        raise InpaintError("the GPU ran out of memory even for the smallest work window: "
                           "use --device cpu")
    r0, c0, r1, c1 = region.window
    log.warning("device out of memory on a %dx%d window: retrying in %d smaller windows",
                r1 - r0, c1 - c0, len(parts))
    _empty_device_cache()
    for part in parts:
        yield from _inpaint_region(read_colour, mask, part, labels, inpainter, progress)


def _attempt_region(read_colour, mask, region: Region, labels, inpainter: RegionInpainter,
                    progress) -> tuple[Region, RegionResult | None]:
    """The region as inpainted (its window grown if it lacked sources) and its result, or
    None for the result when the device ran out of memory."""
    cfg = inpainter.cfg
    region, colour, hole, own = region_inputs(read_colour, mask, region, labels, cfg.patch,
                                              cfg.shortlist)
    try:
        image, stats, timings = inpainter.inpaint(colour, hole, progress=progress, own=own)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        return region, None   # leaving the clause drops the exception and its traceback
    return region, region_result(region, colour, own, image, stats, timings)


def _empty_device_cache() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# Worker processes of a parallel run each build one RegionInpainter at start-up and keep it
# for their lifetime (loading the descriptor once per process, not once per region).
WORKER_TASKS = 100
_worker_inpainter: RegionInpainter | None = None


def _init_worker(cfg: RunConfig, threads: int) -> None:
    global _worker_inpainter
    # Ctrl-C is the parent's to handle (it stops the pool); workers stay quiet
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _worker_inpainter = RegionInpainter(cfg, torch.device("cpu"), use_gpu=False)


def _worker_task(region: Region, colour: np.ndarray, hole: np.ndarray,
                 own: np.ndarray) -> RegionResult:
    image, stats, timings = _worker_inpainter.inpaint(colour, hole, own=own)
    result = region_result(region, colour, own, image, stats, timings)
    del image
    _release_free_memory()
    return result


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and a worker that
    processes hundreds of windows of varying sizes would creep up in resident memory)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: nothing to do
        pass


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C held back while worker processes may start: they (and the forkserver) inherit a
    blocked SIGINT, so only this process handles it and stops them; and a start is never cut
    half-way (the orphaned child would print a traceback once this process is gone). A Ctrl-C
    received meanwhile is raised on leaving the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)   # a pending SIGINT lands here
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _parallel_regions(read_colour, mask, regions, labels, inpainter: RegionInpainter,
                      workers: int) -> Iterator[RegionResult]:
    """Regions on a process pool; at most 2 per worker in flight, so memory stays bounded."""
    import concurrent.futures as cf
    import multiprocessing

    cfg = inpainter.cfg
    threads = max(1, (torch.get_num_threads() or 1) // workers)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    # workers are also replaced every WORKER_TASKS regions, a second guard against creeping RSS
    pool = cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                  initargs=(cfg, threads), max_tasks_per_child=WORKER_TASKS)
    try:
        pending: set = set()
        for region in regions:
            inputs = region_inputs(read_colour, mask, region, labels, cfg.patch, cfg.shortlist)
            with _sigint_deferred():   # submit may start a worker process
                pending.add(pool.submit(_worker_task, *inputs))
            if len(pending) >= 2 * workers:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                yield from (f.result() for f in done)
        for future in cf.as_completed(pending):
            yield future.result()
    except BaseException:
        # Ctrl-C or a failed region: stop the workers now instead of finishing the regions in
        # flight (seconds each); the executor has no public way to do that
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
