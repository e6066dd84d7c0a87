"""The fast MRF core against slow, obvious reference implementations (tests/mrf_reference.py).

Random small cases, several seeds, with nodes on the image borders (flush with the bottom and
right edges, so their lattice offsets are shorter than the step) and nodes whose patch is all
missing. Each test also checks that its case can tell a broken stage from a working one (e.g.
that neighbour updates change the kept labels), so it cannot pass vacuously.
"""

from __future__ import annotations

from dataclasses import dataclass

import mrf_reference as ref
import numpy as np
import pytest
import torch
from hardware import cuda_devices

from mrf import MRFConfig, PixelField, build_context, build_lattice, inpaint_mrf, prefill
from mrf.candidates import BlockIndex, SearchConfig, candidate_set, shortlist
from mrf.context import ContextConfig
from mrf.energy import calibrate_scale, edge_pairwise, masked_ssd, strip_ssd, uncertainty_threshold
from mrf.inference import ncmp, prune_labels
from mrf.inpainter import single_block_context
from mrf.lattice import Lattice

SEEDS = [0, 1, 2, 3]
# NCMP runs on the torch device of the run: every device of this machine is checked
DEVICES = ["cpu"] + [f"cuda:{k}" for k in range(cuda_devices())]


@dataclass
class Scene:
    image: np.ndarray       # (H, W, 3) float32
    hole: np.ndarray        # (H, W) bool
    lattice: Lattice
    label_tops: np.ndarray  # (N, S)
    label_lefts: np.ndarray
    count: np.ndarray       # (N,) distinct labels before cyclic padding
    patch: int


def _known_positions(hole: np.ndarray, patch: int) -> np.ndarray:
    h, w = hole.shape
    return np.array([(t, l) for t in range(h - patch + 1) for l in range(w - patch + 1)
                     if not hole[t:t + patch, l:l + patch].any()])


def _scene(seed: int, n_labels: int = 6, patch: int = 7, step: int = 3) -> Scene:
    """Random image with a square lacuna (big enough for all-missing nodes), a loss in the
    bottom-right corner and one touching the left edge; labels are random fully known patches,
    some nodes with fewer distinct labels than slots (padded cyclically, as the shortlist does)."""
    rng = np.random.default_rng(seed)
    h, w = 38 + seed % 3, 41 + seed % 2      # sides not on the step grid: flush border nodes
    # smooth-ish noise, so distances between patches spread over a useful range
    image = rng.random((h, w, 3)).astype(np.float32)
    image = 0.5 * image + 0.5 * np.roll(image, 1, axis=1)
    hole = np.zeros((h, w), bool)
    t, l = rng.integers(6, 12), rng.integers(6, 14)
    hole[t:t + 13, l:l + 13] = True
    hole[h - 3:, w - 4:] = True
    hole[25:27, 0:2] = True
    lattice = build_lattice(hole, patch, step)
    known = _known_positions(hole, patch)
    n = lattice.n_nodes
    count = rng.integers(2, n_labels + 1, n)
    count[rng.random(n) < 0.5] = n_labels
    pick = np.stack([rng.choice(len(known), n_labels, replace=False) for _ in range(n)])
    cyclic = np.arange(n_labels)[None, :] % count[:, None]
    pick = np.take_along_axis(pick, cyclic, 1)
    return Scene(image, hole, lattice, known[pick, 0], known[pick, 1], count, patch)


def _reference_unary(s: Scene) -> np.ndarray:
    lat = s.lattice
    return np.array([[ref.masked_ssd(s.image, s.hole, (lat.tops[i], lat.lefts[i]),
                                     (s.label_tops[i, j], s.label_lefts[i, j]), s.patch)
                      for j in range(s.label_tops.shape[1])] for i in range(lat.n_nodes)])


# -- masked SSD -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_masked_ssd_matches_the_per_pixel_definition_on_lattice_nodes(seed):
    s = _scene(seed)
    lat = s.lattice
    want = _reference_unary(s)
    all_missing = lat.missing == s.patch ** 2
    assert all_missing.any() and (~all_missing).any()
    assert np.all(want[all_missing] == 0.0)    # nothing known: no evidence
    got = masked_ssd(s.image, s.hole, lat.tops, lat.lefts, s.label_tops, s.label_lefts,
                     s.patch, chunk=5)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_masked_ssd_on_a_grey_image():
    """Single-band (H, W) images: the same definition, one value per pixel."""
    s = _scene(1)
    grey = s.image.mean(2)
    lat = s.lattice
    want = np.array([[ref.masked_ssd(grey, s.hole, (lat.tops[i], lat.lefts[i]),
                                     (s.label_tops[i, j], s.label_lefts[i, j]), s.patch)
                      for j in range(s.label_tops.shape[1])] for i in range(lat.n_nodes)])
    got = masked_ssd(grey, s.hole, lat.tops, lat.lefts, s.label_tops, s.label_lefts, s.patch)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)


