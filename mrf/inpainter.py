"""The context-aware MRF inpainter, end to end on one in-memory image region."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch

from patches import extract_patches

from .candidates import SearchConfig, candidate_set, propagated_labels, shortlist
from .compose import COMPOSITIONS, compose, match_weight, noise_variance
from .context import Context, ContextConfig, build_context
from .devices import Device
from .energy import (
    calibrate_scale,
    edge_pairwise_tensor,
    masked_ssd,
    texture_unary,
    uncertainty_threshold,
)
from .field import PatchField, PixelField
from .inference import NCMPResult, icm, ncmp, prune_labels
from .lattice import build_lattice

#: A bound on search passes, so that a typo cannot run for hours: a second pass measured no
#: better than one after the fsr pre-fill (benchmarks/quality.py).
MAX_PASSES = 5

#: A bound on propagation rounds (each costs about one more pairwise + NCMP + ICM pass), so
#: that a typo cannot run for long; a coherent source travels one node per round.
MAX_PROPAGATION = 8

#: A bound on ICM sweeps: the labels settle in a few (each sweep lowers the energy or stops).
MAX_ICM_SWEEPS = 20

#: Unary cost, above the highest kept one, of a label that must never win (a proposal already
#: among the node's labels, or no proposal at all): it keeps the label arrays rectangular
#: without counting twice.
EXCLUDED = 1e6

#: A bound on pyramid levels: each halves the window, and a 512-px window at level 5 (32 px)
#: holds few fully known patches (levels whose coarse image is too small are skipped anyway).
MAX_LEVELS = 4

#: Sources of the fill's low frequencies when ``structure_sigma`` > 0.
STRUCTURES = ("prefill", "blend", "adaptive")

#: What thin cracks keep: the pre-fill, or its average with the label mean.
CRACK_FILLS = ("prefill", "mean")

#: ``structure="adaptive"``: the fit scale (mean squared difference per known pixel, RGB
#: summed) under which a label counts as an exact copy, about 8-bit rounding noise.
EXACT_MATCH = 1e-5

#: Label pixels of all nodes are cut once and shared by re-ranking and pruning below this size.
PATCH_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class MRFConfig:
    """Parameters of the MRF inpainter (see README for what each one changes). The defaults
    are the product's: ``inpaint run`` without options (its RunConfig reads them from here)."""

    patch_size: int = 9           # patch side (2g + 1 on the 3-px step)
    patch_step: int = 3           # g, lattice step
    shortlist: int = 64           # labels per node after FAISS search + exact re-ranking
    labels: int = 10              # L, labels per node after pruning
    iterations: int = 10          # NCMP iterations (stops early when labels stop changing)
    icm_sweeps: int = 2           # ICM sweeps after NCMP: each node's label made to agree
    #                               with its neighbours' chosen labels (coherent copies, no
    #                               mosaic at the lattice step in smooth paint); 0 = NCMP's
    propagation: int = 1          # rounds after NCMP in which each node is also offered its
    #                               neighbours' chosen sources shifted by its offset from them
    #                               (PatchMatch's propagation: paint that repeats continues
    #                               coherently), then NCMP and ICM again; 0 = off
    passes: int = 1               # search + inference passes; later ones query with the fill
    mostly_missing_fraction: float = 0.5  # a node missing more than this share of its patch
    #   is re-searched by later passes (its query improves) and, in blend, takes its best label
    candidate_stride: int = 1     # grid step of the source patches
    unary: str = "pixel"          # "field": distance of the patch field; "pixel": pixel SSD
    temperature: float = 10.0     # NCMP softmax temperature (pixel-SSD units)
    pairwise_weight: float = 1.0  # weight of the overlap SSD against the unary
    message: str = "sum"          # "sum" over all neighbours, or the public codes' "last"
    blend_power: float = 2.0      # sharpness of the overlap blending weights
    correction: str = "harmonic"  # offset correction of the fill against its surroundings
    soft_compose: bool = True     # blend: paste every kept label weighted by its belief
    composition: str = "copy"     # "copy": best labels in pruning order, smoothed seams;
    #                               "blend": tent-weighted average of the kept labels
    seam_smooth: int = 1          # copy: binomial smoothing passes of the seams
    texture_weight: float = 0.0   # weight of the texture (detail energy) term of the unary:
    #                               sources whose grain differs from that of the paint of the
    #                               node's colour around it pay; 20 raises lacuna texture but
    #                               breaks some edges and specks flat paint (README: the
    #                               texture term); 0 = off
    crack_width: float = 2.0      # missing pixels this close (px) to known paint keep the pre-fill
    structure_sigma: float = 1.0  # copy, > 0: fill's frequencies below this Gaussian (px)
    #                               from ``structure``, its detail from the patches
    structure: str = "adaptive"   # the low frequencies: "prefill", "blend" (label average) or
    #                               "adaptive" (the label average where the chosen labels fit
    #                               their nodes' known paint, the pre-fill where they do not,
    #                               the copies' own where they fit exactly)
    structure_match: float = 1e-3  # adaptive: mean squared difference per known pixel (summed
    #                               over channels) at which a fit counts exp(-1)
    detail_gain: float = 1.5      # split: copied detail fainter than the paint around it is
    #                               raised by up to this factor (1 = off)
    detail_damp: float = 0.5      # split: copied detail stronger than the paint around it is
    #                               lowered down to this factor (1 = off; exact copies keep theirs)
    crack_fill: str = "prefill"   # cracks keep the "prefill" or its "mean" with the label blend
    crack_detail: float = 0.25    # copy: cracks also take this share of the copied fine detail
    levels: int = 1               # pyramid levels (mrf.pyramid): > 1 fills lacunae coarse to
    #                               fine; 1 = the single-resolution MRF
    coarse_passes: int = 5        # search passes of the coarse levels (at least ``passes``):
    #                               each re-search grows structures further into the lacunae
    use_context: bool = True      # restrict candidates by texture context (blocks)
    context: ContextConfig = field(default_factory=ContextConfig)
    search: SearchConfig = field(default_factory=SearchConfig)   # FAISS index settings

    def __post_init__(self) -> None:
        # the numeric fields (annotations are strings under ``from __future__ import
        # annotations``), checked before their ranges
        for name in (f.name for f in fields(self) if f.type in ("int", "float")):
            value = getattr(self, name)
            # a string or None from Python code: one clear line, not numpy's TypeError below
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"{name.replace('_', ' ')} must be a number, got {value!r}")
        if self.patch_size < 3:
            raise ValueError("patch size must be at least 3")
        if not 0 < self.patch_step < self.patch_size:
            raise ValueError(f"patch step must lie in 1..{self.patch_size - 1}")
        if self.labels < 1 or self.shortlist < self.labels:
            raise ValueError("need 1 <= labels <= shortlist")
        if self.passes < 1:
            raise ValueError("passes must be at least 1")
        if self.iterations < 0 or self.candidate_stride < 1:
            raise ValueError("iterations must be >= 0 and candidate stride >= 1")
        if self.unary not in ("field", "pixel"):
            raise ValueError("unary must be 'field' or 'pixel'")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}")
        if not 0 <= self.seam_smooth <= self.patch_size // 2:
            # more passes than half a patch only spread each seam over the whole patch
            raise ValueError(f"seam smoothing must be 0..{self.patch_size // 2} passes")
        if not (np.isfinite(self.crack_width) and self.crack_width >= 0):
            raise ValueError("crack width must be a finite number >= 0")
        if not (np.isfinite(self.structure_sigma) and self.structure_sigma >= 0):
            raise ValueError("structure sigma must be a finite number >= 0")
        if not (np.isfinite(self.detail_gain) and self.detail_gain >= 1):
            raise ValueError("detail gain must be a finite number >= 1")
        if not (np.isfinite(self.detail_damp) and 0 <= self.detail_damp <= 1):
            raise ValueError("detail damp must be a number in 0..1")
        if not (np.isfinite(self.crack_detail) and 0 <= self.crack_detail <= 1):
            raise ValueError("crack detail must be a number in 0..1")
        if self.crack_fill not in CRACK_FILLS:
            raise ValueError(f"crack fill must be one of {CRACK_FILLS}")
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}")
        if not (np.isfinite(self.structure_match) and self.structure_match > 0):
            raise ValueError("structure match must be a finite number > 0")
        if not (np.isfinite(self.texture_weight) and self.texture_weight >= 0):
            raise ValueError("texture weight must be a finite number >= 0")
        if not 0 <= self.icm_sweeps <= MAX_ICM_SWEEPS:
            raise ValueError(f"ICM sweeps must be 0..{MAX_ICM_SWEEPS}")
        if not 0 <= self.propagation <= MAX_PROPAGATION:
            raise ValueError(f"propagation must be 0..{MAX_PROPAGATION} rounds")
        if self.passes > MAX_PASSES:
            raise ValueError(f"passes must be 1..{MAX_PASSES}")
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be 1..{MAX_LEVELS}")
        if not 1 <= self.coarse_passes <= MAX_PASSES:
            raise ValueError(f"coarse passes must be 1..{MAX_PASSES}")


