"""Inference on the MRF: priority-ordered greedy label pruning, then neighbourhood-consensus
message passing (NCMP), after Ruzic & Pizurica (2015), section 4 of research/mrf_algorithm.md;
then iterated conditional modes (ICM) from NCMP's labels, which makes neighbouring choices agree
with each other rather than with an expectation over the neighbours' beliefs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import torch

from patches import patch_view

from .devices import ArrayLike
from .energy import strip_ssd


@dataclass
class PruneResult:
    keep: np.ndarray    # (N, L) indices into each node's shortlist, best first
    order: np.ndarray   # (N,) the visiting (commit) order of the nodes


def _priority(distance: np.ndarray, count: int, threshold: float) -> float:
    """|labels| / size of the uncertain set {l : D(l) - min D < T_unc}."""
    uncertain = int(np.count_nonzero(distance - distance.min() < threshold))
    return count / max(uncertain, 1)


def _priorities(distance: np.ndarray, count: np.ndarray, threshold: float) -> np.ndarray:
    """``_priority`` of every row of (N, S) ``distance`` at once."""
    uncertain = np.count_nonzero(distance - distance.min(1, keepdims=True) < threshold, axis=1)
    return count / np.maximum(uncertain, 1)


@dataclass
class Adjacency:
    """Each node's neighbours in CSR form, in edge order: node i's are entries
    ``start[i]:start[i + 1]`` of ``node`` (neighbour index), ``offset`` ((dy, dx) between the
    two corners, >= 0) and ``after`` (True when the neighbour lies at +offset from node i)."""

    start: np.ndarray    # (N + 1,)
    node: np.ndarray     # (2E,)
    offset: np.ndarray   # (2E, 2)
    after: np.ndarray    # (2E,) bool

    @classmethod
    def from_edges(cls, n_nodes: int, edges: np.ndarray, tops: np.ndarray,
                   lefts: np.ndarray) -> Adjacency:
        """Edges (E, 2) (a, b), b right of or below a -> both directions, grouped by node."""
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        a, b = edges[:, 0], edges[:, 1]
        offset = np.stack([tops[b] - tops[a], lefts[b] - lefts[a]], 1).astype(np.int64)
        # (a -> b), (b -> a) interleaved in edge order; a stable sort by node keeps that order
        owner = np.stack([a, b], 1).ravel()
        order = np.argsort(owner, kind="stable")
        return cls(start=np.searchsorted(owner[order], np.arange(n_nodes + 1)),
                   node=np.stack([b, a], 1).ravel()[order],
                   offset=np.repeat(offset, 2, axis=0)[order],
                   after=np.tile([True, False], len(edges))[order])

    def of(self, node: int) -> list[tuple[int, tuple[int, int], bool]]:
        s, e = self.start[node], self.start[node + 1]
        return list(zip(self.node[s:e].tolist(), map(tuple, self.offset[s:e].tolist()),
                        self.after[s:e].tolist()))


def _cut(windows: np.ndarray, tops: np.ndarray, lefts: np.ndarray) -> np.ndarray:
    """Label pixels (*S, P, P, C) from the image's strided patch view (one copy)."""
    return windows[tops, lefts]


class _LabelPixels:
    """The label pixels of the nodes, cut from one strided view of the image.

    All of them are cut at once when they fit in ``cache_bytes``; otherwise a node's labels are
    cut when first needed and kept until the node is committed, as long as the kept ones fit
    in ``cache_bytes`` (the greedy pass's frontier is far smaller than the lattice), else cut
    at each use.
    """

    def __init__(self, image, label_tops, label_lefts, patch, patches, cache_bytes):
        self.tops, self.lefts = label_tops, label_lefts
        self.windows = patch_view(image, patch)
        per_node = label_tops.shape[1] * patch * patch * int(np.prod(image.shape[2:])) * 4
        if patches is None and label_tops.shape[0] * per_node <= cache_bytes:
            patches = _cut(self.windows, label_tops, label_lefts)
        self.all = patches
        self.per_node, self.budget = per_node, cache_bytes
        self.frontier: dict[int, np.ndarray] = {}

    def of(self, node: int) -> np.ndarray:
        """(S, P, P, C) labels of an uncommitted node."""
        if self.all is not None:
            return self.all[node]
        cut = self.frontier.get(node)
        if cut is None:
            cut = _cut(self.windows, self.tops[node], self.lefts[node])
            if (len(self.frontier) + 1) * self.per_node <= self.budget:
                self.frontier[node] = cut
        return cut

    def commit(self, node: int, kept: np.ndarray) -> np.ndarray:
        """(L, P, P, C) kept labels of ``node``, which no longer needs the others."""
        if self.all is not None:
            return self.all[node, kept]
        cut = self.frontier.pop(node, None)
        if cut is not None:
            return cut[kept]
        return _cut(self.windows, self.tops[node, kept], self.lefts[node, kept])