# -- pairwise strips --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_edge_pairwise_matches_the_overlap_of_patches_placed_at_the_two_nodes(seed):
    s = _scene(seed, n_labels=3)
    lat = s.lattice
    # the fast code trusts the lattice offsets: they must be b's corner minus a's
    pos = np.stack([lat.tops, lat.lefts], 1)
    assert np.array_equal(lat.offsets, pos[lat.edges[:, 1]] - pos[lat.edges[:, 0]])
    steps = set(map(tuple, lat.offsets.tolist()))
    assert {(3, 0), (0, 3)} <= steps and len(steps) > 2, "need flush border nodes too"
    got = edge_pairwise(s.image, lat.edges, lat.offsets, s.label_tops, s.label_lefts, s.patch)
    # small chunks: the edges of one offset are split over several batches
    chunked = edge_pairwise(s.image, lat.edges, lat.offsets, s.label_tops, s.label_lefts,
                            s.patch, chunk=3)
    assert np.array_equal(chunked, got)
    for e, (a, b) in enumerate(lat.edges):
        for x in range(3):
            for y in range(3):
                want = ref.overlap_ssd(s.image, (lat.tops[a], lat.lefts[a]),
                                       (s.label_tops[a, x], s.label_lefts[a, x]),
                                       (lat.tops[b], lat.lefts[b]),
                                       (s.label_tops[b, y], s.label_lefts[b, y]), s.patch)
                assert got[e, x, y] == pytest.approx(want, rel=1e-4, abs=1e-3), (e, x, y)


@pytest.mark.parametrize("offset", [(1, 0), (4, 0), (6, 0), (0, 1), (0, 3), (0, 6)])
def test_strip_ssd_matches_the_per_pixel_overlap(offset):
    """Patches cut from an image at random corners and placed at two nodes ``offset`` apart;
    also with the patches' roles exchanged, which must transpose nothing but the result."""
    rng = np.random.default_rng(sum(offset))
    image = rng.random((20, 20, 3)).astype(np.float32)
    patch = 7
    corners_a = rng.integers(0, 14, (3, 2))
    corners_b = rng.integers(0, 14, (4, 2))
    cut = lambda c: np.stack([image[t:t + patch, l:l + patch] for t, l in c])
    got = strip_ssd(cut(corners_a), cut(corners_b), offset)
    assert got.shape == (3, 4)
    for i, ca in enumerate(corners_a):
        for j, cb in enumerate(corners_b):
            want = ref.overlap_ssd(image, (0, 0), tuple(ca), offset, tuple(cb), patch)
            assert got[i, j] == pytest.approx(want, rel=1e-4, abs=1e-4)


# -- pruning ----------------------------------------------------------------------------------

def _prune_inputs(seed: int):
    s = _scene(seed)
    rng = np.random.default_rng(100 + seed)
    unary = _reference_unary(s)
    # context weights 1 - exp(-(d + Tb)) for d in [0, 1]; padded labels share their weight
    weight = rng.uniform(0.14, 0.68, unary.shape)
    cyclic = np.arange(unary.shape[1])[None, :] % s.count[:, None]
    weight = np.take_along_axis(weight, cyclic, 1)
    return s, unary, weight


@pytest.mark.parametrize("cached", ["all", "frontier", "none"])
@pytest.mark.parametrize("seed", SEEDS)
def test_prune_labels_matches_the_greedy_reference(seed, cached):
    s, unary, weight = _prune_inputs(seed)
    lat, n_keep, threshold = s.lattice, 3, 2.0
    args = (s.image, lat.tops, lat.lefts, s.label_tops, s.label_lefts, unary, weight, s.count,
            lat.edges, n_keep, threshold, s.patch)
    want_keep, want_order = ref.prune(*args)
    # label pixels cut once up front; or per node, kept until its commit; or at each use
    cache = {"all": 1 << 30, "frontier": unary.size * s.patch * s.patch * 3 * 4 - 1, "none": 0}
    got = prune_labels(*args, cache_bytes=cache[cached])
    assert got.order.tolist() == want_order
    got_pos = [list(zip(np.take(s.label_tops[i], got.keep[i]).tolist(),
                        np.take(s.label_lefts[i], got.keep[i]).tolist()))
               for i in range(lat.n_nodes)]
    assert got_pos == want_keep

    # the case is discriminating: raster order is not the priority order, and neighbour
    # updates change which labels are kept (the unary alone would keep others)
    assert want_order != sorted(want_order)
    unary_only = [[(int(s.label_tops[i, l]), int(s.label_lefts[i, l]))
                   for l in np.argsort(weight[i] * unary[i], kind="stable")[:n_keep]]
                  for i in range(lat.n_nodes)]
    assert unary_only != want_keep