@dataclass
class MRFResult:
    image: np.ndarray
    stats: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def single_block_context(shape: tuple[int, int]) -> Context:
    """No context restriction: the whole image is one block matched with itself."""
    h, w = shape
    return Context(blocks=np.array([[0, 0, h, w]]), block_map=np.zeros(shape, np.int32),
                   histograms=np.ones((1, 1)), known_fraction=np.ones(1),
                   matches=[np.array([0])], match_errors=[np.array([0.0])])


FieldFactory = Callable[[np.ndarray], PatchField]


def inpaint_mrf(
    image: np.ndarray,
    hole: np.ndarray,
    make_field: FieldFactory | None = None,
    config: MRFConfig | None = None,
    *,
    progress=None,
    log=None,
    device: Device = "cpu",
) -> MRFResult:
    """Inpaint ``hole`` of ``image`` with the context-aware MRF.

    image: (H, W, 3) float32 in [0, 1] whose hole is already pre-filled (e.g. ``prefill``);
    hole: (H, W) bool, True = missing; make_field: builds the patch field used for search and
    unaries from an image whose hole is filled (``None`` = raw pixels). Each pass searches with
    the previous pass's fill as the query (``passes``); the first pass uses the pre-fill.
    Only hole pixels of the returned image differ from ``image``.
    device: the torch device of the run (the patch field's): where the re-ranking SSD, the
    pairwise costs, NCMP, ICM and the composition's accumulation run (the propagation
    rounds' too); search and pruning stay on the host.
    """
    cfg = config or MRFConfig()
    hole = np.asarray(hole, dtype=bool)
    timings: dict[str, float] = {}
    if not hole.any():
        return MRFResult(image=image.copy(), stats={"nodes": 0}, timings=timings)
    say = log or (lambda msg: None)
    patch = cfg.patch_size
    if make_field is None:
        def make_field(img):
            return PixelField(img, hole, patch)

    def timed(stage, func, *args, **kwargs):
        t = time.perf_counter()
        value = func(*args, **kwargs)
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t
        return value

    context = timed("context", build_context, image, hole, cfg.context) if cfg.use_context \
        else single_block_context(hole.shape)
    say(f"context: {context.n_blocks} blocks")
    lattice = timed("lattice", build_lattice, hole, patch, cfg.patch_step)
    candidates = timed("lattice", candidate_set, hole, context, patch, cfg.candidate_stride)
    say(f"lattice: {lattice.n_nodes} nodes, {len(lattice.edges)} edges; "
        f"{len(candidates)} candidate patches")
    threshold = uncertainty_threshold(cfg.context.match_threshold, patch)
    current, history = image, []
    labels, unary, scale = None, None, 1.0
    for n_pass in range(1, cfg.passes + 1):
        # Pass 1 searches every node with the pre-filled query; later passes re-search only the
        # nodes that are mostly missing, whose query improves with the fill (the others are
        # matched on their own known pixels, which no pass changes).
        search = np.arange(lattice.n_nodes) if labels is None else \
            np.flatnonzero(lattice.missing > cfg.mostly_missing_fraction * patch * patch)
        if not len(search):
            break   # nothing would change: the previous pass's result stands
        field_ = timed("field", make_field, current)
        if field_.patch_size != patch:
            raise ValueError(f"patch field describes {field_.patch_size}-px patches, the "
                             f"MRF uses {patch}")
        found, found_unary, found_scale = timed(
            "search", _search, cfg, field_, lattice.subset(search), candidates, context,
            image, hole, progress, scale if labels is not None else None, device)
        if cfg.texture_weight > 0:
            sub = lattice.subset(search)
            found_unary = found_unary + cfg.texture_weight * texture_unary(
                image, hole, sub.tops, sub.lefts, sub.missing, found.tops, found.lefts, patch)
        if labels is None:
            labels, unary, scale = found, found_unary, found_scale
        else:
            labels.replace_rows(search, found)
            unary[search] = found_unary
        pruned = timed("pruning", prune_labels, image, lattice.tops, lattice.lefts, labels.tops,
                       labels.lefts, unary, labels.weight, labels.count, lattice.edges,
                       cfg.labels, threshold, patch, progress=progress,
                       patches=labels.patches, cache_bytes=PATCH_CACHE_BYTES)
        kept_tops = np.take_along_axis(labels.tops, pruned.keep, 1)
        kept_lefts = np.take_along_axis(labels.lefts, pruned.keep, 1)
        kept_unary = np.take_along_axis(unary, pruned.keep, 1)
        # the pairwise costs stay on the device for NCMP
        pairwise = timed("inference", edge_pairwise_tensor, image, lattice.edges,
                         lattice.offsets, kept_tops, kept_lefts, patch, device=device)
        result = timed("inference", _infer, cfg, lattice, kept_unary, pairwise, device)
        for _ in range(cfg.propagation):
            kept_tops, kept_lefts, kept_unary, result = timed(
                "propagation", _propagate, cfg, image, hole, lattice, kept_tops, kept_lefts,
                kept_unary, result, device=device)
        say(f"pass {n_pass}: NCMP {result.iterations} iterations, energy "
            f"{result.energies[0]:.2f} -> {result.energies[-1]:.2f}")
        current = timed("compose", _compose, cfg, image, hole, lattice, kept_tops, kept_lefts,
                        result, pruned.order, device=device)
        history.append({"pass": n_pass, "iterations": int(result.iterations),
                        "energies": [round(e, 4) for e in result.energies],
                        "unary_scale": scale})

    stats = {
        "nodes": int(lattice.n_nodes),
        "edges": int(len(lattice.edges)),
        "blocks": int(context.n_blocks),
        "candidates": int(len(candidates)),
        "shortlist": int(labels.ids.shape[1]),
        "labels": int(pruned.keep.shape[1]),
        "passes": history,
        "field_dim": int(field_.dim),
        "config": asdict(cfg),
    }
    return MRFResult(image=current, stats=stats, timings=timings)


