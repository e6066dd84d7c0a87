"""Candidate search (mrf/candidates.py) against slow references, piece by piece.

Each case is built so that the detail it checks matters: per-pixel random block maps (a corner
one pixel off lands in another block), distances one float32 ulp apart, nodes with a single
candidate, re-ranking split over several chunks. Written against the survivors of
`make mutation MUTANTS='mrf.candidates*'`.
"""

from __future__ import annotations

import faiss
import mrf_reference as ref
import numpy as np
import pytest
import torch

from mrf import PixelField, build_lattice
from mrf.candidates import (
    BlockIndex,
    SearchConfig,
    _exact_distances,
    _node_distance_keys,
    _top_per_node,
    candidate_set,
    node_block_pairs,
    shortlist,
)
from mrf.context import Context
from mrf.inpainter import single_block_context


def _random_context(shape: tuple[int, int], n_blocks: int, seed: int) -> Context:
    """Every pixel in a random block; each block matched to a few random blocks with random
    errors (duplicates across corner blocks, so the smallest error must win)."""
    rng = np.random.default_rng(seed)
    block_map = rng.integers(0, n_blocks, shape).astype(np.int32)
    matches, errors = [], []
    for b in range(n_blocks):
        m = np.unique(np.r_[b, rng.choice(n_blocks, 3, replace=False)])
        matches.append(m)
        errors.append(np.where(m == b, 0.0, rng.random(len(m))))
    return Context(blocks=np.zeros((n_blocks, 4), int), block_map=block_map,
                   histograms=np.ones((n_blocks, 1)), known_fraction=np.ones(n_blocks),
                   matches=matches, match_errors=errors)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_node_block_pairs_are_the_matches_of_the_four_corner_blocks(seed):
    hole = np.zeros((40, 45), bool)
    hole[10:30, 12:35] = True
    lattice = build_lattice(hole, 7, 3)
    context = _random_context(hole.shape, 12, seed)
    nodes, blocks, errs = node_block_pairs(lattice, context)
    assert np.all(np.diff(nodes) >= 0)                       # grouped by node, in node order
    got = {(int(n), int(b)): float(e) for n, b, e in zip(nodes, blocks, errs)}
    assert len(got) == len(nodes)                            # one entry per (node, block)
    want = {}
    for i in range(lattice.n_nodes):
        t, l = int(lattice.tops[i]), int(lattice.lefts[i])
        for c in ref.corner_blocks(context.block_map, t, l, 7):
            for b, e in zip(context.matches[c].tolist(), context.match_errors[c].tolist()):
                want[(i, b)] = min(e, want.get((i, b), np.inf))
    assert got.keys() == want.keys()
    assert np.allclose([got[k] for k in want], [want[k] for k in want])


def test_node_distance_keys_order_by_node_then_distance_to_the_last_bit():
    one = np.float32(1.0)
    up = np.nextafter(one, np.float32(2))                   # one ulp above 1
    dist = np.array([up, one, 0.0, -one, np.float32(3.5), one], np.float32)
    node = np.array([0, 0, 0, 0, 1, 1])
    order = np.argsort(_node_distance_keys(node, dist), kind="stable")
    assert order.tolist() == [3, 2, 1, 0, 5, 4]
    # float64 distances (exact re-ranking) order the same way, as float32
    order64 = np.argsort(_node_distance_keys(node, dist.astype(np.float64)), kind="stable")
    assert order64.tolist() == order.tolist()


def test_top_per_node_keeps_the_best_k_and_repeats_a_lone_candidate():
    node = np.array([1, 0, 0, 0, 1, 0])
    ids = np.array([10, 11, 12, 14, 15, 16])
    dist = np.array([0.3, 0.9, 0.1, 0.4, 0.2, 0.7], np.float32)
    got_ids, got_err, count = _top_per_node(node, ids, dist, ids / 100.0, 2, 3)
    assert count.tolist() == [3, 2]
    assert got_ids.tolist() == [[12, 14, 16], [15, 10, 15]]    # best first, cyclic padding
    assert np.allclose(got_err, got_ids / 100.0)
    lone_ids, _, lone_count = _top_per_node(np.array([0, 1, 1]), np.array([5, 6, 7]),
                                            np.array([1.0, 2.0, 1.0], np.float32),
                                            np.zeros(3), 2, 4)
    assert lone_count.tolist() == [1, 2]
    assert lone_ids.tolist() == [[5, 5, 5, 5], [7, 6, 7, 6]]


def test_top_per_node_keeps_ties_in_search_order_on_large_inputs():
    """Equal distances keep the order FAISS returned them in (deterministic output); checked
    on an input big enough for numpy to leave insertion sort."""
    rng = np.random.default_rng(0)
    n = 20_000
    node = rng.integers(0, 50, n)
    dist = rng.integers(0, 3, n).astype(np.float32)
    ids = np.arange(n)
    got, _, _ = _top_per_node(node, ids, dist, np.zeros(n), 50, 8)
    for i in range(50):
        sel = np.flatnonzero(node == i)
        want = sel[np.lexsort((sel, dist[sel]))][:8]
        assert got[i].tolist() == want.tolist()


