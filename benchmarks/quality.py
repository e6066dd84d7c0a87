"""Inpainting quality against peers on painting images with seeded synthetic paint loss.

For every test image a seeded synthetic paint-loss mask (blobs + thin cracks, ~5 % of the
pixels) is cut; each method fills it and is scored against the intact image on two axes
(``texture_metrics.py``): fidelity (hole-PSNR over the missing pixels only, 8-bit peak; SSIM over
the whole image) and texture (hole gradient ratio: mean Sobel magnitude over the dilated hole,
result / truth, 1 = texture kept, < 1 = smoothed), each split into crack pixels (within 2 px of
known paint) and lacuna pixels (the rest); and seconds. Methods: this project with
the built-in v128 and v32 descriptors and in pixel mode, OpenCV Telea and Navier-Stokes,
opencv-contrib xphoto FSR_FAST and shift-map (when cv2.xphoto is installed: ``make bench-deps``)
and scikit-image biharmonic. Also a side-by-side of this project on the Ruzic & Pizurica
ski-resort example next to the authors' own output (``ski_out.bmp``), when the shared data is
present.

Images: the painting crops of ../shared/data (Thai murals, Creation of Adam, craquelure close-ups)
when that folder is present (scikit-image photos instead when it is absent), and always the
scikit-image textures brick, grass and gravel (as RGB). Outputs: ``quality.json``, a montage of
whole images, a zoom on the largest lacuna of each image (``quality_lacunae.png``) and a scatter
plot of every method on both axes (``quality_scatter.png``).

    python benchmarks/quality.py [--quick] [--methods v128,pixel,telea] [--set shortlist=32]
                                 [--images grass,gravel] [--descriptor [LABEL=]NAME_OR_PATH]

``--descriptor`` adds a row of this project run with any descriptor, built-in or a checkpoint
file, e.g. ``--methods pixel --descriptor vae --descriptor vae_corpus=runs/vae.pt --set
patch_size=16`` (the vae encodes 16x16 patches; ``--set`` applies to every row of ours).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import texture_metrics  # noqa: E402

from descriptor.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from inpaint.config import PIXEL_MODE  # noqa: E402
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
    import skimage.data

    if not images:
        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            images.append((f"skimage_{name}", getattr(skimage.data, name)()[:256, :256]))
    for name in TEXTURES:
        grey = getattr(skimage.data, name)()
        images.append((name, np.repeat(grey[:, :, None], 3, axis=2)))
    if quick:
        images = [(n, im[:96, :96]) for n, im in images[:1] + images[-1:]]
    return images


#: scikit-image textures added to every run (grey, used as RGB)
TEXTURES = ("brick", "grass", "gravel")


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
        if name == "descriptor":
            raise SystemExit("--set descriptor=... would change every row: add a row with "
                             "--descriptor [LABEL=]NAME_OR_PATH instead")
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


def descriptor_rows(specs: list[str]) -> dict[str, str]:
    """``[LABEL=]NAME_OR_PATH`` items -> {label: descriptor}; the label defaults to the built-in
    name or the checkpoint file's stem."""
    rows: dict[str, str] = {}
    for spec in specs:
        label, sep, descriptor = spec.partition("=")
        if not sep or Path(spec).is_file():     # a checkpoint path may itself hold a "="
            label, descriptor = Path(spec).stem, spec
        if not label or not descriptor:
            raise SystemExit(f"--descriptor wants [LABEL=]NAME_OR_PATH, not {spec!r}")
        if label in rows:
            raise SystemExit(f"--descriptor: the row name {label!r} is given twice")
        try:   # before any method runs: a bad checkpoint must not cost a whole run first
            if descriptor != PIXEL_MODE:
                load_checkpoint(descriptor)
        except CheckpointError as exc:
            raise SystemExit(f"--descriptor {spec}: {exc}") from None
        rows[label] = descriptor
    return rows


