"""Cutting patches out of a channels-last image by their top-left corners.

Both functions take a numpy array or a torch tensor (any device) and return the same kind.
Channels come last: an image is (H, W) or (H, W, *C); a channels-first torch image (C, H, W)
is passed as ``image.permute(1, 2, 0)`` and its patches permuted back.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def patch_view(image: Any, height: int, width: int | None = None) -> Any:
    """Every ``height`` x ``width`` patch of ``image``, as a strided view (no copy).

    Args:
        image: (H, W, *C) numpy array or torch tensor.
        height, width: patch size; ``width`` defaults to ``height``.

    Returns:
        (H - height + 1, W - width + 1, height, width, *C) view of ``image``: ``view[i, j]``
        is the patch whose top-left pixel is (i, j). Index it with corner arrays to cut many
        patches in one copy; build it once when cutting repeatedly from one image.
    """
    width = height if width is None else width
    if isinstance(image, np.ndarray):
        view = np.lib.stride_tricks.sliding_window_view(image, (height, width), axis=(0, 1))
        return np.moveaxis(view, (-2, -1), (2, 3))   # (H', W', *C, h, w) -> (H', W', h, w, *C)
    view = image.unfold(0, height, 1).unfold(1, width, 1)
    return view.movedim((-2, -1), (2, 3))


def extract_patches(image: Any, tops: Any, lefts: Any, height: int,
                    width: int | None = None) -> Any:
    """Copies of the patches of ``image`` with the given top-left corners.

    Args:
        image: (H, W, *C) numpy array or torch tensor.
        tops, lefts: integer corners of one shape S (numpy arrays, or integer tensors on the
            image's device); every patch must lie inside the image (not checked: a negative
            corner wraps around, as numpy indexing does).
        height, width: patch size; ``width`` defaults to ``height``.

    Returns:
        (*S, height, width, *C) array or tensor of ``image``'s dtype (and device).

    Example:
        >>> img = np.arange(25).reshape(5, 5)
        >>> extract_patches(img, np.array([1]), np.array([2]), 2).tolist()
        [[[7, 8], [12, 13]]]
    """
    return patch_view(image, height, width)[tops, lefts]