def test_prune_labels_keeps_the_best_labels_first_and_all_when_fewer_than_asked():
    """No edges: pruning is a per-node sort of w * V, best first; asking for more labels than
    a node has keeps them all."""
    s, unary, weight = _prune_inputs(5)
    lat = s.lattice
    none = np.empty((0, 2), np.int64)
    n_labels = unary.shape[1]
    for n_keep in (2, n_labels, n_labels + 3):
        got = prune_labels(s.image, lat.tops, lat.lefts, s.label_tops, s.label_lefts, unary,
                           weight, s.count, none, n_keep, 2.0, s.patch)
        assert got.keep.shape == (lat.n_nodes, min(n_keep, n_labels))
        for i in range(lat.n_nodes):
            d = weight[i] * unary[i]
            assert np.all(np.diff(d[got.keep[i]]) >= 0)
            assert d[got.keep[i]].max() <= np.delete(d, got.keep[i]).min(initial=np.inf)


# -- NCMP -------------------------------------------------------------------------------------

def _grid_mrf(seed: int, rows: int = 3, cols: int = 4, n_labels: int = 4):
    """Random MRF on a grid lattice with a few nodes removed (irregular neighbourhoods).
    Pairwise costs comparable to the unaries, so neighbours change some decisions."""
    rng = np.random.default_rng(seed)
    present = rng.random((rows, cols)) > 0.15
    index = np.full((rows, cols), -1)
    index[present] = np.arange(present.sum())
    edges, vertical = [], []
    for r in range(rows):
        for c in range(cols):
            if not present[r, c]:
                continue
            if r + 1 < rows and present[r + 1, c]:
                edges.append((index[r, c], index[r + 1, c]))
                vertical.append(True)
            if c + 1 < cols and present[r, c + 1]:
                edges.append((index[r, c], index[r, c + 1]))
                vertical.append(False)
    edges = np.array(edges, np.int64).reshape(-1, 2)
    vertical = np.array(vertical, bool)
    n = int(present.sum())
    unary = rng.random((n, n_labels)) * 3.0
    unary[rng.integers(0, n)] = 0.0          # an all-missing node: no evidence of its own
    pairwise = rng.random((len(edges), n_labels, n_labels)) * 2.0
    return unary, pairwise, edges, vertical


@pytest.mark.parametrize("temperature,weight", [(1.0, 1.0), (0.5, 1.0), (2.0, 0.7)])
@pytest.mark.parametrize("seed", SEEDS)
def test_ncmp_matches_the_node_by_node_reference(seed, temperature, weight):
    unary, pairwise, edges, vertical = _grid_mrf(seed)
    want_labels, want_beliefs, want_iters, want_energies = ref.ncmp(
        unary, pairwise, edges, 10, temperature, weight)
    for device in DEVICES:
        got = ncmp(unary, pairwise, edges, iterations=10, temperature=temperature,
                   pairwise_weight=weight, device=device)
        assert np.array_equal(got.labels, want_labels)
        assert np.allclose(got.beliefs, want_beliefs, atol=1e-10)
        assert got.iterations == want_iters
        assert np.allclose(got.energies, want_energies)


def test_ncmp_reference_cases_are_discriminating():
    """Over the seeds above, the neighbours' messages change labels, summing differs from the
    last-neighbour bug, and final beliefs are not one-hot: otherwise the comparison above
    could not see a message dropped, a sum replaced by the last term, or uniform beliefs."""
    moved = differs = soft = 0
    for seed in SEEDS:
        unary, pairwise, edges, vertical = _grid_mrf(seed)
        labels, beliefs, *_ = ref.ncmp(unary, pairwise, edges, 10)
        last, *_ = ref.ncmp(unary, pairwise, edges, 10, message="last", vertical=vertical)
        moved += int(np.any(labels != unary.argmin(1)))
        differs += int(np.any(labels != last))
        soft += int(np.any((beliefs > 1e-3) & (beliefs < 1 - 1e-3)))
    assert moved >= 2 and differs >= 1 and soft >= 2


