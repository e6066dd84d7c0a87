"""Slow but obvious reference implementations of the MRF core, for tests/test_mrf_reference.py.

Each one follows the written definition (research notes, sections 3-4) with plain Python loops
and image coordinates; none calls the code under test. The fast code is compared with them on
small random cases.
"""

from __future__ import annotations

import math

import numpy as np


def masked_ssd(image: np.ndarray, hole: np.ndarray, node: tuple[int, int],
               label: tuple[int, int], patch: int) -> float:
    """SSD over the node patch's known pixels (all channels) between node and label patch."""
    total = 0.0
    for dy in range(patch):
        for dx in range(patch):
            if hole[node[0] + dy, node[1] + dx]:
                continue
            a = image[node[0] + dy, node[1] + dx].astype(np.float64)
            b = image[label[0] + dy, label[1] + dx].astype(np.float64)
            total += float(((a - b) ** 2).sum())
    return total


def overlap_ssd(image: np.ndarray, pos_a: tuple[int, int], label_a: tuple[int, int],
                pos_b: tuple[int, int], label_b: tuple[int, int], patch: int) -> float:
    """SSD over the image pixels covered by both node patches, node a showing label a's pixels
    and node b showing label b's: the pairwise term written in image coordinates, so no strip
    orientation has to be chosen."""
    total = 0.0
    for y in range(max(pos_a[0], pos_b[0]), min(pos_a[0], pos_b[0]) + patch):
        for x in range(max(pos_a[1], pos_b[1]), min(pos_a[1], pos_b[1]) + patch):
            a = image[label_a[0] + y - pos_a[0], label_a[1] + x - pos_a[1]].astype(np.float64)
            b = image[label_b[0] + y - pos_b[0], label_b[1] + x - pos_b[1]].astype(np.float64)
            total += float(((a - b) ** 2).sum())
    return total


def neighbour_lists(n_nodes: int, edges: np.ndarray) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n_nodes)]
    for a, b in edges:
        out[int(a)].append(int(b))
        out[int(b)].append(int(a))
    return out


def prune(image, tops, lefts, label_tops, label_lefts, unary, weight, count, edges, n_keep,
          threshold, patch) -> tuple[list[list[tuple[int, int]]], list[int]]:
    """Greedy priority-ordered pruning (research notes 4.2, weighted distances throughout).

    Returns, per node, the kept label positions best first, and the commit order.
    """
    n_nodes, n_labels = unary.shape
    n_keep = min(n_keep, n_labels)
    dist = [[float(weight[i, l]) * float(unary[i, l]) for l in range(n_labels)]
            for i in range(n_nodes)]
    neighbours = neighbour_lists(n_nodes, edges)

    def priority(i: int) -> float:
        best = min(dist[i])
        uncertain = sum(1 for d in dist[i] if d - best < threshold)
        return count[i] / max(uncertain, 1)

    committed = [False] * n_nodes
    kept_pos: list[list[tuple[int, int]]] = [[] for _ in range(n_nodes)]
    order: list[int] = []
    for _ in range(n_nodes):
        # highest priority; the lowest node index wins ties ("first one on ties")
        p = max((i for i in range(n_nodes) if not committed[i]),
                key=lambda i: (priority(i), -i))
        ranked = sorted(range(n_labels), key=lambda l: (dist[p][l], l))[:n_keep]
        kept_pos[p] = [(int(label_tops[p, l]), int(label_lefts[p, l])) for l in ranked]
        committed[p] = True
        order.append(p)
        for q in neighbours[p]:
            if committed[q]:
                continue
            for l in range(n_labels):
                m = min(overlap_ssd(image, (tops[q], lefts[q]),
                                    (label_tops[q, l], label_lefts[q, l]),
                                    (tops[p], lefts[p]), kp, patch) for kp in kept_pos[p])
                dist[q][l] += float(weight[q, l]) * m
    return kept_pos, order


