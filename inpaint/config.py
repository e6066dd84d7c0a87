"""``RunConfig``: the options of one inpainting run, and the one source of their defaults.

The MRF parameters take their defaults from ``mrf.MRFConfig`` (the library's defaults are the
product's); the CLI (``cli.py``) takes every option default, and the ``--help`` text, from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrf import ContextConfig, MRFConfig, SearchConfig
from mrf.context import PREFILLS

PIXEL_MODE = "none"
_MRF = MRFConfig()   # the MRF defaults, read once

#: Largest seed of a run: FAISS's k-means takes a 32-bit signed seed.
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class RunConfig:
    """Options of one inpainting run (the CLI's ``inpaint run`` flags)."""

    descriptor: str = "v128"      # built-in name, checkpoint path, or "none" (pixel mode)
    device: str = "auto"
    patch_step: int = _MRF.patch_step   # g: lattice step
    patch_size: int | None = _MRF.patch_size  # patch side; None = 2g+1
    labels: int = _MRF.labels
    shortlist: int = _MRF.shortlist
    iterations: int = _MRF.iterations
    passes: int = _MRF.passes
    icm_sweeps: int = _MRF.icm_sweeps     # ICM sweeps after NCMP (coherent neighbours)
    propagation: int = _MRF.propagation   # rounds of PatchMatch-like propagation after NCMP
    candidate_stride: int = _MRF.candidate_stride
    probe_fraction: float = _MRF.search.probe_fraction  # share of IVF cells a query probes
    unary: str = _MRF.unary       # exact re-ranking and unary: masked pixel SSD or "field"
    temperature: float = _MRF.temperature     # NCMP temperature (pixel-SSD units)
    soft_compose: bool = _MRF.soft_compose    # blend: paste every kept label by its belief
    prefill: str = "fsr"          # first guess of the hole: "fsr" (xphoto) or "telea"
    composition: str = _MRF.composition       # "copy" (texture) or "blend" (average of labels)
    seam_smooth: int = _MRF.seam_smooth       # copy: binomial smoothing passes of the seams
    texture_weight: float = _MRF.texture_weight  # weight of the unary's texture term (0 = off)
    crack_width: float = _MRF.crack_width     # missing pixels this close (px) to known paint
    #                                           keep the pre-fill
    structure_sigma: float = _MRF.structure_sigma  # > 0: lacunae's low frequencies (below this
    #                                           Gaussian, px) from ``structure``, detail copied
    structure: str = _MRF.structure           # "prefill", "blend" (label average) or "adaptive"
    structure_match: float = _MRF.structure_match  # adaptive: fit scale (mean squared
    #                                           difference per known pixel)
    detail_gain: float = _MRF.detail_gain     # copied detail raised up to this factor
    detail_damp: float = _MRF.detail_damp     # copied detail lowered down to this factor
    crack_fill: str = _MRF.crack_fill         # cracks: "prefill" or its "mean" with the blend
    crack_detail: float = _MRF.crack_detail   # share of the copied fine detail cracks take
    levels: int = _MRF.levels                 # pyramid levels: > 1 fills lacunae coarse to fine
    coarse_passes: int = _MRF.coarse_passes   # search passes of the coarse levels
    correction: str = _MRF.correction
    use_context: bool = _MRF.use_context
    ir_dtype: str = "float32"
    margin: int = 32              # context and source pixels around each loss group
    window: int = 512             # largest work-region side (the memory plan may lower it)
    memory_budget: int | None = None  # bytes; None = half the available memory
    workers: int = 0              # region worker processes; 0 = one per CPU core (CPU only)
    seed: int = _MRF.context.seed  # texton k-means seed (the only randomness)
    min_known_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.patch_step < 1:
            raise ValueError("patch step must be at least 1")
        if self.window <= 2 * self.margin + self.patch:
            raise ValueError(f"window ({self.window}) must exceed twice the margin plus a patch "
                             f"({2 * self.margin + self.patch})")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise ValueError("memory budget must be positive")
        if self.workers < 0:
            raise ValueError("workers must be 0 (one per core) or more")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must lie in 0..{MAX_SEED}")
        if self.prefill not in PREFILLS:
            raise ValueError(f"prefill must be one of {PREFILLS}")
        if self.ir_dtype not in ("float32", "float16"):
            raise ValueError("IR dtype must be float32 or float16")
        self.mrf_config(False)  # validates the MRF parameters

    @property
    def patch(self) -> int:
        return self.patch_size if self.patch_size else 2 * self.patch_step + 1

    def mrf_config(self, use_gpu: bool) -> MRFConfig:
        return MRFConfig(
            patch_size=self.patch, patch_step=self.patch_step, shortlist=self.shortlist,
            labels=self.labels, iterations=self.iterations, passes=self.passes,
            icm_sweeps=self.icm_sweeps, propagation=self.propagation,
            candidate_stride=self.candidate_stride, unary=self.unary,
            temperature=self.temperature, soft_compose=self.soft_compose,
            composition=self.composition, seam_smooth=self.seam_smooth,
            texture_weight=self.texture_weight, crack_width=self.crack_width,
            structure_sigma=self.structure_sigma, structure=self.structure,
            structure_match=self.structure_match,
            detail_gain=self.detail_gain, detail_damp=self.detail_damp,
            crack_fill=self.crack_fill,
            crack_detail=self.crack_detail,
            levels=self.levels, coarse_passes=self.coarse_passes, correction=self.correction,
            use_context=self.use_context,
            context=ContextConfig(seed=self.seed),
            search=SearchConfig(probe_fraction=self.probe_fraction, use_gpu=use_gpu))