@pytest.mark.parametrize("seed", SEEDS)
def test_ncmp_last_neighbour_mode_matches_the_reference(seed):
    unary, pairwise, edges, vertical = _grid_mrf(seed)
    want_labels, want_beliefs, want_iters, _ = ref.ncmp(
        unary, pairwise, edges, 10, message="last", vertical=vertical)
    got = ncmp(unary, pairwise, edges, iterations=10, message="last", vertical=vertical)
    assert np.array_equal(got.labels, want_labels)
    assert np.allclose(got.beliefs, want_beliefs, atol=1e-10)
    assert got.iterations == want_iters


def test_ncmp_without_early_stop_runs_every_iteration():
    unary, pairwise, edges, _ = _grid_mrf(7)
    want_labels, want_beliefs, want_iters, _ = ref.ncmp(unary, pairwise, edges, 6,
                                                        early_stop=False)
    got = ncmp(unary, pairwise, edges, iterations=6, early_stop=False)
    assert got.iterations == want_iters == 6
    assert np.array_equal(got.labels, want_labels)
    assert np.allclose(got.beliefs, want_beliefs, atol=1e-10)


# -- context weights and the candidate search -------------------------------------------------

def _two_texture_scene(seed: int = 0):
    """Left and right halves with different random periodic textures, a lacuna on the seam:
    the context splits the halves, so nodes search several blocks with different errors."""
    rng = np.random.default_rng(seed)
    a = np.tile(rng.random((6, 6, 3)), (16, 16, 1))
    b = np.tile(rng.random((4, 4, 3)) * 0.5 + 0.25, (24, 24, 1))
    image = np.concatenate([a[:, :48], b[:96, :48]], 1).astype(np.float32)
    hole = np.zeros((96, 96), bool)
    hole[40:54, 38:60] = True
    hole[0:3, 80:85] = True                  # touching the top border
    filled = prefill(image, hole)
    context = build_context(filled, hole, ContextConfig())
    return filled, hole, context


def test_context_weights_come_from_each_labels_block_error():
    image, hole, context = _two_texture_scene()
    patch, tb = 7, 0.15
    lattice = build_lattice(hole, patch, 3)
    cands = candidate_set(hole, context, patch, 1)
    field = PixelField(image, hole, patch)
    labels = shortlist(field, lattice, cands, context, 8, match_threshold=tb)
    errors = []
    for i in range(lattice.n_nodes):
        for j in range(labels.ids.shape[1]):
            block = int(cands.block[labels.ids[i, j]])
            err = ref.context_error(context, lattice.tops[i], lattice.lefts[i], patch, block)
            assert np.isfinite(err), "a label outside the node's matched blocks"
            assert labels.weight[i, j] == pytest.approx(1.0 - np.exp(-(err + tb)), abs=1e-12)
            errors.append(err)
    # the weights must vary for the comparison to see them ignored
    assert len(set(np.round(errors, 9))) > 2 and max(errors) > 0.01


def _search_scene(seed: int):
    rng = np.random.default_rng(seed)
    image = rng.random((64, 64, 3)).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[20:30, 25:33] = True
    hole[60:, 0:5] = True
    return image, hole


@pytest.mark.parametrize("seed", [0, 1])
def test_ivf_search_with_every_cell_probed_equals_exact_flat_search(seed):
    """IndexIVFFlat probing all its cells scans every candidate: same shortlist as the exact
    flat index. Also through chunked indexes (max_index_size), merged per node."""
    image, hole = _search_scene(seed)
    patch = 5
    lattice = build_lattice(hole, patch, 2)
    context = single_block_context(hole.shape)
    cands = candidate_set(hole, context, patch, 1)
    field = PixelField(image, hole, patch)
    flat = shortlist(field, lattice, cands, context, 6, search=SearchConfig())
    ivf_cfg = SearchConfig(ivf_threshold=100, probe_fraction=1.0)
    chunked = SearchConfig(ivf_threshold=100, probe_fraction=1.0, max_index_size=1500)
    vectors = field.describe(cands.tops, cands.lefts).numpy()
    assert len(cands) > 2000 and BlockIndex(vectors, ivf_threshold=100).kind == "ivf"
    for cfg in (ivf_cfg, chunked):
        got = shortlist(field, lattice, cands, context, 6, search=cfg)
        assert np.array_equal(np.sort(got.ids, 1), np.sort(flat.ids, 1))
        assert np.allclose(got.distance, flat.distance, rtol=1e-5, atol=1e-6)
    # the flat shortlist itself is the true top 6 by plain descriptor distance
    queries = field.describe(lattice.tops, lattice.lefts).numpy()
    brute = ((queries[:, None] - vectors[None]) ** 2).sum(-1)
    assert np.array_equal(np.sort(flat.ids, 1), np.sort(np.argsort(brute, 1)[:, :6], 1))