def _compose(cfg: MRFConfig, image, hole, lattice, kept_tops, kept_lefts, result,
             order, device: Device = "cpu") -> np.ndarray:
    """Paste the labels NCMP chose (``copy``) or all kept labels (``blend``), accumulated on
    ``device``."""
    patch = cfg.patch_size
    # the label average (the MRF's expectation: smoother, and closer than the pre-fill) when
    # the structure or the crack fill needs it
    label_mean = None
    if (cfg.structure_sigma > 0 and cfg.structure in ("blend", "adaptive")
            and cfg.composition == "copy") or (cfg.crack_width > 0 and cfg.crack_fill == "mean"):
        label_mean = _blend(cfg, image, hole, lattice, kept_tops, kept_lefts, result,
                            crack_width=0.0, structure_sigma=0.0, device=device)
    # thin cracks: the pre-fill, or its average with the label mean (two estimators that err
    # differently)
    crack_fill = 0.5 * (label_mean + image) if cfg.crack_fill == "mean" and \
        label_mean is not None else None
    if cfg.composition == "blend":
        # the split and the crack grain act on copied patches; the blend is smooth already
        return _blend(cfg, image, hole, lattice, kept_tops, kept_lefts, result,
                      crack_width=cfg.crack_width, structure_sigma=0.0, crack_fill=crack_fill,
                      device=device)
    nodes = np.arange(lattice.n_nodes)
    chosen_tops, chosen_lefts = kept_tops[nodes, result.labels], kept_lefts[nodes, result.labels]
    structure = label_mean if cfg.structure == "blend" else None
    copy_share = None
    if cfg.structure == "adaptive" and label_mean is not None:
        # the label average where the chosen labels fit their nodes' known paint, the
        # pre-fill where they do not; and where they fit exactly (the paint repeats), the
        # copies' own structure (an average of several exact copies is blurred by the others)
        ssd = masked_ssd(image, hole, lattice.tops, lattice.lefts, chosen_tops[:, None],
                         chosen_lefts[:, None], patch, device=device)[:, 0]
        known = patch * patch - lattice.missing
        # a perfect source in noisy paint still differs by twice the noise, in every channel
        floor = 2.0 * image.shape[2] * noise_variance(image, hole)
        fit = match_weight(hole.shape, lattice.tops, lattice.lefts, ssd, known, patch,
                           cfg.structure_match, floor)[:, :, None]
        structure = fit * label_mean + (1.0 - fit) * image
        copy_share = match_weight(hole.shape, lattice.tops, lattice.lefts, ssd, known, patch,
                                  EXACT_MATCH)
    # one label per node, pasted in pruning order (most confident first)
    rank = np.empty(lattice.n_nodes, dtype=np.int64)
    rank[order] = np.arange(lattice.n_nodes)
    return compose(image, hole, lattice.tops, lattice.lefts,
                   chosen_tops, chosen_lefts, patch,
                   correction=cfg.correction, composition="copy", rank=rank,
                   seam_smooth=cfg.seam_smooth, crack_width=cfg.crack_width,
                   structure=structure, structure_sigma=cfg.structure_sigma,
                   copy_share=copy_share, detail_gain=cfg.detail_gain,
                   detail_damp=cfg.detail_damp, crack_fill=crack_fill,
                   crack_detail=cfg.crack_detail,
                   crack_reference=label_mean if copy_share is not None else None,
                   device=device)


