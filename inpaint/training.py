"""Training and fine-tuning descriptors from image files (``inpaint train`` / ``finetune``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from descriptor import TrainConfig, load_checkpoint, save_checkpoint, train, training_metadata
from descriptor.training import TrainingDataError
from masks import read_mask

from .device import choose_device
from .dtypes import to_float
from .errors import InpaintError
from .raster import read_raster

log = logging.getLogger(__name__)


#: file suffixes a folder given as a training image contributes (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")


def expand_images(specs: Sequence[str]) -> list[str]:
    """Training image specs with every folder replaced by the image files under it (any depth,
    ``IMAGE_SUFFIXES``, sorted by path, hidden files and folders skipped); files and
    ``skimage:NAME`` pass through in order."""
    out: list[str] = []
    for spec in specs:
        folder = Path(spec)
        if not folder.is_dir():
            out.append(spec)
            continue
        files = sorted(f for f in folder.rglob("*")
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in f.relative_to(folder).parts))
        if not files:
            raise InpaintError(f"folder {spec} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        out.extend(str(f) for f in files)
    return out


def load_training_image(spec: str, max_side: int | None = None) -> np.ndarray:
    """A path or ``skimage:NAME`` -> float32 (H, W, 3) RGB in [0, 1] (grey is replicated).

    max_side: when the longer side exceeds it, the image is reduced (area averaging, aspect
    kept) so that the longer side is ``max_side``: high-resolution photos then give patches of
    the detail scale of the rest of the corpus and cost less memory.
    """
    raster = read_raster(spec)
    colour = to_float(raster.colour)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    h, w = colour.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))   # cv2: (width, height)
        # area weights are convex, but their float32 sums can overshoot 1 by an ulp
        colour = np.clip(cv2.resize(colour, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)
    return colour


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise InpaintError(f"{out} exists; pass --force to overwrite")
    if not out.parent.exists():
        raise InpaintError(f"output folder {out.parent} does not exist")


def train_descriptor(
    images: Sequence[str],
    out: str | Path,
    cfg: TrainConfig,
    *,
    masks: Sequence[str] | None = None,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    command: str = "",
    max_side: int | None = None,
) -> dict:
    """Train a descriptor on ``images`` (paths, folders of images or ``skimage:NAME``) and save
    it to ``out``.

    masks: optional mask files, one per image (folders are not allowed with masks); their
    missing pixels never enter a patch. max_side: reduce larger images to this longer side
    (see :func:`load_training_image`). Returns the training metadata stored in the checkpoint.
    """
    out = Path(out)
    _check_output(out, force)
    if not images:
        raise InpaintError("no training images given")
    if max_side is not None and max_side < 1:
        raise InpaintError(f"max_side must be positive, got {max_side}")
    files = expand_images(images)
    if masks and len(files) != len(images):
        raise InpaintError("masks cannot be combined with folders of training images: "
                           "give the image files, one mask per image")
    if masks and len(masks) != len(images):
        raise InpaintError(f"{len(masks)} masks given for {len(images)} images: give one per image")
    if masks and max_side is not None:
        raise InpaintError("masks cannot be combined with max_side (the mask would no longer "
                           "match the reduced image)")
    arrays = [load_training_image(s, max_side) for s in files]
    mask_arrays = ([read_mask(m, shape=a.shape[:2]) for m, a in zip(masks, arrays)]
                   if masks else None)
    dev = choose_device(device)
    try:
        result = train(arrays, cfg, masks=mask_arrays, device=dev, progress=progress,
                       log=log.info)
    except TrainingDataError as exc:
        hint = f" (--max-side {max_side} may be too small)" if max_side else ""
        raise InpaintError(f"{exc}{hint}") from None
    meta = training_metadata(cfg, result, files, masks=list(masks or []), command=command,
                             device=str(dev), max_side=max_side)
    save_checkpoint(result.model, out, meta)
    return meta


def finetune_descriptor(
    checkpoint: str,
    image: str,
    out: str | Path,
    *,
    mask: str | None = None,
    invert_mask: bool = False,
    patches: int = 50_000,
    max_epochs: int = 5,
    seed: int = 0,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Continue training ``checkpoint`` on ~``patches`` crops of the known area of ``image``."""
    out = Path(out)
    _check_output(out, force)
    dev = choose_device(device)
    base = load_checkpoint(checkpoint, device=dev)
    array = load_training_image(image)
    mask_array = read_mask(mask, shape=array.shape[:2], invert=invert_mask) if mask else None
    settings = dict(base.training.get("settings", {}))
    known = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in settings.items() if k in known})
    cfg = replace(cfg, arch=base.arch, padding_mode=base.config.padding_mode,
                  patch_size=base.config.patch_size, patches=patches, max_epochs=max_epochs,
                  seed=seed)
    result = train([array], cfg, masks=[mask_array], model=base.model, device=dev,
                   progress=progress, log=log.info)
    meta = training_metadata(cfg, result, [image], masks=[mask] if mask else [], command=command,
                             device=str(dev), finetuned_from=base.source,
                             base_training={k: base.training.get(k) for k in
                                            ("data", "patches", "epochs", "final_val_loss")})
    save_checkpoint(result.model, out, meta)
    return meta
