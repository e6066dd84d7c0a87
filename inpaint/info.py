"""What ``inpaint info`` reports: versions, devices, built-in descriptors."""

from __future__ import annotations

import platform
from importlib import metadata

from descriptor import builtin_names, load_checkpoint

from .device import describe_devices, faiss_gpu_count

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


def builtin_summaries() -> list[dict]:
    """One record per built-in descriptor: architecture, dimension, padding and training."""
    rows = []
    for name in builtin_names():
        ck = load_checkpoint(name)
        t = ck.training
        rows.append({
            "name": name,
            "arch": ck.arch,
            "dim": ck.config.descriptor_dim,
            "patch": ck.config.patch_size,
            "padding_mode": ck.config.padding_mode if ck.config.has_ir else "-",
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
    lines += [f"  {d}" for d in describe_devices()]
    lines.append(f"FAISS GPUs: {faiss_gpu_count()}")
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