def test_block_index_ivf_all_cells_equals_brute_force():
    rng = np.random.default_rng(5)
    base = rng.random((3000, 16)).astype(np.float32)
    queries = rng.random((25, 16)).astype(np.float32)
    index = BlockIndex(base, ivf_threshold=1000, probe_fraction=1.0)
    assert index.kind == "ivf"
    dist, idx = index.search(queries, 5)
    brute = ((queries[:, None] - base[None]) ** 2).sum(-1)
    assert np.array_equal(np.sort(idx, 1), np.sort(np.argsort(brute, 1)[:, :5], 1))
    assert np.allclose(dist, np.take_along_axis(brute, idx, 1), rtol=1e-4)


# -- unary="field" calibration ----------------------------------------------------------------

def test_calibrate_scale_is_the_ratio_of_medians():
    rng = np.random.default_rng(0)
    field_d = rng.random(101) * 7
    pixel = rng.random(101) * 2
    assert calibrate_scale(field_d, pixel) == pytest.approx(
        sorted(pixel)[50] / sorted(field_d)[50])
    assert calibrate_scale(np.zeros(5), pixel[:5]) == 1.0   # degenerate field: no rescaling
    # descriptor distances below 1 (e.g. unit-norm codes) are rescaled all the same
    assert calibrate_scale(field_d / 100, pixel) == pytest.approx(
        100 * sorted(pixel)[50] / sorted(field_d)[50])


class _ScaledField:
    """Pixel descriptors times ``factor`` behind the bare PatchField interface (not a
    PixelField, so the inpainter takes the unary='field' path and calibrates): distances are
    factor^2 times the masked pixel SSD."""

    def __init__(self, image, hole, patch: int, factor: float):
        self.inner = PixelField(image, hole, patch)
        self.patch_size, self.dim, self.factor = patch, self.inner.dim, factor

    def describe(self, *args, **kwargs) -> torch.Tensor:
        return self.inner.describe(*args, **kwargs) * self.factor


def test_field_unary_is_calibrated_into_pixel_ssd_units():
    """A field whose distances are 16x the masked pixel SSD must be scaled by 1/16: the
    thresholds and temperatures of the MRF are in pixel-SSD units. Same fill as pixel unaries
    then (the shortlists are the same; only float rounding differs)."""
    image, hole = _search_scene(3)
    filled = prefill(image, hole)
    cfg = MRFConfig(patch_size=7, patch_step=3, passes=2, unary="field")

    def scaled(img):
        return _ScaledField(img, hole, 7, factor=4.0)

    field_run = inpaint_mrf(filled, hole, scaled, cfg)
    pixel_run = inpaint_mrf(filled, hole, None, cfg)
    scales = [p["unary_scale"] for p in field_run.stats["passes"]]
    assert scales == pytest.approx([1 / 16] * len(scales), rel=1e-4)
    assert np.abs(field_run.image - pixel_run.image).max() < 1e-5


def test_nodes_whose_matched_blocks_hold_no_candidate_search_the_whole_image():
    """Block 1 (right half) is matched only to itself and its candidates are all under the
    hole: its nodes fall back to every candidate, with context error 1 (the largest chi-square
    distance), so weight 1 - exp(-(1 + Tb)); their labels are the true top k overall."""
    from mrf.context import Context

    rng = np.random.default_rng(0)
    image = rng.random((30, 40, 3)).astype(np.float32)
    hole = np.zeros((30, 40), bool)
    hole[:, 22:] = True
    hole[4:8, 8:12] = True
    block_map = np.zeros((30, 40), np.int32)
    block_map[:, 20:] = 1
    context = Context(blocks=np.array([[0, 0, 30, 20], [0, 20, 30, 40]]), block_map=block_map,
                      histograms=np.ones((2, 1)), known_fraction=np.array([0.9, 0.1]),
                      matches=[np.array([0]), np.array([1])],
                      match_errors=[np.array([0.0]), np.array([0.0])])
    patch, tb = 5, 0.15
    lattice = build_lattice(hole, patch, 2)
    cands = candidate_set(hole, context, patch, 1)
    assert np.all(cands.block == 0)
    field = PixelField(image, hole, patch)
    labels = shortlist(field, lattice, cands, context, 4, match_threshold=tb)
    queries = field.describe(lattice.tops, lattice.lefts).numpy()
    vectors = field.describe(cands.tops, cands.lefts).numpy()
    brute = ((queries[:, None] - vectors[None]) ** 2).sum(-1)
    orphans = [i for i in range(lattice.n_nodes)
               if ref.corner_blocks(block_map, lattice.tops[i], lattice.lefts[i], patch) == {1}]
    assert orphans and len(orphans) < lattice.n_nodes
    for i in range(lattice.n_nodes):
        assert set(labels.ids[i]) == set(np.argsort(brute[i])[:4])   # one block or all: same
        want = 1.0 - np.exp(-((1.0 if i in orphans else 0.0) + tb))
        assert np.allclose(labels.weight[i], want)


