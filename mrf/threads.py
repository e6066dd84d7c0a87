"""FAISS's and torch's CPU thread counts, set for a block of work and restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def faiss_threads(count: int = 1) -> Iterator[None]:
    """Run the block with FAISS using ``count`` threads.

    On small batches (one block's candidates, one region's textons) FAISS's OpenMP threads cost
    more than they bring, and beside torch or other worker processes they oversubscribe the
    cores: measured 1 thread 1.6x faster than 2 on a 2-core machine.
    """
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


@contextmanager
def torch_threads(device: str | torch.device, count: int = 1) -> Iterator[None]:
    """Run the block with torch's CPU operations on ``count`` threads when ``device`` is the CPU
    (another device: no change).

    The inner MRF stages (masked SSD, pairwise strips) are many short operations on a few MB
    each: a second thread brings little, and every operation ends in an OpenMP barrier. When the
    cores are shared (worker processes, other jobs) a thread waiting there for a descheduled
    partner made them 5-20x slower than on one thread (measured on a loaded 2-core machine);
    on one thread they run as fast as the single-threaded numpy code they replaced.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