def ncmp(unary, pairwise, edges, iterations, temperature=1.0, pairwise_weight=1.0,
         message="sum", vertical=None, early_stop=True):
    """NCMP node by node (research notes 4.3): beliefs start one-hot at the best unary; each
    iteration, synchronously, every node's message is the expected pairwise cost under its
    neighbours' previous beliefs, summed over ALL neighbours (``"last"``: only the last existing
    neighbour in the order up, down, right, left), and its belief is
    softmax(-(unary + weight * message) / temperature). Returns labels, beliefs, iterations,
    energies (the energy U + weight * P of the labelling before the first and after each
    iteration)."""
    n_nodes, n_labels = unary.shape
    # per node: (edge, node is the edge's first end, where the neighbour lies)
    incident: list[list[tuple[int, bool, str]]] = [[] for _ in range(n_nodes)]
    for e, (a, b) in enumerate(edges):
        down = vertical is not None and bool(vertical[e])
        incident[int(a)].append((e, True, "down" if down else "right"))
        incident[int(b)].append((e, False, "up" if down else "left"))

    def energy(labels):
        return (sum(float(unary[i, labels[i]]) for i in range(n_nodes))
                + pairwise_weight * sum(float(pairwise[e, labels[a], labels[b]])
                                        for e, (a, b) in enumerate(edges)))

    labels = [int(np.argmin(unary[i])) for i in range(n_nodes)]
    beliefs = [[1.0 if x == labels[i] else 0.0 for x in range(n_labels)] for i in range(n_nodes)]
    energies = [energy(labels)]
    done = 0
    for it in range(1, iterations + 1):
        done = it
        new_beliefs = []
        for i in range(n_nodes):
            terms = []
            for e, first, _ in incident[i]:
                j = int(edges[e, 1] if first else edges[e, 0])
                if first:   # i is the edge's first end: pairwise[e, x_i, y_j]
                    terms.append([sum(pairwise[e, x, y] * beliefs[j][y] for y in range(n_labels))
                                  for x in range(n_labels)])
                else:
                    terms.append([sum(pairwise[e, y, x] * beliefs[j][y] for y in range(n_labels))
                                  for x in range(n_labels)])
            if message == "sum":
                msg = [sum(t[x] for t in terms) for x in range(n_labels)]
            else:
                rank = {"up": 0, "down": 1, "right": 2, "left": 3}
                where = [rank[w] for _, _, w in incident[i]]
                msg = terms[int(np.argmax(where))] if terms else [0.0] * n_labels
            logits = [-(unary[i, x] + pairwise_weight * msg[x]) / temperature
                      for x in range(n_labels)]
            top = max(logits)
            z = sum(math.exp(v - top) for v in logits)
            new_beliefs.append([math.exp(v - top) / z for v in logits])
        beliefs = new_beliefs
        new_labels = [int(np.argmax(b)) for b in beliefs]
        changed = new_labels != labels
        labels = new_labels
        energies.append(energy(labels))
        if early_stop and not changed:
            break
    return np.array(labels), np.array(beliefs), done, energies


def corner_blocks(block_map: np.ndarray, top: int, left: int, patch: int) -> set[int]:
    """Blocks under the four corners of a patch."""
    p = patch - 1
    return {int(block_map[top + dy, left + dx]) for dy in (0, p) for dx in (0, p)}


def context_error(context, top: int, left: int, patch: int, block: int) -> float:
    """Smallest context error of ``block`` among the matches of the node's corner blocks
    (inf when the node does not search that block)."""
    best = math.inf
    for c in corner_blocks(context.block_map, top, left, patch):
        for b, err in zip(context.matches[c], context.match_errors[c]):
            if int(b) == block:
                best = min(best, float(err))
    return best


