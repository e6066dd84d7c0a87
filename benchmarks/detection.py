"""Loss and crack detection (``inpaint detect``) against reference masks, next to two baselines.

Images with a reference mask in ../shared/data (read in place, never copied; skipped when absent):

* ``craquelure``: the three 1181x1772 craquelure close-ups of acecreamu/craquelure-graphs with
  their crack maps (1-pixel skeletons; stored transposed, 0 = crack, so they are rotated back and
  inverted here). Scored as crack-detection papers do: the detected mask is thinned to its
  skeleton, a detected pixel is correct when a reference pixel lies within 2 px, a reference
  pixel is found when a detected skeleton pixel lies within 2 px.
* ``fresco``: the Creation of Adam crop of pureexe/thai-painting-restoration (512x512, reduced
  to 256x256 with area averaging, the size of its traced crack mask ``inpaint-domain.png``).
  The traced strokes are ~3 px wide: scored pixel by pixel.
* ``manuscript``: the five manuscript pages of simoneparisotto/Manuscripts-restoration with
  their paint-loss masks (areas, 1 = damage): scored pixel by pixel.
* ``synthetic`` (``--quick`` only, always available): a seeded textured image with drawn dark
  cracks (masks.synthetic), scored pixel by pixel.

Methods: ``cracks`` (this project, defaults: ``polarity="auto"`` decides dark or light per image,
recorded in each result) and ``trained`` (this project, defaults), ``trained_ir`` (``trained`` with
the built-in v32 descriptor's IR channels as extra features, ``--ir-features v32``),
``otsu_tophat`` (Otsu threshold of a black top-hat of radius 7) and ``dark_threshold`` (Otsu
threshold of the grey levels, the darker class is loss). ``trained`` gets scribbles drawn
automatically: a seeded uniform sample of 0.5 % of the pixels, labelled loss on the reference and
paint elsewhere (for skeleton references paint only farther than the 2 px tolerance, where a user
would draw); those pixels are left out of every method's score. Metrics per image: precision,
recall, F1, IoU (for tolerance scoring IoU = F1 / (2 - F1), the Jaccard index matching that F1),
and seconds per megapixel (the whole method, features and training included; one process, 2 forest
jobs).

    python benchmarks/detection.py [--quick]
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from masks import PaintLossConfig, paint_loss_mask  # noqa: E402
from masks.detect import (  # noqa: E402
    LOSS,
    PAINT,
    CrackConfig,
    TrainedConfig,
    detect_cracks,
    pixel_features,
    predict_mask,
    resolve_polarity,
    to_grey,
    train_classifier,
)

CRAQUELURE = "peers/acecreamu__craquelure-graphs/imgs"
CRAQUELURE_CASES = (("fl187", "fl187_r5_minArea500_closeR3"),
                    ("ge230", "ge230_r4_minArea250_closeR4"),
                    ("image_3", "image_3_r3_minArea425_closeR6"))
THAI = "peers/pureexe__thai-painting-restoration/images/painting"
MANUSCRIPTS = "peers/simoneparisotto__Manuscripts-restoration/results/paper_results"
MANUSCRIPT_CASES = ("101", "106", "201", "203", "204")
TOLERANCE = 2          # px, skeleton references
SCRIBBLE_SHARE = 0.005
SEED = 0
METHODS = ("cracks", "trained", "trained_ir", "otsu_tophat", "dark_threshold")
GROUPS = ("craquelure", "fresco", "manuscript", "synthetic")


# --------------------------------------------------------------------------- data

def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        data = src.read()
    return np.moveaxis(data, 0, -1)


def _unit(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32) / 255.0
    return image[:, :, 0] if image.shape[2] == 1 else image[:, :, :3]


def synthetic_case(side: int = 384, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(float RGB image, bool crack mask): smooth coloured texture under uneven lighting, with
    dark paint blotches (not loss) and dark cracks 2-4 px wide drawn on."""
    rng = np.random.default_rng(seed)
    cracks = paint_loss_mask((side, side), PaintLossConfig(coverage=0.03, crack_fraction=1.0,
                                                           crack_width=(2, 4), seed=seed))
    texture = ndi.gaussian_filter(rng.normal(0, 1, (side, side, 3)), (6, 6, 0))
    shading = np.linspace(-0.15, 0.15, side)[None, :, None]     # uneven lighting
    blotches = ndi.gaussian_filter((rng.random((side, side)) > 0.998) * 1.0, 4)[:, :, None]
    image = 0.6 + shading + 0.06 * texture / texture.std() + rng.normal(0, 0.02, (side, side, 3))
    image -= 0.4 * blotches / blotches.max()
    image[cracks] -= 0.45
    return np.clip(image, 0, 1).astype(np.float32), cracks


