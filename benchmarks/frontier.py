"""The texture-fidelity frontier of fills made from this project's parts, scored offline.

``quality.py`` scores one configuration per run. This script asks a wider question: how far can
*any* per-loss-type mix of the fills this project can make go on both axes at once? On the same
images and seeded masks as ``quality.py`` it computes once per image: the FSR_FAST pre-fill, the
label blend (``--composition blend``), and the plain copy (``--composition copy``), each with
``--crack-width 0`` and the other defaults (or ``--set`` values). Then every point of a grid is
scored without rerunning the inpainter:

* crack pixels (within 2 px of known paint): ``a`` x FSR + (1 - ``a``) x blend, plus ``c`` x the
  copy's detail above a Gaussian of 1 px (``--crack-fill mean --crack-detail c`` is a = 0.5);
* lacuna pixels: the copy with its frequencies below a Gaussian of ``s`` px taken from the blend
  (``--structure-sigma s --structure blend``), plus ``w`` - 1 times its detail above ``s``.

The printed table lists the grid points that are on the Pareto front (no other point has both a
higher hole-PSNR and a higher gradient ratio) and flags those that meet issue 10's goals
(hole-PSNR >= FSR's, gradient ratio >= 0.9, lacuna ratio in 0.9-1.1, crack PSNR >= FSR's).
Outputs: ``frontier.json`` and ``frontier.png`` (every grid point, the front, FSR_FAST).

    python benchmarks/frontier.py [--quick] [--out DIR] [--images grass,gravel]
                                  [--set texture_weight=30]

``--set NAME=VALUE`` (RunConfig fields, repeatable) changes both MRF fills, e.g. the unary's
texture term, which changes the labels the blend and the copy are made of.
"""

from __future__ import annotations

import functools
import itertools
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import quality  # noqa: E402
import texture_metrics  # noqa: E402

from inpaint.pipeline import RunConfig, run  # noqa: E402
from masks import PaintLossConfig, paint_loss_mask  # noqa: E402

GRID = {"a": (0.3, 0.5, 0.7), "c": (0.0, 0.3, 0.5, 0.7), "s": (1.5, 2.0, 3.0),
        "w": (1.0, 1.15, 1.3, 1.6)}
QUICK_GRID = {"a": (0.5,), "c": (0.0, 0.5), "s": (2.0,), "w": (1.0, 1.3)}
MEASURES = ("hole_psnr", "grad_ratio", "crack_psnr", "lacuna_psnr", "lacuna_grad_ratio")
#: the fills mixed, each with --crack-width 0; the copy without the structure/texture split
FILLS = {"blend": dict(composition="blend"),
         "copy": dict(composition="copy", structure_sigma=0.0)}


def fills(images, quick: bool, overrides: dict | None = None) -> list[dict]:
    """Per image: truth, mask, loss types and the three fills (float64, 0-255)."""
    fsr = quality._xphoto(quality.cv2.xphoto.INPAINT_FSR_FAST)
    out = []
    for name, truth, mask in images:
        damaged = np.where(mask[:, :, None], 0, truth).astype(np.uint8)
        case = {"image": name, "truth": truth, "mask": mask,
                "types": texture_metrics.loss_types(mask),
                "fsr": fsr(damaged, mask).astype(np.float64)}
        for label, options in FILLS.items():
            cfg = RunConfig(descriptor="v32" if quick else "v128",
                            **{**(overrides or {}), "crack_width": 0.0, **options})
            case[label] = run(damaged, mask, cfg).image.astype(np.float64)
        print(f"{name}: fills done", flush=True)
        out.append(case)
    return out


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(x, (sigma, sigma, 0))


def mix(case: dict, a: float, c: float, s: float, w: float) -> np.ndarray:
    """One grid point's fill of ``case`` (see the module docstring), uint8."""
    copy, hole = case["copy"], case["mask"]
    difference = np.zeros_like(copy)
    difference[hole] = case["blend"][hole] - copy[hole]
    lacuna = copy + _gauss(difference, s) + (w - 1.0) * (copy - _gauss(copy, s))
    crack = a * case["fsr"] + (1.0 - a) * case["blend"] + c * (copy - _gauss(copy, 1.0))
    out = case["truth"].astype(np.float64)
    for kind, values in (("crack", crack), ("lacuna", lacuna)):
        region = case["types"][kind]
        out[region] = values[region]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def mean_scores(cases: list[dict], fill) -> dict:
    rows = [texture_metrics.score(fill(c), c["truth"], c["mask"]) for c in cases]
    return {m: float(np.mean([r[m] for r in rows])) for m in MEASURES}


