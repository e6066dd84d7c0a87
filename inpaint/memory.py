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


class PeakMemory:
    """Context manager sampling the RSS of this process and its children (worker processes),
    summed, every ``interval`` s while it is open.

    ``peak_rss``: highest sampled total in bytes (also never below the RSS at entry and exit);
    ``peak_device``: peak CUDA bytes allocated by torch inside the block, or None on CPU.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss = 0
        self.peak_device: int | None = None
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

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._total_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak_rss = self._total_rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self._total_rss())
        if torch.cuda.is_available():
            self.peak_device = int(torch.cuda.max_memory_allocated())
