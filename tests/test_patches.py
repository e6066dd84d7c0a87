"""The patch-extraction primitive against an obvious loop, for numpy and torch images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hardware import cuda_devices

from patches import extract_patches, patch_view

#: torch runs on the CPU and, on a machine that has one, on the GPU too
KINDS = ["numpy", "torch:cpu"] + (["torch:cuda"] if cuda_devices() else [])


def _loop(image: np.ndarray, tops: np.ndarray, lefts: np.ndarray, h: int, w: int) -> np.ndarray:
    """One slice per corner, stacked back into the corners' shape."""
    crops = [image[t:t + h, l:l + w] for t, l in zip(tops.ravel(), lefts.ravel())]
    return np.stack(crops).reshape(*tops.shape, h, w, *image.shape[2:])


CASES = [  # image shape, dtype, patch (h, w), corners shape
    ((12, 15), np.float32, (3, 3), (7,)),
    ((12, 15, 3), np.float32, (4, 6), (5, 4)),
    ((9, 11, 2, 5), np.float64, (2, 5), (6,)),
    ((10, 10), bool, (5, 5), (3, 2)),
    ((20, 17, 32), np.float16, (9, 9), (13,)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape,dtype,size,corners", CASES)
def test_extract_patches_equals_a_loop_of_slices(kind, shape, dtype, size, corners):
    rng = np.random.default_rng(len(shape) * 7 + size[1])
    image = (rng.random(shape) * 100).astype(dtype)
    h, w = size
    # corners anywhere the patch fits, both borders included
    tops = rng.integers(0, shape[0] - h + 1, corners)
    lefts = rng.integers(0, shape[1] - w + 1, corners)
    tops.flat[0], lefts.flat[0] = shape[0] - h, shape[1] - w
    want = _loop(image, tops, lefts, h, w)
    if kind == "numpy":
        got = extract_patches(image, tops, lefts, h, w)
        assert isinstance(got, np.ndarray)
    else:
        device = torch.device(kind.split(":")[1])
        img = torch.from_numpy(image).to(device)
        got = extract_patches(img, torch.from_numpy(tops).to(device),
                              torch.from_numpy(lefts).to(device), h, w)
        assert isinstance(got, torch.Tensor) and got.device == img.device
        got = got.cpu().numpy()
    assert got.dtype == image.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_patch_view_is_a_view_indexed_by_corner(kind):
    image = np.arange(8 * 9 * 2, dtype=np.float32).reshape(8, 9, 2)
    img = image if kind == "numpy" else torch.from_numpy(image)
    view = patch_view(img, 3, 4)
    assert tuple(view.shape) == (6, 6, 3, 4, 2)
    for i in range(6):
        for j in range(6):
            assert np.array_equal(np.asarray(view[i, j]), image[i:i + 3, j:j + 4])
    # a view, not a copy: writing the image shows through
    img[5, 7, 1] = -1.0
    assert float(view[4, 5, 1, 2, 1]) == -1.0
    # the width defaults to the height
    assert tuple(patch_view(img, 3).shape) == (6, 7, 3, 3, 2)


def test_extract_patches_copies():
    image = np.zeros((6, 6), np.float32)
    cut = extract_patches(image, np.array([1]), np.array([1]), 2)
    cut[...] = 5.0
    assert not image.any()