def _infer(cfg: MRFConfig, lattice, unary, pairwise, device: Device = "cpu") -> NCMPResult:
    """NCMP's beliefs (the label average uses them), its labels refined by ICM; the energy
    of ICM's labels is appended to NCMP's energies."""
    result = ncmp(unary, pairwise, lattice.edges, iterations=cfg.iterations,
                  temperature=cfg.temperature, pairwise_weight=cfg.pairwise_weight,
                  message=cfg.message, vertical=lattice.offsets[:, 0] > 0, device=device)
    if cfg.icm_sweeps == 0 or not len(lattice.edges):
        return result
    labels, energy = icm(unary, pairwise, lattice.edges, result.labels, lattice.colours,
                         sweeps=cfg.icm_sweeps, pairwise_weight=cfg.pairwise_weight,
                         device=device)
    # the last energy is that of the labels returned
    return replace(result, labels=labels, energies=[*result.energies, energy])


def _propagate(cfg: MRFConfig, image, hole, lattice, kept_tops, kept_lefts, kept_unary, result,
               device: Device = "cpu"):
    """One propagation round: every node's L labels plus its neighbours' chosen sources shifted
    by its offset from them (``propagated_labels``), scored by masked pixel SSD plus the texture
    term (the kept labels' unary is in the same units: pixel SSD, or with ``unary="field"`` the
    field distance calibrated into them); NCMP and ICM run again over the L + 4 labels and each
    node keeps ICM's choice first, then the most believed (beliefs renormalised; the label
    average weighs them, so ICM's choice may weigh little there), so rounds cost alike and a
    coherent source can travel one node further per round.

    Returns the new (N, L) tops, lefts and unaries, and the NCMP result over them.
    """
    patch = cfg.patch_size
    nodes = np.arange(lattice.n_nodes)
    tops, lefts, valid = propagated_labels(lattice, kept_tops[nodes, result.labels],
                                           kept_lefts[nodes, result.labels], hole)
    unary = masked_ssd(image, hole, lattice.tops, lattice.lefts, tops, lefts, patch,
                       device=device)
    if cfg.texture_weight > 0:
        unary = unary + cfg.texture_weight * texture_unary(
            image, hole, lattice.tops, lattice.lefts, lattice.missing, tops, lefts, patch)

    def same(t, l):   # (N, 4, K): proposal i is label k of (t, l)
        return (tops[:, :, None] == t[:, None, :]) & (lefts[:, :, None] == l[:, None, :])

    # a source offered twice would count twice in NCMP's expectations and the label average
    repeated = same(kept_tops, kept_lefts).any(2) | np.tril(same(tops, lefts), -1).any(2)
    # above every kept label's cost, whatever the unary's scale (a large texture weight)
    excluded = float(np.max(kept_unary)) + EXCLUDED
    unary = np.where(valid & ~repeated, unary, excluded).astype(kept_unary.dtype)
    tops = np.concatenate([kept_tops, tops], 1)
    lefts = np.concatenate([kept_lefts, lefts], 1)
    unary = np.concatenate([kept_unary, unary], 1)
    pairwise = edge_pairwise_tensor(image, lattice.edges, lattice.offsets, tops, lefts, patch,
                                    device=device)
    result = _infer(cfg, lattice, unary, pairwise, device)
    # the chosen label, then the L - 1 most believed (stable: on ties the earlier labels, so
    # never an excluded one before a kept one)
    first = 2.0 * np.eye(result.beliefs.shape[1])[result.labels]
    best = np.argsort(-(result.beliefs + first), axis=1, kind="stable")[:, :kept_tops.shape[1]]
    beliefs = np.take_along_axis(result.beliefs, best, 1)
    # ICM may choose a label of belief 0: alone (L = 1) it then takes the whole weight
    total = beliefs.sum(1, keepdims=True)
    beliefs = np.where(total > 0, beliefs / np.maximum(total, np.finfo(float).tiny),
                       np.eye(beliefs.shape[1])[0])
    trimmed = replace(result, labels=np.zeros(lattice.n_nodes, dtype=result.labels.dtype),
                      beliefs=beliefs)
    return (np.take_along_axis(tops, best, 1), np.take_along_axis(lefts, best, 1),
            np.take_along_axis(unary, best, 1), trimmed)