def cases(quick: bool) -> list[dict]:
    """Every image with its reference: name, group, float image, bool reference, skeleton?"""
    out = []
    craq = common.shared_data(CRAQUELURE)
    if craq is not None:
        for name, ref in CRAQUELURE_CASES[:1] if quick else CRAQUELURE_CASES:
            image = _unit(_read(craq / f"{name}.jpg"))
            reference = np.rot90(_read(craq / f"{ref}.tif")[:, :, 0] == 0, -1)
            if quick:
                image, reference = image[600:856, 400:656], reference[600:856, 400:656]
            out.append({"name": name, "group": "craquelure", "image": image,
                        "reference": np.ascontiguousarray(reference), "skeleton": True})
    thai = common.shared_data(THAI)
    if thai is not None:
        big = _read(thai / "inpaint-domain-original.png")[:, :, :3]
        image = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
        reference = _read(thai / "inpaint-domain.png")[:, :, 0] > 0
        out.append({"name": "creation_of_adam", "group": "fresco",
                    "image": image.astype(np.float32) / 255.0, "reference": reference,
                    "skeleton": False})
    pages = common.shared_data(MANUSCRIPTS)
    if pages is not None:
        for k in MANUSCRIPT_CASES[:1] if quick else MANUSCRIPT_CASES:
            image = _unit(_read(pages / f"test{k}" / f"input_orig{k}.png"))
            reference = _read(pages / f"test{k}" / f"mask{k}.png")[:, :, 0] > 0
            if quick:
                image, reference = image[:256, :256], reference[:256, :256]
            out.append({"name": f"manuscript{k}", "group": "manuscript", "image": image,
                        "reference": reference, "skeleton": False})
    if quick or not out:
        image, reference = synthetic_case()
        out.append({"name": "synthetic", "group": "synthetic", "image": image,
                    "reference": reference, "skeleton": False})
    return out


def scribbles(reference: np.ndarray, skeleton: bool, seed: int = SEED) -> np.ndarray:
    """uint8 labels (H, W): a seeded uniform 0.5 % sample of the pixels, LOSS on the reference,
    PAINT off it (skeletons: only beyond the tolerance), 0 elsewhere."""
    rng = np.random.default_rng(seed)
    n = reference.size
    picked = np.zeros(n, bool)
    picked[rng.choice(n, max(2, int(SCRIBBLE_SHARE * n)), replace=False)] = True
    picked = picked.reshape(reference.shape)
    labels = np.zeros(reference.shape, np.uint8)
    labels[picked & reference] = LOSS
    far = ndi.distance_transform_edt(~reference) > TOLERANCE if skeleton else ~reference
    labels[picked & far] = PAINT
    return labels


# --------------------------------------------------------------------------- methods

