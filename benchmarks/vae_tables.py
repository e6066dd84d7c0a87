"""Seed paper 2, Tables I and II: retrieval and reconstruction PSNR/SSIM of a plain AE and the VAE.

Data, built the way the paper did (research/descriptors.md section 3), offline:

* images: 15 photos shipped with scikit-image and, with ``--images DIR...``, every image file
  under those folders (e.g. ``data/paper/images`` from ``make paper-data``: photographs that
  Debian packages ship as desktop backgrounds). Folder images are read as grey, reduced to a
  longer side of ``--max-side`` (1024, the size of the paper's KonIQ-10k photos), and skipped
  when smaller than 112 px or a near-duplicate of an earlier one (32x32 thumbnails correlating
  above 0.9: one wallpaper at several resolutions). ``--heldout-images`` of them (seeded) are
  never trained on; with scikit-image's coffee and motorcycle they are the held-out photos.
* 56x56 grey patches centred on FAST keypoints (``cv2.FastFeatureDetector_create()`` defaults)
  chosen at random, split 8:1:1 into train / validation / test at random; 80,000 by default
  as in the paper (80,748 there).
* Per image the paper took ``floor(sqrt(H*W / 56^2) / 2)`` patches (about 4 from a 512x512
  image) from ~20,000 photos (ImageNet, KonIQ-10k). We have ~100 photos, so the count per image
  is that rule times one multiplier, chosen so the set holds about ``--patches`` patches
  (capped by the keypoints an image has). Patches of one image therefore overlap, and test
  patches share content with training patches: the test-split figures are optimistic. The
  same measures on FAST patches of the held-out photos say how far the models generalise.

Models: the VAE of ``descriptor.vae`` (3 conv + max-pool layers, FC to mean / log-variance,
latent 128, FC + 3 transposed convs, ReLU, sigmoid) on 1x56x56 patches, loss
``gamma * BCE + KL`` (``descriptor.vae.vae_loss``, gamma > 1; 10 = the authors' raw beta 0.1),
Adam 1e-3, batch 32; and a plain autoencoder *of the same size*: the same network used
deterministically (code = the mean head, no sampling, no KL, loss BCE). Both get the same data,
settings and optimiser. Training stops early when the validation loss has not fallen by 0.05 %
for ``--patience`` epochs, at ``--epochs``, or after ``--minutes`` of wall clock per model; the
weights of the epoch with the lowest validation loss are kept. Every epoch is checkpointed
(``--checkpoints``, default ``data/paper/checkpoints``); ``--resume`` continues a run stopped
by the epoch limit or the time budget; ``--only ae|vae`` trains one model (two processes can
train both at once), and ``--resume --epochs 0`` evaluates the checkpoints as they are. The
descriptor is the (posterior) mean.

Measures:

* **reconstruction**: PSNR and SSIM between each test patch and ``decoder(encoder(patch))``, data
  range = the pair's dynamic range (max - min over both patches), averaged over the test split
  (and, separately, over FAST patches of the held-out photos, also recorded after every epoch).
* **retrieval**, two protocols, both with k = 6 nearest by MSE between encodings, the query
  itself and candidates at encoding MSE < 1e-4 skipped, PSNR (peak 1, skimage's default for
  [0, 1] images) and SSIM (data range = the pair's dynamic range) between query and retrieved
  pixels, averaged over all query x k pairs, as the authors' eval_descr_patch_retrieval.py:

  - ``grid`` (our protocol; the authors' evaluation code): on each held-out photo the
    non-overlapping stride-56 grid; every position is a query (the code's queries every 8 x 56
    px of a large photo would be a handful on ours), the other positions the candidates. No
    two patches overlap, so nothing near-identical can be found.
  - ``fast_all`` (the paper's protocol as it describes it): on each held-out photo the patches
    around *all* FAST keypoints are the candidates, overlaps kept, so keypoints a few pixels
    apart give near-duplicates; ``--queries`` of them (seeded) per photo are the queries. To
    bound the cost each photo is cut to its central ``--fast-side`` window (384 px) first, all
    of its keypoints kept.

  The same searches on raw pixels are the reference: the best a descriptor can do on them.

SSIM is skimage's default (7x7 uniform window, sample covariance, K1 0.01, K2 0.03) computed in
batches with torch (checked against ``skimage.metrics.structural_similarity``).

``--curve 10000,20000,40000`` trains the VAE alone on patch sets of those sizes (same images,
settings and limits) and writes ``vae_curve.json``: the learning curve against corpus size.

    .venv/bin/python benchmarks/vae_tables.py [--quick] [--images DIR ...] [--patches 80000]
        [--epochs 60] [--minutes M] [--only ae|vae] [--resume] [--curve N,N,...] [--gamma 10]
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.util import img_as_float

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from descriptor import ModelConfig, VariationalAutoencoder, build_model
from descriptor.checkpoint import atomic_write_bytes
from descriptor.vae import LUMINANCE, vae_loss

NAME = "vae_tables"
SIZE = 56
LATENT = 128
K = 6
EPS = 1e-4
#: skimage.data images the patch set is cut from (natural photos, textures, microscopy, text).
TRAIN_IMAGES = ("astronaut", "camera", "chelsea", "coins", "clock", "moon", "rocket", "page",
                "text", "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
                "retina")
#: Photos no model sees: retrieval is run on them, and their FAST patches give held-out figures.
HELD_OUT_IMAGES = ("coffee", "motorcycle_left")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
PAPER = {"ae": {"retrieval_psnr": 29.2, "retrieval_ssim": 0.32,
                "reconstruction_psnr": 16.0, "reconstruction_ssim": 0.10},
         "vae": {"retrieval_psnr": 29.1, "retrieval_ssim": 0.33,
                 "reconstruction_psnr": 24.5, "reconstruction_ssim": 0.50}}


# --------------------------------------------------------------------------- data

def grey_image(name: str) -> np.ndarray:
    """A scikit-image data image as float64 grey in [0, 1] (BT.709 luminance for RGB)."""
    import skimage.data

    image = (skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left"
             else getattr(skimage.data, name)())
    image = img_as_float(image)
    if image.ndim == 3:
        image = image[..., :3] @ np.asarray(LUMINANCE)
    return np.clip(image, 0.0, 1.0)


def paper_count(shape: tuple[int, int]) -> int:
    """Patches per image in the paper's data set: floor(sqrt(H*W / 56^2) / 2)."""
    return int(math.sqrt(shape[0] * shape[1] / SIZE**2) / 2)


