"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from rasters import write_raster

from masks import paint_loss_mask


@pytest.fixture
def scene(tmp_path):
    """A 96x96 crop of astronaut with a seeded 4 % paint-loss mask, both written as PNG:
    (folder, image path, mask path, image array, mask array)."""
    image = skimage.data.astronaut()[140:236, 170:266]
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=0)
    img = write_raster(tmp_path / "panel.png", image)
    msk = write_raster(tmp_path / "loss.png", (mask * 255).astype(np.uint8))
    return tmp_path, img, msk, image, mask
