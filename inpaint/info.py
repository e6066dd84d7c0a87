"""What ``inpaint info`` reports: versions, devices, built-in descriptors.

It starts at once on a CPU-only install: the descriptors' records are read without torch
(``descriptor.metadata``), and torch and FAISS are imported only when the installed builds could
see a GPU (a ``+cpu`` torch wheel or faiss-cpu alone cannot).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

from descriptor import builtin_names
from descriptor.config import ModelConfig
from descriptor.metadata import BUILTIN_DIR, read_metadata

PACKAGES = ("inpaint", "torch", "numpy", "faiss-cpu", "faiss-gpu", "rasterio",
            "opencv-python-headless", "opencv-contrib-python-headless", "scikit-image", "dask",
            "distributed", "click")


def versions() -> dict[str, str]:
    """Installed versions of the packages the tool relies on (missing ones omitted)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import rasterio

        found["gdal"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return found


def cpu_only_torch() -> bool:
    """The installed torch is a CPU build (its version ends in ``+cpu``): it sees no GPU."""
    try:
        return metadata.version("torch").endswith("+cpu")
    except metadata.PackageNotFoundError:
        return False


def gpu_faiss_installed() -> bool:
    """A FAISS GPU build is installed (``faiss-gpu``, ``faiss-gpu-cu12``, ...)."""
    return any((dist.metadata["Name"] or "").lower().startswith("faiss-gpu")
               for dist in metadata.distributions())


def device_lines() -> list[str]:
    """The compute devices; torch is imported only when it could see a GPU."""
    if cpu_only_torch():
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count()
        return [f"cpu ({cores} cores; CPU-only torch build, no GPU possible)"]
    from .device import describe_devices

    return describe_devices()


def faiss_gpus() -> int:
    """GPUs FAISS can use; 0 without importing FAISS when only faiss-cpu is installed."""
    if not gpu_faiss_installed():
        return 0
    from .device import faiss_gpu_count

    return faiss_gpu_count()


def builtin_summaries() -> list[dict]:
    """One record per built-in descriptor: architecture, dimension, padding and training (read
    from the checkpoints' records, not their weights; ``run`` validates the weights)."""
    rows = []
    for name in builtin_names():
        payload = read_metadata(BUILTIN_DIR / f"{name}.pt")
        config = ModelConfig(**payload["config"])
        t = payload.get("training", {})
        rows.append({
            "name": name,
            "arch": config.arch,
            "dim": config.descriptor_dim,
            "patch": config.patch_size,
            "padding_mode": config.padding_mode if config.has_ir else "-",
            "images": len(t.get("data", [])),
            "patches": t.get("patches"),
            "epochs": t.get("epochs"),
            "val_loss": t.get("final_val_loss"),
        })
    return rows


def info_lines() -> list[str]:
    lines = ["versions:"]
    lines += [f"  {k:<32} {v}" for k, v in versions().items()]
    lines.append("torch devices:")
    lines += [f"  {d}" for d in device_lines()]
    lines.append(f"FAISS GPUs: {faiss_gpus()}")
    lines.append("built-in descriptors:")
    header = f"  {'name':<6} {'arch':<6} {'dim':>4} {'patch':>5} {'padding':<14} training"
    lines.append(header)
    for r in builtin_summaries():
        loss = f"{r['val_loss']:.4f}" if isinstance(r["val_loss"], float) else "?"
        steps = "L-BFGS iterations" if r["arch"] == "chen" else "epochs"
        lines.append(f"  {r['name']:<6} {r['arch']:<6} {r['dim']:>4} {r['patch']:>5} "
                     f"{r['padding_mode']:<14} {r['images']} images, {r['patches']} patches, "
                     f"{r['epochs']} {steps}, validation loss {loss}")
    return lines
