"""Peak-memory measurement for reports and benchmarks."""

from __future__ import annotations

import resource
import sys
import threading

import psutil
import torch


def process_peak_rss() -> int:
    """Peak resident set size of this process since it started, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def device_in_use(device: torch.device) -> int:
    """Bytes in use on CUDA ``device`` by every process: torch's caching allocator, FAISS's GPU
    resources and indexes, the CUDA contexts (what ``nvidia-smi`` shows as used)."""
    free, total = torch.cuda.mem_get_info(device)
    return int(total - free)


class PeakMemory:
    """Context manager sampling the RSS of this process and its children (worker processes),
    summed, every ``interval`` s while it is open.

    ``peak_rss``: highest sampled total in bytes (also never below the RSS at entry and exit);
    ``peak_device``: peak CUDA bytes allocated by torch in this process inside the block, or
    None on CPU; ``peak_device_in_use``: with a CUDA ``device``, the highest device-wide use
    sampled inside the block minus the use at entry, in bytes: what the run added on the GPU,
    FAISS GPU indexes and temporary memory and worker processes included (torch's own counter
    sees neither); another process using the same GPU meanwhile counts too. None otherwise.
    """

    def __init__(self, interval: float = 0.05, device: torch.device | str | None = None):
        self.interval = interval
        self.peak_rss = 0
        self.peak_device: int | None = None
        self.peak_device_in_use: int | None = None
        device = torch.device(device) if device is not None else None
        self._cuda = device if device is not None and device.type == "cuda" else None
        self._device_base = 0
        self._device_peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def _total_rss(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:   # a child that just ended
                continue
        return total

    def _take_sample(self) -> None:
        self.peak_rss = max(self.peak_rss, self._total_rss())
        if self._cuda is not None:
            self._device_peak = max(self._device_peak, device_in_use(self._cuda))

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take_sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak_rss = self._total_rss()
        if self._cuda is not None:
            self._device_base = self._device_peak = device_in_use(self._cuda)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take_sample()
        if self._cuda is not None:
            self.peak_device_in_use = self._device_peak - self._device_base
        if torch.cuda.is_available():
            self.peak_device = int(torch.cuda.max_memory_allocated())