def run_cracks(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return detect_cracks(image, CrackConfig())


def run_trained(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    cfg = TrainedConfig()
    features = pixel_features(image, cfg)
    return predict_mask(train_classifier(features, labels, cfg), features)


def run_trained_ir(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``trained`` plus the 8 IR channels of the built-in v32 descriptor (--ir-features v32)."""
    from inpaint.detect import ir_feature_fn

    cfg = TrainedConfig()
    features = pixel_features(image, cfg, ir_feature_fn("v32"))
    return predict_mask(train_classifier(features, labels, cfg, extra="ir:v32"), features)


def run_otsu_tophat(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    grey = to_grey(image)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    tophat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    return tophat > threshold_otsu(tophat)


def run_dark_threshold(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    grey = to_grey(image)
    return grey < threshold_otsu(grey)


RUNNERS = {"cracks": run_cracks, "trained": run_trained, "trained_ir": run_trained_ir,
           "otsu_tophat": run_otsu_tophat,
           "dark_threshold": run_dark_threshold}


# --------------------------------------------------------------------------- scoring

def score(pred: np.ndarray, reference: np.ndarray, scored: np.ndarray, skeleton: bool) -> dict:
    """Precision, recall, F1, IoU of ``pred`` on the ``scored`` pixels."""
    if skeleton:
        from skimage.morphology import skeletonize

        thin = skeletonize(pred)
        near_ref = ndi.distance_transform_edt(~reference) <= TOLERANCE
        near_pred = ndi.distance_transform_edt(~thin) <= TOLERANCE if thin.any() else \
            np.zeros_like(thin)
        n_pred, n_ref = int((thin & scored).sum()), int((reference & scored).sum())
        p = float((thin & scored & near_ref).sum() / n_pred) if n_pred else 0.0
        r = float((reference & scored & near_pred).sum() / n_ref) if n_ref else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f1, "iou": f1 / (2 - f1)}
    tp = int((pred & reference & scored).sum())
    fp = int((pred & ~reference & scored).sum())
    fn = int((~pred & reference & scored).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1,
            "iou": tp / (tp + fp + fn) if tp + fp + fn else 0.0}


# --------------------------------------------------------------------------- output

def _panel(a: np.ndarray, height: int) -> np.ndarray:
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    width = max(1, round(a.shape[1] * height / a.shape[0]))
    return cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA)


def montage(rows: list[tuple[np.ndarray, ...]], out_dir: Path, height: int = 256) -> None:
    """One row per image: image | reference | cracks | trained (white = loss). The manuscript
    pages are left out: the data README marks them internal only (not to be published)."""
    gap = 6
    lines = []
    for panels in rows:
        parts = []
        for p in panels:
            parts += [_panel(p, height), np.ones((height, gap, 3), np.float32)]
        lines.append(np.concatenate(parts[:-1], axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, gap), (0, width - line.shape[1]), (0, 0)), constant_values=1)
             for line in lines]
    grid = (np.clip(np.concatenate(lines), 0, 1) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    from descriptor.checkpoint import atomic_write_bytes

    atomic_write_bytes(out_dir / "detection_montage.png", data.tobytes())


def summarise(results: list[dict]) -> list[dict]:
    """Per method: mean P, R, F1, IoU over all images, mean F1 per group, mean s/MP."""
    summary = []
    for method in METHODS:
        rows = [r for r in results if r["method"] == method]
        if not rows:
            continue
        row = {"method": method, "images": len(rows)}
        for key in ("precision", "recall", "f1", "iou", "seconds_per_mp"):
            row[key] = float(np.mean([r[key] for r in rows]))
        for group in GROUPS:
            values = [r["f1"] for r in rows if r["group"] == group]
            row[f"f1_{group}"] = float(np.mean(values)) if values else None
        summary.append(row)
    return summary


COLUMNS = [("method", "method", ""), ("precision", "P", ".3f"), ("recall", "R", ".3f"),
           ("f1", "F1", ".3f"), ("iou", "IoU", ".3f"), ("f1_craquelure", "F1 craquelure", ".3f"),
           ("f1_fresco", "F1 fresco", ".3f"), ("f1_manuscript", "F1 manuscripts", ".3f"),
           ("f1_synthetic", "F1 synthetic", ".3f"), ("seconds_per_mp", "s / MP", ".2f")]


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results, pictures = [], []
    warm = synthetic_case(64)   # imports and first-call set-up stay out of the timings
    for method in METHODS:
        RUNNERS[method](warm[0], scribbles(warm[1], False))
    for case in cases(args.quick):
        image, reference = case["image"], case["reference"]
        labels = scribbles(reference, case["skeleton"])
        scored = labels == 0
        masks = {}
        for method in METHODS:
            t = time.perf_counter()
            pred = RUNNERS[method](image, labels)
            seconds = time.perf_counter() - t
            masks[method] = pred
            results.append({"image": case["name"], "group": case["group"], "method": method,
                            **score(pred, reference, scored, case["skeleton"]),
                            "seconds_per_mp": seconds / (reference.size / 1e6),
                            "megapixels": reference.size / 1e6,
                            "scoring": f"skeleton, {TOLERANCE} px tolerance"
                            if case["skeleton"] else "pixel"})
            if method == "cracks":
                results[-1]["polarity"] = resolve_polarity(to_grey(image), CrackConfig())
            print(f"{case['name']:>18} {method:>15}: F1 {results[-1]['f1']:.3f}", flush=True)
        if case["group"] != "manuscript":   # internal-only images: scored, never published
            shown = ndi.binary_dilation(reference, iterations=1) if case["skeleton"] else \
                reference
            pictures.append((image, shown, masks["cracks"], masks["trained"]))
    summary = summarise(results)
    common.print_table(results, [("image", "image", ""), ("method", "method", ""),
                                 ("precision", "P", ".3f"), ("recall", "R", ".3f"),
                                 ("f1", "F1", ".3f"), ("iou", "IoU", ".3f"),
                                 ("seconds_per_mp", "s / MP", ".2f")], title="per image")
    columns = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in summary)]
    common.print_table(summary, columns, title="mean per method")
    if pictures:
        montage(pictures, args.out)
    common.write_json(args.out, "detection", {
        "settings": {"tolerance_px": TOLERANCE, "scribble_share": SCRIBBLE_SHARE, "seed": SEED,
                     "cracks": asdict(CrackConfig()), "trained": asdict(TrainedConfig())},
        "results": results, "summary": summary}, args=args)


if __name__ == "__main__":
    main()