def _blend(cfg: MRFConfig, image, hole, lattice, kept_tops, kept_lefts, result, *,
           crack_width: float, structure_sigma: float,
           crack_fill: np.ndarray | None = None, device: Device = "cpu") -> np.ndarray:
    """Every kept label pasted with a tent weight times its weight (belief or one-hot)."""
    patch = cfg.patch_size
    weights = result.beliefs
    if not cfg.soft_compose:
        weights = np.eye(weights.shape[1])[result.labels]
    else:
        # Soft: every kept label pasted with its NCMP belief, an expectation that suits thin
        # losses. Nodes mostly missing take their best label alone, so large lacunae get
        # copied texture rather than an average of candidates (which would blur).
        mostly_missing = lattice.missing > cfg.mostly_missing_fraction * patch * patch
        weights = np.where(mostly_missing[:, None],
                           np.eye(weights.shape[1])[result.labels], weights)
    n_labels = kept_tops.shape[1]
    return compose(image, hole, np.repeat(lattice.tops, n_labels),
                   np.repeat(lattice.lefts, n_labels), kept_tops.ravel(), kept_lefts.ravel(),
                   patch, power=cfg.blend_power, correction=cfg.correction,
                   patch_weights=weights.ravel(), crack_width=crack_width,
                   structure_sigma=structure_sigma, crack_fill=crack_fill, device=device)