def test_exact_distances_in_chunks_equal_the_per_pair_masked_ssd():
    rng = np.random.default_rng(4)
    image = rng.random((30, 32, 3)).astype(np.float32)
    hole = np.zeros((30, 32), bool)
    hole[8:20, 9:22] = True
    patch = 5
    lattice = build_lattice(hole, patch, 2)
    context = single_block_context(hole.shape)
    cands = candidate_set(hole, context, patch, 1)
    ids = rng.integers(0, len(cands), (lattice.n_nodes, 3))
    field = PixelField(image, hole, patch)
    whole = _exact_distances(field, lattice, cands, ids)
    chunked = _exact_distances(field, lattice, cands, ids, chunk_pairs=7)   # 2 nodes a chunk
    assert lattice.n_nodes > 10 and chunked.dtype == np.float64
    assert np.allclose(chunked, whole, rtol=1e-6)
    for i in range(lattice.n_nodes):
        for j in range(3):
            want = ref.masked_ssd(image, hole, (lattice.tops[i], lattice.lefts[i]),
                                  (cands.tops[ids[i, j]], cands.lefts[ids[i, j]]), patch)
            assert chunked[i, j] == pytest.approx(want, rel=1e-5, abs=1e-6)


def _ivf_reference(vectors: np.ndarray, queries: np.ndarray, k: int, probe_fraction: float):
    """The IVF index as BlockIndex documents it, built by hand: sqrt(n)/2 cells, k-means on a
    seeded sample of 40 vectors per cell drawn without replacement, 10 iterations, seed 0,
    probing max(4, round(probe_fraction * nlist)) cells."""
    n, dim = vectors.shape
    nlist = int(np.sqrt(n) / 2)
    quantiser = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(quantiser, dim, nlist)
    index.cp.niter = 10
    index.cp.seed = 0
    sample = vectors[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
    index.train(sample)
    index.nprobe = max(4, int(round(probe_fraction * nlist)))
    index.add(vectors)
    return index.search(queries, k), nlist, index.nprobe


@pytest.mark.parametrize("probe_fraction", [0.0625, 0.25])
def test_block_index_ivf_is_the_documented_index(probe_fraction):
    """Same cells, same training sample, same probes as documented: identical approximate
    results (a probe of few cells makes every parameter visible in the output)."""
    rng = np.random.default_rng(1)
    centres = rng.random((40, 8)).astype(np.float32) * 4
    vectors = (centres[rng.integers(0, 40, 6000)]
               + rng.normal(0, 0.3, (6000, 8))).astype(np.float32)
    queries = rng.random((200, 8)).astype(np.float32) * 4
    (want_d, want_i), nlist, nprobe = _ivf_reference(vectors, queries, 5, probe_fraction)
    index = BlockIndex(vectors, ivf_threshold=5000, probe_fraction=probe_fraction)
    assert index.kind == "ivf" and index._index.nlist == nlist == 38
    assert index._index.nprobe == nprobe
    got_d, got_i = index.search(queries.astype(np.float64), 5)
    assert np.array_equal(got_i, want_i) and np.allclose(got_d, want_d)
    # the approximation is real: exact search differs somewhere (so the pin is not vacuous)
    brute = np.argsort(((queries[:, None] - vectors[None]) ** 2).sum(-1), 1)[:, :5]
    assert not np.array_equal(np.sort(got_i, 1), np.sort(brute, 1))


def test_block_index_defaults_and_flat_up_to_the_threshold():
    rng = np.random.default_rng(2)
    at = rng.random((20_000, 4)).astype(np.float32)
    assert BlockIndex(at).kind == "flat"                     # n == threshold: still exact
    assert BlockIndex(at[:101], ivf_threshold=100).kind == "ivf"
    above = np.concatenate([at, at[:1] + 0.5])
    index = BlockIndex(above)
    assert index.kind == "ivf"
    assert index._index.nlist == int(np.sqrt(20_001) / 2)
    assert index._index.nprobe == max(4, round(0.0625 * int(np.sqrt(20_001) / 2)))


def test_search_config_defaults():
    assert SearchConfig() == SearchConfig(ivf_threshold=20_000, probe_fraction=0.0625,
                                          max_index_size=131_072, use_gpu=False)


class _Spy:
    """A PixelField that records FAISS's thread count whenever the search asks for
    descriptors."""

    def __init__(self, image, hole, patch):
        self.inner = PixelField(image, hole, patch)
        self.patch_size, self.dim = patch, self.inner.dim
        self.threads: list[int] = []

    def describe(self, *args, **kwargs) -> torch.Tensor:
        self.threads.append(faiss.omp_get_max_threads())
        return self.inner.describe(*args, **kwargs)


def _small_search(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((24, 26, 3)).astype(np.float32)
    hole = np.zeros((24, 26), bool)
    hole[8:15, 9:17] = True
    patch = 5
    context = single_block_context(hole.shape)
    return image, hole, patch, build_lattice(hole, patch, 2), context, \
        candidate_set(hole, context, patch, 1)


def test_shortlist_runs_faiss_single_threaded_and_reports_progress():
    image, hole, patch, lattice, context, cands = _small_search()
    spy = _Spy(image, hole, patch)
    calls = []

    def progress(steps, desc):
        calls.append((len(steps), desc))
        return steps

    before = faiss.omp_get_max_threads()
    shortlist(spy, lattice, cands, context, 4, progress=progress)
    assert spy.threads and set(spy.threads) == {1}
    assert faiss.omp_get_max_threads() == before
    assert calls == [(1, "candidate search")]


def test_shortlist_weights_use_the_authors_match_threshold_by_default():
    image, hole, patch, lattice, context, cands = _small_search()
    field = PixelField(image, hole, patch)
    labels = shortlist(field, lattice, cands, context, 4)
    assert np.allclose(labels.weight, 1.0 - np.exp(-0.15))   # one block: context error 0
    other = shortlist(field, lattice, cands, context, 4, match_threshold=0.5)
    assert np.allclose(other.weight, 1.0 - np.exp(-0.5))


def test_shortlist_reranks_with_the_given_exact_distance_and_keeps_its_pixels_in_order():
    """A custom exact distance (here: minus the column, so leftmost is worst) decides the
    order; label pixels it returns travel with their labels."""
    image, hole, patch, lattice, context, cands = _small_search(1)
    field = PixelField(image, hole, patch)

    def exact(tops, lefts):
        pixels = np.stack([image[t:t + patch, l:l + patch]
                           for t, l in zip(tops.ravel(), lefts.ravel())])
        return -lefts.astype(np.float64) - tops / 100.0, pixels.reshape(
            tops.shape + (patch, patch, 3))

    labels = shortlist(field, lattice, cands, context, 5, exact=exact)
    assert np.all(np.diff(labels.distance, axis=1) >= 0)
    assert np.allclose(labels.distance, -labels.lefts - labels.tops / 100.0)
    assert labels.patches is not None
    for i in range(lattice.n_nodes):
        for j in range(5):
            t, l = labels.tops[i, j], labels.lefts[i, j]
            assert np.array_equal(labels.patches[i, j], image[t:t + patch, l:l + patch])
    plain = shortlist(field, lattice, cands, context, 5)
    assert plain.patches is None
    assert not np.array_equal(plain.ids, labels.ids)


def test_shortlist_passes_the_index_settings_to_every_block_index(monkeypatch):
    import mrf.candidates as candidates_module

    image, hole, patch, lattice, context, cands = _small_search()
    seen = []

    class Recording(BlockIndex):
        def __init__(self, vectors, **kwargs):
            seen.append(kwargs)
            super().__init__(vectors, **kwargs)

    monkeypatch.setattr(candidates_module, "BlockIndex", Recording)
    cfg = SearchConfig(ivf_threshold=123, probe_fraction=0.5, max_index_size=200)
    shortlist(PixelField(image, hole, patch), lattice, cands, context, 4, search=cfg)
    assert len(seen) == -(-len(cands) // 200) > 1             # one index per chunk
    assert all(s["ivf_threshold"] == 123 and s["probe_fraction"] == 0.5 for s in seen)


def test_shortlist_with_a_single_candidate_gives_it_to_every_node():
    rng = np.random.default_rng(3)
    image = rng.random((12, 12, 3)).astype(np.float32)
    hole = np.ones((12, 12), bool)
    hole[0:5, 0:5] = False
    context = single_block_context(hole.shape)
    cands = candidate_set(hole, context, 5, 1)
    assert len(cands) == 1
    labels = shortlist(PixelField(image, hole, 5), build_lattice(hole, 5, 2), cands, context, 3)
    assert np.all(labels.ids == 0) and np.all(labels.count == 1)


def test_candidate_set_keeps_row_major_order_inside_each_block():
    """Stable grouping by block: within a block, candidates stay in row-major order (the
    IVF sample and tie order depend on it), on a set large enough for numpy's non-stable
    sort to reorder."""
    hole = np.zeros((120, 130), bool)
    hole[40:60, 50:70] = True
    block_map = np.random.default_rng(0).integers(0, 3, hole.shape).astype(np.int32)
    context = Context(blocks=np.zeros((3, 4), int), block_map=block_map,
                      histograms=np.ones((3, 1)), known_fraction=np.ones(3),
                      matches=[np.arange(3)] * 3, match_errors=[np.zeros(3)] * 3)
    cands = candidate_set(hole, context, 5, 1)
    assert len(cands) > 10_000
    for b in range(3):
        sel = cands.block == b
        key = cands.tops[sel] * 1000 + cands.lefts[sel]
        assert np.all(np.diff(key) > 0)