def test_ncmp_defaults_and_argument_checks():
    unary, pairwise, edges, vertical = _grid_mrf(2)
    # ten iterations by default (research notes, section 6) when early stopping is off
    assert ncmp(unary, pairwise, edges, early_stop=False).iterations == 10
    with pytest.raises(ValueError, match=r"^message must be 'sum' or 'last'$"):
        ncmp(unary, pairwise, edges, message="first")
    needs = r"^message='last' needs the edge directions \(vertical\)$"
    with pytest.raises(ValueError, match=needs):
        ncmp(unary, pairwise, edges, message="last")
    # no iteration: the unary's choice, one-hot, and the energy of that labelling alone
    zero = ncmp(unary, pairwise, edges, iterations=0)
    want = ref.ncmp(unary, pairwise, edges, 0)
    assert zero.iterations == 0 and np.array_equal(zero.labels, unary.argmin(1))
    assert np.array_equal(zero.beliefs, want[1]) and np.allclose(zero.energies, want[3])


def test_ncmp_without_edges_keeps_each_nodes_best_unary():
    """Isolated nodes (a lattice of one-node losses): no message, each node takes its best
    unary label; the energy is the sum of the best unaries, before and after."""
    unary = np.random.default_rng(0).random((5, 3))
    no_edges = np.empty((0, 2), np.int64)
    got = ncmp(unary, np.empty((0, 3, 3)), no_edges, iterations=3)
    assert np.array_equal(got.labels, unary.argmin(1))
    assert np.allclose(got.energies, unary.min(1).sum())
    want = ref.ncmp(unary, np.empty((0, 3, 3)), no_edges, 3)
    assert np.allclose(got.beliefs, want[1], atol=1e-12)


def test_priority_uncertain_set_is_strictly_below_the_threshold():
    """U = #{l : D(l) - min D < T_unc} (strict, research notes 4.1), priority = count / U.
    Node 0: D = (0, 2, 5), count 3, T = 2 -> U = 1, priority 3; node 1: D = (0, 5, 7),
    count 2 -> U = 1, priority 2: node 0 is committed first. Counting D - min D <= T would
    give node 0 priority 1.5 and reverse the order."""
    image = np.zeros((10, 10, 3), np.float32)
    unary = np.array([[0.0, 2.0, 5.0], [0.0, 5.0, 7.0]])
    got = prune_labels(image, np.array([0, 0]), np.array([0, 5]), np.zeros((2, 3), np.int64),
                       np.zeros((2, 3), np.int64), unary, np.ones((2, 3)), np.array([3, 2]),
                       np.empty((0, 2), np.int64), 1, 2.0, 3)
    assert got.order.tolist() == [0, 1]
    want = ref.prune(image, [0, 0], [0, 5], np.zeros((2, 3), int), np.zeros((2, 3), int),
                     unary, np.ones((2, 3)), [3, 2], np.empty((0, 2), int), 1, 2.0, 3)
    assert want[1] == [0, 1]


def test_prune_labels_cuts_label_pixels_once_when_they_fit_the_cache(monkeypatch):
    """Documented memory/speed contract: all label pixels are cut in one go when
    N * S * P * P * C * 4 bytes <= cache_bytes (the bound included); below that, each node's
    labels are cut once (kept from first use to the node's commit) while the kept ones fit,
    and at each use when nothing fits (cache_bytes=0); given ``patches`` are used as they are.
    The result is the same every way."""
    import mrf.inference as inference
    from patches import extract_patches

    s, unary, weight = _prune_inputs(0)
    lat = s.lattice
    args = (s.image, lat.tops, lat.lefts, s.label_tops, s.label_lefts, unary, weight, s.count,
            lat.edges, 3, 2.0, s.patch)
    size = unary.size * s.patch * s.patch * 3 * 4
    per_node = size // lat.n_nodes
    calls = []
    real = inference._cut
    monkeypatch.setattr(inference, "_cut", lambda *a: calls.append(np.shape(a[1])) or real(*a))
    results = {}
    cases = {"fits": dict(cache_bytes=size), "too big": dict(cache_bytes=size - 1),
             "one node": dict(cache_bytes=per_node), "none": dict(cache_bytes=0),
             "given": dict(patches=extract_patches(s.image, s.label_tops, s.label_lefts,
                                                   s.patch))}
    for name, kwargs in cases.items():
        calls.clear()
        results[name] = prune_labels(*args, **kwargs)
        if name == "fits":
            assert calls == [s.label_tops.shape]
        elif name == "given":
            assert calls == []
        elif name == "too big":   # every node cut exactly once: all its labels or its kept
            assert len(calls) == lat.n_nodes and s.label_tops.shape not in calls
        else:                     # some nodes cut again for every committed neighbour
            assert len(calls) > lat.n_nodes and s.label_tops.shape not in calls
    assert len(results) == len(cases)
    for r in results.values():
        assert np.array_equal(r.keep, results["fits"].keep)
        assert np.array_equal(r.order, results["fits"].order)


