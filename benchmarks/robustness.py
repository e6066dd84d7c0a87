"""Robustness of patch retrieval to missing area (seed paper 1, Fig. 4), published protocol.

Protocol (research/descriptors.md section 4; nimpy/patch-desc-ae robustness_to_missing_parts.py):

* a 512x512 natural RGB image in [0, 1] (Lenna is not shipped: ``skimage.data.astronaut()``);
  16x16 patches;
* 256 queries with top-left corners on a stride-32 grid; 3,969 candidates on a stride-8 grid
  (the queries lie on it; any candidate whose descriptor distance to the query is < 1e-4 is
  skipped, which removes the query itself);
* missing fractions p = 0, 10, ..., 50 %: level 0 has no mask; otherwise the mask type cycles
  with the query index: Ising blob (16x16 spins, T = 0.4, Metropolis, snapshot after 5 sweeps,
  minority phase = missing), strip along one side (full length, depth fraction ~ N(0.25, 0.3)
  clipped to [0, 1]), rectangle in one corner (both side fractions ~ N(0.25, 0.3) clipped); every
  mask is rejection-sampled to the band (p - 5 %, p + 5 %];
* the query's mask is applied to the query and to every candidate before they are described;
  ranking by SSD between descriptors, k = 40 nearest kept;
* score: SSD on the 0-255 scale over all 768 values between the *complete* query and each
  retrieved *complete* patch: 256 x 40 = 10,240 values per method and level (box plots, log axis).

Methods:

* ``v32``, ``v128``: the built-in descriptors (``valid_context``: they encode the 16x16 patch
  plus a 3-px context ring, 22x22). The masked pixels of the patch are zeroed **and the whole
  context ring is zeroed too**, so these descriptors see exactly the known pixels of the patch,
  like Chen and the exhaustive search (keeping the ring would hand them up to 228 extra known
  pixels around the patch that the other methods never see). For them a zeroed ring stands in
  for the zero padding the paper's models had.
* ``v32 same``, ``v128 same``: the paper-faithful setting: ``same``-padded models trained here, on
  isolated 16x16 patches, on the built-ins' training images *minus* the astronaut image (so they
  have never seen the test image; the built-ins and Chen have), masked patches encoded on their
  own.
* ``v32 IR``, ``v128 IR``: what this project's inpainter does: the IR of the complete image is
  computed once and each descriptor pools the 16x16 IR window with the mask dilated by the
  receptive-field radius (3 px) excluded (``pool_windows(..., exclude=...)``), for the query
  and every candidate alike. IR values next to the patch border depend on the 3-px ring around
  the patch, which is known here (as it is around an inpainting node whose surroundings are
  known).
* ``Chen``: the built-in sparse autoencoder (768 -> 128), masked patch zeroed; trained here
  (smaller) when the built-in is not installed.
* ``exhaustive``: SSD over the known pixels of the query and each candidate.

Compute: one mask per query means encoding 256 x 3,969 masked patches per level and model (about
2 minutes per level for v128 on one core; ~40 minutes for the whole exact protocol). By default
each level draws a pool of ``--masks-per-level`` 48 masks (types cycling as above) and query q
uses mask q mod 48, so every query still has its own mask applied to all its candidates, but a
mask is shared by the queries 48 apart; ``--masks-per-level 256`` is the exact
one-mask-per-query protocol (``--methods`` runs a subset of the methods).

    .venv/bin/python benchmarks/robustness.py [--quick] [--out DIR] [--masks-per-level 48]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from descriptor import (
    CheckpointError,
    TrainConfig,
    builtin_names,
    compute_ir,
    dilate_mask,
    load_checkpoint,
    pool_windows,
    train,
)
from inpaint.training import load_training_image

NAME = "robustness"
PATCH = 16
QUERY_STRIDE = 32
CANDIDATE_STRIDE = 8
K = 40
EPS = 1e-4
LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
BAND = 0.05
#: Images of the built-in descriptors' training (benchmarks/train_builtin.sh) minus the test image.
SAME_TRAINING_IMAGES = ("chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                        "brick", "grass", "gravel", "moon", "camera", "coins", "clock")
MASK_TYPES = ("ising", "side strip", "corner")
METHODS = ("v32", "v128", "v32 same", "v128 same", "v32 IR", "v128 IR", "Chen", "exhaustive")


# --------------------------------------------------------------------------- masks

def ising_masks(count: int, rng: np.random.Generator, size: int = PATCH,
                temperature: float = 0.4, sweeps: int = 5) -> np.ndarray:
    """(count, size, size) bool masks: minority phase of an Ising model after ``sweeps`` sweeps.

    Spins start random (+-1) on a periodic lattice; one sweep is a Metropolis update of the two
    checkerboard sublattices in turn (the vectorised equivalent of ``size**2`` single-site
    updates; the original picked sites at random). True = missing = the minority spin.
    """
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(count, size, size))
    yy, xx = np.mgrid[:size, :size]
    parity = [((yy + xx) % 2 == p) for p in (0, 1)]
    for _ in range(sweeps):
        for sub in parity:
            neighbours = (np.roll(spins, 1, 1) + np.roll(spins, -1, 1) + np.roll(spins, 1, 2)
                          + np.roll(spins, -1, 2)).astype(np.int16)
            cost = 2 * spins * neighbours
            accept = (cost < 0) | (rng.random(spins.shape) < np.exp(-cost / temperature))
            spins = np.where(accept & sub, -spins, spins).astype(np.int8)
    missing = spins < 0
    flip = missing.sum((1, 2)) > size * size // 2
    missing[flip] = ~missing[flip]
    return missing


def side_strip_masks(count: int, rng: np.random.Generator, size: int = PATCH) -> np.ndarray:
    """(count, size, size) bool masks: a full-length strip along one random side of the patch."""
    depth = (np.clip(rng.normal(0.25, 0.3, count), 0, 1) * size).astype(int)
    side = rng.integers(0, 4, count)
    idx = np.arange(size)
    rows = np.broadcast_to(idx[None, :, None], (count, size, size))
    cols = np.broadcast_to(idx[None, None, :], (count, size, size))
    d = depth[:, None, None]
    s = side[:, None, None]
    return (((s == 0) & (rows < d)) | ((s == 1) & (rows >= size - d))
            | ((s == 2) & (cols < d)) | ((s == 3) & (cols >= size - d)))


def corner_masks(count: int, rng: np.random.Generator, size: int = PATCH) -> np.ndarray:
    """(count, size, size) bool masks: a rectangle in one random corner of the patch."""
    height = (np.clip(rng.normal(0.25, 0.3, count), 0, 1) * size).astype(int)[:, None, None]
    width = (np.clip(rng.normal(0.25, 0.3, count), 0, 1) * size).astype(int)[:, None, None]
    corner = rng.integers(0, 4, count)
    top = (corner < 2)[:, None, None]
    left = (corner % 2 == 0)[:, None, None]
    idx = np.arange(size)
    rows, cols = idx[None, :, None], idx[None, None, :]
    in_rows = np.where(top, rows < height, rows >= size - height)
    in_cols = np.where(left, cols < width, cols >= size - width)
    return in_rows & in_cols


GENERATORS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "ising": ising_masks, "side strip": side_strip_masks, "corner": corner_masks}


def masks_in_band(kind: str, count: int, low: float, high: float,
                  rng: np.random.Generator, batch: int = 512) -> np.ndarray:
    """``count`` masks of type ``kind`` whose missing fraction lies in (low, high] (rejection)."""
    kept: list[np.ndarray] = []
    have = 0
    for _ in range(1000):
        masks = GENERATORS[kind](batch, rng)
        fraction = masks.mean((1, 2))
        good = masks[(fraction > low) & (fraction <= high)]
        kept.append(good)
        have += len(good)
        if have >= count:
            return np.concatenate(kept)[:count]
    raise RuntimeError(f"could not draw {count} {kind} masks with "
                       f"{low:.2f} < missing <= {high:.2f}")


def mask_pool(level: float, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(count, 16, 16) bool masks for one level, mask j of type ``MASK_TYPES[j % 3]``."""
    if level == 0:
        return np.zeros((count, PATCH, PATCH), dtype=bool), ["none"] * count
    rng = np.random.default_rng([seed, round(level * 100)])
    kinds = [MASK_TYPES[j % 3] for j in range(count)]
    pool = np.zeros((count, PATCH, PATCH), dtype=bool)
    for kind in MASK_TYPES:
        where = [j for j, k in enumerate(kinds) if k == kind]
        if where:
            pool[where] = masks_in_band(kind, len(where), level - BAND, level + BAND, rng)
    return pool, kinds