def methods(selected: list[str] | None, overrides: dict,
            descriptors: dict[str, str] | None = None) -> dict:
    """The methods to run: ``selected`` of the fixed table (all when None), then one row of
    ours per ``descriptors`` entry (label -> built-in name or checkpoint path)."""
    table = {"v128": ours("v128", overrides), "v32": ours("v32", overrides),
             "pixel": ours("none", overrides),
             # the fidelity trade-off of the default: labels averaged instead of copied
             "v128_blend": ours("v128", {"composition": "blend", **overrides}),
             # the unary's texture term, an option (issue 10; README: the texture term)
             "v128_texture_term": ours("v128", {"texture_weight": 20.0, **overrides}),
             # the defaults before the adaptive structure: the label average below 2 px, cracks
             # the mean of the pre-fill and the label average plus half the copied grain (with
             # today's grain: the sources' detail, matched by the detail gain and damp)
             "v128_split_blend": ours("v128", {"structure": "blend", "structure_sigma": 2.0,
                                               "crack_fill": "mean", "crack_detail": 0.5,
                                               **overrides}),
             # the defaults before the structure/texture split and the crack grain (issue 10)
             "v128_unsplit": ours("v128", {"structure_sigma": 0.0, "crack_fill": "prefill",
                                           "crack_detail": 0.0, "texture_weight": 0.0,
                                           **overrides}),
             # the defaults before the texture work (issue 10), for the record
             "v128_previous": ours("v128", {"prefill": "telea", "passes": 2,
                                            "composition": "blend", "crack_width": 0.0,
                                            "texture_weight": 0.0, **overrides}),
             "telea": telea, "navier_stokes": navier_stokes, "biharmonic": biharmonic}
    if hasattr(cv2, "xphoto"):
        table["fsr_fast"] = _xphoto(cv2.xphoto.INPAINT_FSR_FAST)
        table["shiftmap"] = _xphoto(cv2.xphoto.INPAINT_SHIFTMAP)
    if selected:
        missing = [m for m in selected if m not in table]
        if missing:
            raise SystemExit(f"unknown or unavailable methods: {missing} (have {list(table)})")
        table = {k: table[k] for k in selected}
    elif descriptors:   # --descriptor rows alone unless --methods names the others
        table = {}
    for label, descriptor in (descriptors or {}).items():
        if label in table:
            raise SystemExit(f"--descriptor row {label!r} has the name of a method: give it a "
                             "label, LABEL=NAME_OR_PATH")
        table[label] = ours(descriptor, overrides)
    return table


hole_psnr = texture_metrics.hole_psnr
score = texture_metrics.score


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


#: this project's methods (the others are peers)
OURS = ("v128", "v32", "pixel", "v128_blend", "v128_texture_term", "v128_split_blend",
        "v128_unsplit", "v128_previous")

#: (key, header, format) of the summary table: both axes, overall and per loss type
SUMMARY_COLUMNS = [("method", "method", ""), ("hole_psnr", "hole-PSNR dB", ".2f"),
                   ("ssim", "SSIM", ".4f"), ("grad_ratio", "gradient ratio", ".3f"),
                   ("crack_psnr", "crack dB", ".2f"), ("crack_grad_ratio", "crack ratio", ".3f"),
                   ("lacuna_psnr", "lacuna dB", ".2f"),
                   ("lacuna_grad_ratio", "lacuna ratio", ".3f"),
                   ("lacuna_echo", "lattice echo", ".3f"),
                   ("seconds", "s / image", ".2f")]


def summarise(cases: list[dict], names: list[str]) -> list[dict]:
    """Mean of every score over the images, one row per method (NaN-free images only)."""
    rows = []
    for method in names:
        scores = [c["scores"][method] for c in cases]
        row = {"method": method}
        for key in scores[0]:
            row[key] = float(np.nanmean([x[key] for x in scores]))
        rows.append(row)
    return rows