def test_prune_labels_breaks_ties_by_shortlist_position():
    """Labels of equal distance (shortlist padding repeats labels; flat areas give equal
    SSDs) keep their shortlist order: the earlier one is kept, as the greedy reference does.
    64 labels, so numpy's default (unstable) sort would differ."""
    rng = np.random.default_rng(0)
    unary = rng.integers(0, 4, (3, 64)).astype(np.float64)
    image = np.zeros((12, 12, 3), np.float32)
    zeros = np.zeros((3, 64), np.int64)
    got = prune_labels(image, np.zeros(3, np.int64), np.arange(3) * 4, zeros, zeros, unary,
                       np.ones((3, 64)), np.full(3, 64), np.empty((0, 2), np.int64), 20, 1.0, 3)
    for i in range(3):
        want = sorted(range(64), key=lambda l: (unary[i, l], l))[:20]
        assert got.keep[i].tolist() == want


def test_prune_labels_reports_progress_once_per_node():
    s, unary, weight = _prune_inputs(1)
    lat = s.lattice
    events = []

    class Bar:
        def __init__(self, total, desc):
            events.append(("open", total, desc))

        def update(self, n):
            events.append(("update", n))

        def close(self):
            events.append(("close",))

    prune_labels(s.image, lat.tops, lat.lefts, s.label_tops, s.label_lefts, unary, weight,
                 s.count, lat.edges, 3, 2.0, s.patch, progress=Bar)
    assert events == ([("open", lat.n_nodes, "label pruning")]
                      + [("update", 1)] * lat.n_nodes + [("close",)])


def test_uncertainty_threshold_is_the_authors_value_scaled_by_patch_area():
    """T_unc = 4.6854 exp(-2 Tb) = 3.47 for Tb = 0.15 and 13x13 patches (research notes 4.1,
    section 6); SSDs grow with the number of pixels, so other patch sizes scale by area."""
    assert uncertainty_threshold(0.15, 13) == pytest.approx(3.4710, abs=1e-4)
    assert uncertainty_threshold(0.15, 7) == pytest.approx(3.4710 * 49 / 169, abs=1e-4)
    assert uncertainty_threshold(0.0, 13) == pytest.approx(4.6854)


def test_shortlist_with_fewer_candidates_than_slots_pads_cyclically():
    """Four fully known patches, six slots: every node lists all four (count 4) and repeats
    two of them to fill its row, sorted by the exact masked distance."""
    rng = np.random.default_rng(2)
    image = rng.random((9, 17, 3)).astype(np.float32)
    hole = np.zeros((9, 17), bool)
    hole[:, 5:] = True
    hole[2:7, 12:17] = False                 # a second known area, one patch wide
    hole[0:2, 0:5] = True
    patch = 5
    lattice = build_lattice(hole, patch, 2)
    context = single_block_context(hole.shape)
    cands = candidate_set(hole, context, patch, 1)
    known = _known_positions(hole, patch)
    n = len(known)
    assert len(cands) == n == 4
    labels = shortlist(PixelField(image, hole, patch), lattice, cands, context, n + 2)
    assert np.all(labels.count == n)
    for i in range(lattice.n_nodes):
        pos = list(zip(labels.tops[i].tolist(), labels.lefts[i].tolist()))
        assert set(pos) == set(map(tuple, known.tolist()))
        want = sorted(ref.masked_ssd(image, hole, (lattice.tops[i], lattice.lefts[i]), p, patch)
                      for p in pos)
        assert np.allclose(labels.distance[i], want, rtol=1e-5, atol=1e-6)
        assert sorted(pos.count(p) for p in set(pos)) == [1] * (n - 2) + [2, 2]


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_candidate_set_is_every_known_patch_on_the_stride_grid_with_its_centre_block(stride):
    image, hole, context = _two_texture_scene()
    patch = 7
    cands = candidate_set(hole, context, patch, stride)
    want = {(int(t), int(l)) for t, l in _known_positions(hole, patch)
            if t % stride == 0 and l % stride == 0}
    got = list(zip(cands.tops.tolist(), cands.lefts.tolist()))
    assert set(got) == want and len(got) == len(want) and cands.stride == stride
    for (t, l), b in zip(got, cands.block.tolist()):
        assert b == context.block_map[t + patch // 2, l + patch // 2]
    assert np.all(np.diff(cands.block) >= 0)   # grouped by block for the per-block indexes
    assert len(set(cands.block.tolist())) > 2


def _node_labels(seed: int, n: int, with_patches: bool):
    from mrf.candidates import NodeLabels

    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, (n, 4))
    return NodeLabels(ids=ids, tops=ids + 1, lefts=ids + 2, distance=rng.random((n, 4)),
                      weight=rng.random((n, 4)), count=np.full(n, 4),
                      patches=rng.random((n, 4, 3, 3, 3)) if with_patches else None)


