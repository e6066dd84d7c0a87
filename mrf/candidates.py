"""Candidate labels of every node: context-restricted FAISS search, then exact masked re-ranking.

Candidates are the fully known patches on a grid of stride ``stride``; each belongs to the block
holding its centre. A node searches, with its (pre-filled) descriptor, one FAISS index per block
matched to the blocks under its corners; the merged shortlist is re-ranked by the exact distance
on the node's known support (``field.describe`` under the node's mask).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from .context import Context
from .field import PatchField
from .lattice import Lattice, missing_counts
from .threads import faiss_threads


@dataclass
class CandidateSet:
    """All candidate patches of an image: top-left corners and the block of each."""

    tops: np.ndarray     # (M,)
    lefts: np.ndarray    # (M,)
    block: np.ndarray    # (M,)
    stride: int

    def __len__(self) -> int:
        return len(self.tops)


@dataclass(frozen=True)
class SearchConfig:
    """How candidates are searched: FAISS index kind and size, and where it runs."""

    ivf_threshold: int = 20_000     # candidates per index above which IVF replaces flat search
    probe_fraction: float = 0.0625  # share of IVF cells probed per query
    max_index_size: int = 131_072   # candidates per index (bounds the search's memory)
    use_gpu: bool = False           # FAISS GPU index when FAISS has GPUs
    # flat blocks searched by torch on the descriptors' own device (``torch_flat_search``):
    # None = when that device is not the CPU (the descriptors never leave a GPU)
    torch_flat: bool | None = None


@dataclass
class NodeLabels:
    """Per node, S candidate labels sorted by exact distance (rows padded by cyclic repetition)."""

    ids: np.ndarray        # (N, S) index into CandidateSet
    tops: np.ndarray       # (N, S)
    lefts: np.ndarray      # (N, S)
    distance: np.ndarray   # (N, S) exact masked distance (field units)
    weight: np.ndarray     # (N, S) context weight 1 - exp(-(d_ctx + Tb))
    count: np.ndarray      # (N,) distinct labels before padding
    patches: np.ndarray | None = None  # (N, S, P, P, C) label pixels, when the re-ranking cut them

    def replace_rows(self, rows: np.ndarray, other: NodeLabels) -> None:
        """Overwrite the labels of nodes ``rows`` with ``other``'s (same shortlist size)."""
        for name in ("ids", "tops", "lefts", "distance", "weight", "count"):
            getattr(self, name)[rows] = getattr(other, name)
        if self.patches is not None and other.patches is not None:
            self.patches[rows] = other.patches
        else:
            self.patches = None


