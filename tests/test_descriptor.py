"""Descriptor models, IR, extraction and checkpoints: the contracts the MRF relies on."""

import numpy as np
import pytest
import torch

from descriptor import (
    CheckpointError,
    DenseField,
    IRField,
    ModelConfig,
    PatchEncoderField,
    build_model,
    builtin_names,
    cell_bounds,
    compute_ir,
    load_checkpoint,
    pool_windows,
    save_checkpoint,
)
from descriptor.ir import reflect_indices


def _model(arch="v128", mode="valid_context", seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch, mode)).eval()
    # Random biases make the test sharper: ReLU outputs are then rarely exactly zero.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _image(h=61, w=83, seed=1):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _crop_with_context(image, top, left, size, context):
    h, w = image.shape[:2]
    rows = reflect_indices(top - context, top + size + context, h)
    cols = reflect_indices(left - context, left + size + context, w)
    return torch.from_numpy(image[rows][:, cols]).permute(2, 0, 1)


@pytest.mark.parametrize("arch", ["v32", "v128"])
def test_ir_window_pooling_equals_patch_encoding_in_valid_context_mode(arch):
    model, image = _model(arch), _image()
    ir = compute_ir(model.encoder, image, "valid_context")
    rng = np.random.default_rng(3)
    # random positions plus every corner and edge of the image
    tops = np.r_[rng.integers(0, 61 - 16 + 1, 20), 0, 0, 45, 45, 0, 22]
    lefts = np.r_[rng.integers(0, 83 - 16 + 1, 20), 0, 67, 0, 67, 30, 67]
    pooled = pool_windows(ir, tops, lefts, 16)
    crops = torch.stack([_crop_with_context(image, t, l, 16, 3) for t, l in zip(tops, lefts)])
    with torch.no_grad():
        encoded = model.encode(crops)
    assert pooled.shape == (len(tops), model.config.descriptor_dim)
    assert (pooled - encoded).abs().max().item() < 1e-5
    assert encoded.abs().max().item() > 0.1  # not a vacuous comparison of zeros


def test_same_mode_window_is_only_an_approximation_of_patch_encoding():
    """The paper-faithful mode: the IR window sees context the isolated patch does not."""
    model, image = _model(mode="same"), _image()
    ir = compute_ir(model.encoder, image, "same")
    pooled = pool_windows(ir, [20], [30], 16)
    with torch.no_grad():
        encoded = model.encode(torch.from_numpy(image[20:36, 30:46]).permute(2, 0, 1)[None])
    assert (pooled - encoded).abs().max().item() > 1e-3


@pytest.mark.parametrize("mode", ["valid_context", "same"])
def test_tiled_ir_equals_untiled(mode):
    model, image = _model(mode=mode), _image(70, 95)
    whole = compute_ir(model.encoder, image, mode, tile=4096)
    for tile in (8, 13, 32):
        assert (compute_ir(model.encoder, image, mode, tile=tile) - whole).abs().max() < 1e-5


def test_fp16_ir_storage_is_close():
    model, image = _model(), _image()
    full = compute_ir(model.encoder, image, "valid_context")
    half = compute_ir(model.encoder, image, "valid_context", dtype=torch.float16)
    assert half.dtype == torch.float16
    assert (half.float() - full).abs().max() < 1e-2 * full.abs().max()


@pytest.mark.parametrize("patch", [16, 13, 8, 24, 9])
def test_dense_field_equals_window_pooling(patch):
    model, image = _model("v32"), _image()
    ir = compute_ir(model.encoder, image, "valid_context")
    tops = np.arange(0, 61 - patch + 1, 5)
    lefts = np.resize(np.arange(0, 83 - patch + 1, 7), len(tops))
    dense = DenseField(ir, patch).at(tops, lefts)
    assert torch.equal(dense, pool_windows(ir, tops, lefts, patch))
    assert dense.shape[1] == 8 * len(cell_bounds(patch)) ** 2


def test_cell_bounds_split_padding_floor_ceil():
    assert cell_bounds(16) == [(0, 8), (8, 8)]
    assert cell_bounds(13) == [(0, 7), (7, 6)]   # padded to 16: 1 zero before, 2 after
    assert cell_bounds(8) == [(0, 8)]
    assert sum(n for _, n in cell_bounds(21)) == 21


def test_pool_windows_matches_zero_padded_pooling_for_odd_sizes():
    ir = torch.rand(4, 30, 30)
    got = pool_windows(ir, [3], [5], 13)
    window = torch.nn.functional.pad(ir[None, :, 3:16, 5:18], (1, 2, 1, 2))
    want = torch.nn.functional.max_pool2d(window, 8).flatten(1)
    assert torch.equal(got, want)


def test_positions_outside_the_image_are_refused():
    ir = torch.rand(4, 20, 20)
    with pytest.raises(IndexError):
        pool_windows(ir, [5], [5], 16)


