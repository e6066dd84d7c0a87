"""Does the descriptor earn its place? v128 against pixel mode, and v128 fine-tuned on the image.

Same images, masks and scores as ``quality.py`` (seeded synthetic paint loss, hole-PSNR, SSIM,
hole gradient ratio, split into crack and lacuna pixels). Three runs of ``inpaint run`` per image,
all with the product's defaults otherwise:

- ``pixel``: ``--descriptor none`` (masked pixel SSD, no learned descriptor);
- ``v128``: the shipped v128 weights;
- ``v128_finetuned``: v128 after ``inpaint finetune v128 DAMAGED --mask MASK`` on the damaged
  image itself (its known pixels only), the way a user would run it; fine-tuning seconds are
  reported apart from the run's.

Prints a per-image table of the differences (v128 - pixel, finetuned - v128) and the means, and
writes ``finetune.json``. The README's "Descriptors: where they help" numbers come from here.

    python benchmarks/finetune.py [--quick] [--patches 50000] [--epochs 5] [--images a,b]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import quality  # noqa: E402

from inpaint.config import RunConfig  # noqa: E402
from inpaint.pipeline import run  # noqa: E402
from inpaint.training import finetune_descriptor  # noqa: E402
from masks import PaintLossConfig, paint_loss_mask  # noqa: E402

METHODS = ("pixel", "v128", "v128_finetuned")
METRICS = ("hole_psnr", "ssim", "grad_ratio", "crack_psnr", "lacuna_psnr", "lacuna_grad_ratio")


def finetuned(damaged: np.ndarray, mask: np.ndarray, folder: Path, patches: int,
              epochs: int) -> tuple[Path, float]:
    """Fine-tune v128 on the known pixels of ``damaged``; returns the checkpoint and seconds."""
    image_path, mask_path = folder / "damaged.png", folder / "mask.png"
    cv2.imwrite(str(image_path), cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mask_path), mask.astype(np.uint8) * 255)
    out = folder / "v128_finetuned.pt"
    t = time.perf_counter()
    finetune_descriptor("v128", str(image_path), out, mask=str(mask_path), patches=patches,
                        max_epochs=epochs, force=True, progress=False)
    return out, time.perf_counter() - t


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--patches", type=int, default=50_000, help="fine-tuning patches per image")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    p.add_argument("--coverage", type=float, default=0.05, help="paint-loss share of pixels")
    p.add_argument("--images", default="", help="comma-separated subset of image names")
    args = p.parse_args()
    if args.quick:
        args.patches, args.epochs = 2_000, 1
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = [n for n in args.images.split(",") if n]
    rows = []
    # same enumeration (and so the same mask seeds) as quality.py
    for k, (name, truth) in enumerate(quality.test_images(args.quick)):
        if wanted and name not in wanted:
            continue
        mask = paint_loss_mask(truth.shape[:2], PaintLossConfig(coverage=args.coverage,
                                                                seed=100 + k))
        damaged = truth.copy()
        damaged[mask] = 0
        row = {"image": name}
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint, tune_seconds = finetuned(damaged, mask, Path(tmp), args.patches,
                                                 args.epochs)
            for method, descriptor in (("pixel", "none"), ("v128", "v128"),
                                       ("v128_finetuned", str(checkpoint))):
                t = time.perf_counter()
                result = run(damaged, mask, RunConfig(descriptor=descriptor)).image
                scores = quality.score(result, truth, mask)
                row[method] = {**{m: scores[m] for m in METRICS},
                               "seconds": time.perf_counter() - t}
        row["finetune_seconds"] = tune_seconds
        for m in METRICS:
            row[f"v128_minus_pixel_{m}"] = row["v128"][m] - row["pixel"][m]
            row[f"finetuned_minus_v128_{m}"] = row["v128_finetuned"][m] - row["v128"][m]
        rows.append(row)
        print(f"{name:<22} hole-PSNR pixel {row['pixel']['hole_psnr']:6.2f}  v128 "
              f"{row['v128']['hole_psnr']:6.2f}  finetuned "
              f"{row['v128_finetuned']['hole_psnr']:6.2f}"
              f"  (fine-tune {tune_seconds:5.1f} s)", flush=True)
    if not rows:
        raise SystemExit(f"no image matched --images {args.images!r}")

    table = [{"image": r["image"],
              **{f"{m}_{x}": r[m][x] for m in METHODS for x in ("hole_psnr", "grad_ratio")},
              "lacuna_v128_minus_pixel": r["v128_minus_pixel_lacuna_psnr"],
              "lacuna_ft_minus_v128": r["finetuned_minus_v128_lacuna_psnr"],
              "finetune_s": r["finetune_seconds"]} for r in rows]
    mean = {"image": "mean"}
    for key in table[0]:
        if key != "image":
            mean[key] = float(np.mean([t[key] for t in table]))
    table.append(mean)
    columns = [("image", "image", "")]
    for m in METHODS:
        columns += [(f"{m}_hole_psnr", f"{m} dB", ".2f"),
                    (f"{m}_grad_ratio", f"{m} grad", ".3f")]
    columns += [("lacuna_v128_minus_pixel", "lacuna dB v128-pixel", "+.2f"),
                ("lacuna_ft_minus_v128", "lacuna dB tuned-v128", "+.2f"),
                ("finetune_s", "fine-tune s", ".1f")]
    common.print_table(table, columns, title=f"{len(rows)} images, {args.patches} fine-tuning "
                                             f"patches x {args.epochs} epochs")
    print(common.markdown_table(table, columns))
    path = common.write_json(args.out, "finetune", {"rows": rows, "table": table}, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