def prune_labels(
    image: np.ndarray,
    tops: np.ndarray,
    lefts: np.ndarray,
    label_tops: np.ndarray,
    label_lefts: np.ndarray,
    unary: np.ndarray,
    weight: np.ndarray,
    count: np.ndarray,
    edges: np.ndarray,
    n_keep: int,
    threshold: float,
    patch: int,
    progress=None,
    patches: np.ndarray | None = None,
    cache_bytes: int = 256 << 20,
) -> PruneResult:
    """One greedy, priority-ordered pass that keeps ``n_keep`` labels per node.

    D_i = w_i * V_i is each node's context-weighted pruning distance. The uncommitted node of
    highest priority is committed (its best ``n_keep`` labels kept); each uncommitted neighbour q
    then adds, for each of its labels, the smallest overlap SSD against the committed node's kept
    labels (weighted by q's context weights) to D_q, and its priority is recomputed. The weighted
    distance is used for priorities throughout (the authors' code mixes weighted and unweighted).
    patches: the (N, S, P, P, C) label pixels when already cut; else they are cut once here
    when they fit in ``cache_bytes``, or else each node's when first needed, kept until it is
    committed while those kept fit in ``cache_bytes`` (see ``_LabelPixels``).
    """
    n_nodes, n_labels = unary.shape
    pixels = _LabelPixels(image, label_tops, label_lefts, patch, patches, cache_bytes)
    n_keep = min(n_keep, n_labels)
    dist = (weight * unary).astype(np.float64)
    adjacency = Adjacency.from_edges(n_nodes, edges, tops, lefts)
    priority = _priorities(dist, count, threshold)
    version = np.zeros(n_nodes, dtype=np.int64)
    heap = [(-priority[i], i, 0) for i in range(n_nodes)]
    heapq.heapify(heap)
    committed = np.zeros(n_nodes, dtype=bool)
    keep = np.zeros((n_nodes, n_keep), dtype=np.int64)
    order = np.empty(n_nodes, dtype=np.int64)
    bar = progress(total=n_nodes, desc="label pruning") if progress else None
    done = 0
    while heap:
        _, p, ver = heapq.heappop(heap)
        if committed[p] or ver != version[p]:
            continue
        kept = np.argsort(dist[p], kind="stable")[:n_keep]
        keep[p], committed[p] = kept, True
        order[done] = p
        done += 1
        kept_patches = pixels.commit(p, kept)
        for q, off, q_after_p in adjacency.of(p):
            if committed[q]:
                continue
            if q_after_p:   # q at +off from p: p's labels are the "first" patch
                ssd = strip_ssd(kept_patches, pixels.of(q), off).min(0)
            else:           # p at +off from q
                ssd = strip_ssd(pixels.of(q), kept_patches, off).min(1)
            dist[q] += weight[q] * ssd
            priority[q] = _priority(dist[q], count[q], threshold)
            version[q] += 1
            heapq.heappush(heap, (-priority[q], q, int(version[q])))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return PruneResult(keep=keep, order=order)


@dataclass
class NCMPResult:
    labels: np.ndarray              # (N,) index into each node's L labels
    beliefs: np.ndarray             # (N, L)
    iterations: int
    energies: list[float] = field(default_factory=list)


def mrf_energy(unary: torch.Tensor, pairwise: torch.Tensor, edges: torch.Tensor,
               labels: torch.Tensor, pairwise_weight: float = 1.0) -> float:
    """E(x) = sum_i V_i(x_i) + w sum_(i,j) V_ij(x_i, x_j): what NCMP and ICM minimise."""
    u = unary.gather(1, labels[:, None]).sum()
    e = torch.arange(len(edges), device=unary.device)
    p = pairwise[e, labels[edges[:, 0]], labels[edges[:, 1]]].sum()
    return float(u + pairwise_weight * p)