def gaussian_mirror(plane: np.ndarray, sigma: float, edge: str = "mirror") -> np.ndarray:
    """2-D Gaussian of one (H, W) plane, written out: the kernel exp(-x^2 / 2 sigma^2) on
    -r..r with r = int(4 sigma + 0.5), normalised; edges mirrored about the edge pixel
    (d c b | a b c d | c b a), or with ``edge="nearest"`` the edge pixel repeated
    (a a | a b c d | d d); each axis in turn."""
    radius = int(4.0 * sigma + 0.5)
    kernel = [math.exp(-0.5 * (x / sigma) ** 2) for x in range(-radius, radius + 1)]
    kernel = [k / sum(kernel) for k in kernel]

    def mirror(i: int, n: int) -> int:
        if edge == "nearest":
            return min(max(i, 0), n - 1)
        while not 0 <= i < n:
            i = -i if i < 0 else 2 * (n - 1) - i
        return i

    out = np.asarray(plane, dtype=np.float64)
    for axis in (0, 1):
        src, res = out, np.zeros_like(out)
        n = src.shape[axis]
        for i in range(n):
            for k, weight in enumerate(kernel):
                j = mirror(i + k - radius, n)
                if axis == 0:
                    res[i] += weight * src[j]
                else:
                    res[:, i] += weight * src[:, j]
        out = res
    return out