def candidate_set(hole: np.ndarray, context: Context, patch: int, stride: int) -> CandidateSet:
    """Fully known ``patch`` patches with corners on a ``stride`` grid."""
    height, width = hole.shape
    rows = np.arange(0, height - patch + 1, stride)
    cols = np.arange(0, width - patch + 1, stride)
    t, l = (a.ravel() for a in np.meshgrid(rows, cols, indexing="ij"))
    keep = missing_counts(hole, t, l, patch) == 0
    t, l = t[keep], l[keep]
    block = context.block_map[t + patch // 2, l + patch // 2]
    order = np.argsort(block, kind="stable")
    return CandidateSet(tops=t[order], lefts=l[order], block=block[order], stride=stride)


def node_block_pairs(lattice: Lattice, context: Context) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Which blocks each node searches: the union of the matches of the blocks under its four
    corners, each block with its smallest context error.

    Returns flat (node, block, context error) arrays, one entry per (node, block) pair, grouped
    by node in node order.
    """
    p = lattice.patch - 1
    corners = np.stack([context.block_map[lattice.tops + dy, lattice.lefts + dx]
                        for dy in (0, p) for dx in (0, p)], 1)
    # nodes share few corner-block combinations: resolve each combination once
    keys, inverse = np.unique(np.sort(corners, 1), axis=0, return_inverse=True)
    key_blocks, key_errors = [], []
    for key in keys:
        blocks = np.unique(key)
        ids = np.concatenate([context.matches[b] for b in blocks])
        errs = np.concatenate([context.match_errors[b] for b in blocks])
        unique = np.unique(ids)
        best = np.full(len(unique), np.inf)
        np.minimum.at(best, np.searchsorted(unique, ids), errs)
        key_blocks.append(unique)
        key_errors.append(best)
    key_len = np.array([len(b) for b in key_blocks])
    key_start = np.r_[0, np.cumsum(key_len)[:-1]]
    inverse = inverse.ravel()
    lengths = key_len[inverse]
    nodes = np.repeat(np.arange(len(inverse)), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat = key_start[inverse][nodes] + within
    return nodes, np.concatenate(key_blocks)[flat], np.concatenate(key_errors)[flat]


class BlockIndex:
    """A FAISS index over the descriptors of one block's candidates; lives only while its
    block is searched, on a GPU when FAISS has GPUs and asked to.

    Up to ``ivf_threshold`` candidates: exact (IndexFlatL2). Above: IndexIVFFlat with
    nlist = sqrt(n) / 2 cells (k-means on a seeded sample, 10 iterations) probing one cell in
    ``probe_fraction`` of them: an approximate shortlist, re-ranked exactly afterwards. Half
    of the usual sqrt(n) cells scans the same share of candidates per query with half the
    assignment work when filling and a quarter when training; benchmarks/quality.py measured
    v128 at 22.54 dB with it and 22.53 dB with sqrt(n) cells (commit fb34c19 and its parent).
    """

    def __init__(self, vectors: np.ndarray | torch.Tensor, *, ivf_threshold: int = 20_000,
                 probe_fraction: float = 0.0625, gpu_resources=None, gpu_device: int = 0,
                 seed: int = 0):
        import faiss

        if torch.is_tensor(vectors):
            # torch tensors (on the GPU index's device) go to FAISS as they are, no host copy
            import faiss.contrib.torch_utils  # noqa: F401  (lets FAISS take torch tensors)

            vectors = vectors.float().contiguous()
        n, dim = vectors.shape
        self._quantiser = None
        if n > ivf_threshold:
            nlist = int(np.sqrt(n) / 2)
            self._quantiser = faiss.IndexFlatL2(dim)  # kept alive as long as the index
            index = faiss.IndexIVFFlat(self._quantiser, dim, nlist)
            index.cp.niter = 10
            index.cp.seed = seed
            chosen = np.random.default_rng(seed).choice(n, min(n, 40 * nlist), replace=False)
            # trained on the host (a CPU index, before any move to a GPU): a small sample
            sample = _to_numpy(vectors[torch.as_tensor(chosen, device=vectors.device)]) \
                if torch.is_tensor(vectors) else vectors[chosen]
            index.train(sample)
            index.nprobe = max(4, int(round(probe_fraction * nlist)))
            self.kind = "ivf"
        else:
            index = faiss.IndexFlatL2(dim)
            self.kind = "flat"
        if gpu_resources is not None:
            index = faiss.index_cpu_to_gpu(gpu_resources, gpu_device, index)
        index.add(vectors)
        self._index = index

    def search(self, queries: np.ndarray | torch.Tensor, k: int) -> tuple[np.ndarray,
                                                                         np.ndarray]:
        """(q, D) float32 queries (numpy, or torch like the vectors) -> (q, k) squared
        distances and candidate ids (-1 where fewer exist), numpy."""
        if torch.is_tensor(queries):
            dist, idx = self._index.search(queries.float().contiguous(), int(k))
            return dist.cpu().numpy(), idx.cpu().numpy()
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), int(k))


def torch_flat_search(vectors: torch.Tensor, queries: torch.Tensor, k: int,
                      max_elements: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-nearest search by squared L2 on the tensors' own device (what ``IndexFlatL2``
    computes, for descriptors already on a GPU: no FAISS and no host round trip).

    vectors: (n, D), queries: (q, D) float tensors on one device -> (q, min(k, n)) squared
    distances (ascending) and ids into ``vectors``, numpy. Queries go in chunks of at most
    ``max_elements`` distances.
    """
    vectors, queries = vectors.float(), queries.float()
    k = min(int(k), len(vectors))
    norms = (vectors * vectors).sum(1)
    rows = max(1, max_elements // max(len(vectors), 1))
    dists, ids = [], []
    for s in range(0, len(queries), rows):
        q = queries[s:s + rows]
        d = (q * q).sum(1)[:, None] + norms[None, :] - 2.0 * (q @ vectors.T)
        d, i = torch.topk(d.clamp_min_(0.0), k, dim=1, largest=False, sorted=True)
        dists.append(d.cpu())
        ids.append(i.cpu())
    if not dists:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    return torch.cat(dists).numpy(), torch.cat(ids).numpy()


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def shortlist(
    field: PatchField,
    lattice: Lattice,
    candidates: CandidateSet,
    context: Context,
    k: int,
    *,
    match_threshold: float = 0.15,
    search: SearchConfig | None = None,
    exact=None,
    progress=None,
) -> NodeLabels:
    """FAISS shortlist of ``k`` labels per node, context-restricted, exactly re-ranked.

    exact: optional ``exact(label_tops, label_lefts) -> ((N, k) distance, (N, k, P, P, C) label
    pixels or None)`` used for the re-ranking (default: the field's descriptors under each
    node's mask); label pixels it returns are kept, in the final order, on the result.
    FAISS runs single-threaded (see ``mrf.threads``).
    """
    with faiss_threads(1):
        return _shortlist(field, lattice, candidates, context, k, match_threshold,
                          search or SearchConfig(), exact, progress)


def _shortlist(field, lattice, candidates, context, k, match_threshold, search, exact,
               progress) -> NodeLabels:
    if len(candidates) == 0:
        raise ValueError("no fully known patch exists to copy from: the mask leaves too few "
                         "known pixels for this patch size")
    n_nodes = lattice.n_nodes
    queries = field.describe(lattice.tops, lattice.lefts)
    # descriptors on a GPU stay there; the CPU path hands FAISS numpy arrays as always
    on_device = search.torch_flat if search.torch_flat is not None else \
        queries.device.type != "cpu"
    if not on_device:
        queries = _to_numpy(queries)
    pairs_node, pairs_block, pairs_err = node_block_pairs(lattice, context)
    block_starts = np.searchsorted(candidates.block, np.arange(context.n_blocks + 1))
    gpu = None
    if search.use_gpu and queries_device_is_cuda(queries):
        resources = gpu_resources()
        gpu = None if resources is None else (resources, faiss_device(queries.device))

    # group the (node, block) pairs by block: each block's index is built once for its nodes
    order = np.argsort(pairs_block, kind="stable")
    pairs_node, pairs_block, pairs_err = pairs_node[order], pairs_block[order], pairs_err[order]
    blocks_used, first = np.unique(pairs_block, return_index=True)
    bounds = np.r_[first, len(pairs_block)]
    found: list[tuple[np.ndarray, ...]] = []
    steps = range(len(blocks_used))
    for j in (progress(steps, desc="candidate search") if progress else steps):
        b, sel = blocks_used[j], slice(bounds[j], bounds[j + 1])
        found += _search_range(field, candidates, queries, pairs_node[sel], pairs_err[sel],
                               block_starts[b], block_starts[b + 1], k, search, gpu)
    searched = np.zeros(n_nodes, dtype=bool)
    for f in found:
        searched[f[0]] = True
    orphans = np.flatnonzero(~searched)
    if len(orphans):  # no candidate in any matched block: search the whole candidate set
        found += _search_range(field, candidates, queries, orphans, np.ones(len(orphans)), 0,
                               len(candidates), k, search, gpu)
    fn, fi, fd, fe = (np.concatenate([f[i] for f in found]) for i in range(4))
    ids, errs, count = _top_per_node(fn, fi, fd, fe, n_nodes, k)
    patches = None
    if exact is None:
        distance = _exact_distances(field, lattice, candidates, ids)
    else:
        distance, patches = exact(candidates.tops[ids], candidates.lefts[ids])
    order = np.argsort(distance, axis=1, kind="stable")
    if patches is not None:   # whole patches move with their rows: one index per patch
        patches = patches[np.arange(len(order))[:, None], order]
    ids = np.take_along_axis(ids, order, 1)
    errs = np.take_along_axis(errs, order, 1)
    distance = np.take_along_axis(distance, order, 1)
    weight = 1.0 - np.exp(-(errs + match_threshold))
    return NodeLabels(ids=ids, tops=candidates.tops[ids], lefts=candidates.lefts[ids],
                      distance=distance, weight=weight, count=count, patches=patches)


def _search_range(field, candidates, queries, nodes, errs, start, stop, k, search,
                  gpu) -> list[tuple[np.ndarray, ...]]:
    """Search candidates [start, stop) for ``nodes``, ``max_index_size`` candidates per FAISS
    index so memory holds one chunk's descriptors at a time. Returns (node, candidate id,
    approximate distance, context error) arrays per chunk; results are merged per node later."""
    out = []
    on_device = torch.is_tensor(queries)
    for lo in range(start, stop, search.max_index_size):
        hi = min(stop, lo + search.max_index_size)
        vectors = field.describe(candidates.tops[lo:hi], candidates.lefts[lo:hi])
        kk = min(k, hi - lo)
        mine = queries[torch.as_tensor(nodes, device=queries.device)] if on_device \
            else queries[nodes]
        if on_device and hi - lo <= search.ivf_threshold:
            # exact flat search on the descriptors' device, as IndexFlatL2 would do it
            dist, idx = torch_flat_search(vectors, mine, kk)
        else:
            if gpu is None:   # CPU FAISS: numpy on the host
                vectors, mine = _to_numpy(vectors), _to_numpy(mine) if on_device else mine
            index = BlockIndex(vectors, ivf_threshold=search.ivf_threshold,
                               probe_fraction=search.probe_fraction,
                               gpu_resources=None if gpu is None else gpu[0],
                               gpu_device=0 if gpu is None else gpu[1])
            dist, idx = index.search(mine, kk)
            del index
        ok = (idx >= 0).ravel()
        out.append((np.repeat(nodes, kk)[ok], (idx + lo).ravel()[ok], dist.ravel()[ok],
                    np.repeat(errs, kk)[ok]))
        del vectors
    return out


def _top_per_node(node, ids, dist, err, n_nodes, k):
    """Best ``k`` (by approximate distance) per node, padded cyclically to exactly ``k``."""
    order = np.argsort(_node_distance_keys(node, dist), kind="stable")
    node, ids, err = node[order], ids[order], err[order]
    starts = np.searchsorted(node, np.arange(n_nodes))
    counts = np.diff(np.r_[starts, len(node)])
    count = np.minimum(counts, k)
    # position j of node i takes sorted entry starts[i] + (j mod count[i])
    j = np.arange(k)[None, :] % np.maximum(count, 1)[:, None]
    take = starts[:, None] + j
    return ids[take], err[take], count


def _node_distance_keys(node: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """uint64 keys ordering entries by node, then by float32 distance: one integer sort instead
    of a two-key lexsort, several times faster (same order, ties kept in input order)."""
    bits = np.ascontiguousarray(dist, dtype=np.float32).view(np.uint32)
    # IEEE floats order as integers once negatives have all bits flipped, positives the sign bit
    bits = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000))
    return (node.astype(np.uint64) << np.uint64(32)) | bits.astype(np.uint64)


def _exact_distances(field, lattice, candidates, ids, chunk_pairs: int = 65536) -> np.ndarray:
    """Squared distance between each node and each of its labels, on the node's known support."""
    n, k = ids.shape
    out = np.empty((n, k), dtype=np.float64)
    nodes_per_chunk = max(1, chunk_pairs // k)
    for s in range(0, n, nodes_per_chunk):
        e = min(n, s + nodes_per_chunk)
        nt, nl = lattice.tops[s:e], lattice.lefts[s:e]
        node_desc = field.describe(nt, nl, nt, nl)                           # (n, D)
        flat = ids[s:e].ravel()
        cand_desc = field.describe(candidates.tops[flat], candidates.lefts[flat],
                                   np.repeat(nt, k), np.repeat(nl, k))        # (n*k, D)
        diff = cand_desc.view(e - s, k, -1) - node_desc[:, None, :]
        out[s:e] = diff.pow(2).sum(-1).double().cpu().numpy()
    return out


def queries_device_is_cuda(queries) -> bool:
    return torch.is_tensor(queries) and queries.device.type == "cuda"


def faiss_device(device: torch.device) -> int:
    """The GPU number FAISS must use for a torch device: ``cuda:N`` -> N, ``cuda`` -> torch's
    current device."""
    if device.type != "cuda":
        raise ValueError(f"not a CUDA device: {device}")
    return device.index if device.index is not None else torch.cuda.current_device()


def gpu_resources():
    """This process's FAISS GPU resources (one ``StandardGpuResources``, created on first
    use, shared by every index the process builds), or None when FAISS has no GPU."""
    return _process_gpu_resources(os.getpid())


@functools.lru_cache(maxsize=1)
def _process_gpu_resources(pid: int):
    """Keyed by process id: a forked worker makes its own instead of the parent's."""
    import faiss

    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:
        return faiss.StandardGpuResources()
    return None


#: Slots of ``propagated_labels``: the neighbour each proposal comes from.
PROPAGATION_SLOTS = ("above", "left", "below", "right")


def propagated_labels(lattice: Lattice, tops: np.ndarray, lefts: np.ndarray,
                      hole: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PatchMatch's propagation on the lattice: each node is offered its neighbours' sources
    shifted by its offset from them, so that paint copied coherently can continue.

    tops, lefts: (N,) the source chosen at each node; hole: (H, W) bool.
    Returns (tops, lefts, valid), each (N, 4), one slot per neighbour in the order of
    ``PROPAGATION_SLOTS``: the neighbour's source plus (this node's corner minus the
    neighbour's). A slot is invalid (and holds the node's own source) where the node has no
    such neighbour or the shifted source leaves the image or touches the hole.
    """
    tops, lefts = np.asarray(tops, np.int64), np.asarray(lefts, np.int64)
    n, patch = lattice.n_nodes, lattice.patch
    out_t = np.repeat(tops[:, None], len(PROPAGATION_SLOTS), 1)
    out_l = np.repeat(lefts[:, None], len(PROPAGATION_SLOTS), 1)
    a, b = lattice.edges[:, 0], lattice.edges[:, 1]
    dy, dx = lattice.offsets[:, 0], lattice.offsets[:, 1]
    vertical = dy > 0
    # b (below or right of a) takes a's source moved forward; a takes b's moved back
    slot_b = np.where(vertical, 0, 1)
    slot_a = np.where(vertical, 2, 3)
    out_t[b, slot_b], out_l[b, slot_b] = tops[a] + dy, lefts[a] + dx
    out_t[a, slot_a], out_l[a, slot_a] = tops[b] - dy, lefts[b] - dx
    offered = np.zeros((n, len(PROPAGATION_SLOTS)), dtype=bool)
    offered[b, slot_b] = True
    offered[a, slot_a] = True
    height, width = hole.shape
    inside = (out_t >= 0) & (out_l >= 0) & (out_t <= height - patch) & (out_l <= width - patch)
    valid = offered & inside
    valid[valid] = missing_counts(hole, out_t[valid], out_l[valid], patch) == 0
    return np.where(valid, out_t, tops[:, None]), np.where(valid, out_l, lefts[:, None]), valid
