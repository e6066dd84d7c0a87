"""Inpainting on images no other benchmark or training run here uses, as a new user would try it.

42 crops of 256x256 px: scikit-image photos (cat, rocket, astronaut, camera man, coffee,
immunohistochemistry, retina, Hubble deep field, colour wheel, logo, coins, horse) and, when
../shared/data is present, manuscript pages, craquelure photos and flat-colour synthetic
paintings; each cut by a seeded synthetic paint-loss mask (its own coverage, blob size and
seed) and, for some, lacunae placed by hand on edges, faces and flat paint (where invented
detail shows most). The last 14 are the crops of a review by eye (issue 10), added after the
first 28 had chosen the adaptive structure. Scores as ``quality.py`` (hole-PSNR, SSIM, hole
gradient ratio, each per loss type). Outputs ``unseen.json`` and ``unseen_lacunae.png`` (the
largest lacuna of every crop, 3x, truth | loss | each method): the numbers say little about
invented edges or specks, the zooms do.

    python benchmarks/unseen.py [--quick] [--methods v128,v128_texture_term,fsr_fast]
                                [--set texture_weight=20] [--cases chelsea,synth04]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import quality  # noqa: E402

from masks import PaintLossConfig, paint_loss_mask  # noqa: E402

MANUSCRIPTS = "peers/simoneparisotto__Manuscripts-restoration/results/paper_results"
BARBARA = ("peers/simoneparisotto__Manuscripts-restoration/lib/Inpainting_ipol_code/test/"
           "barbara.png")
CRAQUELURE_PHOTO = "peers/acecreamu__craquelure-graphs/imgs/image_3.jpg"
SYNTHETIC = "peers/pureexe__thai-painting-restoration/images/synthetic"


@dataclass(frozen=True)
class Case:
    """A crop (rows ``top``.., columns ``left``.., 256 px) of ``source`` and its loss mask."""
    name: str
    source: str              # "skimage:NAME" or a path under ../shared/data
    top: int
    left: int
    coverage: float
    max_blob_radius: float
    seed: int
    crack_fraction: float = 0.4
    blobs: tuple[tuple[int, int, int], ...] = ()    # extra lacunae (row, column, radius)


SIDE = 256
CASES = (
    Case("chelsea", "skimage:chelsea", 0, 80, 0.08, 20, 2),
    Case("rocket", "skimage:rocket", 100, 150, 0.05, 12, 3),
    Case("astro_suit", "skimage:astronaut", 256, 128, 0.08, 24, 4),
    Case("camera", "skimage:camera", 0, 128, 0.06, 16, 5),
    Case("ihc", "skimage:immunohistochemistry", 0, 0, 0.10, 24, 6),
    Case("craquelure_photo", CRAQUELURE_PHOTO, 600, 300, 0.05, 12, 7),
    Case("barbara", BARBARA, 0, 256, 0.07, 16, 8),
    Case("astro_face", "skimage:astronaut", 40, 80, 0.04, 12, 21,
         blobs=((60, 130, 7), (20, 210, 10), (105, 145, 8), (160, 90, 10))),
    Case("astro_helmet", "skimage:astronaut", 256, 256, 0.06, 16, 22,
         blobs=((174, 89, 8), (114, 74, 10))),
    Case("camera_face", "skimage:camera", 40, 120, 0.04, 12, 23,
         blobs=((35, 70, 10), (150, 80, 10), (100, 170, 9), (220, 170, 12))),
    Case("ms201", f"{MANUSCRIPTS}/test201/input_orig201.png", 220, 300, 0.07, 16, 11),
    Case("ms204_text", f"{MANUSCRIPTS}/test204/input_orig204.png", 40, 0, 0.06, 12, 12),
    Case("ms204_angel", f"{MANUSCRIPTS}/test204/input_orig204.png", 240, 300, 0.07, 20, 13),
    Case("astro_flag", "skimage:astronaut", 0, 0, 0.07, 20, 24),
    Case("coffee", "skimage:coffee", 0, 100, 0.08, 20, 2),
    Case("coffee_cracks", "skimage:coffee", 0, 100, 0.05, 24, 3, crack_fraction=0.2),
    Case("coffee_dark", "skimage:coffee", 0, 0, 0.04, 12, 31,
         blobs=((12, 40, 10), (30, 10, 9), (8, 110, 8))),
    Case("rocket_sky", "skimage:rocket", 100, 150, 0.06, 16, 4),
    Case("astro_neck", "skimage:astronaut", 150, 60, 0.06, 16, 33,
         blobs=((50, 140, 10), (80, 100, 9))),
    Case("coffee_edge", "skimage:coffee", 0, 100, 0.03, 16, 45,
         blobs=((20, 24, 9), (38, 6, 7), (10, 40, 6))),
    Case("ms204_text_dense", f"{MANUSCRIPTS}/test204/input_orig204.png", 0, 0, 0.10, 12, 43,
         crack_fraction=0.3),
    Case("camera_coat", "skimage:camera", 64, 0, 0.10, 24, 41),
    Case("astro_hair", "skimage:astronaut", 10, 200, 0.08, 20, 42),
    Case("ms203", f"{MANUSCRIPTS}/test203/input_orig203.png", 272, 200, 0.07, 16, 44),
    *(Case(f"synthetic{k:02d}", f"{SYNTHETIC}/case{k:02d}-original.png", 0, 0, 0.08, 16, 500 + k)
      for k in (2, 3, 4, 5)),
    # the crops of a review by eye of the adaptive structure (issue 10), made rerunnable
    Case("astro_glove", "skimage:astronaut", 256, 0, 0.07, 20, 101,
         blobs=((110, 140, 10), (60, 100, 12))),
    Case("coffee_right", "skimage:coffee", 144, 344, 0.08, 18, 102),
    Case("chelsea_right", "skimage:chelsea", 44, 195, 0.06, 16, 103,
         blobs=((80, 150, 10), (165, 75, 9))),
    Case("retina", "skimage:retina", 560, 560, 0.06, 16, 104),
    Case("hubble", "skimage:hubble_deep_field", 300, 400, 0.05, 12, 105),
    Case("colorwheel", "skimage:colorwheel", 57, 57, 0.05, 16, 106,
         blobs=((128, 128, 14), (200, 60, 12))),
    Case("logo", "skimage:logo", 120, 120, 0.05, 14, 107, blobs=((60, 40, 10), (190, 175, 10))),
    Case("coins", "skimage:coins", 40, 100, 0.07, 16, 108, blobs=((160, 50, 10),)),
    Case("horse", "skimage:horse", 40, 100, 0.05, 14, 109, blobs=((60, 100, 12), (150, 100, 10))),
    Case("synthetic01", f"{SYNTHETIC}/case01-original.png", 0, 0, 0.08, 20, 110,
         blobs=((120, 110, 10), (200, 143, 8), (60, 40, 12))),
    Case("ms101", f"{MANUSCRIPTS}/test101/input_orig101.png", 100, 100, 0.07, 16, 111),
    Case("ms106", f"{MANUSCRIPTS}/test106/input_orig106.png", 100, 100, 0.07, 16, 112),
    Case("barbara_bl", BARBARA, 256, 0, 0.06, 16, 113, blobs=((170, 60, 10), (40, 100, 10))),
    Case("craquelure_fl187", "peers/acecreamu__craquelure-graphs/imgs/fl187.jpg", 100, 100,
         0.05, 12, 114, blobs=((100, 100, 8),)),
)


def load_case(case: Case) -> np.ndarray | None:
    """The uint8 RGB crop, or None when its file of ../shared/data is absent."""
    if case.source.startswith("skimage:"):
        import skimage.data

        image = getattr(skimage.data, case.source.split(":", 1)[1])()
    else:
        path = common.shared_data(case.source)
        if path is None:
            return None
        image = quality.load_rgb(path)
    if image.dtype == bool:          # scikit-image's horse silhouette
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[case.top:case.top + SIDE, case.left:case.left + SIDE, :3])


def case_mask(case: Case, shape: tuple[int, int]) -> np.ndarray:
    """The seeded paint-loss mask of ``case`` plus its hand-placed lacunae."""
    mask = paint_loss_mask(shape, PaintLossConfig(
        coverage=case.coverage, max_blob_radius=case.max_blob_radius, seed=case.seed,
        crack_fraction=case.crack_fraction))
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    for row, col, radius in case.blobs:
        mask |= (rows - row) ** 2 + (cols - col) ** 2 <= radius * radius
    return mask


DEFAULT_METHODS = "v128,v128_split_blend,v128_texture_term,fsr_fast,biharmonic"


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help=f"comma-separated methods of quality.py (default {DEFAULT_METHODS})")
    p.add_argument("--cases", default="", help="comma-separated subset of the crops")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="change one `inpaint run` option of this project's methods "
                        "(repeatable; RunConfig field names)")
    args = p.parse_args()
    wanted = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(wanted) - {c.name for c in CASES})
    if unknown:
        raise SystemExit(f"unknown cases: {unknown}")
    table = quality.methods([m for m in args.methods.split(",") if m],
                            quality.config_overrides(args.set))
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in CASES if not wanted or c.name in wanted]
    if args.quick:
        chosen = chosen[:2]
    cases, skipped = [], []
    for case in chosen:
        truth = load_case(case)
        if truth is None:
            skipped.append(case.name)
            continue
        if args.quick:
            truth = np.ascontiguousarray(truth[:96, :96])
        mask = case_mask(case, truth.shape[:2])
        damaged = truth.copy()
        damaged[mask] = 0
        record = {"image": case.name, "source": case.source, "shape": list(truth.shape),
                  "coverage": float(mask.mean()), "truth": truth, "mask": mask,
                  "results": {}, "scores": {}}
        for method, func in table.items():
            t = time.perf_counter()
            result = func(damaged, mask)
            seconds = time.perf_counter() - t
            record["results"][method] = np.where(mask[:, :, None], result, truth)
            record["scores"][method] = {**quality.score(result, truth, mask), "seconds": seconds}
            sc = record["scores"][method]
            print(f"{case.name:<18} {method:<18} hole-PSNR {sc['hole_psnr']:6.2f}  gradient "
                  f"ratio {sc['grad_ratio']:.3f}  (lacunae {sc['lacuna_psnr']:6.2f} dB / "
                  f"{sc['lacuna_grad_ratio']:.3f})  {seconds:6.2f} s", flush=True)
        cases.append(record)
    if skipped:
        print(f"skipped (../shared/data absent): {', '.join(skipped)}")
    if not cases:
        raise SystemExit("no case could be loaded")
    summary = quality.summarise(cases, list(table))
    common.print_table(summary, quality.SUMMARY_COLUMNS,
                       title=f"mean over {len(cases)} unseen crops")
    print(common.markdown_table(summary, quality.SUMMARY_COLUMNS))
    quality.lacuna_montage(cases, list(table), args.out, filename="unseen_lacunae.png")
    payload = {"summary": summary, "skipped": skipped,
               "images": [{k: c[k] for k in ("image", "source", "shape", "coverage", "scores")}
                          for c in cases]}
    print(f"wrote {common.write_json(args.out, 'unseen', payload, args=args)}")


if __name__ == "__main__":
    main()
