"""Composition (mrf/compose.py): the texture-faithful ``copy`` mode, its seams, the crack path,
and the texture claim end to end, each against a slow, obvious reference."""

from __future__ import annotations

import mrf_reference as ref
import numpy as np
import pytest
from scipy import ndimage

from mrf import MRFConfig, inpaint_mrf, prefill
from mrf.compose import blend_patches, compose, crack_blend, first_owner, seam_weights, tent_weights

#: The copy composition alone: no structure/texture split, cracks keep the pre-fill, no grain.
PLAIN = dict(structure_sigma=0.0, crack_fill="prefill", crack_detail=0.0, detail_gain=1.0,
             detail_damp=1.0)


def _sequential_paste(image, hole, tops, lefts, label_tops, label_lefts, rank, patch):
    """Reference: paste nodes one by one in rank order; each writes only hole pixels that no
    earlier node wrote. Returns the canvas and, per pixel, the owning node (-1 = none)."""
    canvas = image.copy()
    owner = np.full(hole.shape, -1)
    for node in np.argsort(rank):
        for dy in range(patch):
            for dx in range(patch):
                y, x = tops[node] + dy, lefts[node] + dx
                if hole[y, x] and owner[y, x] < 0:
                    owner[y, x] = node
                    canvas[y, x] = image[label_tops[node] + dy, label_lefts[node] + dx]
    return canvas, owner


def _random_case(seed: int, size: int = 40, patch: int = 7, nodes: int = 30):
    rng = np.random.default_rng(seed)
    image = rng.random((size, size, 3)).astype(np.float32)
    tops = rng.integers(0, size - patch + 1, nodes)
    lefts = rng.integers(0, size - patch + 1, nodes)
    hole = np.zeros((size, size), bool)
    for t, l in zip(tops, lefts):   # holes inside the node patches, borders included
        hole[t + 1:t + patch - 1, l + 1:l + patch - 1] |= rng.random((patch - 2, patch - 2)) < 0.7
    label_tops = rng.integers(0, size - patch + 1, nodes)
    label_lefts = rng.integers(0, size - patch + 1, nodes)
    rank = rng.permutation(nodes)
    return image, hole, tops, lefts, label_tops, label_lefts, rank, patch


def test_tent_weights_are_the_outer_product_of_ramps_to_the_power():
    ramp = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    assert np.array_equal(tent_weights(5), np.outer(ramp, ramp))       # default power 1
    assert np.array_equal(tent_weights(5, 2.0), np.outer(ramp, ramp) ** 2)
    assert np.array_equal(tent_weights(4, 0.5), np.outer([1, 2, 2, 1], [1, 2, 2, 1]) ** 0.5)


@pytest.mark.parametrize("power, weighted, chunk", [(1.0, False, 16384), (2.0, True, 7),
                                                    (0.0, True, 1)])
def test_blend_patches_against_a_pixel_by_pixel_average(power, weighted, chunk):
    """Tent power, patch weights and chunking against the per-pixel definition."""
    image, _, tops, lefts, lt, ll, _, patch = _random_case(5)
    rng = np.random.default_rng(9)
    weights = rng.random(len(tops)) if weighted else None
    got, wsum = blend_patches(image, tops, lefts, lt, ll, patch, power=power,
                              patch_weights=weights, chunk=chunk)
    want, want_sum = ref.blend(image, tops, lefts, lt, ll, patch, power, weights)
    np.testing.assert_allclose(wsum, want_sum, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_first_owner_is_sequential_pasting_in_rank_order(seed):
    image, hole, tops, lefts, lt, ll, rank, patch = _random_case(seed)
    _, owner = _sequential_paste(image, hole, tops, lefts, lt, ll, rank, patch)
    owned = first_owner(tops, lefts, rank, patch, hole.shape)
    for node in range(len(tops)):
        window = owner[tops[node]:tops[node] + patch, lefts[node]:lefts[node] + patch]
        got = owned[node] & hole[tops[node]:tops[node] + patch, lefts[node]:lefts[node] + patch]
        np.testing.assert_array_equal(got, window == node)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_copy_without_seam_smoothing_equals_sequential_pasting(seed):
    image, hole, tops, lefts, lt, ll, rank, patch = _random_case(seed)
    expected, owner = _sequential_paste(image, hole, tops, lefts, lt, ll, rank, patch)
    covered = owner >= 0
    hole = hole & covered   # compose requires every missing pixel to be covered
    out = compose(image, hole, tops, lefts, lt, ll, patch, composition="copy", rank=rank,
                  seam_smooth=0, correction="none")
    np.testing.assert_allclose(out[hole], expected[hole], atol=1e-5)
    np.testing.assert_array_equal(out[~hole], image[~hole])   # only hole pixels written


def test_reversed_rank_changes_the_copy():
    image, hole, tops, lefts, lt, ll, rank, patch = _random_case(5)
    _, owner = _sequential_paste(image, hole, tops, lefts, lt, ll, rank, patch)
    hole &= owner >= 0
    kwargs = dict(composition="copy", seam_smooth=0, correction="none")
    a = compose(image, hole, tops, lefts, lt, ll, patch, rank=rank, **kwargs)
    b = compose(image, hole, tops, lefts, lt, ll, patch, rank=rank.max() - rank, **kwargs)
    assert np.abs(a - b)[hole].max() > 0.1


def test_seam_weights_smooth_only_near_the_seam():
    owned = np.zeros((1, 9, 9), bool)
    owned[0, :, :4] = True
    w = seam_weights(owned, smooth=1)[0]
    # binomial [1 2 1]/4 across the seam: 1, 3/4 | 1/4, 0 ; constant along it
    np.testing.assert_allclose(w[4, 1:6], [1.0, 1.0, 0.75, 0.25, 0.0], atol=2e-6)
    assert np.allclose(w[2:7, 2], w[4, 2])
    np.testing.assert_array_equal(seam_weights(owned, smooth=0)[0] > 0, owned[0])


def _two_textures(size: int = 64) -> np.ndarray:
    """Left half: vertical stripes (period 4); right half: horizontal stripes (period 6)."""
    y, x = np.mgrid[:size, :size]
    left = 0.5 + 0.4 * np.sign(np.sin(2 * np.pi * (x + 0.5) / 4))
    right = 0.5 + 0.4 * np.sign(np.sin(2 * np.pi * (y + 0.5) / 6))
    grey = np.where(x < size // 2, left, right)
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)


def test_copy_on_two_textures_keeps_each_texture_and_a_narrow_seam():
    """A hole straddling the texture boundary, each side filled from its own texture: away from
    the seam every pixel is an exact copy; the cross-fade is at most two pixels wide."""
    truth = _two_textures()
    hole = np.zeros(truth.shape[:2], bool)
    hole[20:40, 22:42] = True
    patch, step = 9, 3
    tops, lefts = np.meshgrid(np.arange(14, 40, step), np.arange(16, 44, step), indexing="ij")
    tops, lefts = tops.ravel(), lefts.ravel()
    left_side = lefts + patch // 2 < 32
    # sources outside the hole, in the node's own texture, in phase: the left texture repeats
    # every 4 columns (any row), the right one every 6 rows (any column)
    label_lefts = np.where(left_side, lefts - 16, 44)
    shifts = tops[:, None] + 6 * np.arange(-10, 10)[None, :]
    valid = ((shifts >= 0) & (shifts + patch <= 20)) | ((shifts >= 40) & (shifts <= 64 - patch))
    label_tops = np.where(left_side, tops, shifts[np.arange(len(tops)), valid.argmax(1)])
    assert valid.any(1).all()
    rank = np.arange(len(tops))
    image = prefill(truth, hole, method="telea")
    out = compose(image, hole, tops, lefts, label_tops, label_lefts, patch, composition="copy",
                  rank=rank, seam_smooth=1, correction="none")
    np.testing.assert_array_equal(out[~hole], image[~hole])
    err = np.abs(out - truth).max(axis=2)
    # every copy is exact, so the only errors are where two nodes' patches meet across the
    # texture boundary (column 32); they stay within 2 px of it
    cols = np.nonzero((err > 1e-4) & hole)[1]
    assert len(cols) and np.abs(cols - 31.5).max() <= 2.5


def test_crack_blend_keeps_prefill_near_known_paint_only():
    hole = np.zeros((20, 20), bool)
    hole[5:15, 5:15] = True
    patches = np.ones((hole.sum(), 3))
    pre = np.zeros((hole.sum(), 3))
    out = crack_blend(patches, pre, hole, width=2.0)
    dist = ndimage.distance_transform_edt(hole)[hole]
    np.testing.assert_array_equal(out[dist <= 1.5, 0], 0.0)   # thin rim: the pre-fill
    np.testing.assert_array_equal(out[dist >= 2.5, 0], 1.0)   # inside: the patches
    assert np.all((out[:, 0] >= 0) & (out[:, 0] <= 1))


def _grey_gradient(img):
    grey = img.mean(axis=2)
    return np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))


