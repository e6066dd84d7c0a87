"""Check the CUDA path end to end on a GPU machine: `python benchmarks/gpu_check.py` (< 5 min).

1. ``inpaint run --device cuda`` against ``--device cpu`` on a 512x512 uint16 GeoTIFF crop
   (scikit-image's astronaut, a seeded synthetic paint-loss mask, 5 % of the pixels): the CUDA
   output must keep the contract of the CPU one: only masked pixels change, same dtype, shape
   and raster profile, hole-PSNR against the truth within ``--tolerance`` dB of the CPU run.
2. IR throughput (v128 encoder over a 2048x2048 image, megapixels per second) and search
   throughput (flat blocks by ``torch_flat_search`` on the device; an IVF block through FAISS GPU
   when FAISS has GPUs), queries per second.
3. Device memory peak (``torch.cuda.max_memory_allocated``) of each part, and the runs' own
   ``peak_device_bytes`` (torch, parent process) and ``peak_device_in_use_bytes`` (device-wide,
   FAISS GPU memory and worker processes included).

Writes ``gpu_check.json`` (``--out``, default ``benchmarks/results/``) and prints a table; exits 1
when a contract check fails. On a machine without CUDA it says so in one line and exits 0.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: the ``inpaint`` command of this environment
INPAINT = str(Path(sys.executable).parent / "inpaint")


def main() -> int:
    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device visible to torch {torch.__version__}: nothing to check "
              "on this machine")
        return 0
    import common

    p = common.parser("CUDA path check: inpaint run --device cuda against the CPU run")
    p.add_argument("--device", default="cuda", help="CUDA device to check (cuda or cuda:N)")
    p.add_argument("--tolerance", type=float, default=0.5,
                   help="largest hole-PSNR difference (dB) between the CUDA and the CPU run")
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        runs = run_contract(Path(tmp), args.device, args.tolerance, args.quick)
    payload = {"device": args.device, "device_name": torch.cuda.get_device_name(device),
               "faiss_gpus": faiss_gpus(), "runs": runs,
               "ir": ir_throughput(device, 512 if args.quick else 2048),
               "search": search_throughput(device, args.quick)}
    ok = all(runs["checks"].values())
    payload["ok"] = ok
    path = common.write_json(args.out, "gpu_check", payload, args=args)
    rows = [{"check": k, "result": "ok" if v else "FAILED"} for k, v in runs["checks"].items()]
    common.print_table(rows, [("check", "check", "s"), ("result", "result", "s")],
                       title=f"CUDA contract on {payload['device_name']}")
    print(f"hole-PSNR cpu {runs['cpu']['hole_psnr']:.2f} dB, cuda {runs['cuda']['hole_psnr']:.2f}"
          f" dB; run s cpu {runs['cpu']['seconds']:.1f}, cuda {runs['cuda']['seconds']:.1f}; "
          f"IR {payload['ir']['megapixels_per_s']:.1f} MP/s; flat search "
          f"{payload['search']['flat_queries_per_s']:.0f} queries/s; wrote {path}")
    return 0 if ok else 1


def faiss_gpus() -> int:
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def make_case(folder: Path, side: int) -> tuple:
    """A uint16 tiled, compressed GeoTIFF crop and its synthetic loss mask."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from skimage import data

    from masks.synthetic import paint_loss_mask

    truth = (data.astronaut()[:side, :side].astype(np.uint16) * 257)
    mask = paint_loss_mask(truth.shape[:2], coverage=0.05, seed=1)
    image = folder / "panel.tif"
    profile = dict(driver="GTiff", height=side, width=side, count=3, dtype="uint16",
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   crs="EPSG:3857", transform=from_origin(0, side, 1, 1))
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(np.moveaxis(truth, 2, 0))
    mask_path = folder / "loss.png"
    from skimage.io import imsave
    imsave(mask_path, (mask * 255).astype(np.uint8), check_contrast=False)
    return image, mask_path, truth, mask