def keypoint_corners(image: np.ndarray) -> np.ndarray:
    """(n, 2) top-left corners of the 56x56 patches centred on the image's FAST keypoints
    (default detector on the 8-bit image) that lie wholly inside it; duplicates removed."""
    detector = cv2.FastFeatureDetector_create()
    points = detector.detect((image * 255).round().astype(np.uint8))
    if not points:
        return np.zeros((0, 2), dtype=np.int64)
    centres = np.array([kp.pt for kp in points])[:, ::-1].round().astype(np.int64)  # (row, col)
    corners = centres - SIZE // 2
    inside = ((corners >= 0) & (corners <= np.array(image.shape) - SIZE)).all(1)
    return np.unique(corners[inside], axis=0)


def cut(image: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(n, 56, 56) float32 patches with the given top-left corners (advanced indexing)."""
    offsets = np.arange(SIZE)
    rows = (corners[:, 0, None] + offsets)[:, :, None]
    cols = (corners[:, 1, None] + offsets)[:, None, :]
    return image[rows, cols].astype(np.float32)


def build_patch_set(images: dict[str, np.ndarray], target: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Patches at random FAST keypoints: per image ``multiplier * paper_count`` (capped by its
    keypoints), the smallest multiplier giving at least ``target`` patches in all."""
    names = list(images)
    corners = {n: keypoint_corners(im) for n, im in images.items()}
    rule = {n: max(1, paper_count(im.shape)) for n, im in images.items()}

    def total(m: int) -> int:
        return sum(min(len(corners[n]), m * rule[n]) for n in names)

    target = min(target, sum(len(c) for c in corners.values()))
    multiplier = 1
    while total(multiplier) < target:
        multiplier += 1
    patches, info = [], []
    for n in names:
        count = min(len(corners[n]), multiplier * rule[n])
        chosen = corners[n][rng.choice(len(corners[n]), size=count, replace=False)]
        patches.append(cut(images[n], chosen))
        info.append({"image": n, "shape": list(images[n].shape), "keypoints": len(corners[n]),
                     "paper_rule": rule[n], "patches": count})
    return np.concatenate(patches), info + [{"multiplier": multiplier}]


def load_grey_file(path: Path, max_side: int) -> np.ndarray:
    """An image file as float64 grey in [0, 1] (BT.709 luminance), its longer side reduced to at
    most ``max_side`` (Lanczos; the paper's KonIQ-10k photos are 1024x768)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # local, trusted files: wallpapers reach 5120x2880
    with Image.open(path) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when possible
        rgb = im.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    grey = np.asarray(rgb, dtype=np.float64) / 255.0 @ np.asarray(LUMINANCE)
    return np.clip(grey, 0.0, 1.0)


def _thumb(image: np.ndarray) -> np.ndarray:
    """32x32 area-averaged thumbnail, zero mean and unit norm (for near-duplicate tests)."""
    t = cv2.resize(image.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA).ravel()
    t = t - t.mean()
    return t / max(float(np.linalg.norm(t)), 1e-6)


def folder_images(folders: list[Path], max_side: int, min_side: int = 2 * SIZE,
                  duplicate_corr: float = 0.9) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every image file under ``folders`` (recursive, sorted) as grey, reduced to ``max_side``.

    Images smaller than ``min_side`` are skipped, and so is an image whose 32x32 thumbnail
    correlates above ``duplicate_corr`` with an earlier one (one photo at several resolutions,
    light / dark variants). Returns the images by path and the skipped paths with the reason.
    """
    for folder in folders:
        if not Path(folder).is_dir():
            raise SystemExit(f"--images {folder}: not a folder")
    files = sorted(f for folder in folders for f in Path(folder).rglob("*")
                   if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    images: dict[str, np.ndarray] = {}
    thumbs: list[np.ndarray] = []
    skipped: list[str] = []
    for f in files:
        try:
            image = load_grey_file(f, max_side)
        except (OSError, ValueError) as exc:
            skipped.append(f"{f}: unreadable ({exc})")
            continue
        if min(image.shape) < min_side:
            skipped.append(f"{f}: smaller than {min_side} px")
            continue
        thumb = _thumb(image)
        if thumbs and float(np.max(np.stack(thumbs) @ thumb)) > duplicate_corr:
            skipped.append(f"{f}: near-duplicate of an earlier image")
            continue
        thumbs.append(thumb)
        images[str(f)] = image
    return images, skipped


def split_images(images: dict[str, np.ndarray], held_out: int, seed: int
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Seeded split of a folder corpus by image: (training images, ``held_out`` unseen ones)."""
    names = sorted(images)
    order = np.random.default_rng(seed + 7919).permutation(len(names))
    held = {names[i] for i in order[:min(held_out, max(0, len(names) - 1))]}
    return ({n: images[n] for n in names if n not in held},
            {n: images[n] for n in names if n in held})


def split(patches: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """8:1:1 random train / validation / test split; tensors (n, 1, 56, 56)."""
    order = rng.permutation(len(patches))
    n_val = n_test = max(1, len(patches) // 10)
    parts = {"test": order[:n_test], "validation": order[n_test:n_test + n_val],
             "train": order[n_test + n_val:]}
    return {k: torch.from_numpy(patches[v])[:, None] for k, v in parts.items()}


# --------------------------------------------------------------------------- models

def make_model(seed: int) -> VariationalAutoencoder:
    """The paper-2 network for 1x56x56 patches, latent 128 (seeded initialisation)."""
    torch.manual_seed(seed)
    return build_model(ModelConfig("vae", "same", SIZE, channels=1, latent=LATENT))


def ae_reconstruct(model: VariationalAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """Deterministic autoencoding: decoder(mean head(encoder(x)))."""
    return model.decode(model.encode(x))


def ae_loss(model: VariationalAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """Plain AE loss: BCE summed over the pixels of a patch, averaged over the batch."""
    return F.binary_cross_entropy(ae_reconstruct(model, x), x, reduction="sum") / len(x)


@dataclass(frozen=True)
class FitConfig:
    """Training settings shared by both models (and recorded in the JSON)."""

    epochs: int
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    #: Stop when the validation loss has not fallen by ``min_rel_delta`` (relative) for
    #: ``patience`` epochs; the weights of the best epoch are kept.
    patience: int = 3
    min_rel_delta: float = 5e-4
    #: Wall-clock budget of one model's training in minutes (None: none); a run stopped by it
    #: continues with ``--resume``.
    minutes: float | None = None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Training state written atomically (a killed run never leaves half a checkpoint)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def fit(model: VariationalAutoencoder, loss_fn: Callable[[torch.Tensor], torch.Tensor],
        data: dict[str, torch.Tensor], cfg: FitConfig, label: str,
        checkpoint: Path | None = None, key: str = "", resume: bool = False,
        monitor: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """Adam on mini-batches; validation (eval mode) after each epoch; early stopping; the best
    weights restored. With ``checkpoint`` the state is saved after every epoch; ``resume``
    continues from it (same ``key``: same data and settings) unless it had stopped early.
    ``monitor`` adds figures (e.g. held-out reconstruction) to each epoch's history entry."""
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    train_x, val_x = data["train"], data["validation"]
    history: list[dict[str, Any]] = []
    best, best_state, stale, seconds, stopped = math.inf, None, 0, 0.0, None
    if resume and checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["key"] != key:
            raise SystemExit(f"{checkpoint} was made with other data or settings; "
                             "remove it or run without --resume")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        history, best, best_state = state["history"], state["best"], state["best_state"]
        stale, seconds, stopped = state["stale"], state["seconds"], state["stopped"]
        print(f"{label}: resumed from {checkpoint} after epoch {len(history)} "
              f"({stopped or 'running'})", flush=True)
    if cfg.epochs == 0 and not history:
        raise SystemExit(f"{label}: no checkpoint to evaluate ({checkpoint})")
    resumed_stop = stopped
    if stopped == "early stopping":
        start_epoch = cfg.epochs + 1  # finished: nothing left to train
    else:
        start_epoch, stopped = len(history) + 1, None
    start = time.perf_counter() - seconds
    session = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_x)))
        running = 0.0
        for s in range(0, len(order), cfg.batch):
            x = train_x[order[s:s + cfg.batch]]
            loss = loss_fn(x)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            running += float(loss.detach()) * len(x)
        model.eval()
        with torch.no_grad():
            val = sum(float(loss_fn(val_x[s:s + 512])) * len(val_x[s:s + 512])
                      for s in range(0, len(val_x), 512)) / len(val_x)
        entry = {"epoch": epoch, "train_loss": running / len(train_x), "val_loss": val,
                 "seconds": time.perf_counter() - start}
        if monitor is not None:
            entry.update(monitor())
        history.append(entry)
        extra = "".join(f"  {k} {v:.3f}" for k, v in entry.items()
                        if k not in ("epoch", "train_loss", "val_loss", "seconds"))
        print(f"{label} epoch {epoch}/{cfg.epochs}: train {entry['train_loss']:.2f}  "
              f"validation {val:.2f}{extra}  ({entry['seconds']:.0f} s)", flush=True)
        if val < best * (1 - cfg.min_rel_delta):
            best, stale = val, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if stale >= cfg.patience:
            stopped = "early stopping"
        elif epoch == cfg.epochs:
            stopped = "epoch limit"
        elif cfg.minutes is not None and time.perf_counter() - session > 60 * cfg.minutes:
            stopped = "time budget"
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "key": key, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": history, "best": best, "best_state": best_state, "stale": stale,
                "seconds": time.perf_counter() - start, "stopped": stopped})
        if stopped is not None:
            break
    if start_epoch > cfg.epochs:  # nothing trained in this session (--epochs 0, or finished)
        stopped = resumed_stop
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    best_epoch = min(history, key=lambda h: h["val_loss"])["epoch"] if history else 0
    return {"history": history, "best_epoch": best_epoch, "best_val_loss": best,
            "stopped": stopped or "epoch limit", "epochs_run": len(history),
            "seconds": history[-1]["seconds"] if history else 0.0}