def test_node_labels_replace_rows_moves_every_field_and_drops_patches_it_cannot_update():
    """Later passes re-search some nodes: their rows, and their cut label pixels when both
    sides have them, replace the old ones; otherwise the (now stale) pixel cache is dropped."""
    rows = np.array([1, 3])
    for self_p, other_p in [(True, True), (True, False), (False, True), (False, False)]:
        base, other = _node_labels(0, 5, self_p), _node_labels(1, 2, other_p)
        before = _node_labels(0, 5, self_p)
        base.replace_rows(rows, other)
        for name in ("ids", "tops", "lefts", "distance", "weight", "count"):
            got, old, new = (getattr(x, name) for x in (base, before, other))
            assert np.array_equal(got[rows], new)
            assert np.array_equal(np.delete(got, rows, 0), np.delete(old, rows, 0))
        if self_p and other_p:
            assert np.array_equal(base.patches[rows], other.patches)
            assert np.array_equal(np.delete(base.patches, rows, 0),
                                  np.delete(before.patches, rows, 0))
        else:
            assert base.patches is None


def test_shortlist_without_any_known_patch_says_why():
    hole = np.ones((20, 20), bool)
    hole[0:3, 0:3] = False
    context = single_block_context(hole.shape)
    field = PixelField(np.zeros((20, 20, 3), np.float32), hole, 5)
    with pytest.raises(ValueError, match=r"^no fully known patch exists to copy from: the mask "
                                         r"leaves too few known pixels for this patch size$"):
        shortlist(field, build_lattice(hole, 5, 2), candidate_set(hole, context, 5, 1),
                  context, 4)


@pytest.mark.parametrize("shape, patch, step", [((30, 26), 7, 3), ((9, 16), 9, 1),
                                                ((23, 23), 5, 4), ((12, 40), 9, 8)])
def test_build_lattice_matches_its_definition(shape, patch, step):
    """Grid (the far border included), nodes with one missing pixel or more, their counts and
    both kinds of edge, against the cell-by-cell reference; a side equal to the patch works."""
    rng = np.random.default_rng(sum(shape) + patch)
    hole = rng.random(shape) < 0.03
    hole[0, 0] = hole[-1, -1] = True           # both far corners: node 0 and the last node
    lat = build_lattice(hole, patch, step)
    tops, lefts, missing, edges = ref.lattice(hole, patch, step)
    assert np.array_equal(lat.tops, tops) and np.array_equal(lat.lefts, lefts)
    assert np.array_equal(lat.missing, missing) and (lat.patch, lat.step) == (patch, step)
    got = {(int(a), int(b), int(dy), int(dx)) for (a, b), (dy, dx) in zip(lat.edges, lat.offsets)}
    assert got == edges and len(lat.edges) == len(edges)
    assert lat.edges.dtype == np.int64 and lat.offsets.dtype == np.int64


def test_build_lattice_refuses_steps_outside_the_patch_and_small_images():
    hole = np.zeros((20, 20), bool)
    hole[5, 5] = True
    assert build_lattice(hole, 7, 1).n_nodes > 0            # the smallest step is allowed
    for step in (0, 7, 8):
        with pytest.raises(ValueError, match=rf"^step must lie in \(0, patch=7\), got {step}$"):
            build_lattice(hole, 7, step)
    with pytest.raises(ValueError, match=r"^image side 6 is smaller than the patch \(7\)$"):
        build_lattice(np.zeros((6, 20), bool), 7, 3)
