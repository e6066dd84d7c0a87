"""Inpainting quality against peers on painting images with seeded synthetic paint loss.

For every test image a seeded synthetic paint-loss mask (blobs + thin cracks, ~5 % of the
pixels) is cut; each method fills it and is scored against the intact image: hole-PSNR (over
the missing pixels only, 8-bit peak), SSIM (whole image) and seconds. Methods: this project with
the built-in v128 and v32 descriptors and in pixel mode, OpenCV Telea and Navier-Stokes,
opencv-contrib xphoto FSR_FAST and shift-map (when cv2.xphoto is installed: ``make bench-deps``)
and scikit-image biharmonic. Also a side-by-side of this project on the Ruzic & Pizurica
ski-resort example next to the authors' own output (``ski_out.bmp``), when the shared data is
present.

Images: the painting crops of ../shared/data (Thai murals, Creation of Adam, craquelure close-ups);
images shipped with scikit-image when that folder is absent.

    python benchmarks/quality.py [--quick] [--methods v128,pixel,telea] [--set shortlist=32]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import structural_similarity
from skimage.restoration import inpaint_biharmonic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from inpaint.pipeline import RunConfig, run  # noqa: E402
from masks import PaintLossConfig, paint_loss_mask  # noqa: E402

THAI = "peers/pureexe__thai-painting-restoration/images/painting"
CRAQUELURE = "peers/acecreamu__craquelure-graphs/imgs"
SKI = "peers/telin-ipi__inpainting/optimized_code/test_image"


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_images(quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) painting images; dependency-shipped images when shared data is absent."""
    images = []
    thai = common.shared_data(THAI)
    if thai is not None:
        for k in range(1, 6):
            images.append((f"thai{k:02d}", load_rgb(thai / f"case{k:02d}-original.png")))
        images.append(("creation_of_adam", load_rgb(thai / "inpaint-domain-original.png")))
    craq = common.shared_data(CRAQUELURE)
    if craq is not None:
        for name in ("fl187", "ge230"):
            grey = load_rgb(craq / f"{name}.jpg")
            images.append((f"craquelure_{name}", grey[600:1112, 300:812]))
    if not images:
        import skimage.data

        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            images.append((f"skimage_{name}", getattr(skimage.data, name)()[:256, :256]))
    if quick:
        images = [(n, im[:96, :96]) for n, im in images[:2]]
    return images


# --------------------------------------------------------------------------- methods
def ours(descriptor: str, overrides: dict):
    def method(image, mask):
        return run(image, mask, RunConfig(descriptor=descriptor, **overrides)).image
    return method


def config_overrides(items: list[str]) -> dict:
    """``NAME=VALUE`` pairs -> RunConfig fields, each value cast to its field's default type."""
    defaults = RunConfig()
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not hasattr(defaults, name):
            raise SystemExit(f"--set wants NAME=VALUE with a RunConfig field, not {item!r}")
        current = getattr(defaults, name)
        if isinstance(current, bool):
            out[name] = value.lower() in ("1", "true", "yes")
        elif current is None:
            out[name] = value
        else:
            out[name] = type(current)(value)
    return out


def telea(image, mask):
    return cv2.inpaint(image, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def navier_stokes(image, mask):
    return cv2.inpaint(image, mask.astype(np.uint8), 3, cv2.INPAINT_NS)


def _xphoto(kind):
    def method(image, mask):
        valid = np.where(mask, 0, 255).astype(np.uint8)   # xphoto: 255 = valid, 0 = hole
        src = image.copy()
        if kind == cv2.xphoto.INPAINT_SHIFTMAP:   # the official sample works in Lab
            src = cv2.cvtColor(src, cv2.COLOR_RGB2Lab)
        dst = np.zeros_like(src)
        cv2.xphoto.inpaint(src, valid, dst, kind)
        if kind == cv2.xphoto.INPAINT_SHIFTMAP:
            dst = cv2.cvtColor(dst, cv2.COLOR_Lab2RGB)
        return dst
    return method


def biharmonic(image, mask):
    out = inpaint_biharmonic(image, mask, split_into_regions=True, channel_axis=-1)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def methods(selected: list[str] | None, overrides: dict) -> dict:
    table = {"v128": ours("v128", overrides), "v32": ours("v32", overrides),
             "pixel": ours("none", overrides),
             "telea": telea, "navier_stokes": navier_stokes, "biharmonic": biharmonic}
    if hasattr(cv2, "xphoto"):
        table["fsr_fast"] = _xphoto(cv2.xphoto.INPAINT_FSR_FAST)
        table["shiftmap"] = _xphoto(cv2.xphoto.INPAINT_SHIFTMAP)
    if selected:
        missing = [m for m in selected if m not in table]
        if missing:
            raise SystemExit(f"unknown or unavailable methods: {missing} (have {list(table)})")
        table = {k: table[k] for k in selected}
    return table


def hole_psnr(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    err = result[mask].astype(np.float64) - truth[mask].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(err**2), 1e-12)))