@pytest.mark.parametrize("kind", ["ir", "chen"])
def test_changing_pixels_under_the_mask_does_not_change_the_masked_descriptor(kind):
    image = _image(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[20:27, 25:40] = True
    other = image.copy()
    other[hole] = np.random.default_rng(9).random((hole.sum(), 3))
    tops, lefts = np.array([15, 16, 30, 0]), np.array([22, 30, 30, 0])

    torch.manual_seed(0)
    model = _model() if kind == "ir" else build_model(ModelConfig("chen")).eval()

    def field(img):
        if kind == "ir":
            return IRField(model, img, hole, 16)
        return PatchEncoderField(model, img, hole, 16)

    a = field(image).describe(tops, lefts, tops, lefts)
    b = field(other).describe(tops, lefts, tops, lefts)
    assert torch.allclose(a, b, atol=1e-6)
    # ... while the unmasked descriptors of patches touching the hole do change.
    assert not torch.allclose(field(image).describe(tops[:2], lefts[:2]),
                              field(other).describe(tops[:2], lefts[:2]), atol=1e-4)


def test_masked_candidate_uses_the_node_mask():
    image, hole = _image(64, 64), np.zeros((64, 64), bool)
    hole[10:14, 10:20] = True
    f = IRField(_model(), image, hole, 16)
    node_t, node_l = np.array([5]), np.array([8])
    cand = f.describe([40], [40], node_t, node_l)
    excl = f.exclusion[5:21, 8:24]
    expected = pool_windows(f.ir, [40], [40], 16, excl[None])
    assert torch.equal(cand, expected)
    assert not torch.equal(cand, f.describe([40], [40]))


def test_checkpoint_round_trip(tmp_path):
    model = _model("v32")
    path = save_checkpoint(model, tmp_path / "m.pt", {"data": ["x"], "patches": 10})
    ck = load_checkpoint(path)
    assert ck.arch == "v32" and ck.config == model.config
    assert ck.training["patches"] == 10
    for key, value in model.state_dict().items():
        assert torch.equal(value, ck.model.state_dict()[key])


def test_builtin_descriptors_load_with_their_dimensions():
    names = builtin_names()
    assert {"v32", "v128"} <= set(names)
    assert load_checkpoint("v32").config.descriptor_dim == 32
    assert load_checkpoint("v128").config.descriptor_dim == 128


def test_corrupt_tampered_and_wrong_architecture_checkpoints_fail_cleanly(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(garbage)

    good = save_checkpoint(_model("v32"), tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError):
        load_checkpoint(truncated)

    with pytest.raises(CheckpointError, match="holds a v32 model, expected v128"):
        load_checkpoint(good, expected_arch="v128")

    payload = torch.load(good, weights_only=True)
    payload["state_dict"]["encoder.0.weight"] += 0.01
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(CheckpointError, match="integrity"):
        load_checkpoint(tampered)

    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint("v999")


def test_unsafe_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "inpaint-descriptor", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path)


@pytest.mark.parametrize("arch", ["v32", "chen"])
def test_short_training_lowers_validation_loss_and_same_seed_same_weights(arch):
    from skimage.data import brick, coffee

    from descriptor import TrainConfig, train

    images = [np.asarray(coffee()[:200, :200], np.float32) / 255.0, brick()[:200, :200] / 255.0]
    cfg = TrainConfig(arch=arch, patches=800, max_epochs=2, batch_size=32, seed=3,
                      lbfgs_iterations=40)
    first = train(images, cfg, progress=False)
    second = train(images, cfg, progress=False)
    losses = [h["val_loss"] for h in first.history]
    assert first.best_val_loss < losses[0]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    other = train(images, TrainConfig(arch=arch, patches=800, max_epochs=1, seed=4,
                                      lbfgs_iterations=20), progress=False)
    key = "encoder.0.weight" if arch == "v32" else "encoder.weight"
    assert not torch.equal(other.model.state_dict()[key], first.model.state_dict()[key])


def test_training_never_samples_masked_pixels():
    from descriptor.training import PatchSampler

    image = np.random.default_rng(0).random((90, 90, 3)).astype(np.float32)
    mask = np.zeros((90, 90), bool)
    mask[30:50, 30:50] = True
    sampler = PatchSampler([image], 22, 500, np.random.default_rng(1), [mask])
    t, l = sampler.tops, sampler.lefts
    apart = (t + 22 <= 30) | (t >= 50) | (l + 22 <= 30) | (l >= 50)
    assert apart.all()
    assert len(np.unique(t * 100 + l)) > 50
    with pytest.raises(ValueError, match="no fully known"):
        PatchSampler([image], 22, 10, np.random.default_rng(1), [np.ones((90, 90), bool)])


@pytest.mark.parametrize("dim", [0, 1])
def test_running_max_equals_max_pooling(dim):
    from descriptor.extract import running_max

    x = torch.rand(23, 19, 5)
    lengths = [1, 2, 3, 4, 5, 7, 8, 9]
    got = running_max(x, lengths, dim)
    for k in lengths:
        kernel = (k, 1) if dim == 0 else (1, k)
        want = torch.nn.functional.max_pool2d(x.permute(2, 0, 1)[None], kernel, stride=1)
        assert torch.equal(got[k], want[0].permute(1, 2, 0))