def run_contract(folder: Path, device: str, tolerance: float, quick: bool) -> dict:
    import json

    import numpy as np
    import rasterio

    image, mask_path, truth, mask = make_case(folder, 256 if quick else 512)
    out: dict = {}
    for name, dev in (("cpu", "cpu"), ("cuda", device)):
        target, report = folder / f"{name}.tif", folder / f"{name}.json"
        t = time.perf_counter()
        proc = subprocess.run([INPAINT, "run", str(image), "--mask",
                               str(mask_path), "-o", str(target), "--device", dev,
                               "--report", str(report), "-q"],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            out[name] = {"error": proc.stderr.strip()[-500:], "seconds": seconds}
            continue
        with rasterio.open(target) as src:
            result = np.moveaxis(src.read(), 0, 2)
            profile = {k: str(v) for k, v in src.profile.items()}
        rep = json.loads(report.read_text())
        err = (result[mask].astype(np.float64) - truth[mask]) / 65535.0
        out[name] = {"seconds": round(seconds, 2), "report_device": rep.get("device"),
                     "faiss_gpu": rep.get("faiss_gpu"), "timings": rep.get("timings"),
                     "peak_device_bytes": rep.get("peak_device_bytes"),
                     "peak_device_in_use_bytes": rep.get("peak_device_in_use_bytes"),
                     "hole_psnr": float(10 * np.log10(1.0 / max(np.mean(err ** 2), 1e-20))),
                     "dtype": str(result.dtype), "shape": list(result.shape),
                     "profile": profile, "_result": result}
    cpu, cuda = out["cpu"], out["cuda"]
    both = "error" not in cpu and "error" not in cuda
    checks = {
        "cpu run succeeded": "error" not in cpu,
        "cuda run succeeded": "error" not in cuda,
        "cuda run used the GPU": both and str(cuda["report_device"]).startswith("cuda"),
        "only masked pixels changed": both and bool(np.array_equal(cuda["_result"][~mask],
                                                                    truth[~mask])),
        "same dtype and shape as the cpu run": both and cuda["dtype"] == cpu["dtype"] == "uint16"
        and cuda["shape"] == cpu["shape"],
        "same raster profile as the cpu run": both and cuda["profile"] == cpu["profile"],
        f"hole-PSNR within {tolerance} dB of the cpu run": both and abs(
            cuda["hole_psnr"] - cpu["hole_psnr"]) <= tolerance,
    }
    for run in out.values():
        run.pop("_result", None)
    return {**out, "checks": checks}


def ir_throughput(device: torch.device, side: int) -> dict:
    import numpy as np

    from descriptor import compute_ir, load_checkpoint

    model = load_checkpoint("v128", device=device).model
    image = np.random.default_rng(0).random((side, side, 3)).astype(np.float32)
    compute_ir(model.encoder, image[:64, :64], model.config.padding_mode, device=device)  # warm
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    compute_ir(model.encoder, image, model.config.padding_mode, device=device)
    torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t
    return {"side": side, "seconds": round(seconds, 3),
            "megapixels_per_s": side * side / 1e6 / seconds,
            "peak_device_bytes": torch.cuda.max_memory_allocated(device)}


def search_throughput(device: torch.device, quick: bool) -> dict:
    from mrf.candidates import BlockIndex, faiss_device, gpu_resources, torch_flat_search

    n, q = (5000, 2000) if quick else (20000, 20000)
    gen = torch.Generator(device=device).manual_seed(0)
    vectors = torch.rand((n, 128), device=device, generator=gen)
    queries = torch.rand((q, 128), device=device, generator=gen)
    torch_flat_search(vectors[:100], queries[:10], 64)                              # warm
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    torch_flat_search(vectors, queries, 64)
    torch.cuda.synchronize(device)
    flat = time.perf_counter() - t
    out = {"candidates": n, "queries": q, "k": 64, "flat_seconds": round(flat, 3),
           "flat_queries_per_s": q / flat,
           "flat_peak_device_bytes": torch.cuda.max_memory_allocated(device)}
    resources = gpu_resources()
    if resources is not None:
        big = torch.rand((4 * n, 128), device=device, generator=gen)
        t = time.perf_counter()
        index = BlockIndex(big, ivf_threshold=n, gpu_resources=resources,
                           gpu_device=faiss_device(device))
        built = time.perf_counter() - t
        t = time.perf_counter()
        index.search(queries, 64)
        out.update(ivf_candidates=4 * n, ivf_build_seconds=round(built, 3),
                   ivf_queries_per_s=q / (time.perf_counter() - t))
    return out


if __name__ == "__main__":
    sys.exit(main())