# --------------------------------------------------------------------------- measures

def dynamic_range(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) max - min over both patches of each pair (at least 1e-6)."""
    both = torch.cat([a.flatten(1), b.flatten(1)], 1)
    return (both.amax(1) - both.amin(1)).clamp_min(1e-6)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
    """(N,) PSNR in dB of each pair (MSE floored at 1e-10)."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(data_range**2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: torch.Tensor, win: int = 7) -> torch.Tensor:
    """(N,) SSIM of (N, 1, H, W) pairs, as skimage's default ``structural_similarity``."""
    a, b = a.double(), b.double()

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, win, stride=1)

    cov_norm = win * win / (win * win - 1)
    ux, uy = mean(a), mean(b)
    vx = cov_norm * (mean(a * a) - ux * ux)
    vy = cov_norm * (mean(b * b) - uy * uy)
    vxy = cov_norm * (mean(a * b) - ux * uy)
    r = data_range.double().view(-1, 1, 1, 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3))


@torch.no_grad()
def reconstruction(model: VariationalAutoencoder, x: torch.Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM between patches and decoder(encoder(patch)), pair's dynamic range; also
    the PSNR with peak 1 (skimage's default for [0, 1] images, as the authors' retrieval code)."""
    recon = torch.cat([ae_reconstruct(model, x[s:s + 512]) for s in range(0, len(x), 512)])
    r = dynamic_range(x, recon)
    return {"psnr": float(psnr(x, recon, r).mean()), "ssim": float(ssim(x, recon, r).mean()),
            "psnr_peak1": float(psnr(x, recon, torch.ones(len(x))).mean()), "patches": len(x)}


def grid_patches(image: np.ndarray) -> np.ndarray:
    """(n, 56, 56) patches on the stride-56 grid of an image (row-major)."""
    rows = np.arange(0, image.shape[0] - SIZE + 1, SIZE)
    cols = np.arange(0, image.shape[1] - SIZE + 1, SIZE)
    corners = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
    return cut(image, corners)


def nearest(codes: torch.Tensor, queries: torch.Tensor, k: int = K, chunk: int = 256
            ) -> torch.Tensor:
    """(q, k) indices of the ``k`` nearest candidates (rows of ``codes``) to each query index by
    MSE between encodings, skipping the query itself and any candidate closer than ``EPS``
    (the authors' rule against exact duplicates); computed in chunks of queries."""
    codes = codes.flatten(1).float()
    sq = (codes * codes).sum(1)
    out = []
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d = (sq[q, None] + sq[None, :] - 2 * codes[q] @ codes.T).clamp_min(0) / codes.shape[1]
        d[d < EPS] = math.inf
        d[torch.arange(len(q)), q] = math.inf
        out.append(torch.topk(d, k, dim=1, largest=False).indices)
    return torch.cat(out)


def encode_all(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               batch: int = 1024) -> torch.Tensor:
    return torch.cat([encode(x[s:s + batch]) for s in range(0, len(x), batch)])


@torch.no_grad()
def pair_scores(x: torch.Tensor, queries: torch.Tensor, found: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """PSNR (peak 1) and SSIM (pair's range) of each query against each of its k retrieved."""
    q = x[queries][:, None].expand(-1, found.shape[1], -1, -1, -1).reshape(-1, 1, SIZE, SIZE)
    f = x[found.flatten()]
    return psnr(q, f, torch.ones(len(q))), ssim(q, f, dynamic_range(q, f))


@torch.no_grad()
def retrieval_grid(encode: Callable[[torch.Tensor], torch.Tensor], photos: list[np.ndarray]
                   ) -> dict[str, float]:
    """Our protocol (the authors' evaluation code): on each photo the non-overlapping stride-56
    grid, every position a query, the other positions the candidates; k = 6 nearest."""
    psnrs, ssims = [], []
    for photo in photos:
        x = torch.from_numpy(grid_patches(photo))[:, None]
        if len(x) <= K:
            continue
        queries = torch.arange(len(x))
        p, s = pair_scores(x, queries, nearest(encode_all(encode, x).double(), queries))
        psnrs.append(p)
        ssims.append(s)
    psnr_all, ssim_all = torch.cat(psnrs), torch.cat(ssims)
    return {"psnr": float(psnr_all.mean()), "ssim": float(ssim_all.mean()),
            "pairs": len(psnr_all)}


@torch.no_grad()
def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` window of an image (smaller sides kept whole)."""
    top = max(0, (image.shape[0] - side) // 2)
    left = max(0, (image.shape[1] - side) // 2)
    return image[top:top + side, left:left + side]


@torch.no_grad()
def retrieval_fast(encode: Callable[[torch.Tensor], torch.Tensor], photos: list[np.ndarray],
                   max_queries: int, seed: int, side: int = 384) -> dict[str, float]:
    """The paper's protocol as described: the patches around *all* FAST keypoints of each test
    photo are the candidates, overlaps kept (keypoints a few pixels apart give near-duplicate
    patches); up to ``max_queries`` of them per photo (seeded) are queries; k = 6 nearest.
    To bound the encoding cost each photo is cut to its central ``side`` x ``side`` window
    first; every keypoint inside it is kept, so the density of near-duplicates is unchanged."""
    rng = np.random.default_rng(seed)
    psnrs, ssims, candidates = [], [], 0
    for photo in photos:
        photo = centre_crop(photo, side)
        x = torch.from_numpy(cut(photo, keypoint_corners(photo)))[:, None]
        if len(x) <= K:
            continue
        queries = torch.from_numpy(np.sort(rng.choice(len(x), min(max_queries, len(x)),
                                                      replace=False)))
        p, s = pair_scores(x, queries, nearest(encode_all(encode, x), queries))
        psnrs.append(p)
        ssims.append(s)
        candidates += len(x)
    psnr_all, ssim_all = torch.cat(psnrs), torch.cat(ssims)
    return {"psnr": float(psnr_all.mean()), "ssim": float(ssim_all.mean()),
            "pairs": len(psnr_all), "candidates": candidates}


def check_ssim(seed: int = 0) -> float:
    """Largest |batched SSIM - skimage SSIM| on a few random pairs (sanity check)."""
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(seed)
    a = torch.rand(4, 1, SIZE, SIZE, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.rand(4, 1, SIZE, SIZE, generator=g, dtype=torch.float64)).clamp(0, 1)
    r = dynamic_range(a, b)
    ours = ssim(a, b, r)
    ref = [structural_similarity(a[i, 0].numpy(), b[i, 0].numpy(), data_range=float(r[i]))
           for i in range(len(a))]
    return float((ours - torch.tensor(ref, dtype=torch.float64)).abs().max())


# --------------------------------------------------------------------------- report

PROTOCOLS = {
    "grid": f"our protocol (the authors' evaluation code): on each held-out photo the "
            f"non-overlapping stride-{SIZE} grid, every position a query, the other positions "
            f"the candidates, k = {K}, skip own position and encoding MSE < {EPS}; no two "
            "patches overlap, so no near-duplicates",
    "fast_all": f"the paper's protocol as described: on each held-out photo the {SIZE}x{SIZE} "
                "patches around all FAST keypoints are the candidates, overlaps kept "
                "(keypoints a few pixels apart give near-duplicate patches); a seeded sample of "
                f"them are the queries, k = {K}, skip own patch and encoding MSE < {EPS}; "
                "searched in the central window of each photo (all its keypoints kept)",
}


def protocol_match(figures: dict[str, dict[str, float]], pixels: dict[str, dict[str, float]]
                   ) -> str:
    """Which retrieval protocol the paper's VAE figure (29.1 dB / 0.33) matches, from ours."""
    target = PAPER["vae"]["retrieval_psnr"]
    vae = figures["vae"]
    gaps = {p: abs(vae[f"retrieval_{p}_psnr"] - target) for p in PROTOCOLS}
    best = min(gaps, key=gaps.get)
    other = "grid" if best == "fast_all" else "fast_all"
    reached = vae[f"retrieval_{best}_psnr"] >= target
    return (f"The paper's VAE retrieval ({target} dB / {PAPER['vae']['retrieval_ssim']}) is "
            f"{'reached' if reached else 'approached most closely (not reached)'} under the "
            f"{best} protocol: ours {vae[f'retrieval_{best}_psnr']:.1f} dB / "
            f"{vae[f'retrieval_{best}_ssim']:.2f} (pixel search {pixels[best]['psnr']:.1f} dB /"
            f" {pixels[best]['ssim']:.2f}), against {vae[f'retrieval_{other}_psnr']:.1f} dB / "
            f"{vae[f'retrieval_{other}_ssim']:.2f} under the {other} protocol (pixel search "
            f"{pixels[other]['psnr']:.1f} dB / {pixels[other]['ssim']:.2f}). Pixel search is "
            "the ceiling of any descriptor under a protocol: where it stays below the paper's "
            "figure, that protocol on these photos cannot give it.")


def diagnosis(figures: dict[str, dict[str, float]], training: dict[str, dict[str, Any]],
              n_train: int, n_images: int, gamma: float) -> list[str]:
    """Sentences on whether the VAE reaches the paper's reconstruction and what limits it."""
    vae, ae = figures["vae"], figures["ae"]
    target_psnr = PAPER["vae"]["reconstruction_psnr"]
    target_ssim = PAPER["vae"]["reconstruction_ssim"]
    reached = (vae["reconstruction_psnr"] >= target_psnr
               and vae["reconstruction_ssim"] >= target_ssim)
    out = [f"VAE reconstruction on the test split: {vae['reconstruction_psnr']:.1f} dB / "
           f"{vae['reconstruction_ssim']:.2f} against the paper's {target_psnr} dB / "
           f"{target_ssim}: {'reached' if reached else 'NOT reached'} (held-out photos: "
           f"{vae['heldout_reconstruction_psnr']:.1f} dB / "
           f"{vae['heldout_reconstruction_ssim']:.2f})."]
    if ae["reconstruction_psnr"] > vae["reconstruction_psnr"]:
        out.append(f"The plain AE of the same size reconstructs better "
                   f"({ae['reconstruction_psnr']:.1f} dB / {ae['reconstruction_ssim']:.2f}), "
                   f"unlike the paper's AE ({PAPER['ae']['reconstruction_psnr']} dB / "
                   f"{PAPER['ae']['reconstruction_ssim']}): the gap is what the KL term costs "
                   f"at gamma = {gamma:g}.")
    if reached:
        return out
    limits = []
    if ae["reconstruction_psnr"] >= target_psnr and ae["reconstruction_ssim"] >= target_ssim:
        limits.append(f"gamma: the same network without the KL term reaches "
                      f"{ae['reconstruction_psnr']:.1f} dB / {ae['reconstruction_ssim']:.2f}, "
                      f"so the KL weight (gamma = {gamma:g}) is what holds the VAE back")
    else:
        limits.append(f"not gamma alone: the deterministic AE of the same size, the limit of "
                      f"this VAE as gamma grows, stays at {ae['reconstruction_psnr']:.1f} dB / "
                      f"{ae['reconstruction_ssim']:.2f}")
    for name in ("ae", "vae"):
        info = training[name]
        history = info["history"]
        if len(history) >= 2:
            drop = 1 - history[-1]["val_loss"] / history[-2]["val_loss"]
            held = [h.get("heldout_psnr") for h in history]
            trend = (f", held-out PSNR by epoch {' -> '.join(f'{v:.2f}' for v in held)} dB"
                     if None not in held else "")
            limits.append(f"epochs ({name.upper()}): {len(history)} epochs ({info['stopped']}"
                          f"), validation loss {drop:.2%} lower than the epoch before{trend} "
                          "(the authors trained up to 200)")
    limits.append(f"data: {n_train} training patches from {n_images} images (the paper: "
                  f"~64,600 from ~20,000 photos); on unseen photos the VAE reconstructs "
                  f"{vae['heldout_reconstruction_psnr']:.1f} dB against "
                  f"{vae['reconstruction_psnr']:.1f} dB on the (overlapping) test split")
    out.append("What limits it: " + "; ".join(limits) + ".")
    peak1 = vae["reconstruction_psnr_peak1"]
    out.append(f"Convention: with peak 1 instead of the pair's dynamic range (skimage's psnr() "
               f"default for [0, 1] images, which the authors' retrieval script uses) the VAE's "
               f"reconstruction PSNR is {peak1:.1f} dB (AE {ae['reconstruction_psnr_peak1']:.1f}"
               f" dB).")
    return out


def _pair(a: float | None, b: float | None) -> str:
    return "-" if a is None else f"{a:.1f} / {b:.2f}"


COLUMNS: list[common.Column] = [
    ("model", "model", "s"),
    ("grid", "retrieval, grid protocol (ours)", "s"),
    ("fast_all", "retrieval, FAST-all protocol (paper's)", "s"),
    ("paper_retrieval", "paper retrieval", "s"),
    ("reconstruction", "reconstruction (test split)", "s"),
    ("paper_reconstruction", "paper reconstruction", "s"),
    ("heldout", "reconstruction (held-out photos)", "s"),
]


def table_rows(figures: dict[str, dict[str, float]], pixels: dict[str, dict[str, float]]
               ) -> list[dict[str, str]]:
    """PSNR dB / SSIM pairs of both models and pixel search, beside the paper's."""
    rows = []
    for name, f in figures.items():
        p = PAPER[name]
        rows.append({"model": name.upper(),
                     "grid": _pair(f["retrieval_grid_psnr"], f["retrieval_grid_ssim"]),
                     "fast_all": _pair(f["retrieval_fast_all_psnr"], f["retrieval_fast_all_ssim"]),
                     "paper_retrieval": f"{p['retrieval_psnr']} / {p['retrieval_ssim']}",
                     "reconstruction": _pair(f["reconstruction_psnr"], f["reconstruction_ssim"]),
                     "paper_reconstruction": f"{p['reconstruction_psnr']} / "
                                             f"{p['reconstruction_ssim']}",
                     "heldout": _pair(f["heldout_reconstruction_psnr"],
                                      f["heldout_reconstruction_ssim"])})
    rows.append({"model": "pixel search (reference)",
                 "grid": _pair(pixels["grid"]["psnr"], pixels["grid"]["ssim"]),
                 "fast_all": _pair(pixels["fast_all"]["psnr"], pixels["fast_all"]["ssim"]),
                 "paper_retrieval": "-", "reconstruction": "-", "paper_reconstruction": "-",
                 "heldout": "-"})
    return rows


def plot(figures: dict[str, dict[str, float]], training: dict[str, dict[str, Any]],
         out_dir: Path) -> Path:
    """Bars: ours (both retrieval protocols) vs the paper; plus the validation-loss curves."""
    fig, axes = common.new_figure(1, 5, figsize=(15.0, 3.8))
    xs = np.arange(2)
    for ax, metric in zip(axes[:2], ("psnr", "ssim")):
        ax.bar(xs - 0.27, [figures[m][f"retrieval_grid_{metric}"] for m in ("ae", "vae")], 0.27,
               label="ours, grid protocol")
        ax.bar(xs, [figures[m][f"retrieval_fast_all_{metric}"] for m in ("ae", "vae")], 0.27,
               label="ours, FAST-all protocol")
        ax.bar(xs + 0.27, [PAPER[m][f"retrieval_{metric}"] for m in ("ae", "vae")], 0.27,
               label="paper")
        ax.set_xticks(xs, ["AE", "VAE"])
        ax.set_title(f"retrieval {metric.upper()}", fontsize=9)
    for ax, metric in zip(axes[2:4], ("psnr", "ssim")):
        key = f"reconstruction_{metric}"
        ax.bar(xs - 0.2, [figures[m][key] for m in ("ae", "vae")], 0.4, label="ours (test split)")
        ax.bar(xs + 0.2, [PAPER[m][key] for m in ("ae", "vae")], 0.4, label="paper")
        ax.plot(xs - 0.2, [figures[m][f"heldout_{key}"] for m in ("ae", "vae")], "k_",
                markersize=18, label="ours (held-out photos)")
        ax.set_xticks(xs, ["AE", "VAE"])
        ax.set_title(f"reconstruction {metric.upper()}", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    ax = axes[4]
    for model, info in training.items():
        if info["history"]:
            first = info["history"][0]["val_loss"]
            ax.plot([h["epoch"] for h in info["history"]],
                    [h["val_loss"] / first for h in info["history"]], "o-", label=model.upper())
    ax.set_xlabel("epoch")
    ax.set_title("validation loss / first epoch's", fontsize=9)
    ax.legend(fontsize=7)
    return common.save_plot(fig, out_dir, NAME)


# --------------------------------------------------------------------------- runs

@dataclass
class Corpus:
    """The images a run uses: training images and held-out photos, by name."""

    train: dict[str, np.ndarray]
    held: dict[str, np.ndarray]
    skipped: list[str]


def assemble(args: Any) -> Corpus:
    """scikit-image photos plus, with ``--images``, a folder corpus split by image."""
    train_names = TRAIN_IMAGES[:4] if args.quick else TRAIN_IMAGES
    train = {f"skimage:{n}": grey_image(n) for n in train_names}
    held = {f"skimage:{n}": grey_image(n) for n in HELD_OUT_IMAGES}
    skipped: list[str] = []
    if args.images:
        corpus, skipped = folder_images(args.images, args.max_side)
        if not corpus:
            raise SystemExit(f"no usable image under {' '.join(map(str, args.images))}")
        c_train, c_held = split_images(corpus, args.heldout_images, args.seed)
        if args.quick:
            c_train = dict(list(c_train.items())[:4])
        train.update(c_train)
        held.update(c_held)
    return Corpus(train, held, skipped)


def run_key(args: Any, corpus: Corpus, target: int, model: str) -> str:
    """Identity of a training run (data and settings), so a checkpoint resumes only itself."""
    ident = {"patches": target, "images": sorted(corpus.train), "held": sorted(corpus.held),
             "max_side": args.max_side, "seed": args.seed, "model": model, "batch": args.batch,
             "lr": args.lr, "gamma": args.gamma if model == "vae" else None,
             "patience": args.patience}
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def train_model(name: str, args: Any, corpus: Corpus, target: int, data: dict[str, torch.Tensor],
                held: torch.Tensor, cfg: FitConfig) -> tuple[VariationalAutoencoder, dict]:
    """One model (``ae`` or ``vae``) trained, resumable, with held-out figures every epoch."""
    model = make_model(args.seed)
    loss = ((lambda x: ae_loss(model, x)) if name == "ae"
            else (lambda x: vae_loss(model, x, args.gamma)))
    key = run_key(args, corpus, target, name)
    ckpt = (args.checkpoints / f"{NAME}_{name}_{target}_{key}.pt"
            if args.checkpoints is not None else None)

    def monitor() -> dict[str, float]:
        r = reconstruction(model, held)
        return {"heldout_psnr": r["psnr"], "heldout_ssim": r["ssim"]}

    info = fit(model, loss, data, cfg, f"{name.upper()} {target}", ckpt, key, args.resume,
               monitor)
    info["checkpoint"] = str(ckpt) if ckpt is not None else None
    return model, info


def patch_data(corpus: Corpus, target: int, seed: int, quick: bool
               ) -> tuple[np.ndarray, list[dict], dict[str, torch.Tensor], torch.Tensor, list]:
    """Training patch set (split 8:1:1) and the held-out patches, both seeded."""
    rng = np.random.default_rng(seed)
    patches, sources = build_patch_set(corpus.train, target, rng)
    data = split(patches, rng)
    held_target = 400 if quick else 1000 * len(corpus.held)
    held_patches, held_sources = build_patch_set(corpus.held, held_target,
                                                 np.random.default_rng(seed + 1))
    return patches, sources, data, torch.from_numpy(held_patches)[:, None], held_sources


def parse_args() -> Any:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--patches", type=int, default=None,
                   help="size of the patch set (default 80000 as the paper; --quick 600)")
    p.add_argument("--epochs", type=int, default=None,
                   help="most epochs of each model (default 60; --quick 1); with --resume, 0 "
                        "evaluates the checkpoints as they are")
    p.add_argument("--patience", type=int, default=3,
                   help="early stopping: epochs without a 0.05%% fall of the validation loss")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget per model; a run stopped by it goes on with --resume")
    p.add_argument("--gamma", type=float, default=10.0,
                   help="VAE loss gamma * BCE + KL (gamma = 1 / beta; > 1 as in the paper)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=Path, nargs="+", default=[], metavar="DIR",
                   help="folders of extra photos (recursive), e.g. data/paper/images from "
                        "`make paper-data`; split by image into training and held-out photos")
    p.add_argument("--max-side", type=int, default=1024,
                   help="folder images are reduced to this longer side (KonIQ-10k: 1024)")
    p.add_argument("--heldout-images", type=int, default=6,
                   help="folder images kept out of training (retrieval and held-out figures)")
    p.add_argument("--queries", type=int, default=None,
                   help="FAST-all protocol: queries per held-out photo (default 500; --quick 50)")
    p.add_argument("--fast-side", type=int, default=None,
                   help="FAST-all protocol: central window of each held-out photo searched "
                        "(default 384; --quick 160)")
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="folder of resumable training checkpoints (default data/paper/"
                        "checkpoints; none with --quick)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    p.add_argument("--only", choices=("ae", "vae"), default=None,
                   help="train (and checkpoint) this model only, no report; then run again "
                        "with --resume to evaluate both")
    p.add_argument("--curve", type=str, default=None, metavar="N,N,...",
                   help="learning curve instead of the tables: train the VAE on each patch-set "
                        "size and write vae_curve.json")
    args = p.parse_args()
    if not args.gamma > 1:
        p.error("--gamma must be > 1 (the paper's condition)")
    if args.max_side < 2 * SIZE:
        p.error(f"--max-side must be at least {2 * SIZE} (smaller images give no patch)")
    if args.fast_side is None:
        args.fast_side = 160 if args.quick else 384
    if args.checkpoints is None and not args.quick:
        args.checkpoints = common.REPO_ROOT / "data" / "paper" / "checkpoints"
    if (args.resume or args.only) and args.checkpoints is None:
        p.error("--resume and --only need --checkpoints")
    if args.epochs is not None and args.epochs < (0 if args.resume else 1):
        p.error("--epochs must be positive (0 only with --resume)")
    return args


def fit_config(args: Any) -> FitConfig:
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 60)
    return FitConfig(epochs=epochs, batch=args.batch,
                     lr=args.lr, seed=args.seed, patience=args.patience, minutes=args.minutes)


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    if args.curve:
        return curve(args)
    target = args.patches or (600 if args.quick else 80_000)
    cfg = fit_config(args)
    queries = args.queries or (50 if args.quick else 500)
    started = time.perf_counter()

    corpus = assemble(args)
    patches, sources, data, held, held_sources = patch_data(corpus, target, args.seed,
                                                            args.quick)
    photos = list(corpus.held.values())
    print(f"patch set: {len(patches)} patches of {SIZE}x{SIZE} from {len(corpus.train)} images "
          f"(train {len(data['train'])}, validation {len(data['validation'])}, test "
          f"{len(data['test'])}); held-out: {len(held)} patches of {len(corpus.held)} photos",
          flush=True)

    names = (args.only,) if args.only else ("ae", "vae")
    models, training = {}, {}
    for name in names:
        models[name], training[name] = train_model(name, args, corpus, target, data, held, cfg)
    if args.only:
        print(f"{args.only.upper()} checkpoint: {training[args.only]['checkpoint']}")
        return

    figures: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        test = reconstruction(model, data["test"])
        heldout = reconstruction(model, held)
        grid = retrieval_grid(model.encode, photos)
        fast = retrieval_fast(model.encode, photos, queries, args.seed, args.fast_side)
        figures[name] = {"retrieval_grid_psnr": grid["psnr"], "retrieval_grid_ssim": grid["ssim"],
                         "retrieval_fast_all_psnr": fast["psnr"],
                         "retrieval_fast_all_ssim": fast["ssim"],
                         "reconstruction_psnr": test["psnr"], "reconstruction_ssim": test["ssim"],
                         "heldout_reconstruction_psnr": heldout["psnr"],
                         "heldout_reconstruction_ssim": heldout["ssim"],
                         "reconstruction_psnr_peak1": test["psnr_peak1"],
                         "retrieval_grid_pairs": grid["pairs"],
                         "retrieval_fast_all_pairs": fast["pairs"],
                         "retrieval_fast_all_candidates": fast["candidates"],
                         "test_patches": test["patches"], "heldout_patches": heldout["patches"]}
    pixels = {"grid": retrieval_grid(lambda x: x, photos),
              "fast_all": retrieval_fast(lambda x: x, photos, queries, args.seed,
                                         args.fast_side)}

    rows = table_rows(figures, pixels)
    common.print_table(rows, COLUMNS, title="paper 2, Tables I-II (PSNR dB / SSIM): ours beside "
                                            "the paper's")
    print(common.markdown_table(rows, COLUMNS))
    sentences = [protocol_match(figures, pixels)] + diagnosis(
        figures, training, len(data["train"]), len(corpus.train), args.gamma)
    for s in sentences:
        print(s)
    plot(figures, training, args.out)
    payload = {
        "figures": figures,
        "paper": PAPER,
        "protocols": PROTOCOLS,
        "pixel_search_retrieval": pixels,
        "table": rows,
        "diagnosis": sentences,
        "data": {"patch_size": SIZE, "patches": len(patches),
                 "split": {k: len(v) for k, v in data.items()}, "images": sources,
                 "held_out_images": sorted(corpus.held), "held_out_patches": held_sources,
                 "folders": [str(f) for f in args.images], "max_side": args.max_side,
                 "skipped_files": corpus.skipped,
                 "keypoints": "cv2.FastFeatureDetector_create() defaults on the 8-bit grey image",
                 "fast_all_queries_per_photo": queries,
                 "fast_all_window": args.fast_side},
        "training": {"config": asdict(cfg), "gamma": args.gamma, "latent": LATENT,
                     "optimiser": "Adam", **training},
        "ssim_max_abs_diff_vs_skimage": check_ssim(),
        "seconds": time.perf_counter() - started,
    }
    path = common.write_json(args.out, NAME, payload, args=args)
    print(f"wrote {path} ({payload['seconds']:.0f} s)")


def curve(args: Any) -> None:
    """Learning curve: the VAE trained on patch sets of several sizes from the same images,
    same settings and epoch limit; test-split and held-out reconstruction of each."""
    sizes = [int(v) for v in args.curve.split(",")]
    cfg = fit_config(args)
    started = time.perf_counter()
    corpus = assemble(args)
    rows, training = [], {}
    for size in sizes:
        patches, _, data, held, _ = patch_data(corpus, size, args.seed, args.quick)
        model, info = train_model("vae", args, corpus, size, data, held, cfg)
        test, heldout = reconstruction(model, data["test"]), reconstruction(model, held)
        rows.append({"patches": len(patches), "train_patches": len(data["train"]),
                     "epochs": info["epochs_run"], "best_epoch": info["best_epoch"],
                     "stopped": info["stopped"], "best_val_loss": info["best_val_loss"],
                     "reconstruction_psnr": test["psnr"], "reconstruction_ssim": test["ssim"],
                     "heldout_reconstruction_psnr": heldout["psnr"],
                     "heldout_reconstruction_ssim": heldout["ssim"],
                     "train_seconds": info["seconds"]})
        training[str(size)] = info
    columns: list[common.Column] = [
        ("patches", "patches", "d"), ("epochs", "epochs", "d"), ("stopped", "stopped by", "s"),
        ("best_val_loss", "best val. loss", ".1f"),
        ("reconstruction_psnr", "test PSNR", ".2f"), ("reconstruction_ssim", "test SSIM", ".3f"),
        ("heldout_reconstruction_psnr", "held-out PSNR", ".2f"),
        ("heldout_reconstruction_ssim", "held-out SSIM", ".3f"),
        ("train_seconds", "train s", ".0f")]
    common.print_table(rows, columns, title="VAE learning curve against the patch-set size")
    print(common.markdown_table(rows, columns))
    fig, axes = common.new_figure(1, 2, figsize=(10.0, 3.8))
    for key, label in (("reconstruction", "test split"), ("heldout_reconstruction", "held-out")):
        axes[0].plot([r["patches"] for r in rows], [r[f"{key}_psnr"] for r in rows], "o-",
                     label=label)
        axes[1].plot([r["patches"] for r in rows], [r[f"{key}_ssim"] for r in rows], "o-",
                     label=label)
    for ax, metric in zip(axes, ("PSNR dB", "SSIM")):
        ax.set_xscale("log")
        ax.set_xlabel("patches")
        ax.set_title(f"VAE reconstruction {metric}", fontsize=9)
        ax.legend(fontsize=7)
    common.save_plot(fig, args.out, "vae_curve")
    payload = {"rows": rows, "paper": PAPER["vae"], "images": len(corpus.train),
               "held_out_images": sorted(corpus.held), "folders": [str(f) for f in args.images],
               "training": {"config": asdict(cfg), "gamma": args.gamma, **training},
               "seconds": time.perf_counter() - started}
    path = common.write_json(args.out, "vae_curve", payload, args=args)
    print(f"wrote {path} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
