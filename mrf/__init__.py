"""Context-aware MRF patch inpainting (after Ruzic & Pizurica 2015). Talks to descriptors only
through the ``PatchField`` interface; imports nothing else of the project but ``patches``."""

from .candidates import SearchConfig
from .context import Context, ContextConfig, build_context, prefill
from .field import PatchField, PixelField
from .inference import ncmp, prune_labels
from .inpainter import MRFConfig, MRFResult, inpaint_mrf
from .lattice import Lattice, build_lattice
from .pyramid import inpaint_pyramid

__all__ = ["SearchConfig", "Context", "ContextConfig", "build_context", "prefill", "PatchField",
           "PixelField", "ncmp", "prune_labels", "MRFConfig", "MRFResult", "inpaint_mrf",
           "inpaint_pyramid",
           "Lattice", "build_lattice"]