def _periodic_texture(size: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tile = rng.random((8, 8, 3))
    return np.tile(tile, (size // 8, size // 8, 1)).astype(np.float32)


def _lacuna_gradient_ratio(config: MRFConfig) -> float:
    truth = _periodic_texture()
    hole = np.zeros(truth.shape[:2], bool)
    hole[36:60, 36:60] = True
    filled = prefill(truth, hole, method="telea")
    out = inpaint_mrf(filled, hole, None, config).image
    np.testing.assert_array_equal(out[~hole], filled[~hole])
    inner = ndimage.binary_erosion(hole, iterations=3)   # lacuna pixels, not the rim
    return float(_grey_gradient(out)[inner].mean() / _grey_gradient(truth)[inner].mean())


def test_copy_composition_keeps_the_texture_of_a_periodic_lacuna():
    """The texture claim: the default composition copies texture into a 24 px lacuna of a
    periodic texture (gradient ratio 0.9-1.1); averaging labels (blend) smooths it below."""
    base = dict(patch_size=9, patch_step=3, use_context=False, passes=1)
    copied = _lacuna_gradient_ratio(MRFConfig(**base))
    assert MRFConfig().composition == "copy"
    assert 0.9 <= copied <= 1.1, copied
    blended = _lacuna_gradient_ratio(MRFConfig(composition="blend", soft_compose=True,
                                               temperature=1e4, **base))
    assert blended < copied - 0.1, (blended, copied)


def _grain_beside_flat_paint(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Grainy paint on the left half, flat paint of the same mean on the right; a 24-px
    lacuna inside the grain."""
    rng = np.random.default_rng(0)
    grain = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.7) * 0.25
    image = np.full((size, size, 3), 0.5, np.float32)
    image[:, :size // 2] += grain[:, :size // 2, None].astype(np.float32)
    hole = np.zeros((size, size), bool)
    hole[36:60, 12:36] = True
    return np.clip(image, 0, 1), hole


def test_texture_term_fills_a_grainy_lacuna_with_grain():
    """A smooth query (the pre-fill) finds smooth sources: without the unary's texture term the
    lacuna in the grain is filled from the flat half (measured gradient ratio 0.10); the term
    (``texture_weight`` 20) charges sources for missing the grain around the node (0.70)."""
    truth, hole = _grain_beside_flat_paint()
    filled = prefill(truth, hole, method="telea")
    inner = ndimage.binary_erosion(hole, iterations=3)

    def ratio(config):
        out = inpaint_mrf(filled, hole, None, config).image
        np.testing.assert_array_equal(out[~hole], filled[~hole])
        return float(_grey_gradient(out)[inner].mean() / _grey_gradient(truth)[inner].mean())

    with_term = ratio(MRFConfig(texture_weight=20.0))
    without = ratio(MRFConfig(texture_weight=0.0))
    assert with_term > 0.45, with_term
    assert without < 0.25, without


def test_fsr_prefill_fills_losses_that_cross_the_window_border():
    """FSR extrapolates from blocks around a loss and does badly on losses cut by the image
    border, which every work window has; the pre-fill mirrors the window first. Pinned on a
    window whose paint loss crosses its border: clearly better than FSR called directly."""
    import cv2
    import skimage.data

    from masks import PaintLossConfig, paint_loss_mask

    truth = skimage.data.astronaut()[100:260, 150:310]
    hole = paint_loss_mask(truth.shape[:2], PaintLossConfig(coverage=0.06, seed=0))
    assert hole[0].any() or hole[-1].any() or hole[:, 0].any() or hole[:, -1].any()
    damaged = truth.copy()
    damaged[hole] = 0
    filled = prefill(damaged.astype(np.float32) / 255, hole, method="fsr")
    np.testing.assert_array_equal(filled[~hole], damaged[~hole].astype(np.float32) / 255)
    direct = np.zeros_like(damaged)
    cv2.xphoto.inpaint(damaged, np.where(hole, 0, 255).astype(np.uint8), direct,
                       cv2.xphoto.INPAINT_FSR_FAST)

    def rms(values):
        return float(np.sqrt(np.mean((values - truth[hole].astype(np.float64)) ** 2)))
    ours, theirs = rms(filled[hole] * 255), rms(direct[hole])
    assert ours < 0.85 * theirs, (ours, theirs)   # measured about 19 against 25 (8-bit)


# --------------------------------------------------------------------------- wiring
def _wiring_case(seed: int = 0):
    from mrf.inference import NCMPResult
    from mrf.lattice import build_lattice

    rng = np.random.default_rng(seed)
    image = rng.random((36, 36, 3)).astype(np.float32)
    hole = np.zeros((36, 36), bool)
    hole[10:26, 8:20] = True
    hole[30, 3:33] = True
    lattice = build_lattice(hole, 7, 3)
    n, labels = lattice.n_nodes, 4
    kept_tops = rng.integers(0, 30, (n, labels))
    kept_lefts = rng.integers(0, 30, (n, labels))
    result = NCMPResult(labels=rng.integers(0, labels, n), beliefs=np.full((n, labels), 0.25),
                        iterations=1)
    order = rng.permutation(n)
    return image, hole, lattice, kept_tops, kept_lefts, result, order


def test_copy_pastes_ncmps_labels_in_pruning_order():
    """The inpainter's composition step pastes, per node, the label NCMP chose, nodes in the
    pruning order (most confident first), with the configured seams and crack width."""
    from mrf.inpainter import _compose

    image, hole, lattice, kept_tops, kept_lefts, result, order = _wiring_case()
    nodes = np.arange(lattice.n_nodes)
    chosen_tops, chosen_lefts = (kept_tops[nodes, result.labels],
                                 kept_lefts[nodes, result.labels])
    rank = np.empty(lattice.n_nodes, int)
    rank[order] = nodes
    expected, _ = _sequential_paste(image, hole, lattice.tops, lattice.lefts, chosen_tops,
                                    chosen_lefts, rank, 7)
    cfg = MRFConfig(patch_size=7, patch_step=3, seam_smooth=0, correction="none", crack_width=0.0,
                    **PLAIN)
    out = _compose(cfg, image, hole, lattice, kept_tops, kept_lefts, result, order)
    np.testing.assert_allclose(out[hole], expected[hole], atol=1e-5)
    # the crack width reaches compose: the rim keeps the pre-fill, the inside stays the copy
    cfg2 = MRFConfig(patch_size=7, patch_step=3, seam_smooth=0, correction="none", crack_width=2.0,
                     **PLAIN)
    out2 = _compose(cfg2, image, hole, lattice, kept_tops, kept_lefts, result, order)
    np.testing.assert_allclose(out2[hole], np.clip(crack_blend(
        expected[hole], image[hole], hole, 2.0), 0, 1), atol=1e-5)
    # and seam smoothing reaches it too
    cfg3 = MRFConfig(patch_size=7, patch_step=3, seam_smooth=1, correction="none", crack_width=0.0,
                     **PLAIN)
    assert np.abs(_compose(cfg3, image, hole, lattice, kept_tops, kept_lefts, result,
                           order) - out).max() > 1e-3


def test_blend_composition_also_keeps_the_crack_rim():
    from mrf.inpainter import _compose

    image, hole, lattice, kept_tops, kept_lefts, result, order = _wiring_case(1)
    cfg = MRFConfig(patch_size=7, patch_step=3, composition="blend", crack_width=2.0,
                    **PLAIN)
    out = _compose(cfg, image, hole, lattice, kept_tops, kept_lefts, result, order)
    rim = hole & (ndimage.distance_transform_edt(hole) <= 1.5)
    np.testing.assert_allclose(out[rim], image[rim], atol=1e-6)


def test_harmonic_correction_removes_a_brightness_offset_in_copy_mode():
    """Sources 0.2 brighter than the paint around the hole: the membrane brings the copy back
    to the surrounding level; without it the offset stays."""
    image = np.full((40, 40, 3), 0.5, np.float32)
    image[:, 30:] = 0.7                       # the brighter source area
    hole = np.zeros((40, 40), bool)
    hole[12:22, 8:18] = True
    tops, lefts = np.meshgrid(np.arange(8, 20, 3), np.arange(4, 16, 3), indexing="ij")
    tops, lefts = tops.ravel(), lefts.ravel()
    rank = np.arange(len(tops))
    kwargs = dict(composition="copy", rank=rank, seam_smooth=1)
    label_tops, label_lefts = tops, np.full(len(tops), 31)
    fixed = compose(image, hole, tops, lefts, label_tops, label_lefts, 9, **kwargs)
    raw = compose(image, hole, tops, lefts, label_tops, label_lefts, 9, correction="none",
                  **kwargs)
    assert np.abs(raw[hole] - 0.7).max() < 1e-5
    assert np.abs(fixed[hole] - 0.5).max() < 0.01


def _slow_texture_unary(image, hole, node_tops, node_lefts, missing, label_tops, label_lefts,
                        patch, fallbacks=None):
    """The texture term written out patch by patch (see ``texture_unary``); ``fallbacks``, a
    list, receives the nodes that had no known patch of their colour in reach."""
    from mrf.energy import DETAIL_FLOOR, TEXTURE_RANGE_SIGMA

    image = image.astype(np.float64)
    detail = ((image - ndimage.gaussian_filter(image, (1, 1, 0))) ** 2).sum(2)
    log_energy = np.log(detail + DETAIL_FLOOR)
    h, w = hole.shape
    radius = 2 * patch

    def log_detail(t, l):
        return log_energy[t:t + patch, l:l + patch].mean()

    def colour(t, l):
        return image[t:t + patch, l:l + patch].reshape(-1, 3).mean(0)

    # the fallback: plain Gaussian mean (sigma one patch) over the fully known patches
    corners = np.zeros((h - patch + 1, w - patch + 1))
    known = np.zeros_like(corners)
    for t in range(h - patch + 1):
        for l in range(w - patch + 1):
            corners[t, l] = log_detail(t, l)
            known[t, l] = not hole[t:t + patch, l:l + patch].any()
    plain_num = ndimage.gaussian_filter(corners * known, float(patch))
    plain_den = ndimage.gaussian_filter(known, float(patch))
    out = np.zeros(label_tops.shape)
    for i in range(len(node_tops)):
        if missing[i] == 0:
            continue
        t0, l0 = node_tops[i], node_lefts[i]
        num = den = 0.0
        for t in range(t0 - radius, t0 + radius + 1, 2):
            for l in range(l0 - radius, l0 + radius + 1, 2):
                if not (0 <= t <= h - patch and 0 <= l <= w - patch) or \
                        hole[t:t + patch, l:l + patch].any():
                    continue
                weight = (np.exp(-((t - t0) ** 2 + (l - l0) ** 2) / (2 * patch ** 2))
                          * np.exp(-((colour(t, l) - colour(t0, l0)) ** 2).sum()
                                   / (2 * TEXTURE_RANGE_SIGMA ** 2)))
                num, den = num + weight * log_detail(t, l), den + weight
        if den >= 1e-3:
            mean = num / den
        else:
            mean = plain_num[t0, l0] / plain_den[t0, l0]
            if fallbacks is not None:
                fallbacks.append(i)
        expected = np.sqrt(np.exp(mean))
        for k in range(label_tops.shape[1]):
            rms = np.sqrt(np.exp(log_detail(label_tops[i, k], label_lefts[i, k])))
            out[i, k] = missing[i] * (rms - expected) ** 2
    return out


def test_texture_unary_against_its_definition():
    """Per node: expected detail = exp of the cross-bilateral mean (distance of the top-left
    corners, mean colour of the patches; stride-2 offsets within two patches) of the log detail
    of the fully known patches, or their plain Gaussian mean where no known patch of the node's
    colour is in reach; per label: exp of its mean log detail energy; cost = missing * (rms -
    expected)^2."""
    from mrf.energy import texture_unary

    rng = np.random.default_rng(3)
    image = rng.random((48, 48, 3)).astype(np.float32)
    image[:, :24] = ndimage.gaussian_filter(image[:, :24], (3, 3, 0))   # smooth half
    image[36:, 36:] = [1.0, 0.0, 1.0]            # a colour found nowhere else, near a node
    hole = np.zeros((48, 48), bool)
    hole[20:30, 30:40] = True
    hole[34:, 34:] = True                         # the node at (40, 40) has no known patch
    patch = 7                                     # of its colour in reach: plain mean
    node_tops, node_lefts = np.array([18, 26, 5, 40]), np.array([30, 36, 3, 40])
    missing = np.array([25, 12, 0, 40])
    label_tops = rng.integers(0, 48 - patch, (4, 5))
    label_lefts = rng.integers(0, 48 - patch, (4, 5))
    args = (image, hole, node_tops, node_lefts, missing, label_tops, label_lefts, patch)
    fallbacks: list[int] = []
    expected = _slow_texture_unary(*args, fallbacks=fallbacks)
    assert fallbacks == [3]                       # both branches are exercised
    np.testing.assert_allclose(texture_unary(*args), expected, rtol=1e-6, atol=1e-12)
    # a textured node prefers a textured source to a smooth one
    textured_src = texture_unary(image, hole, node_tops[1:2], node_lefts[1:2], missing[1:2],
                                 np.array([[5, 5]]), np.array([[36, 5]]), patch)[0]
    assert textured_src[0] < textured_src[1]


def test_texture_unary_expects_the_detail_of_paint_of_the_nodes_colour():
    """A stroke of flat light paint through busy dark paint (the bridge of a nose between the
    eyes): a node in a lacuna of the stroke expects flat paint, so a flat source costs less than
    a busy one. A plain spatial average (the first texture term) is mostly of the busy paint
    and preferred the busy source: eyelash dashes on a nose."""
    from mrf.energy import texture_unary

    rng = np.random.default_rng(0)
    image = (0.15 + 0.3 * rng.random((64, 64, 1))).repeat(3, 2).astype(np.float32)   # busy
    image[:, 28:36] = 0.85                        # the light stroke
    hole = np.zeros((64, 64), bool)
    hole[20:44, 28:36] = True
    patch = 9
    costs = texture_unary(image, hole, np.array([28]), np.array([28]), np.array([72]),
                          np.array([[2, 2]]), np.array([[2, 28]]), patch)[0]
    busy_source, flat_source = costs
    assert flat_source < busy_source, costs


def test_texture_unary_on_a_straight_edge_prefers_a_straight_edge():
    """A lacuna on the straight edge of a flat square (a synthetic painting): the node expects
    the detail of the known *patches* of its colour, edge patches, so the same straight edge
    further along costs far less than a thin bar (two edges in one patch). Judged pixel by
    pixel (the term's second form) the node expected the detail of edge *pixels*, the bar won
    and the square's edge was bent."""
    from mrf.energy import texture_unary

    size, patch = 64, 9
    image = np.full((size, size, 3), 0.2, np.float32)
    image[20:44, 4:56] = [1.0, 0.85, 0.1]          # a flat yellow square on flat grey
    image[50:53, 20:40] = [1.0, 0.85, 0.1]         # a thin yellow bar
    hole = np.zeros((size, size), bool)
    hole[15:26, 18:30] = True                      # a lacuna on the square's top edge
    costs = texture_unary(image, hole, np.array([16]), np.array([20]), np.array([60]),
                          np.array([[16, 47]]), np.array([[36, 26]]), patch)[0]
    straight_edge, bar = costs
    assert straight_edge < 0.01 * bar, costs


def test_texture_unary_is_not_fooled_by_a_few_specks():
    """Fine grain around the node: a source of that grain beats a flat source holding two
    specks of the same mean detail energy (a plain mean of the energy, the first texture term,
    cannot tell them apart: specks in a black collar). The log energy's mean can."""
    from mrf.energy import detail_energy, texture_unary

    rng = np.random.default_rng(1)
    size, patch = 64, 9
    image = np.full((size, size, 3), 0.2, np.float32)
    image[:, :32] += (0.03 * rng.standard_normal((size, 32, 1))).astype(np.float32)
    specks = np.zeros((size, size), np.float32)
    specks[43, 47] = specks[46, 51] = 1.0
    unit = detail_energy(np.repeat(specks[:, :, None], 3, 2))[40:49, 45:54].sum()
    grain = detail_energy(image)[5:14, 5:14].sum()
    image += (np.sqrt(grain / unit) * specks)[:, :, None]   # specks of the grain's energy
    energy = detail_energy(image)
    assert energy[40:49, 45:54].sum() == pytest.approx(energy[5:14, 5:14].sum(), rel=0.05)
    hole = np.zeros((size, size), bool)
    hole[20:34, 10:24] = True
    costs = texture_unary(image, hole, np.array([22]), np.array([12]), np.array([70]),
                          np.array([[5, 40]]), np.array([[5, 45]]), patch)[0]
    grain_source, speck_source = costs
    assert grain_source < 0.25 * speck_source, costs


def test_run_options_reach_the_inpainter():
    """Each option of the texture work changes what ``run`` returns (pixel mode, small)."""
    import skimage.data

    from inpaint.pipeline import RunConfig, run

    image = skimage.data.astronaut()[200:264, 200:264].copy()
    mask = np.zeros(image.shape[:2], bool)
    mask[20:40, 18:42] = True
    mask[50, 4:60] = True
    base = dict(descriptor="none", workers=1)

    def result(**kw):
        return run(image, mask, RunConfig(**base, **kw)).image
    default = result()
    for change in (dict(composition="blend"), dict(prefill="telea"), dict(crack_width=0.0),
                   dict(texture_weight=100.0), dict(seam_smooth=0),
                   dict(structure_sigma=0.0), dict(structure_sigma=2.0),
                   dict(structure="prefill"), dict(structure="blend"),
                   dict(structure_match=1.0), dict(detail_gain=1.0),
                   dict(crack_fill="mean"), dict(crack_detail=0.0)):
        other = result(**change)
        assert np.array_equal(other[~mask], image[~mask])
        assert np.abs(other.astype(int) - default).max() > 0, change
    # the damp acts only where copies are busier than the paint around: not in that crop
    image = skimage.data.astronaut()[400:464, 400:464].copy()
    damped, undamped = result(), result(detail_damp=1.0)
    assert np.array_equal(undamped[~mask], image[~mask])
    assert np.abs(undamped.astype(int) - damped).max() > 0


def test_blend_skips_zero_weight_patches_with_an_unchanged_result(monkeypatch):
    """One-hot rows (nine zero weights of ten): only the weighted patches are cut and pasted,
    and the fill is bit for bit what pasting every patch (zeros included) gives."""
    import mrf.compose as compose_module

    image, hole, tops, lefts, lt, ll, _, patch = _random_case(7)
    _, owner = _sequential_paste(image, hole, tops, lefts, lt, ll, np.arange(len(tops)), patch)
    hole &= owner >= 0
    rng = np.random.default_rng(7)
    labels = 10
    node_tops, node_lefts = np.repeat(tops, labels), np.repeat(lefts, labels)
    label_tops = rng.integers(0, image.shape[0] - patch + 1, len(node_tops))
    label_lefts = rng.integers(0, image.shape[1] - patch + 1, len(node_tops))
    weights = rng.random((len(tops), labels))
    weights[::2] = np.eye(labels)[rng.integers(0, labels, len(weights[::2]))]   # one-hot rows
    weights = weights.ravel()
    pasted = []
    original = compose_module.blend_patches

    def counting(*args, **kwargs):
        pasted.append(len(args[1]))
        return original(*args, **kwargs)
    for correction in ("none", "harmonic"):
        # the reference pastes every patch, zero weights included
        blend, wsum = compose_module.blend_patches(image, node_tops, node_lefts, label_tops,
                                                   label_lefts, patch, patch_weights=weights)
        expected = blend[hole]
        if correction == "harmonic":
            residual = np.where(((wsum > 0) & ~hole)[:, :, None], image - blend, 0.0)
            expected = expected + compose_module.harmonic_extension(residual, hole)
        pasted.clear()
        monkeypatch.setattr(compose_module, "blend_patches", counting)
        out = compose(image, hole, node_tops, node_lefts, label_tops, label_lefts, patch,
                      patch_weights=weights, correction=correction)
        monkeypatch.setattr(compose_module, "blend_patches", original)
        assert pasted == [int((weights != 0).sum())] and pasted[0] < len(weights)
        np.testing.assert_array_equal(out[hole], np.clip(expected, 0, 1).astype(np.float32))
        np.testing.assert_array_equal(out[~hole], image[~hole])


def _texture_on_relief(size: int = 64):
    """A periodic texture (period 4) on a smooth, non-harmonic relief (a bright bump in the
    middle), the bump's low-pass, and a 30 px lacuna over the bump."""
    y, x = np.mgrid[:size, :size]
    texture = 0.12 * np.sign(np.sin(2 * np.pi * (x + 0.5) / 4) * np.sin(2 * np.pi * (y + 0.5) / 4))
    relief = 0.35 + 0.3 * np.exp(-((y - size / 2) ** 2 + (x - size / 2) ** 2) / (2 * 9.0 ** 2))
    truth = np.repeat((relief + texture)[:, :, None], 3, axis=2)
    hole = np.zeros((size, size), bool)
    hole[17:47, 17:47] = True
    return truth, texture, relief, hole


def test_structure_texture_takes_low_frequencies_from_the_structure_and_detail_from_copies():
    """Copies of the right texture pasted at the wrong brightness (the flat level around the
    bump): the split keeps their grain and takes the bump from the smooth structure, so the
    interior matches the truth in texture (gradient ratio 0.9-1.1) and in level; without it
    the bump is missing."""
    from mrf.compose import structure_texture

    truth, texture, relief, hole = _texture_on_relief()
    structure = np.repeat(ndimage.gaussian_filter(relief, 3.0)[:, :, None], 3, axis=2)
    copies = np.repeat((0.35 + texture)[:, :, None], 3, axis=2)   # texture, flat level
    fill = structure_texture(copies[hole], structure, hole, sigma=2.0)
    out = truth.copy()
    out[hole] = fill
    inner = ndimage.binary_erosion(hole, iterations=6)
    ratio = _grey_gradient(out)[inner].mean() / _grey_gradient(truth)[inner].mean()
    assert 0.9 <= ratio <= 1.1, ratio
    split_error = np.abs(out - truth)[inner].mean()
    copy_error = np.abs(copies - truth)[inner].mean()
    assert split_error < 0.3 * copy_error, (split_error, copy_error)
    # the structure alone is smooth: its texture is gone
    smooth = truth.copy()
    smooth[hole] = structure[hole]
    assert _grey_gradient(smooth)[inner].mean() < 0.5 * _grey_gradient(truth)[inner].mean()


def test_detail_gain_restores_the_grain_of_faint_copies():
    """Copies of the right texture at half its contrast: a gain of up to 2 raises their detail
    to the surrounding paint's (interior gradient ratio 0.9-1.1); gain 1 leaves it at ~0.5.
    Copies already as textured as the paint are left as they are."""
    from mrf.compose import structure_texture

    truth, texture, relief, hole = _texture_on_relief()
    structure = np.repeat(ndimage.gaussian_filter(relief, 3.0)[:, :, None], 3, axis=2)
    inner = ndimage.binary_erosion(hole, iterations=6)

    def ratio(copy_contrast, gain):
        copies = np.repeat((relief + copy_contrast * texture)[:, :, None], 3, axis=2)
        out = truth.copy()
        out[hole] = structure_texture(copies[hole], structure, hole, 2.0, truth, gain, 9.0)
        return _grey_gradient(out)[inner].mean() / _grey_gradient(truth)[inner].mean()
    assert 0.9 <= ratio(0.5, 2.0) <= 1.1
    assert ratio(0.5, 1.0) < 0.6
    assert 0.9 <= ratio(1.0, 2.0) <= 1.1     # never raised beyond the paint's own detail


def test_detail_damp_lowers_grain_copied_from_busier_paint():
    """Copies of the right texture at three times its contrast: damp 0.25 lowers their detail
    to the surrounding paint's (interior gradient ratio 0.9-1.1), damp 0.5 to 1.5 times it, damp
    1 leaves it at ~3; where ``keep`` is 1 (exact copies) the detail stays as copied."""
    from mrf.compose import structure_texture

    truth, texture, relief, hole = _texture_on_relief()
    structure = np.repeat(ndimage.gaussian_filter(relief, 3.0)[:, :, None], 3, axis=2)
    inner = ndimage.binary_erosion(hole, iterations=6)
    copies = np.repeat((relief + 3.0 * texture)[:, :, None], 3, axis=2)

    def ratio(damp, keep=None):
        out = truth.copy()
        out[hole] = structure_texture(copies[hole], structure, hole, 2.0, truth, 1.0, 9.0,
                                      damp, keep)
        return _grey_gradient(out)[inner].mean() / _grey_gradient(truth)[inner].mean()
    assert 0.9 <= ratio(0.25) <= 1.1
    assert 1.35 <= ratio(0.5) <= 1.65
    assert ratio(1.0) > 2.5
    assert ratio(0.25, np.ones(hole.shape)) > 2.5


def test_copies_of_different_brightness_leave_no_seam():
    """The two halves of a lacuna copied from the same fine grain at two levels (0.3 and 0.7;
    the pre-fill and the paint around at 0.5): below 1 px the fill is the pre-fill's, above it
    the sources' own detail, so the step between the halves does not show and the grain does.
    The composed copies' own detail (the split without the sources') keeps a seam."""
    from mrf.compose import structure_texture
    from mrf.lattice import build_lattice

    rng = np.random.default_rng(3)
    size, patch = 60, 7
    level = np.full((size, size), 0.5)
    level[:12], level[-12:] = 0.3, 0.7
    image = np.repeat((level + 0.02 * rng.standard_normal((size, size)))[:, :, None], 3, 2)
    hole = np.zeros((size, size), bool)
    hole[20:40, 18:42] = True
    image[hole] = 0.5                                   # a flat pre-fill
    lattice = build_lattice(hole, patch, 3)
    dark = lattice.lefts + patch // 2 < 30
    label_tops = np.where(dark, rng.integers(0, 6, lattice.n_nodes),
                          rng.integers(48, 54, lattice.n_nodes))
    label_lefts = rng.integers(0, size - patch + 1, lattice.n_nodes)
    args = (image, hole, lattice.tops, lattice.lefts, label_tops, label_lefts, patch)
    common = dict(composition="copy", rank=np.arange(lattice.n_nodes), correction="none")
    split = compose(*args, structure_sigma=1.0, **common)
    copy = compose(*args, **common)
    own = image.astype(np.float64)
    own[hole] = structure_texture(copy[hole].astype(np.float64), image, hole, 1.0)

    def largest_step(out):   # between neighbouring columns of the lacuna, rows averaged
        return np.abs(np.diff(out[20:40, 18:42].mean(axis=(0, 2)))).max()
    assert largest_step(copy) > 0.2                     # the copies: 0.3 | 0.7
    assert largest_step(own) > 0.06, largest_step(own)
    assert largest_step(split) < 0.03, largest_step(split)
    left, right = split[20:40, 18:28].mean(), split[20:40, 32:42].mean()
    assert abs(left - 0.5) < 0.02 and abs(right - 0.5) < 0.02, (left, right)
    grain = split - ndimage.gaussian_filter(split, (1.0, 1.0, 0))
    assert grain[22:38, 20:40].std() > 0.01             # the grain is kept
    np.testing.assert_array_equal(split[~hole], image.astype(np.float32)[~hole])


def test_crack_copy_takes_exact_copies_only_where_the_labels_agree():
    """A crack pixel takes its copy in proportion to the exact-copy share times
    exp(-gap / CRACK_AGREEMENT), gap = the squared colour distance of the copy to the label
    average; elsewhere the smooth crack fill."""
    from mrf.compose import CRACK_AGREEMENT, crack_copy

    copy = np.tile([0.2, 0.4, 0.6], (5, 1))
    thin = np.full((5, 3), 0.5)
    reference = copy.copy()
    reference[1] += 0.1                                  # the labels disagree
    reference[4, 0] += np.sqrt(CRACK_AGREEMENT)          # gap = the agreement scale
    share = np.array([1.0, 1.0, 0.0, 0.5, 1.0])
    out = crack_copy(copy, thin, reference, share)
    np.testing.assert_allclose(out[0], copy[0])
    np.testing.assert_allclose(out[1], thin[1], atol=1e-6)
    np.testing.assert_allclose(out[2], thin[2])
    np.testing.assert_allclose(out[3], 0.5 * (copy[3] + thin[3]))
    weight = np.exp(-1.0)
    np.testing.assert_allclose(out[4], weight * copy[4] + (1 - weight) * thin[4])


def test_crack_along_a_flat_colour_edge_is_rebuilt_from_exact_copies():
    """A 3-px crack along a straight edge between two flat colours (the edge inside the crack):
    the smooth pre-fill ramps across it; the default composition copies the edge back exactly
    from where it runs on (every exact copy agrees)."""
    truth = np.empty((64, 64, 3), np.float32)
    truth[:30] = [0.8, 0.3, 0.2]
    truth[30:] = [0.1, 0.2, 0.6]
    hole = np.zeros((64, 64), bool)
    hole[29:32, 14:50] = True
    filled = prefill(truth, hole, method="fsr")
    assert np.abs(filled - truth)[hole].max() > 0.1      # the pre-fill smears the edge
    out = inpaint_mrf(filled, hole, None, MRFConfig(use_context=False)).image
    np.testing.assert_allclose(out[hole], truth[hole], atol=2e-3)
    np.testing.assert_array_equal(out[~hole], filled[~hole])


def test_structure_and_crack_fill_reach_the_composition():
    """``structure="blend"``: the copy's low frequencies come from the label blend (the copy
    plus a Gaussian of blend - copy); ``crack_fill="mean"``: the crack rim holds the average of
    the pre-fill and the label blend; the detail gain reaches compose; only hole pixels change."""
    from mrf.compose import structure_texture
    from mrf.inpainter import _compose

    image, hole, lattice, kept_tops, kept_lefts, result, order = _wiring_case(2)
    base = dict(patch_size=7, patch_step=3, seam_smooth=0, correction="none", **PLAIN)

    def cfg(**change):
        return MRFConfig(**(base | change))
    copy = _compose(cfg(crack_width=0.0), image, hole, lattice, kept_tops,
                    kept_lefts, result, order)
    blend = _compose(cfg(composition="blend", crack_width=0.0), image, hole,
                     lattice, kept_tops, kept_lefts, result, order)
    split = _compose(cfg(crack_width=0.0, structure_sigma=1.5, structure="blend"),
                     image, hole, lattice, kept_tops, kept_lefts, result, order)
    # below 1.5 px the blend (the image outside the hole); above it the detail of the chosen
    # labels' sources (image minus the Gaussian mean of its known pixels), pasted like the
    # copies
    nodes = np.arange(lattice.n_nodes)
    rank = np.empty(lattice.n_nodes, int)
    rank[order] = nodes
    known = (~hole).astype(np.float64)
    detail_map = image - (
        ndimage.gaussian_filter(image * known[:, :, None], (1.5, 1.5, 0), mode="mirror")
        / ndimage.gaussian_filter(known, 1.5, mode="mirror")[:, :, None])
    pasted, _ = _sequential_paste(detail_map, hole, lattice.tops, lattice.lefts,
                                  kept_tops[nodes, result.labels],
                                  kept_lefts[nodes, result.labels], rank, 7)
    smooth = image.astype(np.float64)
    smooth[hole] = blend[hole]
    expected = ndimage.gaussian_filter(smooth, (1.5, 1.5, 0), mode="mirror")[hole] + pasted[hole]
    np.testing.assert_allclose(split[hole], np.clip(expected, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(split[~hole], image[~hole])
    # not the composed copy's own detail, which carries the steps between copies
    own = structure_texture(copy[hole].astype(np.float64), blend, hole, 1.5)
    assert np.abs(split[hole] - np.clip(own, 0, 1)).max() > 1e-2
    cracked = _compose(cfg(crack_width=2.0, crack_fill="mean"), image, hole,
                       lattice, kept_tops, kept_lefts, result, order)
    rim = hole & (ndimage.distance_transform_edt(hole) <= 1.5)
    np.testing.assert_allclose(cracked[rim], 0.5 * (image[rim] + blend[rim]), atol=1e-5)
    np.testing.assert_array_equal(cracked[~hole], image[~hole])
    # crack_detail: the rim also takes that share of the copy's grain above 1 px
    from mrf.compose import CRACK_DETAIL_SIGMA, detail_above
    grainy = _compose(cfg(crack_width=2.0, crack_fill="mean", crack_detail=0.5),
                      image, hole, lattice, kept_tops, kept_lefts, result, order)
    grain = detail_above(image, hole, copy[hole], CRACK_DETAIL_SIGMA)
    assert np.abs(grain[rim]).max() > 1e-2
    np.testing.assert_allclose(grainy[rim], np.clip(cracked[rim] + 0.5 * grain[rim], 0, 1),
                               atol=1e-5)
    np.testing.assert_array_equal(grainy[~hole], image[~hole])
    deep = hole & ~(ndimage.distance_transform_edt(hole) <= 2.5)   # lacuna: untouched
    np.testing.assert_allclose(grainy[deep], cracked[deep], atol=1e-6)
    gained = _compose(cfg(crack_width=0.0, structure_sigma=1.5, structure="blend",
                          detail_gain=2.0, detail_damp=0.0),
                      image, hole, lattice, kept_tops, kept_lefts, result, order)
    assert np.abs(gained - split).max() > 1e-3
    np.testing.assert_array_equal(gained[~hole], image[~hole])


@pytest.mark.parametrize("seed", [0, 1])
def test_structure_texture_against_its_definition(seed):
    """Colour channels that differ, a hole that touches two image edges, gain on and off: the
    fast split equals the per-channel reference (mirror edges, no blur across channels)."""
    from mrf_reference import structure_texture as reference

    from mrf.compose import structure_texture

    rng = np.random.default_rng(seed)
    image = rng.random((24, 20, 3))
    image[:, :, 1] *= np.linspace(0.2, 1.0, 20)   # channels differ in level and grain
    hole = np.zeros((24, 20), bool)
    hole[:9, 11:] = True                           # top-right corner
    hole[14:19, 3:8] = True
    structure = ndimage.gaussian_filter(rng.random((24, 20, 3)), (2, 2, 0))
    copies = rng.random((24, 20, 3)) * np.array([0.3, 0.6, 0.9])   # faint in some channels
    copies[:, 15:] *= 4.0     # stronger than the paint: the factor stays 1, or >= damp
    copies[14:, :] *= 0.02    # far fainter: the factor stops at the gain
    sources = rng.normal(0.0, 0.1, (int(hole.sum()), 3))    # a detail layer of the sources
    for gain, damp, detail in ((1.0, 1.0, None), (1.2, 1.0, None), (2.5, 0.5, None),
                               (1.0, 1.0, sources), (2.5, 0.0, sources)):
        got = structure_texture(copies[hole], structure, hole, 1.5, image, gain, 5.0, damp,
                                detail=detail)
        want = reference(copies[hole], structure, hole, 1.5, image, gain, 5.0, damp,
                         detail)[hole]
        np.testing.assert_allclose(got, want, atol=1e-10)
    assert np.abs(structure_texture(copies[hole], structure, hole, 1.5, image, 2.5, 5.0)
                  - structure_texture(copies[hole], structure, hole, 1.5, image, 1.0, 5.0)
                  ).max() > 1e-2   # the gain acts in this case


def test_compose_refuses_unknown_modes_and_missing_ranks():
    image, hole, tops, lefts, lt, ll, rank, patch = _random_case(0)
    args = (image, hole, tops, lefts, lt, ll, patch)
    with pytest.raises(ValueError, match=r"^correction must be one of \('harmonic', 'none'\)$"):
        compose(*args, correction="poisson")
    with pytest.raises(ValueError, match=r"^composition must be one of \('copy', 'blend'\)$"):
        compose(*args, composition="median")
    with pytest.raises(ValueError, match="^copy composition needs one rank per pasted patch$"):
        compose(*args, composition="copy", rank=rank[:-1])


@pytest.mark.parametrize("power, correction, sigma, gain, crack_width, crack_detail, weighted", [
    (1.0, "harmonic", 0.0, 1.0, 0.0, 0.0, False),
    (2.0, "none", 1.0, 1.5, 1.0, 0.0, False),
    (2.0, "harmonic", 0.8, 1.0, 2.0, 0.5, False),
    (2.0, "harmonic", 1.0, 1.0, 0.0, 0.0, True),
])
def test_blend_compose_against_its_definition(power, correction, sigma, gain, crack_width,
                                              crack_detail, weighted):
    """The whole blend path (tent power, harmonic correction whose hole touches pixels no patch
    covers, the split below 1 px with gain and the sources' detail averaged like the patches,
    cracks of width 1 and 2 with grain, weights per patch) against the written-out reference."""
    rng = np.random.default_rng(4)
    image = rng.random((26, 24, 3)).astype(np.float32)
    hole = np.zeros((26, 24), bool)
    hole[6:14, 5:12] = True
    hole[18, 3:21] = True
    patch = 5
    tops, lefts = np.meshgrid(np.arange(4, 14, 2), np.arange(3, 11, 2), indexing="ij")
    tops, lefts = np.r_[tops.ravel(), [16, 16, 16, 16]], np.r_[lefts.ravel(), [3, 7, 11, 15]]
    tops, lefts = np.r_[tops, [16, 16]], np.r_[lefts, [17, 19]]   # (18, 2) is not covered
    lt = rng.integers(0, 26 - patch + 1, len(tops))
    ll = rng.integers(0, 24 - patch + 1, len(tops))
    crack_fill = rng.random(image.shape)
    weights = rng.uniform(0.2, 2.0, len(tops)) if weighted else None
    got = compose(image, hole, tops, lefts, lt, ll, patch, power=power, correction=correction,
                  composition="blend", structure_sigma=sigma, detail_gain=gain,
                  crack_width=crack_width, crack_fill=crack_fill, crack_detail=crack_detail,
                  patch_weights=weights)
    want = ref.compose_blend(image, hole, tops, lefts, lt, ll, patch, power,
                             correction == "harmonic", sigma, gain, crack_width, crack_fill,
                             crack_detail, weights)
    np.testing.assert_allclose(got[hole], want, rtol=0, atol=2e-6)
    assert np.array_equal(got[~hole], image[~hole])


def test_compose_refuses_a_missing_pixel_that_no_patch_covers():
    image, hole, tops, lefts, lt, ll, rank, patch = _random_case(0)
    hole = hole.copy()
    hole[-1, -1] = True   # the random nodes leave the last corner uncovered
    assert not any(t + patch == hole.shape[0] and l + patch == hole.shape[1]
                   for t, l in zip(tops, lefts))
    with pytest.raises(RuntimeError,
                       match="^some missing pixels are covered by no node; lattice bug$"):
        compose(image, hole, tops, lefts, lt, ll, patch, composition="copy", rank=rank)


def test_blend_weights_each_kept_label_by_its_ncmp_belief():
    """``--composition blend`` (and the label average under the default split and crack
    fill): every kept label pasted with its NCMP belief, except that mostly-missing nodes take
    their chosen label alone; against the pixel-by-pixel average with those weights."""
    from mrf.inference import NCMPResult
    from mrf.inpainter import _compose

    image, hole, lattice, kept_tops, kept_lefts, result, order = _wiring_case(2)
    rng = np.random.default_rng(7)
    n, labels = kept_tops.shape
    beliefs = rng.dirichlet(np.full(labels, 0.5), n)      # far from uniform
    result = NCMPResult(labels=result.labels, beliefs=beliefs, iterations=1)
    cfg = MRFConfig(patch_size=7, patch_step=3, composition="blend", correction="none",
                    crack_width=0.0, **PLAIN)
    mostly = lattice.missing > cfg.mostly_missing_fraction * 49
    assert 0 < mostly.sum() < n                          # both kinds of node occur
    weights = np.where(mostly[:, None], np.eye(labels)[result.labels], beliefs)
    want, _ = ref.blend(image, np.repeat(lattice.tops, labels), np.repeat(lattice.lefts, labels),
                        kept_tops.ravel(), kept_lefts.ravel(), 7, cfg.blend_power,
                        weights.ravel())
    out = _compose(cfg, image, hole, lattice, kept_tops, kept_lefts, result, order)
    np.testing.assert_allclose(out[hole], np.clip(want[hole], 0, 1), atol=1e-5)


def test_harmonic_extension_against_its_definition_with_holes_on_every_border():
    """Dirichlet data from known 4-neighbours, natural (Neumann) image borders: holes touching
    the four sides and a corner, against the written-out linear system."""
    from mrf.compose import harmonic_extension

    rng = np.random.default_rng(11)
    values = rng.random((14, 17, 2))
    hole = np.zeros((14, 17), bool)
    hole[0:3, 4:9] = True        # top
    hole[6:9, 0:2] = True        # left
    hole[10:14, 12:17] = True    # bottom-right corner
    hole[5, 14:17] = True        # right
    got = harmonic_extension(values, hole)
    np.testing.assert_allclose(got, ref.harmonic(values, hole), rtol=0, atol=1e-7)


def test_first_owner_on_a_tall_image_is_sequential_pasting():
    """Height above width (the flat pixel index must span H x W, not W x W)."""
    rng = np.random.default_rng(12)
    image = rng.random((40, 12, 3)).astype(np.float32)
    patch = 5
    tops, lefts = rng.integers(0, 36, 25), rng.integers(0, 8, 25)
    hole = np.zeros((40, 12), bool)
    for t, left in zip(tops, lefts):
        hole[t + 1:t + 4, left + 1:left + 4] = True
    rank = rng.permutation(25)
    _, owner = _sequential_paste(image, hole, tops, lefts, tops, lefts, rank, patch)
    owned = first_owner(tops, lefts, rank, patch, hole.shape)
    for node in range(25):
        mine = owner[tops[node]:tops[node] + patch, lefts[node]:lefts[node] + patch] == node
        assert np.array_equal(owned[node] & mine, mine)
    assert owned.sum() == np.count_nonzero(np.bincount(
        (tops[:, None] + np.arange(patch)).repeat(patch, 1).ravel() * 12
        + np.tile(lefts[:, None] + np.arange(patch), patch).ravel()))


def _slow_match_weight(shape, node_tops, node_lefts, ssd, known, patch, scale):
    """``match_weight`` written out: every node's fit, weighted by its known share and a
    Gaussian of one patch (scipy's: truncated at 4 sigma, zero outside the image) around its
    centre, averaged at every pixel."""
    radius = int(4.0 * patch + 0.5)
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2.0 * patch ** 2))
    taps /= taps.sum()
    num, den = np.zeros(shape), np.zeros(shape)
    for t, l, s, k in zip(node_tops, node_lefts, ssd, known):
        cy, cx = t + patch // 2, l + patch // 2
        fit = np.exp(-(s / max(k, 1.0)) / scale)
        for y in range(shape[0]):
            for x in range(shape[1]):
                dy, dx = y - cy, x - cx
                if abs(dy) <= radius and abs(dx) <= radius:
                    g = taps[dy + radius] * taps[dx + radius] * k / patch ** 2
                    num[y, x] += g * fit
                    den[y, x] += g
    return np.where(den > 1e-9, num / np.maximum(den, 1e-12), 0.0)


def test_match_weight_against_its_definition():
    from mrf.compose import match_weight

    rng = np.random.default_rng(5)
    patch, shape = 5, (30, 40)
    tops, lefts = rng.integers(0, 26, 12), rng.integers(0, 36, 12)
    tops[1], lefts[1] = tops[0], lefts[0]           # two nodes on one centre add up
    known = rng.integers(0, 26, 12).astype(float)
    known[2] = 0                                     # a node with no known pixel says nothing
    ssd = rng.random(12) * 0.05 * known
    weight = match_weight(shape, tops, lefts, ssd, known, patch, 1e-3)
    np.testing.assert_allclose(weight, _slow_match_weight(shape, tops, lefts, ssd, known, patch,
                                                          1e-3), atol=1e-10)
    assert weight.min() >= 0 and weight.max() <= 1


def _squares_and_noise(size: int = 72):
    """Left: flat squares on a flat ground (paint that repeats exactly); right: noise (no source
    fits it)."""
    rng = np.random.default_rng(2)
    image = np.empty((size, size, 3), np.float32)
    image[:] = [0.2, 0.2, 0.22]
    for top in (6, 30, 54):
        image[top:top + 12, 8:26] = [0.95, 0.8, 0.1]
    # (a minority of the pixels: the noise estimate, a median, sees the flat paint's)
    image[:, 44:] = 0.5 + 0.25 * rng.uniform(-1, 1, (size, size - 44, 3))
    hole = np.zeros((size, size), bool)
    hole[26:38, 12:22] = True          # on the top edge of the middle square
    hole[30:42, 50:62] = True          # in the noise
    return image, hole


def test_adaptive_structure_copies_where_paint_repeats_and_keeps_the_prefill_where_not():
    """Where exact sources exist (the square's edge) the copied structure rebuilds the edge
    that the smooth pre-fill blurs, and adaptive takes it; where no source fits (noise) adaptive
    keeps the pre-fill's low frequencies: its fill there is the "prefill" structure's."""
    truth, hole = _squares_and_noise()
    filled = prefill(truth, hole, method="fsr")
    square, noise = hole.copy(), hole.copy()
    square[:, 36:] = False
    noise[:, :36] = False

    def fill(structure):
        cfg = MRFConfig(structure=structure, structure_sigma=1.0, crack_fill="prefill",
                        crack_detail=0.0, use_context=False)
        out = inpaint_mrf(filled, hole, None, cfg).image
        np.testing.assert_array_equal(out[~hole], filled[~hole])
        return out

    blend, pre, adaptive = fill("blend"), fill("prefill"), fill("adaptive")

    def error(out):
        return float(((out - truth)[square] ** 2).mean())

    assert error(pre) > 2 * error(blend), (error(pre), error(blend))   # the pre-fill blurs
    assert error(adaptive) <= 1.1 * error(blend) + 1e-6, (error(adaptive), error(blend))
    assert np.abs(blend - pre)[noise].max() > 0.05
    assert np.abs(adaptive - pre)[noise].max() < 0.02 * np.abs(blend - pre)[noise].max()


def test_adaptive_structure_passes_its_scales_and_the_noise_floor(monkeypatch):
    """The fit of the chosen labels is judged at ``structure_match`` above the noise floor (twice
    the known paint's noise variance per channel), the exact-copy share at ``EXACT_MATCH``
    with no floor: a scale off by any factor changes which paint counts as fitting."""
    import mrf.inpainter as inpainter
    from mrf.compose import match_weight, noise_variance

    truth, hole = _squares_and_noise()
    truth = truth + np.random.default_rng(6).normal(0, 0.01, truth.shape).astype(np.float32)
    filled = prefill(np.clip(truth, 0, 1), hole, method="fsr")
    calls = []

    def recording(*args):
        calls.append(args[6:])
        return match_weight(*args)

    monkeypatch.setattr(inpainter, "match_weight", recording)
    inpaint_mrf(filled, hole, None, MRFConfig(structure_match=0.0123, use_context=False))
    floor = 2.0 * 3 * noise_variance(filled, hole)
    assert floor > 0
    assert calls == [(0.0123, pytest.approx(floor)), (inpainter.EXACT_MATCH,)]


def test_noise_variance_of_white_noise_and_of_a_plane():
    from mrf.compose import noise_variance

    rng = np.random.default_rng(4)
    y, x = np.mgrid[:80, :80]
    plane = np.repeat((0.2 + 0.003 * y + 0.002 * x)[:, :, None], 3, 2)
    hole = np.zeros((80, 80), bool)
    hole[30:50, 30:50] = True
    assert noise_variance(plane, hole) == pytest.approx(0.0, abs=1e-12)
    noisy = plane + rng.normal(0, 0.02, plane.shape)
    noisy[hole] = 5.0                           # missing pixels are never read
    assert noise_variance(noisy, hole) == pytest.approx(0.02 ** 2, rel=0.1)