def ncmp(
    unary: ArrayLike,
    pairwise: ArrayLike,
    edges: ArrayLike,
    *,
    iterations: int = 10,
    temperature: float = 1.0,
    pairwise_weight: float = 1.0,
    message: str = "sum",
    vertical: np.ndarray | None = None,
    early_stop: bool = True,
    device: str | torch.device = "cpu",
) -> NCMPResult:
    """Neighbourhood-consensus message passing on an L-label MRF, batched over all nodes.

    unary: (N, L); pairwise: (E, L, L) with [e, x, y] the cost of x at edges[e, 0] and y at
    edges[e, 1]. Beliefs start one-hot at the best unary label; every iteration each node's
    message is the expected pairwise cost under its neighbours' current beliefs, summed over
    ALL neighbours (``message='last'`` reproduces the public codes' bug of keeping only the last
    neighbour in the order up, down, right, left; it needs ``vertical``, (E,) bool, True for
    edges whose second node lies below the first), and its new belief is
    softmax(-(unary + weight * message) / temperature), computed in the log domain.
    Inputs are numpy arrays or tensors (e.g. ``edge_pairwise_tensor``'s, already on
    ``device``); all is computed on ``device``, the result is on the host.
    """
    if message not in ("sum", "last"):
        raise ValueError("message must be 'sum' or 'last'")
    if message == "last" and vertical is None:
        raise ValueError("message='last' needs the edge directions (vertical)")
    dev = torch.device(device)
    u = torch.as_tensor(unary, dtype=torch.float64, device=dev)
    pw = torch.as_tensor(pairwise, dtype=torch.float64, device=dev)
    ed = torch.as_tensor(edges, dtype=torch.long, device=dev)
    n, n_labels = u.shape
    labels = u.argmin(1)
    beliefs = torch.nn.functional.one_hot(labels, n_labels).double()
    energies = [mrf_energy(u, pw, ed, labels, pairwise_weight)] if len(ed) else \
        [float(u.min(1).values.sum())]
    done = 0
    for it in range(1, iterations + 1):
        done = it
        # expected cost for a's labels given b's beliefs, and for b's labels given a's
        to_a = torch.einsum("exy,ey->ex", pw, beliefs[ed[:, 1]])
        to_b = torch.einsum("exy,ex->ey", pw, beliefs[ed[:, 0]])
        if message == "sum":
            msg = torch.zeros_like(u)
            msg.index_add_(0, ed[:, 0], to_a)
            msg.index_add_(0, ed[:, 1], to_b)
        else:
            msg = _last_neighbour_message(u, ed, to_a, to_b,
                                          torch.as_tensor(vertical, device=dev))
        logits = -(u + pairwise_weight * msg) / temperature
        beliefs = torch.softmax(logits, dim=1)
        new_labels = beliefs.argmax(1)
        changed = bool((new_labels != labels).any())
        labels = new_labels
        energies.append(mrf_energy(u, pw, ed, labels, pairwise_weight) if len(ed)
                        else energies[-1])
        if early_stop and not changed:
            break
    return NCMPResult(labels=labels.cpu().numpy(), beliefs=beliefs.cpu().numpy(),
                      iterations=done, energies=energies)


def _last_neighbour_message(u, ed, to_a, to_b, vertical) -> torch.Tensor:
    """The authors' code *assigns* the message per neighbour in the order up, down, right,
    left, so only the last existing neighbour counts. Edges (a, b) have b below or right of a."""
    msg = torch.zeros_like(u)
    horizontal = ~vertical
    msg[ed[vertical, 1]] = to_b[vertical]        # b's upper neighbour a
    msg[ed[vertical, 0]] = to_a[vertical]        # a's lower neighbour b
    msg[ed[horizontal, 0]] = to_a[horizontal]    # a's right neighbour b
    msg[ed[horizontal, 1]] = to_b[horizontal]    # b's left neighbour a
    return msg


def icm(
    unary: ArrayLike,
    pairwise: ArrayLike,
    edges: ArrayLike,
    labels: ArrayLike,
    colours: np.ndarray,
    *,
    sweeps: int = 2,
    pairwise_weight: float = 1.0,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, float]:
    """Iterated conditional modes from ``labels`` (N,): each node takes the label of least
    unary + weight * sum of the pairwise costs against its neighbours' *current* labels.

    unary: (N, L); pairwise: (E, L, L) as for ``ncmp``; colours: (N,) 0/1, a 2-colouring of
    the graph (no edge joins two nodes of one colour, e.g. ``Lattice.colours``). The nodes of
    one colour update together (they do not see each other), colour 0 then colour 1 per sweep,
    so the MRF energy never rises. NCMP's beliefs weigh every label of a neighbour; where they
    are flat (smooth paint, where all overlaps are small) its argmax ignores which label the
    neighbour actually takes, and neighbouring copies disagree: a mosaic at the lattice step.
    Returns the (N,) labels on the host and their MRF energy (``mrf_energy``, with the weight).
    """
    dev = torch.device(device)
    u = torch.as_tensor(unary, dtype=torch.float64, device=dev)
    pw = torch.as_tensor(pairwise, dtype=torch.float64, device=dev)
    ed = torch.as_tensor(edges, dtype=torch.long, device=dev).reshape(-1, 2)
    current = torch.as_tensor(labels, dtype=torch.long, device=dev)
    colour = torch.as_tensor(colours, device=dev)
    e = torch.arange(len(ed), device=dev)
    for _ in range(sweeps):
        for c in (0, 1):
            msg = torch.zeros_like(u)
            msg.index_add_(0, ed[:, 0], pw[e, :, current[ed[:, 1]]])
            msg.index_add_(0, ed[:, 1], pw[e, current[ed[:, 0]], :])
            best = (u + pairwise_weight * msg).argmin(1)
            current = torch.where(colour == c, best, current)
    return current.cpu().numpy(), mrf_energy(u, pw, ed, current, pairwise_weight)