def _search(cfg, field_, lattice, candidates, context, image, hole, progress,
            scale: float | None, device: Device = "cpu"):
    """Shortlist of the lattice's nodes and their unaries (pixel-SSD units); ``scale`` reuses an
    earlier pass's field-to-pixel calibration so all nodes share one scale. The exact
    re-ranking SSD runs on ``device``."""
    patch = cfg.patch_size
    pixel_unary = isinstance(field_, PixelField) or cfg.unary == "pixel"
    on_host = torch.device(device).type == "cpu"

    def pixel_exact(tops, lefts):
        # label pixels cut for the SSD are kept for the pruning pass (on the host) when small
        # enough; another device cuts its own from the image rather than receive these
        small = tops.size * patch * patch * image.shape[2] * 4 <= PATCH_CACHE_BYTES
        patches = extract_patches(image, tops, lefts, patch) if small else None
        return masked_ssd(image, hole, lattice.tops, lattice.lefts, tops, lefts, patch,
                          label_patches=patches if on_host else None, device=device), patches

    labels = shortlist(field_, lattice, candidates, context, cfg.shortlist,
                       match_threshold=cfg.context.match_threshold, search=cfg.search,
                       exact=pixel_exact if pixel_unary else None, progress=progress)
    if scale is not None and not pixel_unary:
        return labels, labels.distance * scale, scale
    unary, scale = _unary(cfg, field_, labels, image, hole, lattice, device=device)
    return labels, unary, scale


def _unary(cfg, field_, labels, image, hole, lattice, calibration_nodes: int = 1000,
           device: Device = "cpu") -> tuple[np.ndarray, float]:
    """Unary costs in pixel-SSD units, and the factor that took field distances there."""
    if isinstance(field_, PixelField) or cfg.unary == "pixel":
        return labels.distance, 1.0   # the shortlist was re-ranked by masked pixel SSD
    # the scale is a ratio of medians: an evenly spaced subset of nodes estimates it well
    sample = np.linspace(0, lattice.n_nodes - 1, min(lattice.n_nodes, calibration_nodes))
    sample = np.unique(sample.astype(np.int64))
    pixel = masked_ssd(image, hole, lattice.tops[sample], lattice.lefts[sample],
                       labels.tops[sample], labels.lefts[sample], cfg.patch_size,
                       device=device)
    scale = calibrate_scale(labels.distance[sample].ravel(), pixel.ravel())
    return labels.distance * scale, scale
