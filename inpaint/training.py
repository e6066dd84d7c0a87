"""Training and fine-tuning descriptors from image files (``inpaint train`` / ``finetune``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from descriptor import TrainConfig, load_checkpoint, save_checkpoint, train, training_metadata
from masks import read_mask

from .device import choose_device
from .dtypes import to_float
from .errors import InpaintError
from .raster import read_raster

log = logging.getLogger(__name__)


def load_training_image(spec: str) -> np.ndarray:
    """A path or ``skimage:NAME`` -> float32 (H, W, 3) RGB in [0, 1] (grey is replicated)."""
    raster = read_raster(spec)
    colour = to_float(raster.colour)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
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
) -> dict:
    """Train a descriptor on ``images`` (paths or ``skimage:NAME``) and save it to ``out``.

    masks: optional mask files, one per image; their missing pixels never enter a patch.
    Returns the training metadata that was stored in the checkpoint.
    """
    out = Path(out)
    _check_output(out, force)
    if not images:
        raise InpaintError("no training images given")
    if masks and len(masks) != len(images):
        raise InpaintError(f"{len(masks)} masks given for {len(images)} images: give one per image")
    arrays = [load_training_image(s) for s in images]
    mask_arrays = ([read_mask(m, shape=a.shape[:2]) for m, a in zip(masks, arrays)]
                   if masks else None)
    dev = choose_device(device)
    result = train(arrays, cfg, masks=mask_arrays, device=dev, progress=progress, log=log.info)
    meta = training_metadata(cfg, result, list(images), masks=list(masks or []), command=command,
                             device=str(dev))
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
