"""Moving arrays to the torch device of the run and back, for the device-agnostic inner stages
(masked SSD, pairwise, NCMP, composition). Never ``.cuda()``: the device is always an argument.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

from patches import patch_view

#: What the stages accept as input: a numpy array (host) or a tensor (on any device).
ArrayLike = np.ndarray | torch.Tensor

#: A device as the stages accept it: ``"cpu"``, ``"cuda:1"``, a ``torch.device``.
Device = str | torch.device


def as_tensor(x: ArrayLike, device: Device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` as a tensor on ``device`` (of ``dtype`` when given, else its own).

    A numpy array is shared, not copied, when it stays on the CPU with its dtype (contiguous
    arrays; others are made contiguous once); a tensor already there is returned as is.
    """
    if isinstance(x, np.ndarray):
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        if not x.flags.writeable:
            # torch warns that it cannot protect a read-only array; nothing here writes to it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(x)
        else:
            x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.to(device=device, dtype=dtype)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A tensor's values as a host numpy array (no copy when it is on the CPU already)."""
    return x.detach().cpu().numpy()


def patch_cutter(image: torch.Tensor, height: int, width: int | None = None
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``cut(tops, lefts)``: ``patches.extract_patches`` of ``image`` (H, W, *C) on its device,
    the strided view built once for repeated cuts -> (*S, height, width, *C) tensors.

    tops, lefts: integer tensors of shape S on that device. On the CPU numpy cuts them (its
    fancy indexing copies patches 3-4x faster than torch's indexing of the strided view,
    measured on 512-px windows) into an array that torch then shares without a copy.
    """
    if image.device.type == "cpu":
        view = patch_view(image.numpy(), height, width)
        return lambda tops, lefts: torch.from_numpy(view[tops.numpy(), lefts.numpy()])
    view = patch_view(image, height, width)
    return lambda tops, lefts: view[tops, lefts]


def cut_patches(image: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, height: int,
                width: int | None = None) -> torch.Tensor:
    """One cut of ``patch_cutter``: (*S, height, width, *C) on ``image``'s device."""
    return patch_cutter(image, height, width)(tops, lefts)