def score(result, truth, mask) -> dict:
    # every method's known pixels are re-inserted first, so none is judged outside the hole
    result = np.where(mask[:, :, None], result, truth)
    return {"hole_psnr": hole_psnr(result, truth, mask),
            "ssim": float(structural_similarity(truth, result, channel_axis=-1, data_range=255))}


def ski_comparison(out_dir: Path, quick: bool, overrides: dict) -> dict | None:
    """Our result on the authors' ski-resort example beside their ``ski_out.bmp``."""
    folder = common.shared_data(SKI)
    if folder is None or quick:
        return None
    image = load_rgb(folder / "skiresort.ppm")
    mask = cv2.imread(str(folder / "skiresortMask.pgm"), cv2.IMREAD_GRAYSCALE) > 127
    authors = load_rgb(folder / "ski_out.bmp")
    rows = {}
    panels = [image.copy()]
    panels[0][mask] = (255, 0, 0)
    for name, descriptor in (("v128", "v128"), ("pixel", "none")):
        t = time.perf_counter()
        ours_image = run(image, mask, RunConfig(descriptor=descriptor, **overrides)).image
        rows[name] = {"seconds": time.perf_counter() - t,
                      "mean_abs_diff_to_authors_in_hole":
                          float(np.abs(ours_image[mask].astype(float) - authors[mask]).mean())}
        panels.append(ours_image)
    panels.append(authors)
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    montage = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    cv2.imwrite(str(out_dir / "quality_ski.png"), cv2.cvtColor(montage, cv2.COLOR_RGB2BGR))
    return {"panels": ["input (hole in red)", "ours v128", "ours pixel mode", "authors ski_out"],
            "runs": rows}


def montage(cases: list[dict], names: list[str], out_dir: Path) -> None:
    """One row per test image (first three): damaged input, then each method's result."""
    rows = []
    for case in cases[:3]:
        damaged = case["truth"].copy()
        damaged[case["mask"]] = 255
        tiles = [damaged] + [case["results"][n] for n in names]
        side = 192
        tiles = [cv2.resize(t, (side, side), interpolation=cv2.INTER_AREA) for t in tiles]
        gap = np.full((side, 6, 3), 255, np.uint8)
        rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1))
    if not rows:
        return
    header = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    for k, label in enumerate(["input"] + names):
        cv2.putText(header, label, (k * (192 + 6) + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    hgap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([header] + [x for r in rows for x in (r, hgap)][:-1], axis=0)
    cv2.imwrite(str(out_dir / "quality_montage.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--methods", default="", help="comma-separated subset of methods")
    p.add_argument("--coverage", type=float, default=0.05, help="paint-loss share of pixels")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="change one `inpaint run` option of this project's methods, e.g. "
                        "shortlist=32 (repeatable; RunConfig field names)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = config_overrides(args.set)
    table = methods([m for m in args.methods.split(",") if m] or None, overrides)
    cases = []
    for k, (name, truth) in enumerate(test_images(args.quick)):
        cfg = PaintLossConfig(coverage=args.coverage, seed=100 + k)
        mask = paint_loss_mask(truth.shape[:2], cfg)
        damaged = truth.copy()
        damaged[mask] = 0
        case = {"image": name, "shape": list(truth.shape), "coverage": float(mask.mean()),
                "truth": truth, "mask": mask, "results": {}, "scores": {}}
        for method, func in table.items():
            t = time.perf_counter()
            result = func(damaged, mask)
            seconds = time.perf_counter() - t
            case["results"][method] = np.where(mask[:, :, None], result, truth)
            case["scores"][method] = {**score(result, truth, mask), "seconds": seconds}
            print(f"{name:<22} {method:<14} hole-PSNR {case['scores'][method]['hole_psnr']:6.2f}"
                  f"  SSIM {case['scores'][method]['ssim']:.4f}  {seconds:7.2f} s", flush=True)
        cases.append(case)

    summary = []
    for method in table:
        s = [c["scores"][method] for c in cases]
        summary.append({"method": method,
                        "hole_psnr": float(np.mean([x["hole_psnr"] for x in s])),
                        "ssim": float(np.mean([x["ssim"] for x in s])),
                        "seconds": float(np.mean([x["seconds"] for x in s]))})
    columns = [("method", "method", ""), ("hole_psnr", "hole-PSNR dB", ".2f"),
               ("ssim", "SSIM", ".4f"), ("seconds", "s / image", ".2f")]
    common.print_table(summary, columns, title=f"mean over {len(cases)} images, "
                                               f"{100 * args.coverage:.0f} % synthetic paint loss")
    print(common.markdown_table(summary, columns))
    montage(cases, list(table), args.out)
    ski = ski_comparison(args.out, args.quick, overrides)
    payload = {"summary": summary,
               "images": [{k: c[k] for k in ("image", "shape", "coverage", "scores")}
                          for c in cases],
               "ski_resort": ski,
               "xphoto_available": hasattr(cv2, "xphoto")}
    path = common.write_json(args.out, "quality", payload, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
