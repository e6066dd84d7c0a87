"""run() over arrays: only masked pixels change, for every supported dtype and band layout."""

import numpy as np
import pytest
import skimage.data
from hardware import cuda_devices, faiss_gpus

from inpaint.errors import InpaintError
from inpaint.pipeline import RunConfig, run
from masks import MaskError, paint_loss_mask

FAST = RunConfig(descriptor="none", patch_step=3, passes=1)


def _image(bands: int, dtype) -> np.ndarray:
    rgb = skimage.data.astronaut()[150:230, 180:260].astype(np.float64) / 255.0
    if bands in (1, 2):
        base = rgb.mean(2, keepdims=True)
    else:
        base = rgb
    if bands in (2, 4):
        alpha = np.linspace(0.2, 1.0, base.shape[1])[None, :, None] * np.ones_like(base[:, :, :1])
        base = np.concatenate([base, alpha], 2)
    if dtype == np.float32:
        return base.astype(np.float32)
    return np.rint(base * np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_outside_the_mask_the_output_equals_the_input(dtype, bands):
    image = _image(bands, dtype)
    mask = paint_loss_mask(image.shape[:2], coverage=0.05, seed=1)
    before = image.copy()
    out = run(image, mask, FAST).image
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    assert np.array_equal(image, before), "the input array was modified"
    if bands in (2, 4):
        assert np.array_equal(out[..., -1], image[..., -1]), "alpha must be kept, not inpainted"
    colour = out[..., : bands - (bands in (2, 4))]
    assert not np.array_equal(colour[mask], np.zeros_like(colour[mask]))


def test_2d_grey_array_is_accepted():
    image = _image(1, np.uint8)[:, :, 0]
    mask = paint_loss_mask(image.shape, coverage=0.03, seed=2)
    out = run(image, mask, FAST).image
    assert out.shape == image.shape and np.array_equal(out[~mask], image[~mask])


def test_same_seed_same_output_with_a_descriptor():
    image = _image(3, np.uint8)
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=3)
    cfg = RunConfig(descriptor="v32", patch_step=3, passes=1, seed=5)
    a, b = run(image, mask, cfg), run(image, mask, cfg)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.image[~mask], image[~mask])
    assert a.report["descriptor"]["arch"] == "v32"


def test_report_has_timings_memory_counts_device_and_versions():
    image = _image(3, np.uint8)
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=4)
    report = run(image, mask, FAST).report
    assert {"context", "search", "pruning", "inference", "compose"} <= set(report["timings"])
    assert report["peak_rss_bytes"] > 0
    assert report["mrf"]["nodes"] > 0 and report["mrf"]["labels"] == 10
    assert "torch" in report["versions"]
    # device "auto": the GPU when torch sees one (then one process drives it), else the CPU
    if cuda_devices():
        assert report["device"].startswith("cuda") and report["plan"]["workers"] == 1
        assert report["faiss_gpu"] == (faiss_gpus() > 0)
    else:
        assert report["device"] == "cpu" and report["faiss_gpu"] is False


def test_empty_mask_copies_through():
    image = _image(3, np.uint16)
    result = run(image, np.zeros(image.shape[:2], bool), FAST)
    assert np.array_equal(result.image, image) and result.report["nothing_to_do"]


def test_bad_arrays_give_clear_errors():
    image = _image(3, np.uint8)
    with pytest.raises(InpaintError, match="mask is 10x10 pixels but the image is 80x80"):
        run(image, np.ones((10, 10), bool), FAST)
    with pytest.raises(MaskError, match="too few known pixels"):
        run(image, np.ones(image.shape[:2], bool), FAST)
    with pytest.raises(InpaintError, match="unsupported data type"):
        run(image.astype(np.int32), np.eye(80, dtype=bool), FAST)
    with pytest.raises(InpaintError, match="unsupported image shape"):
        run(np.zeros((80, 80, 5), np.uint8), np.eye(80, dtype=bool), FAST)