def box_mean(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of ``values`` over the pixels of ``weights`` (mirror edges)."""
    return gaussian_mirror(values * weights, sigma) / np.maximum(
        gaussian_mirror(weights, sigma), 1e-12)


def structure_texture(patch_fill: np.ndarray, structure: np.ndarray, hole: np.ndarray,
                      sigma: float, image: np.ndarray, gain: float, width: float,
                      damp: float = 1.0, detail: np.ndarray | None = None) -> np.ndarray:
    """The structure/texture split by its definition, channel by channel: the copy C plus the
    Gaussian of (S - C) on the hole (0 elsewhere); or, given ``detail`` (n_hole, C), the
    Gaussian of S (``image`` outside the hole) plus ``detail``. With gain or damp, the detail
    (C's above sigma, or ``detail`` in the hole) scaled by sqrt(known paint's detail energy /
    the hole's), clipped to damp..gain, both energies Gaussian means of width ``width`` over
    known and hole pixels. Returns (H, W, C)."""
    channels = structure.shape[2]
    composed = image.astype(np.float64).copy()
    composed[hole] = patch_fill
    layer = np.stack([composed[:, :, c] - gaussian_mirror(composed[:, :, c], sigma)
                      for c in range(channels)], axis=2)
    out = composed.copy()
    if detail is None:
        for c in range(channels):
            difference = np.where(hole, structure[:, :, c] - composed[:, :, c], 0.0)
            out[:, :, c] += gaussian_mirror(difference, sigma)
    else:
        smooth = image.astype(np.float64).copy()
        smooth[hole] = structure[hole]
        for c in range(channels):
            out[:, :, c] = gaussian_mirror(smooth[:, :, c], sigma)
        out[hole] += detail
        layer[hole] = detail
    if gain > 1 or damp < 1:
        energy = (layer ** 2).sum(axis=2)
        expected = box_mean(energy, (~hole).astype(np.float64), width)
        actual = box_mean(energy, hole.astype(np.float64), width)
        for y in range(hole.shape[0]):
            for x in range(hole.shape[1]):
                factor = min(max(math.sqrt(expected[y, x] / max(actual[y, x], 1e-12)), damp),
                             gain)
                out[y, x] += (factor - 1.0) * layer[y, x]
    return out


def blend(image: np.ndarray, node_tops, node_lefts, label_tops, label_lefts, patch: int,
          power: float, patch_weights=None) -> tuple[np.ndarray, np.ndarray]:
    """The label patches pasted at the node corners and averaged pixel by pixel, each pixel
    (dy, dx) of a patch weighted by the tent (min(dy + 1, P - dy) * min(dx + 1, P - dx)) ** power
    times its patch's weight. Returns (blend (H, W, C), weight sum (H, W)); 0 where none."""
    height, width, channels = image.shape
    acc = np.zeros((height, width, channels))
    total = np.zeros((height, width))
    for n in range(len(node_tops)):
        factor = 1.0 if patch_weights is None else float(patch_weights[n])
        for dy in range(patch):
            for dx in range(patch):
                weight = (min(dy + 1, patch - dy) * min(dx + 1, patch - dx)) ** power * factor
                y, x = node_tops[n] + dy, node_lefts[n] + dx
                acc[y, x] += weight * image[label_tops[n] + dy, label_lefts[n] + dx]
                total[y, x] += weight
    out = np.zeros_like(acc)
    covered = total > 0
    out[covered] = acc[covered] / total[covered][:, None]
    return out, total


def harmonic(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Laplace's equation on the hole, written out: each hole pixel equals the mean of its
    in-image 4-neighbours (known ones give ``values``); returns (n_hole, C) in raster order."""
    pixels = [tuple(p) for p in np.argwhere(hole)]
    index = {p: i for i, p in enumerate(pixels)}
    n, channels = len(pixels), values.shape[2]
    matrix, rhs = np.zeros((n, n)), np.zeros((n, channels))
    for i, (y, x) in enumerate(pixels):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            q = (y + dy, x + dx)
            if not (0 <= q[0] < hole.shape[0] and 0 <= q[1] < hole.shape[1]):
                continue
            matrix[i, i] += 1
            if q in index:
                matrix[i, index[q]] -= 1
            else:
                rhs[i] += values[q]
    return np.linalg.solve(matrix, rhs)


def distance_to_known(hole: np.ndarray) -> np.ndarray:
    """(n_hole,) Euclidean distance of each hole pixel to the nearest known pixel."""
    known = np.argwhere(~hole)
    return np.array([math.sqrt(min((y - a) ** 2 + (x - b) ** 2 for a, b in known))
                     for y, x in np.argwhere(hole)])


def compose_blend(image, hole, node_tops, node_lefts, label_tops, label_lefts, patch, power,
                  harmonic_correction: bool, sigma: float, gain: float, crack_width: float,
                  crack_fill: np.ndarray, crack_detail: float,
                  patch_weights=None) -> np.ndarray:
    """The blend composition by its definition: the tent-weighted average of the pasted
    patches; plus, with the correction, the harmonic extension of (image - average) taken on
    the known pixels that patches cover (0 on the others); with sigma > 0 the split (low
    frequencies of ``image``, the detail of the sources averaged like the patches, gain
    measured over ``patch`` px); pixels up to ``crack_width``
    px from known paint cross-faded (over 1 px) to ``crack_fill`` plus ``crack_detail`` times
    the detail above a 1-px Gaussian; ``patch_weights`` (N,) multiply each patch's tent.
    Returns the (n_hole, C) fill, clipped to 0..1."""
    average, total = blend(image, node_tops, node_lefts, label_tops, label_lefts, patch, power,
                           patch_weights)
    fill = average[hole]
    if harmonic_correction:
        residual = np.where(((total > 0) & ~hole)[:, :, None], image - average, 0.0)
        fill = fill + harmonic(residual, hole)
    if sigma > 0:
        # the detail of the sources: the image minus the Gaussian mean of its known pixels,
        # averaged like the patches
        known = (~hole).astype(np.float64)
        detail_map = np.stack([image[:, :, c] - box_mean(image[:, :, c], known, sigma)
                               for c in range(image.shape[2])], axis=2)
        source_detail, _ = blend(detail_map, node_tops, node_lefts, label_tops, label_lefts,
                                 patch, power, patch_weights)
        fill = structure_texture(fill, image, hole, sigma, image, gain, float(patch),
                                 detail=source_detail[hole])[hole]
    if crack_width > 0:
        composed = image.astype(np.float64).copy()
        composed[hole] = fill
        smooth = np.stack([gaussian_mirror(composed[:, :, c], 1.0)
                           for c in range(image.shape[2])], axis=2)
        thin = crack_fill[hole] + crack_detail * (composed - smooth)[hole]
        weight = np.clip(distance_to_known(hole) - crack_width + 0.5, 0.0, 1.0)[:, None]
        fill = weight * fill + (1 - weight) * thin
    return np.clip(fill, 0.0, 1.0)


def grid(size: int, patch: int, step: int) -> list[int]:
    """Grid positions of one axis: 0, step, 2 step, ... plus one flush with the far border."""
    pos = list(range(0, size - patch + 1, step))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return pos


def lattice(hole: np.ndarray, patch: int, step: int):
    """The lattice by its definition: grid positions 0, step, 2 step, ... on each axis plus one
    flush with the far border; a node wherever the patch at a grid position holds a missing
    pixel (nodes in raster order, with their missing-pixel counts); an edge between nodes next
    to each other on the grid (same column, consecutive rows or the reverse), with the
    position difference. Returns (tops, lefts, missing, {(a, b, dy, dx)})."""
    rows, cols = grid(hole.shape[0], patch, step), grid(hole.shape[1], patch, step)
    ids, tops, lefts, missing = {}, [], [], []
    for i, t in enumerate(rows):
        for j, left in enumerate(cols):
            count = sum(bool(hole[t + dy, left + dx])
                        for dy in range(patch) for dx in range(patch))
            if count:
                ids[i, j] = len(tops)
                tops.append(t)
                lefts.append(left)
                missing.append(count)
    edges = set()
    for (i, j), a in ids.items():
        if (i + 1, j) in ids:
            edges.add((a, ids[i + 1, j], rows[i + 1] - rows[i], 0))
        if (i, j + 1) in ids:
            edges.add((a, ids[i, j + 1], 0, cols[j + 1] - cols[j]))
    return np.array(tops), np.array(lefts), np.array(missing), edges


def propagated(hole: np.ndarray, patch: int, step: int, chosen: dict) -> dict:
    """PatchMatch's propagation by its definition, node by node: ``chosen`` maps each node's
    corner (top, left) to its source corner; each node is offered, from its grid neighbour above,
    left, below and right (in that order), that neighbour's source moved by the node's corner
    minus the neighbour's, when the moved patch lies inside the image and holds no missing
    pixel. Returns {corner: [proposal or None] * 4}."""
    rows, cols = grid(hole.shape[0], patch, step), grid(hole.shape[1], patch, step)
    out = {}
    for (t, left), _ in chosen.items():
        i, j = rows.index(t), cols.index(left)
        proposals = []
        for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            ni, nj = i + di, j + dj
            if not (0 <= ni < len(rows) and 0 <= nj < len(cols)) or \
                    (rows[ni], cols[nj]) not in chosen:
                proposals.append(None)
                continue
            st, sl = chosen[rows[ni], cols[nj]]
            pt, pl = st + t - rows[ni], sl + left - cols[nj]
            inside = 0 <= pt <= hole.shape[0] - patch and 0 <= pl <= hole.shape[1] - patch
            clean = inside and not hole[pt:pt + patch, pl:pl + patch].any()
            proposals.append((pt, pl) if clean else None)
        out[t, left] = proposals
    return out


def icm(unary, pairwise, edges, labels, colours, sweeps, pairwise_weight=1.0):
    """Iterated conditional modes node by node: per sweep, every node of colour 0 (all reading
    the labels as they were before the half-sweep), then of colour 1, takes the label of least
    unary + weight * sum over its edges of the pairwise cost against the neighbour's label."""
    labels = list(int(x) for x in labels)
    n_nodes, n_labels = unary.shape
    for _ in range(sweeps):
        for colour in (0, 1):
            before = list(labels)
            for node in range(n_nodes):
                if colours[node] != colour:
                    continue
                costs = []
                for x in range(n_labels):
                    cost = float(unary[node, x])
                    for e, (a, b) in enumerate(edges):
                        if a == node:
                            cost += pairwise_weight * float(pairwise[e, x, before[b]])
                        elif b == node:
                            cost += pairwise_weight * float(pairwise[e, before[a], x])
                    costs.append(cost)
                labels[node] = int(np.argmin(costs))
    return np.array(labels)
