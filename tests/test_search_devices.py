"""The candidate search off the CPU path: torch flat search on the descriptors' device, torch
tensors handed to FAISS, the FAISS GPU number and the one GPU resource object per process.
Everything runs on the CPU; the device cases also run on every CUDA device present."""

from __future__ import annotations

import os
import sys
import types

import faiss
import numpy as np
import pytest
import torch
from hardware import cuda_devices

import mrf.candidates as candidates
from mrf.candidates import (
    BlockIndex,
    SearchConfig,
    candidate_set,
    faiss_device,
    shortlist,
    torch_flat_search,
)
from mrf.context import Context
from mrf.field import PixelField
from mrf.lattice import build_lattice

DEVICES = ["cpu"] + [f"cuda:{k}" for k in range(cuda_devices())]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,k", [(2000, 10), (7, 10), (300, 1)])
def test_torch_flat_search_equals_the_faiss_flat_index(device, n, k):
    rng = np.random.default_rng(n + k)
    base = rng.standard_normal((n, 32)).astype(np.float32)
    queries = rng.standard_normal((500, 32)).astype(np.float32)
    index = faiss.IndexFlatL2(32)
    index.add(base)
    want_d, want_i = index.search(queries, min(k, n))
    dev = torch.device(device)
    # small chunks: the query chunking is exercised too
    got_d, got_i = torch_flat_search(torch.from_numpy(base).to(dev),
                                     torch.from_numpy(queries).to(dev), k, max_elements=5000)
    assert got_i.shape == want_i.shape and got_i.dtype == np.int64
    assert np.array_equal(got_i, want_i)
    assert np.allclose(got_d, want_d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threshold", [20_000, 100])   # flat, then IVF
def test_block_index_takes_torch_tensors_as_numpy(threshold):
    """Torch descriptors are handed to FAISS without a numpy copy; same results."""
    rng = np.random.default_rng(3)
    base = rng.random((3000, 16)).astype(np.float32)
    queries = rng.random((40, 16)).astype(np.float32)
    a = BlockIndex(base, ivf_threshold=threshold)
    b = BlockIndex(torch.from_numpy(base), ivf_threshold=threshold)
    assert a.kind == b.kind == ("flat" if threshold > 3000 else "ivf")
    da, ia = a.search(queries, 6)
    db, ib = b.search(torch.from_numpy(queries), 6)
    assert isinstance(ib, np.ndarray) and np.array_equal(ia, ib)
    assert np.allclose(da, db)


@pytest.mark.parametrize("device", DEVICES)
def test_shortlist_on_every_device_equals_the_cpu_shortlist(device):
    """Descriptors on a GPU are searched there (torch flat search, FAISS GPU for IVF); the
    shortlist is the CPU's."""
    rng = np.random.default_rng(2)
    image = rng.random((48, 48, 3)).astype(np.float32)
    hole = np.zeros((48, 48), bool)
    hole[20:27, 15:24] = True
    lattice = build_lattice(hole, 5, 2)
    # two blocks, each matched to itself: nodes on either side search different candidates
    block_map = np.zeros(hole.shape, np.int32)
    block_map[:, 24:] = 1
    context = Context(blocks=np.array([[0, 0, 48, 24], [0, 24, 48, 24]]), block_map=block_map,
                      histograms=np.ones((2, 1)), known_fraction=np.ones(2),
                      matches=[np.array([0]), np.array([1])],
                      match_errors=[np.array([0.0]), np.array([0.0])])
    cands = candidate_set(hole, context, 5, 1)
    cpu = shortlist(PixelField(image, hole, 5), lattice, cands, context, 6)
    got = shortlist(PixelField(image, hole, 5, device=device), lattice, cands, context, 6,
                    search=SearchConfig(use_gpu=True))
    assert np.array_equal(np.sort(got.ids, 1), np.sort(cpu.ids, 1))
    assert np.allclose(got.distance, cpu.distance, rtol=1e-5, atol=1e-6)
    # the on-device path, forced on any device: torch flat search, IVF blocks through FAISS
    for cfg in (SearchConfig(torch_flat=True),
                SearchConfig(torch_flat=True, ivf_threshold=100, probe_fraction=1.0)):
        forced = shortlist(PixelField(image, hole, 5, device=device), lattice, cands, context,
                           6, search=cfg)
        assert np.array_equal(np.sort(forced.ids, 1), np.sort(cpu.ids, 1))
        assert np.allclose(forced.distance, cpu.distance, rtol=1e-5, atol=1e-6)


def test_the_faiss_gpu_follows_the_torch_device():
    assert faiss_device(torch.device("cuda:3")) == 3
    assert faiss_device(torch.device("cuda", 1)) == 1
    with pytest.raises(ValueError):
        faiss_device(torch.device("cpu"))


def test_one_faiss_gpu_resource_object_per_process(monkeypatch):
    made = []

    class Resources:
        def __init__(self):
            made.append(self)

    fake = types.SimpleNamespace(get_num_gpus=lambda: 2, StandardGpuResources=Resources)
    monkeypatch.setitem(sys.modules, "faiss", fake)
    candidates._process_gpu_resources.cache_clear()
    try:
        first = candidates.gpu_resources()
        assert isinstance(first, Resources)
        assert candidates.gpu_resources() is first and len(made) == 1
        # another process (a forked worker) makes its own
        other = candidates._process_gpu_resources(os.getpid() + 1)
        assert other is not first and len(made) == 2
        candidates._process_gpu_resources.cache_clear()
        fake.get_num_gpus = lambda: 0          # faiss-cpu: no resources at all
        assert candidates.gpu_resources() is None
    finally:
        candidates._process_gpu_resources.cache_clear()