def largest_lacuna_box(mask: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left corner of a ``side`` square centred on the largest connected lacuna."""
    lacuna = texture_metrics.loss_types(mask)["lacuna"]
    target = lacuna if lacuna.any() else mask
    labels, n = ndimage.label(target)
    if n == 0:
        return 0, 0
    biggest = 1 + int(np.argmax(ndimage.sum(target, labels, range(1, n + 1))))
    cy, cx = (int(round(v)) for v in ndimage.center_of_mass(labels == biggest))
    h, w = mask.shape
    return (int(np.clip(cy - side // 2, 0, max(h - side, 0))),
            int(np.clip(cx - side // 2, 0, max(w - side, 0))))


def lacuna_montage(cases: list[dict], names: list[str], out_dir: Path, side: int = 64,
                   zoom: int = 3, filename: str = "quality_lacunae.png") -> None:
    """One row per image: the largest lacuna, truth | damaged | each method, zoomed ``zoom``x
    without interpolation so that copied texture and smudges can be told apart."""
    rows = []
    for case in cases:
        top, left = largest_lacuna_box(case["mask"], side)
        box = (slice(top, top + side), slice(left, left + side))
        damaged = case["truth"].copy()
        damaged[case["mask"]] = (255, 0, 255)
        tiles = [case["truth"][box], damaged[box]] + [case["results"][n][box] for n in names]
        tiles = [np.kron(t, np.ones((zoom, zoom, 1), np.uint8)) for t in tiles]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1))
    if not rows:
        return
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    tile = side * zoom + 4
    header = np.full((24, width, 3), 255, np.uint8)
    for k, label in enumerate(["truth", "loss"] + names):
        cv2.putText(header, label[:22], (k * tile + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    hgap = np.full((4, width, 3), 255, np.uint8)
    grid = np.concatenate([header] + [x for r in rows for x in (r, hgap)][:-1], axis=0)
    cv2.imwrite(str(out_dir / filename), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def scatter(summary: list[dict], out_dir: Path, ours_names: set[str]) -> None:
    """Every method as a point: hole-PSNR against hole gradient ratio (overall and lacunae)."""
    try:
        fig, axes = common.new_figure(1, 2, figsize=(11.0, 4.5))
    except ImportError:   # matplotlib is a bench/test extra
        return
    for ax, prefix, title in ((axes[0], "", "all missing pixels"),
                              (axes[1], "lacuna_", "lacuna pixels")):
        psnr_key = f"{prefix}psnr" if prefix else "hole_psnr"
        for row in summary:
            ours_ = row["method"] in ours_names
            ax.scatter(row[f"{prefix}grad_ratio"], row[psnr_key], s=40,
                       marker="o" if ours_ else "s", color="C0" if ours_ else "C1")
            ax.annotate(row["method"], (row[f"{prefix}grad_ratio"], row[psnr_key]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.axvspan(0.9, 1.1, color="C2", alpha=0.08)
        ax.set_xlabel("gradient ratio (1 = texture kept, < 1 = smoothed)")
        ax.set_ylabel("PSNR dB")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    common.save_plot(fig, out_dir, "quality_scatter")


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--methods", default="", help="comma-separated subset of methods")
    p.add_argument("--coverage", type=float, default=0.05, help="paint-loss share of pixels")
    p.add_argument("--images", default="",
                   help="comma-separated subset of image names (e.g. grass,gravel) for quick "
                        "comparisons; masks keep their seeds")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="change one `inpaint run` option of this project's methods, e.g. "
                        "shortlist=32 (repeatable; RunConfig field names)")
    p.add_argument("--descriptor", action="append", default=[], metavar="[LABEL=]NAME_OR_PATH",
                   help="add a row: this project with that descriptor (built-in name or "
                        "checkpoint file), named LABEL (default: the name or the file's stem); "
                        "repeatable. Without --methods only these rows run")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = config_overrides(args.set)
    extra = descriptor_rows(args.descriptor)
    table = methods([m for m in args.methods.split(",") if m] or None, overrides, extra)
    cases = []
    wanted = [n for n in args.images.split(",") if n]
    for k, (name, truth) in enumerate(test_images(args.quick)):
        if wanted and name not in wanted:
            continue
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
            sc = case["scores"][method]
            print(f"{name:<22} {method:<14} hole-PSNR {sc['hole_psnr']:6.2f}  SSIM "
                  f"{sc['ssim']:.4f}  gradient ratio {sc['grad_ratio']:.3f}  (lacunae "
                  f"{sc['lacuna_psnr']:6.2f} dB / {sc['lacuna_grad_ratio']:.3f})  {seconds:7.2f} s",
                  flush=True)
        cases.append(case)

    summary = summarise(cases, list(table))
    columns = SUMMARY_COLUMNS
    common.print_table(summary, columns, title=f"mean over {len(cases)} images, "
                                               f"{100 * args.coverage:.0f} % synthetic paint loss")
    print(common.markdown_table(summary, columns))
    montage(cases, list(table), args.out)
    lacuna_montage(cases, list(table), args.out)
    scatter(summary, args.out, set(OURS) | set(extra))
    # the ski-resort side-by-side shows v128 and pixel mode: not redone for --descriptor rows
    ski = ski_comparison(args.out, args.quick or bool(wanted) or bool(extra), overrides)
    payload = {"summary": summary,
               "images": [{k: c[k] for k in ("image", "shape", "coverage", "scores")}
                          for c in cases],
               "ski_resort": ski,
               "descriptors": extra,
               "xphoto_available": hasattr(cv2, "xphoto")}
    path = common.write_json(args.out, "quality", payload, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