def pareto(points: list[dict]) -> list[dict]:
    """Points no other point beats on both hole-PSNR and gradient ratio."""
    return [p for p in points
            if not any(q["hole_psnr"] > p["hole_psnr"] and q["grad_ratio"] > p["grad_ratio"]
                       for q in points)]


def meets(p: dict, fsr: dict) -> bool:
    return (p["hole_psnr"] >= fsr["hole_psnr"] and p["grad_ratio"] >= 0.9
            and 0.9 <= p["lacuna_grad_ratio"] <= 1.1 and p["crack_psnr"] >= fsr["crack_psnr"])


def plot(points: list[dict], front: list[dict], fsr: dict, out_dir: Path) -> Path:
    fig, ax = common.new_figure(figsize=(7.0, 4.8))
    ax.scatter([p["grad_ratio"] for p in points], [p["hole_psnr"] for p in points], s=10,
               color="0.7", label="grid point")
    front = sorted(front, key=lambda p: p["grad_ratio"])
    ax.plot([p["grad_ratio"] for p in front], [p["hole_psnr"] for p in front], "o-",
            color="tab:blue", label="Pareto front")
    ax.scatter([fsr["grad_ratio"]], [fsr["hole_psnr"]], marker="*", s=120, color="tab:red",
               label="FSR_FAST")
    ax.axvline(0.9, color="tab:green", lw=0.8, ls="--")
    ax.axhline(fsr["hole_psnr"], color="tab:red", lw=0.8, ls="--")
    ax.set_xlabel("hole gradient ratio (texture kept)")
    ax.set_ylabel("hole-PSNR dB")
    ax.set_title("mixes of FSR, label blend and copy: goal = upper right of the dashed lines")
    ax.legend(loc="lower left")
    return common.save_plot(fig, out_dir, "frontier")


COLUMNS = [("a", "crack FSR share", ".1f"), ("c", "crack detail", ".1f"),
           ("s", "lacuna sigma", ".1f"), ("w", "lacuna detail", ".2f"),
           ("hole_psnr", "hole-PSNR dB", ".2f"), ("grad_ratio", "gradient ratio", ".3f"),
           ("crack_psnr", "crack dB", ".2f"), ("lacuna_psnr", "lacuna dB", ".2f"),
           ("lacuna_grad_ratio", "lacuna ratio", ".3f"), ("goal", "all goals", "")]


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--images", default="", help="comma-separated subset of image names")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="change one `inpaint run` option of both MRF fills (RunConfig field "
                        "names, repeatable), e.g. texture_weight=30")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = [n for n in args.images.split(",") if n]
    images = []
    for k, (name, truth) in enumerate(quality.test_images(args.quick)):
        mask = paint_loss_mask(truth.shape[:2], PaintLossConfig(coverage=0.05, seed=100 + k))
        if not wanted or name in wanted:   # seeds follow quality.py's order either way
            images.append((name, truth, mask))
    cases = fills(images, args.quick, quality.config_overrides(args.set))
    fsr = mean_scores(cases, lambda c: np.clip(np.rint(c["fsr"]), 0, 255).astype(np.uint8))
    grid = QUICK_GRID if args.quick else GRID
    points = []
    for a, c, s, w in itertools.product(*(grid[k] for k in "acsw")):
        point = {"a": a, "c": c, "s": s, "w": w,
                 **mean_scores(cases, functools.partial(mix, a=a, c=c, s=s, w=w))}
        point["goal"] = "yes" if meets(point, fsr) else ""
        points.append(point)
    front = sorted(pareto(points), key=lambda p: -p["hole_psnr"])
    common.print_table([{**fsr, "a": 1.0, "c": 0.0, "s": 0.0, "w": 1.0, "goal": "FSR"}] + front,
                       COLUMNS, title=f"Pareto front over {len(points)} mixes, {len(cases)} "
                                      f"images (first row: FSR_FAST)")
    reached = [p for p in points if p["goal"]]
    print(f"{len(reached)} of {len(points)} mixes meet every goal")
    plot(points, front, fsr, args.out)
    path = common.write_json(args.out, "frontier", {
        "images": [c["image"] for c in cases], "fsr_fast": fsr, "grid": grid,
        "points": points, "pareto": front, "goal_reached": bool(reached)}, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
