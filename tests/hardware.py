"""The accelerators of this machine, found directly from torch and FAISS (not through the
project's own helpers), so tests can assert the right behaviour on CPU-only and GPU machines
alike instead of assuming there is no GPU."""

from __future__ import annotations

import torch


def cuda_devices() -> int:
    """CUDA devices torch can use (0 on a CPU-only machine or a CPU build of torch)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def faiss_gpus() -> int:
    """GPUs FAISS can use (0 with faiss-cpu, whose module has no get_num_gpus or returns 0)."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0
