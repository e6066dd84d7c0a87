"""Compute-device choice. Nothing in the project assumes CUDA exists: every tensor function takes
a ``device`` and this module is the one place that decides which."""

from __future__ import annotations

import re

import torch

from .errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def choose_device(request: str = "auto") -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else CPU; ``cuda`` / ``cuda:N`` must exist."""
    request = request.strip().lower()
    if request == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request == "cuda" or re.fullmatch(r"cuda:[0-9]+", request):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but torch sees no CUDA device on this machine "
                              "(use --device cpu or auto)")
        device = torch.device(request)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{request} does not exist: torch sees "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return device
    raise DeviceError(f"unknown device {request!r}: expected auto, cpu, cuda or cuda:N")


def faiss_gpu_count() -> int:
    """Number of GPUs FAISS can use (0 with faiss-cpu)."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def describe_devices() -> list[str]:
    """Human-readable lines about the torch devices of this machine."""
    lines = [f"cpu ({torch.get_num_threads()} threads)"]
    for k in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        props = torch.cuda.get_device_properties(k)
        lines.append(f"cuda:{k} {props.name} ({props.total_memory / 2**30:.1f} GiB)")
    return lines
