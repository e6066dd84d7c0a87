"""descriptor/ extraction and fields against slow, obvious reference implementations.

The references loop over positions and pooling cells in Python (the product code must not), on
small random cases with odd sizes, every image border and several seeds. They also pin the
argument handling (dtype, tile, progress, chunk, band, index dtypes) and the error messages.
"""

import re
import warnings

import numpy as np
import pytest
import torch

from descriptor import (
    DenseField,
    IRField,
    ModelConfig,
    PatchEncoderField,
    build_model,
    cell_bounds,
    compute_ir,
    descriptor_dim,
    dilate_mask,
    pool_windows,
)
from descriptor.extract import running_max
from descriptor.ir import as_image_tensor, reflect_indices

CELL = 8


# ---------------------------------------------------------------- references (slow, obvious)

def ref_descriptor(ir: torch.Tensor, top: int, left: int, patch: int,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """The patch's IR window zero-padded to a multiple of 8 (floor of the padding before, ceil
    after), excluded pixels ignored, max of every 8x8 cell, in (channel, cell row, cell col)
    order. A cell with no usable pixel gives 0 (the IR is >= 0)."""
    window = ir[:, top:top + patch, left:left + patch].double().numpy()
    channels = window.shape[0]
    padded = -(-patch // CELL) * CELL
    before = (padded - patch) // 2
    n = padded // CELL
    out = np.zeros((channels, n, n))
    for a in range(n):
        for c in range(n):
            values = [np.zeros(channels)]          # the zero padding
            for py in range(a * CELL, (a + 1) * CELL):
                for px in range(c * CELL, (c + 1) * CELL):
                    y, x = py - before, px - before
                    if 0 <= y < patch and 0 <= x < patch:
                        if exclude is None or not exclude[y, x]:
                            values.append(window[:, y, x])
            out[:, a, c] = np.max(values, axis=0)
    return out.reshape(-1)


def ref_descriptors(ir, tops, lefts, patch, exclude=None) -> torch.Tensor:
    rows = [ref_descriptor(ir, int(t), int(l), patch, None if exclude is None else exclude[k])
            for k, (t, l) in enumerate(zip(tops, lefts))]
    return torch.from_numpy(np.array(rows).reshape(len(rows), -1)).float()


def ref_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """True where any pixel of the (2r+1)^2 square around (clipped to the image) is True."""
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for y in range(h):
        for x in range(w):
            out[y, x] = mask[max(0, y - radius):y + radius + 1,
                             max(0, x - radius):x + radius + 1].any()
    return out


def _positions(rng, height, width, patch, n=12):
    """Random corners plus the four image corners and the extreme rows/columns."""
    tops = np.r_[rng.integers(0, height - patch + 1, n), 0, 0, height - patch, height - patch]
    lefts = np.r_[rng.integers(0, width - patch + 1, n), 0, width - patch, 0, width - patch]
    return tops, lefts


def _ir(seed, channels=3, height=27, width=35):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(channels, height + seed, width + 2 * seed, generator=g)


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("patch", [1, 5, 8, 9, 13, 16, 17, 24])
def test_pool_windows_and_dense_field_equal_the_cell_by_cell_reference(seed, patch):
    ir = _ir(seed)
    _, h, w = ir.shape
    rng = np.random.default_rng(seed)
    tops, lefts = _positions(rng, h, w, patch)
    want = ref_descriptors(ir, tops, lefts, patch)
    assert want.shape == (len(tops), 3 * len(cell_bounds(patch)) ** 2)
    torch.testing.assert_close(pool_windows(ir, tops, lefts, patch), want, rtol=0, atol=0)
    for band in (1, 7, 256):
        torch.testing.assert_close(DenseField(ir, patch, band=band).at(tops, lefts), want,
                                   rtol=0, atol=0)
    # positions away from the top/left borders: the pooled slab starts inside the image
    inner = (tops > 0) & (lefts > 0)
    assert inner.sum() >= 3
    got = DenseField(ir, patch).at(tops[inner], lefts[inner])
    torch.testing.assert_close(got, want[torch.from_numpy(inner)], rtol=0, atol=0)
    # one position at a time
    for k in (0, len(tops) - 1):
        one = DenseField(ir, patch).at(tops[k:k + 1], lefts[k:k + 1])
        torch.testing.assert_close(one, want[k:k + 1], rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("patch", [9, 16])
def test_masked_pool_windows_ignores_excluded_ir_pixels(seed, patch):
    ir = _ir(seed, channels=4)
    _, h, w = ir.shape
    rng = np.random.default_rng(10 + seed)
    tops, lefts = _positions(rng, h, w, patch)
    exclude = rng.random((len(tops), patch, patch)) < 0.4
    exclude[0] = True      # nothing usable: every cell is 0
    exclude[1] = False     # nothing excluded: the unmasked descriptor
    want = ref_descriptors(ir, tops, lefts, patch, exclude)
    excl = torch.from_numpy(exclude)
    for chunk in (1, 5, 4096):
        got = pool_windows(ir, tops, lefts, patch, excl, chunk=chunk)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert torch.equal(got[0], torch.zeros_like(got[0]))
    assert torch.equal(got[1], pool_windows(ir, tops[1:2], lefts[1:2], patch)[0])
    assert not torch.equal(got, pool_windows(ir, tops, lefts, patch))


def test_float16_ir_pools_to_float32_descriptors_of_the_same_values():
    ir = _ir(0).half()
    tops, lefts = _positions(np.random.default_rng(0), ir.shape[1], ir.shape[2], 13)
    want = ref_descriptors(ir.float(), tops, lefts, 13)
    for got in (pool_windows(ir, tops, lefts, 13), DenseField(ir, 13).at(tops, lefts)):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_cell_bounds_are_the_floor_ceil_padded_split():
    assert cell_bounds(1) == [(0, 1)]
    assert cell_bounds(9) == [(0, 5), (5, 4)]            # padded 16: 3 zeros before, 4 after
    assert cell_bounds(17) == [(0, 5), (5, 8), (13, 4)]  # padded 24: 3 before, 4 after
    assert cell_bounds(20) == [(0, 6), (6, 8), (14, 6)]  # padded 24: 2 before, 2 after
    for patch in range(1, 41):
        cells = cell_bounds(patch)
        padded = -(-patch // CELL) * CELL
        before, after = (padded - patch) // 2, padded - patch - (padded - patch) // 2
        assert len(cells) == padded // CELL
        assert [s for s, _ in cells] == list(np.cumsum([0] + [n for _, n in cells[:-1]]))
        assert sum(n for _, n in cells) == patch
        if len(cells) > 1:
            assert cells[0][1] == CELL - before and cells[-1][1] == CELL - after
            assert all(n == CELL for _, n in cells[1:-1])


@pytest.mark.parametrize("size", [0, -3])
def test_non_positive_patch_sizes_are_refused(size):
    with pytest.raises(ValueError, match="^patch_size must be positive$"):
        cell_bounds(size)


def test_descriptor_dim_and_empty_requests():
    assert descriptor_dim(5, 24) == 45
    assert descriptor_dim(3, 16) == 12
    assert descriptor_dim(2, 1) == 2
    assert descriptor_dim(7, 25) == 7 * 16
    ir = torch.rand(5, 30, 31)
    for got in (pool_windows(ir, [], [], 24), DenseField(ir, 24).at([], []),
                pool_windows(ir, np.zeros(0, int), np.zeros(0, int), 24,
                             torch.zeros((0, 24, 24), dtype=torch.bool))):
        assert got.shape == (0, 45) and got.dtype == torch.float32


def test_positions_of_any_integer_type_give_the_same_descriptors():
    ir = _ir(1)
    tops, lefts = np.array([0, 3, 11, 2]), np.array([1, 0, 7, 19])
    want = ref_descriptors(ir, tops, lefts, 9)
    for conv in (np.uint8, np.int16, np.int32, list, torch.from_numpy,
                 lambda a: torch.from_numpy(a.astype(np.int32))):
        t, l = conv(tops), conv(lefts)
        torch.testing.assert_close(pool_windows(ir, t, l, 9), want, rtol=0, atol=0)
        torch.testing.assert_close(DenseField(ir, 9).at(t, l), want, rtol=0, atol=0)


def _outside_cases(h, w, p):
    inside_t, inside_l = h - p, w - p      # the last valid corner on each axis
    return [([-1], [0]), ([0], [-1]), ([inside_t + 1], [0]), ([0], [inside_l + 1]),
            ([0, 3, -2], [1, 1, 1]), ([1, 1, 1], [0, inside_l + 1, 2]),
            ([inside_t + 5], [inside_l + 5])]


@pytest.mark.parametrize("kind", ["pool", "dense"])
def test_positions_outside_the_image_are_refused_on_every_side(kind):
    ir = torch.rand(2, 20, 23)
    patch = 6

    def call(t, l):
        if kind == "pool":
            return pool_windows(ir, t, l, patch)
        return DenseField(ir, patch).at(t, l)

    # the extreme valid corners are accepted ...
    got = call([0, 20 - patch, 0, 20 - patch], [0, 0, 23 - patch, 23 - patch])
    torch.testing.assert_close(got, ref_descriptors(ir, [0, 14, 0, 14], [0, 0, 17, 17], patch))
    # ... one step further on any side is not
    for t, l in _outside_cases(20, 23, patch):
        with pytest.raises(IndexError, match="^a patch position lies outside the image$"):
            call(np.array(t), np.array(l))
    with pytest.raises(ValueError, match="^tops and lefts must have the same length$"):
        call([0, 1], [0])


def test_dense_field_pools_only_the_slab_of_each_band(monkeypatch):
    """The pooled maps cover exactly the rows/columns the positions of one band span (memory
    stays near one band of the IR), bands are ``band`` rows from the smallest top."""
    slabs = []
    original = DenseField._pooled_maps

    def spy(self, r0, c0, r1, c1):
        slabs.append((r0, c0, r1, c1))
        return original(self, r0, c0, r1, c1)

    monkeypatch.setattr(DenseField, "_pooled_maps", spy)
    ir = _ir(0, channels=2, height=300, width=40)
    tops = np.array([5, 9, 20, 21, 36, 40, 299 - 8])
    lefts = np.array([3, 30, 7, 11, 2, 25, 6])
    want = ref_descriptors(ir, tops, lefts, 8)
    torch.testing.assert_close(DenseField(ir, 8, band=16).at(tops, lefts), want, rtol=0, atol=0)
    # bands of 16 rows from top 5: [5, 21) [21, 37) [37, 53) ... [277, 293)
    assert slabs == [(5, 3, 20 + 8, 30 + 8), (21, 2, 36 + 8, 11 + 8), (40, 25, 48, 33),
                     (291, 6, 299, 14)]
    slabs.clear()
    # the default band is 256 rows
    torch.testing.assert_close(DenseField(ir, 8).at(tops, lefts), want, rtol=0, atol=0)
    assert slabs == [(5, 2, 40 + 8, 30 + 8), (291, 6, 299, 14)]
    slabs.clear()
    DenseField(ir, 8).at([0, 255, 256], [0, 0, 0])
    assert [s[0] for s in slabs] == [0, 256]


# ---------------------------------------------------------------- running max

@pytest.mark.parametrize("dim", [0, 1])
def test_running_max_equals_a_window_loop(dim):
    x = torch.rand(21, 17, 2, generator=torch.Generator().manual_seed(dim))
    lengths = [1, 2, 3, 5, 6, 8, 11, 16]
    got = running_max(x, lengths, dim)
    for k in lengths:
        n = x.shape[dim] - k + 1
        want = torch.stack([x.narrow(dim, i, k).amax(dim=dim) for i in range(n)], dim=dim)
        assert torch.equal(got[k], want), k


# ---------------------------------------------------------------- fields

@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_dilate_mask_equals_a_pixel_loop(radius):
    rng = np.random.default_rng(radius)
    mask = rng.random((13, 17)) < 0.05
    mask[0, 16] = mask[12, 0] = True       # corners: the dilation is clipped to the image
    want = ref_dilate(mask, radius)
    for given in (torch.from_numpy(mask), torch.from_numpy(mask.astype(np.uint8) * 255)):
        got = dilate_mask(given, radius)
        assert got.dtype == torch.bool
        assert np.array_equal(got.numpy(), want)
    assert radius == 0 or want.sum() > mask.sum()
    assert not dilate_mask(torch.zeros(5, 6, dtype=torch.bool), radius).any()


def _ir_model(arch="v32", seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _image(h, w, seed=1):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_ir_field_describes_like_the_reference_on_the_reference_ir():
    model, image = _ir_model(), _image(33, 41)
    hole = np.zeros((33, 41), bool)
    hole[10:13, 20:22] = True
    hole[32, 0] = True
    field = IRField(model, image, hole, 17)
    with torch.no_grad():   # valid_context: the whole image mirror-padded by 3, one conv pass
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="reflect")
        ir = model.encoder(torch.from_numpy(padded).permute(2, 0, 1)[None])[0]
    torch.testing.assert_close(field.ir, ir, rtol=0, atol=1e-5)
    excl = ref_dilate(hole, 3)
    assert np.array_equal(field.exclusion.numpy(), excl)
    assert field.dim == 8 * 9 == descriptor_dim(8, 17)

    rng = np.random.default_rng(4)
    tops, lefts = _positions(rng, 33, 41, 17, n=6)
    plain = field.describe(tops, lefts)
    assert plain.shape == (len(tops), field.dim)
    torch.testing.assert_close(plain, ref_descriptors(field.ir, tops, lefts, 17), rtol=0, atol=0)
    # masked: every candidate seen under the exclusion window found at its node's corner
    node_t, node_l = np.roll(tops, 1), np.roll(lefts, 1)
    windows = np.stack([excl[t:t + 17, l:l + 17] for t, l in zip(node_t, node_l)])
    assert windows.any(axis=(1, 2)).sum() >= 2
    masked = field.describe(tops, lefts, node_t, node_l)
    torch.testing.assert_close(masked, ref_descriptors(field.ir, tops, lefts, 17, windows),
                               rtol=0, atol=0)
    assert field.nbytes == field.ir.nelement() * 4 + 33 * 41


def test_ir_field_passes_dtype_tile_and_progress_to_the_ir(capsys):
    model, image = _ir_model(), _image(20, 22)
    hole = np.zeros((20, 22), bool)
    full = IRField(model, image, hole, 8)
    assert capsys.readouterr().err == ""                 # no progress bar unless asked for
    half = IRField(model, image, hole, 8, dtype=torch.float16, tile=8)
    assert half.ir.dtype == torch.float16 and full.ir.dtype == torch.float32
    assert half.nbytes == half.ir.nelement() * 2 + 20 * 22
    assert capsys.readouterr().err == ""
    torch.testing.assert_close(half.ir.float(), full.ir, rtol=0, atol=1e-2 * full.ir.max().item())
    IRField(model, image, hole, 8, tile=8, progress=True)    # 3 x 3 tiles: a bar is drawn
    assert "IR tiles" in capsys.readouterr().err
    with pytest.raises(ValueError, match="^tile must be at least 8 pixels$"):
        IRField(model, image, hole, 8, tile=7)


def _chen(seed=0):
    torch.manual_seed(seed)
    return build_model(ModelConfig("chen")).eval()


def test_patch_encoder_field_equals_encoding_each_masked_crop():
    model, image = _chen(), _image(30, 37)
    hole = np.zeros((30, 37), bool)
    hole[5:9, 3:12] = True
    hole[29, 36] = True
    field = PatchEncoderField(model, image, hole)          # the default patch size is the model's
    assert field.patch_size == 16 and field.dim == 128
    rng = np.random.default_rng(5)
    tops, lefts = _positions(rng, 30, 37, 16, n=6)
    node_t, node_l = np.roll(tops, 2), np.roll(lefts, 2)
    plain, masked = [], []
    with torch.no_grad():
        for t, l, nt, nl in zip(tops, lefts, node_t, node_l):
            crop = torch.from_numpy(image[t:t + 16, l:l + 16].copy()).permute(2, 0, 1)
            plain.append(model.encode(crop[None])[0])
            keep = torch.from_numpy(~hole[nt:nt + 16, nl:nl + 16])
            masked.append(model.encode((crop * keep)[None])[0])
    plain, masked = torch.stack(plain), torch.stack(masked)
    assert not torch.allclose(plain, masked)
    uint8_hole = hole.astype(np.uint8) * 255
    for f in (field, PatchEncoderField(model, image, hole, 16, chunk=3),
              PatchEncoderField(model, image, uint8_hole, 16)):
        torch.testing.assert_close(f.describe(tops, lefts), plain, rtol=0, atol=1e-6)
        torch.testing.assert_close(f.describe(tops, lefts, node_t, node_l), masked,
                                   rtol=0, atol=1e-6)
        assert f.describe([], []).shape == (0, 128)
    assert field.nbytes == 3 * 30 * 37 * 4 + 30 * 37


def test_patch_encoder_field_refuses_another_patch_size():
    with pytest.raises(ValueError, match="^the chen descriptor needs 16-px patches, not 9$"):
        PatchEncoderField(_chen(), _image(20, 20), np.zeros((20, 20), bool), 9)


# ---------------------------------------------------------------- IR helpers (descriptor/ir.py)

@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_reflect_indices_equal_numpy_reflect_padding(size):
    pad = 2 * size + 3                      # overhangs shorter and longer than the image
    padded = np.pad(np.arange(size), pad, mode="reflect")
    for start in range(-pad, size + 1):
        for stop in range(start, size + pad + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # e.g. a modulo by zero for a 1-px side
                got = reflect_indices(start, stop, size)
            assert np.array_equal(got, padded[start + pad:stop + pad]), (start, stop)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_as_image_tensor_gives_float32_channels_first(dtype):
    image = np.random.default_rng(0).random((5, 7, 3)).astype(dtype)
    got = as_image_tensor(image)
    assert got.dtype == torch.float32 and got.shape == (3, 5, 7)
    assert torch.equal(got, torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)))
    chw = torch.from_numpy(image.transpose(2, 0, 1).copy())
    assert torch.equal(as_image_tensor(chw), got)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 4), (3, 5, 7), (5, 7, 3, 1), (5, 7, 1)])