# --------------------------------------------------------------------------- methods

@dataclass
class Method:
    """A retrieval method: ``describe(mask)`` -> (candidates, D) descriptors under ``mask``."""

    name: str
    describe: Callable[[torch.Tensor], torch.Tensor]
    source: str


def pixel_method(name: str, model: nn.Module, crops: torch.Tensor, source: str) -> Method:
    """Encode every candidate with the mask's pixels zeroed (and, for a model that takes a
    context ring, the ring zeroed too, so only the patch's known pixels are seen)."""
    context = model.config.context
    size = PATCH + 2 * context
    inputs = crops if context else crops[:, :, 3:3 + PATCH, 3:3 + PATCH]
    inputs = inputs.contiguous(memory_format=torch.channels_last)  # faster convs on CPU

    def describe(mask: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros((size, size))
        keep[context:context + PATCH, context:context + PATCH] = (~mask).float()
        with torch.inference_mode():
            return torch.cat([model.encode(inputs[s:s + 1024] * keep)
                              for s in range(0, len(inputs), 1024)])

    return Method(name, describe, source)


def ir_method(name: str, model: nn.Module, image: np.ndarray, tops: torch.Tensor,
              lefts: torch.Tensor, source: str) -> Method:
    """Pool the IR of the complete image under the mask dilated by the receptive field."""
    ir = compute_ir(model.encoder, image, model.config.padding_mode)
    radius = model.config.context or 3

    def describe(mask: torch.Tensor) -> torch.Tensor:
        exclude = dilate_mask(mask, radius)[None].expand(len(tops), PATCH, PATCH)
        return pool_windows(ir, tops, lefts, PATCH, exclude=exclude)

    return Method(name, describe, source)


def exhaustive_method(patches: torch.Tensor) -> Method:
    """Masked-pixel search: the 'descriptor' is the patch with its missing pixels zeroed, so
    the SSD between descriptors is the SSD over the known pixels."""
    flat = patches.flatten(1)

    def describe(mask: torch.Tensor) -> torch.Tensor:
        keep = (~mask).float().expand(3, PATCH, PATCH).flatten()
        return flat * keep

    return Method("exhaustive", describe, "masked-pixel SSD")


# --------------------------------------------------------------------------- models

def builtin(arch: str) -> tuple[nn.Module, str] | None:
    """The installed built-in ``arch`` model, or None."""
    if arch not in builtin_names():
        return None
    try:
        ck = load_checkpoint(arch, expected_arch=arch)
    except CheckpointError as exc:
        print(f"built-in {arch} unusable: {exc}", flush=True)
        return None
    return ck.model.eval(), f"built-in {arch} ({ck.config.padding_mode})"


def train_here(arch: str, mode: str, patches: int, epochs: int, seed: int = 0
               ) -> tuple[nn.Module, str, dict[str, Any]]:
    """Train ``arch`` on the SAME_TRAINING_IMAGES; returns (model, description, training log)."""
    images = [load_training_image(f"skimage:{n}") for n in SAME_TRAINING_IMAGES]
    cfg = TrainConfig(arch=arch, padding_mode=mode, patches=patches, max_epochs=epochs,
                      patience=2, seed=seed, lbfgs_iterations=max(20, 40 * epochs))
    start = time.perf_counter()
    result = train(images, cfg, progress=False)
    info = {"arch": arch, "padding_mode": mode, "patches": patches, "max_epochs": epochs,
            "epochs": result.epochs, "best_val_loss": result.best_val_loss,
            "seconds": time.perf_counter() - start, "images": list(SAME_TRAINING_IMAGES)}
    print(f"trained {arch} ({mode}) on {patches} patches: {result.epochs} epochs, validation "
          f"loss {result.best_val_loss:.4f}, {info['seconds']:.0f} s", flush=True)
    return result.model.eval(), f"{arch} {mode}, trained here ({patches} patches)", info


# --------------------------------------------------------------------------- protocol

def grid(side: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (row-major) of the 16x16 patches on a stride grid of a side^2 image."""
    axis = torch.arange(0, side - PATCH + 1, stride)
    return axis.repeat_interleave(len(axis)), axis.repeat(len(axis))


def retrieve(method: Method, masks: np.ndarray, query_index: torch.Tensor,
             scores_255: torch.Tensor) -> np.ndarray:
    """SSD scores (len(query_index), K) of ``method`` for one level.

    masks: (Q, 16, 16), query q's mask. query_index: position of each query among the
    candidates. scores_255: (candidates, 768) complete patches on the 0-255 scale (float64).
    Candidates are described once per distinct mask and shared by the queries that use it.
    """
    flat = masks.reshape(len(masks), -1)
    distinct, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = np.empty((len(masks), K))
    for j, mask in enumerate(distinct):
        desc = method.describe(torch.from_numpy(mask.reshape(PATCH, PATCH))).double()
        for q in np.flatnonzero(inverse == j):
            qi = int(query_index[q])
            dist = ((desc - desc[qi]) ** 2).sum(1)
            dist[dist < EPS] = float("inf")
            nearest = torch.topk(dist, K, largest=False).indices
            out[q] = ((scores_255[nearest] - scores_255[qi]) ** 2).sum(1).numpy()
    return out


def summary(values: np.ndarray) -> dict[str, float]:
    """Distribution summary of the SSD scores of one method and level."""
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {"n": int(values.size), "mean": float(values.mean()), "p05": float(q[0]),
            "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]), "p95": float(q[4])}


def claims(medians: dict[str, dict[float, float]], scores: dict[str, dict[float, np.ndarray]],
           levels: tuple[float, ...]) -> list[dict]:
    """One sentence per claim of the paper and v128 variant, from the medians of our run, with
    a paired check: the share of queries whose mean SSD over their k retrievals is lower."""
    out = []
    for v128 in [m for m in ("v128", "v128 same", "v128 IR") if m in medians]:
        for other, judge in (("Chen", versus_chen), ("exhaustive", versus_exhaustive)):
            if other not in medians:
                continue
            claim = judge(medians, levels, v128)
            wins = {p: float((scores[v128][p].mean(1) < scores[other][p].mean(1)).mean())
                    for p in levels}
            claim["queries_better_share"] = {f"{p:.1f}": w for p, w in wins.items()}
            claim["sentence"] += (f" Per query, {v128}'s mean SSD is the lower one for "
                                  f"{min(wins.values()):.0%}-{max(wins.values()):.0%} of the "
                                  f"queries across the levels.")
            out.append(claim)
    return out


def versus_chen(medians: dict[str, dict[float, float]], levels: tuple[float, ...],
                v128: str) -> dict[str, Any]:
    """Claim 1: v128 retrieves better (lower median SSD) than Chen et al."""
    better = [p for p in levels if medians[v128][p] < medians["Chen"][p]]
    worse = [p for p in levels if p not in better]
    if not worse:
        verdict = "supported"
        text = (f"{v128} vs Chen: supported - {v128}'s median SSD is lower than Chen's at "
                f"every missing fraction ({_pct(levels)}).")
    elif not better:
        verdict = "not supported"
        text = (f"{v128} vs Chen: not supported - Chen's median SSD is lower or equal at "
                f"every missing fraction ({_pct(levels)}).")
    else:
        verdict = "partly supported"
        text = (f"{v128} vs Chen: partly supported - {v128} is better (lower median SSD) at "
                f"{_pct(better)} missing but not at {_pct(worse)}.")
    return {"claim": "v128 better than Chen", "method": v128, "verdict": verdict,
            "levels_better": better, "sentence": text}


def versus_exhaustive(medians: dict[str, dict[float, float]], levels: tuple[float, ...],
                      v128: str) -> dict[str, Any]:
    """Claim 2: v128 beats exhaustive masked-pixel search once enough is missing (and where)."""
    beats = [p for p in levels if medians[v128][p] < medians["exhaustive"][p]]
    # the first fraction from which v128 stays better at every larger fraction
    onset = next((p for i, p in enumerate(levels)
                  if all(medians[v128][r] < medians["exhaustive"][r] for r in levels[i:])), None)
    ratio = {p: medians[v128][p] / medians["exhaustive"][p] for p in levels}
    if onset is not None and onset > 0:
        verdict = "supported"
        text = (f"{v128} vs exhaustive search: supported - {v128}'s median SSD drops below the "
                f"exhaustive masked-pixel search's from {onset:.0%} missing on "
                f"(better at {_pct(beats)}).")
    elif onset == 0:
        verdict = "not as stated"
        text = (f"{v128} vs exhaustive search: {v128} is better at every fraction, even with "
                "nothing missing, so there is no onset.")
    elif beats:
        verdict = "partly supported"
        text = (f"{v128} vs exhaustive search: partly supported - {v128} is better only at "
                f"{_pct(beats)} missing, not from some fraction on.")
    else:
        verdict = "not supported"
        text = (f"{v128} vs exhaustive search: not supported - the exhaustive search has the "
                f"lower median SSD at every missing fraction up to {levels[-1]:.0%} ("
                f"{v128} / exhaustive median: {ratio[levels[0]]:.2f} at {levels[0]:.0%}, "
                f"{ratio[levels[-1]]:.2f} at {levels[-1]:.0%}).")
    return {"claim": "v128 better than exhaustive search once enough is missing",
            "method": v128, "verdict": verdict, "levels_better": beats, "onset": onset,
            "median_ratio": {f"{p:.1f}": r for p, r in ratio.items()}, "sentence": text}


def _pct(levels) -> str:
    return ", ".join(f"{p:.0%}" for p in levels)


def plot(scores: dict[str, dict[float, np.ndarray]], levels: tuple[float, ...],
         out_dir: Path, title: str) -> Path:
    """One panel per missing fraction, one box per method (log SSD axis, whiskers 5-95 %)."""
    names = list(scores)
    fig, axes = common.new_figure(1, len(levels), figsize=(2.3 * len(levels) + 1.0, 5.0))
    axes = np.atleast_1d(axes)
    every = np.concatenate([scores[n][lv].ravel() for n in names for lv in levels])
    low, high = np.percentile(every[every > 0], [1, 99.5])
    colours = [f"C{i}" for i in range(len(names))]
    for ax, level in zip(axes, levels):
        box = ax.boxplot([scores[n][level].ravel() for n in names], whis=(5, 95),
                         showfliers=False, patch_artist=True, widths=0.7,
                         medianprops={"color": "black"})
        for patch, colour in zip(box["boxes"], colours):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, high * 1.5)
        ax.set_title(f"missing {level:.0%}")
        ax.set_xticks(range(1, len(names) + 1), names, rotation=90, fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.25)
    axes[0].set_ylabel("SSD to the complete query (0-255 scale)")
    fig.suptitle(title, fontsize=9)
    return common.save_plot(fig, out_dir, NAME)


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--masks-per-level", type=int, default=None,
                   help="distinct masks per level, query q uses mask q mod N (default 48; "
                        "256 = one per query, the exact protocol)")
    p.add_argument("--same-patches", type=int, default=None,
                   help="training patches of the same-mode v32/v128 (default 100000)")
    p.add_argument("--same-epochs", type=int, default=None, help="their epochs (default 3)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METHODS]
    if unknown or not wanted:
        p.error(f"unknown --methods {unknown}; choose from {', '.join(METHODS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    quick = args.quick
    masks_per_level = args.masks_per_level or (3 if quick else 48)
    same_patches = args.same_patches or (3000 if quick else 100_000)
    same_epochs = args.same_epochs or (1 if quick else 3)
    levels = (0.0, 0.3) if quick else LEVELS
    query_stride = 128 if quick else QUERY_STRIDE
    started = time.perf_counter()

    import skimage.data

    image = np.ascontiguousarray(skimage.data.astronaut(), dtype=np.float32) / np.float32(255)
    side = image.shape[0]
    tops, lefts = grid(side, CANDIDATE_STRIDE)
    q_tops, q_lefts = grid(side, query_stride)
    per_row = int((side - PATCH) // CANDIDATE_STRIDE + 1)
    query_index = (q_tops // CANDIDATE_STRIDE) * per_row + q_lefts // CANDIDATE_STRIDE
    padded = torch.from_numpy(np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="reflect"))
    padded = padded.permute(2, 0, 1)
    offsets = torch.arange(PATCH + 6)
    crops = padded[:, (tops[:, None] + offsets)[:, :, None],
                   (lefts[:, None] + offsets)[:, None, :]].permute(1, 0, 2, 3).contiguous()
    patches = crops[:, :, 3:3 + PATCH, 3:3 + PATCH].contiguous()
    scores_255 = (patches.flatten(1).double() * 255.0)

    methods: list[Method] = []
    training: list[dict[str, Any]] = []
    for arch in ("v32", "v128"):
        if arch not in wanted and f"{arch} IR" not in wanted:
            continue
        found = builtin(arch)
        if found is None:
            print(f"built-in {arch} not installed: skipping '{arch}' and '{arch} IR'")
            continue
        model, source = found
        if arch in wanted:
            methods.append(pixel_method(arch, model, crops, source + ", masked pixels and "
                                                                     "context ring zeroed"))
        if f"{arch} IR" in wanted:
            methods.append(ir_method(f"{arch} IR", model, image, tops, lefts, source + ", IR "
                                     "window pooled with the dilated mask excluded"))
    for arch in ("v32", "v128"):
        if f"{arch} same" not in wanted:
            continue
        model, source, info = train_here(arch, "same", same_patches, same_epochs, args.seed)
        training.append(info)
        methods.append(pixel_method(f"{arch} same", model, crops, source + ", masked pixels "
                                                                          "zeroed"))
    if "Chen" in wanted:
        found = builtin("chen")
        if found is None:
            model, source, info = train_here("chen", "same", min(same_patches, 30_000),
                                             max(1, same_epochs), args.seed)
            training.append(info)
            source += " (built-in chen not installed)"
        else:
            model, source = found
        methods.append(pixel_method("Chen", model, crops, source + ", masked pixels zeroed"))
    if "exhaustive" in wanted:
        methods.append(exhaustive_method(patches))
    methods.sort(key=lambda m: METHODS.index(m.name))

    n_queries = len(q_tops)
    scores: dict[str, dict[float, np.ndarray]] = {m.name: {} for m in methods}
    mask_info = []
    for level in levels:
        pool, kinds = mask_pool(level, masks_per_level, args.seed)
        assign = np.arange(n_queries) % masks_per_level
        masks = pool[assign]
        mask_info.append({"level": level, "pool": masks_per_level,
                          "fraction_min": float(pool.mean((1, 2)).min()),
                          "fraction_max": float(pool.mean((1, 2)).max()),
                          "fraction_mean": float(masks.mean()),
                          "types": {k: kinds.count(k) for k in sorted(set(kinds))}})
        for method in methods:
            t = time.perf_counter()
            scores[method.name][level] = retrieve(method, masks, query_index, scores_255)
            print(f"missing {level:4.0%}  {method.name:<11} median SSD "
                  f"{np.median(scores[method.name][level]):10.0f}  "
                  f"({time.perf_counter() - t:5.1f} s)", flush=True)

    stats = {m.name: {f"{lv:.1f}": summary(scores[m.name][lv]) for lv in levels}
             for m in methods}
    medians = {m.name: {lv: stats[m.name][f"{lv:.1f}"]["median"] for lv in levels}
               for m in methods}
    rows = [{"method": m.name, **{f"{lv:.0%}": medians[m.name][lv] for lv in levels}}
            for m in methods]
    columns: list[common.Column] = [("method", "method", "s")]
    columns += [(f"{lv:.0%}", f"{lv:.0%}", ",.0f") for lv in levels]
    common.print_table(rows, columns, title=f"median SSD (0-255 scale) of the {K} retrieved "
                                            f"patches, {n_queries} queries, by missing fraction")
    print(common.markdown_table(rows, columns))
    verdicts = claims(medians, scores, levels)
    print()
    for c in verdicts:
        print(c["sentence"])

    plot(scores, levels, args.out,
         f"retrieval under missing area: {side}x{side} astronaut, {n_queries} queries "
         f"(stride {query_stride}), candidates stride {CANDIDATE_STRIDE}, k = {K}\n"
         f"boxes: quartiles and median; whiskers: 5-95 %")
    payload = {
        "protocol": {
            "image": "skimage.data.astronaut() (512x512 RGB), float in [0, 1]",
            "patch_size": PATCH, "query_stride": query_stride, "queries": n_queries,
            "candidate_stride": CANDIDATE_STRIDE, "candidates": len(tops), "k": K,
            "skip_distance_below": EPS, "levels": list(levels), "band": BAND,
            "masks_per_level": masks_per_level,
            "mask_assignment": "query q uses pool mask q mod masks_per_level; pool mask j has "
                               "type ising/side strip/corner for j mod 3 = 0/1/2",
            "ising": {"size": PATCH, "temperature": 0.4, "sweeps": 5,
                      "update": "checkerboard Metropolis, periodic boundary"},
            "score": "SSD over all 768 values (0-255 scale) between the complete query and "
                     "each retrieved complete patch",
        },
        "methods": {m.name: m.source for m in methods},
        "training_here": training,
        "masks": mask_info,
        "medians": rows,
        "stats": stats,
        "claims": verdicts,
        "seconds": time.perf_counter() - started,
    }
    path = common.write_json(args.out, NAME, payload, args=args)
    print(f"wrote {path} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
