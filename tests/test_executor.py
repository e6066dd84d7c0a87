"""The executor's device out-of-memory retry (CPU only: the errors are raised by a fake)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

from inpaint.config import RunConfig
from inpaint.errors import InpaintError
from inpaint.executor import inpaint_regions, is_out_of_memory
from inpaint.regions import plan_regions

FAISS_OOM = ("Error in virtual void* faiss::gpu::StandardGpuResourcesImpl::allocMemory(const "
             "faiss::gpu::AllocRequest&) at StandardGpuResources.cpp:530: Error: 'err == "
             "cudaSuccess' failed: StandardGpuResources: alloc fail type TemporaryMemoryBuffer "
             "dev 0 space Device stream 0x0 size 1610612736 bytes (cudaMalloc error out of "
             "memory [2])")


@pytest.mark.parametrize("exc, expected", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError(FAISS_OOM), True),
    (RuntimeError("CUDA error: cudaErrorMemoryAllocation"), True),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), False),
    (RuntimeError("shape '[3, 4]' is invalid for input of size 10"), False),
    (ValueError("out of memory"), False),   # not what torch or FAISS raise
    (KeyError("x"), False),
])
def test_out_of_memory_is_classified(exc, expected):
    assert is_out_of_memory(exc) is expected


def _scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (220, 220, 3), dtype=np.uint8)
    mask = np.zeros(image.shape[:2], bool)
    mask[90:130, 80:140] = True
    return image, mask


class _FakeInpainter:
    """Fails with ``error`` on windows larger than ``limit`` px; fills the others with grey.
    Records, at each call, whether the window of the last failed attempt was still alive."""

    def __init__(self, error: BaseException, limit: int = 100):
        self.cfg = RunConfig(descriptor="none", workers=1)
        self.device = torch.device("cpu")
        self.error, self.limit = error, limit
        self.calls: list[tuple[int, int]] = []
        self.failed_alive: list[bool] = []
        self._failed: weakref.ref | None = None

    def inpaint(self, colour, hole, progress=None, own=None):
        if self._failed is not None:
            gc.collect(0)   # only reference cycles would survive this; refcounts free the rest
            self.failed_alive.append(self._failed() is not None)
        self.calls.append(hole.shape)
        if max(hole.shape) > self.limit:
            self._failed = weakref.ref(colour)
            raise type(self.error)(*self.error.args)   # a new one, as a device raises
        return np.full(hole.shape + (3,), 0.5, np.float32), {"nodes": 1}, {}


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory (fake)"),
                                   RuntimeError(FAISS_OOM)], ids=["torch", "faiss"])
def test_a_region_that_runs_out_of_memory_is_retried_in_smaller_windows(error, caplog):
    image, mask = _scene()
    regions, labels = plan_regions(mask, 32, 512)
    fake = _FakeInpainter(error)
    results = list(inpaint_regions(lambda w: image[w[0]:w[2], w[1]:w[3]], mask, regions,
                                   labels, fake, workers=1))
    assert max(fake.calls[0]) > 100 and len(fake.calls) > 2
    assert all(max(shape) <= 100 for shape in fake.calls[1:])
    assert "out of memory" in caplog.text
    # the failed attempt's window was released before any retry started
    assert fake.failed_alive and not any(fake.failed_alive)
    # every missing pixel written exactly once, nothing else
    written = np.zeros(mask.shape, np.int64)
    for r in results:
        np.add.at(written, (r.rows, r.cols), 1)
        assert (r.values == 128).all()
    assert np.array_equal(written, mask.astype(np.int64))


def test_other_errors_are_not_retried():
    image, mask = _scene()
    regions, labels = plan_regions(mask, 32, 512)
    fake = _FakeInpainter(RuntimeError("CUDA error: an illegal memory access"))
    with pytest.raises(RuntimeError, match="illegal memory access"):
        list(inpaint_regions(lambda w: image[w[0]:w[2], w[1]:w[3]], mask, regions, labels,
                             fake, workers=1))
    assert len(fake.calls) == 1


def test_out_of_memory_on_the_smallest_window_is_one_clear_error():
    image, mask = _scene()
    regions, labels = plan_regions(mask, 32, 512)
    fake = _FakeInpainter(torch.cuda.OutOfMemoryError("CUDA out of memory (fake)"), limit=0)
    with pytest.raises(InpaintError, match="even for the smallest work window"):
        list(inpaint_regions(lambda w: image[w[0]:w[2], w[1]:w[3]], mask, regions, labels,
                             fake, workers=1))