def test_as_image_tensor_refuses_other_array_shapes(shape):
    message = rf"^expected an \(H, W, 3\) RGB image, got shape {re.escape(str(shape))}$"
    with pytest.raises(ValueError, match=message):
        as_image_tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (4, 5, 7), (3, 5, 7, 1), (1, 3, 5, 7)])
def test_as_image_tensor_refuses_other_tensor_shapes(shape):
    message = rf"^expected a \(3, H, W\) RGB tensor, got shape {re.escape(str(shape))}$"
    with pytest.raises(ValueError, match=message):
        as_image_tensor(torch.zeros(shape))


def test_compute_ir_of_any_conv_stack_has_its_last_conv_width():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(   # the widths differ: the IR must take the last one
        torch.nn.Conv2d(3, 5, 3), torch.nn.ReLU(), torch.nn.Conv2d(5, 4, 3), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU())
    image = np.random.default_rng(2).random((14, 19, 3)).astype(np.float32)
    ir = compute_ir(encoder, image, "valid_context", tile=8)
    padded = np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="reflect")
    with torch.no_grad():
        want = encoder(torch.from_numpy(padded).permute(2, 0, 1)[None])[0]
    assert ir.shape == (6, 14, 19)
    torch.testing.assert_close(ir, want, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="^encoder has no convolution layers$"):
        compute_ir(torch.nn.Sequential(torch.nn.ReLU()), image, "same")
