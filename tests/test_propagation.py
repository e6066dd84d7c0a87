"""After NCMP: ICM (``mrf.inference.icm``) and PatchMatch-like propagation, where each node is
offered its neighbours' chosen sources shifted by its offset from them
(``mrf.candidates.propagated_labels``); both checked against node by node references, and
their effect end to end: a coherent source travels into a lacuna, neighbouring copies agree."""

from __future__ import annotations

import mrf_reference as ref
import numpy as np
import pytest

from mrf import MRFConfig, build_lattice, inpaint_mrf, prefill
from mrf.candidates import propagated_labels
from mrf.inference import NCMPResult, icm, ncmp
from mrf.inpainter import _infer, _propagate


def _scene(seed: int, shape=(41, 38), patch: int = 7, step: int = 3):
    rng = np.random.default_rng(seed)
    hole = np.zeros(shape, bool)
    hole[8:30, 9:27] = rng.random((22, 18)) < 0.6
    hole[33:, 30:] = True                         # nodes flush with the far borders
    lattice = build_lattice(hole, patch, step)
    # sources anywhere, many near the borders so that shifted ones leave the image
    tops = rng.integers(0, shape[0] - patch + 1, lattice.n_nodes)
    lefts = rng.integers(0, shape[1] - patch + 1, lattice.n_nodes)
    return hole, lattice, tops, lefts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_propagated_labels_match_the_node_by_node_reference(seed):
    hole, lattice, tops, lefts = _scene(seed)
    got_t, got_l, valid = propagated_labels(lattice, tops, lefts, hole)
    chosen = {(int(t), int(left)): (int(st), int(sl)) for t, left, st, sl
              in zip(lattice.tops, lattice.lefts, tops, lefts)}
    want = ref.propagated(hole, lattice.patch, lattice.step, chosen)
    assert valid.any() and not valid.all()        # the case has both kinds
    for n, (t, left) in enumerate(zip(lattice.tops, lattice.lefts)):
        for slot, proposal in enumerate(want[int(t), int(left)]):
            if proposal is None:
                assert not valid[n, slot]
                # an invalid slot holds the node's own source (never a patch off the image)
                assert (got_t[n, slot], got_l[n, slot]) == (tops[n], lefts[n])
            else:
                assert valid[n, slot]
                assert (got_t[n, slot], got_l[n, slot]) == proposal


def test_a_propagation_round_keeps_l_distinct_labels_and_normalised_beliefs(monkeypatch):
    rng = np.random.default_rng(3)
    image = rng.random((40, 40, 3)).astype(np.float32)
    hole, lattice, tops, lefts = _scene(3, shape=(40, 40))
    image[hole] = 0.5
    n_labels = 3
    kept_tops = rng.integers(0, 34, (lattice.n_nodes, n_labels))
    kept_lefts = rng.integers(0, 34, (lattice.n_nodes, n_labels))
    kept_tops[:, 0], kept_lefts[:, 0] = tops, lefts
    unary = rng.random((lattice.n_nodes, n_labels)).astype(np.float32)
    pairwise = rng.random((len(lattice.edges), n_labels, n_labels))
    result = ncmp(unary, pairwise, lattice.edges, temperature=10.0)
    cfg = MRFConfig(patch_size=7, patch_step=3, labels=n_labels, shortlist=n_labels)
    seen = _spy_round(monkeypatch)
    new_t, new_l, new_u, new = _propagate(cfg, image, hole, lattice, kept_tops, kept_lefts,
                                          unary, result)
    # ICM's choice comes first, also where NCMP's most believed label differs
    assert (seen["icm"] != seen["ncmp"]).any()
    nodes = np.arange(lattice.n_nodes)
    np.testing.assert_array_equal(new_t[:, 0], seen["tops"][nodes, seen["icm"]])
    np.testing.assert_array_equal(new_l[:, 0], seen["lefts"][nodes, seen["icm"]])
    assert new_t.shape == new_l.shape == new_u.shape == new.beliefs.shape == kept_tops.shape
    np.testing.assert_allclose(new.beliefs.sum(1), 1.0, rtol=1e-9)
    # the chosen label (NCMP's, refined by ICM) comes first, then the most believed
    assert (new.labels == 0).all()
    assert (np.diff(new.beliefs[:, 1:], axis=1) <= 1e-12).all()
    # a source offered by several neighbours, or already kept, is kept once
    pairs = new_t * 10_000 + new_l
    assert all(len(set(row)) == len(row) for row in pairs.tolist())
    # nothing kept comes from outside the image or touches the hole
    assert (new_u < 1e5).all()


def _tiled_scene():
    rng = np.random.default_rng(0)
    truth = np.tile(rng.random((20, 20, 3)), (5, 5, 1)).astype(np.float32)
    hole = np.zeros(truth.shape[:2], bool)
    hole[40:61, 40:61] = True
    return truth, hole


def test_propagation_carries_exact_sources_into_a_lacuna():
    """A tiled random 20 px pattern with a 21 px lacuna: the rim nodes find exact sources on
    their known pixels; the inner nodes, matched on the smooth pre-fill, do not. Each round
    moves the rim's coherent sources one node inwards: without propagation the fill is a
    mosaic (measured 17 dB), after two rounds it is the pattern exactly (measured error 0).
    A shift of the wrong sign or the wrong neighbour breaks the exact copy."""
    truth, hole = _tiled_scene()
    damaged = truth.copy()
    damaged[hole] = 0.0
    filled = prefill(damaged, hole)

    def hole_mse(rounds):
        result = inpaint_mrf(filled, hole, config=MRFConfig(propagation=rounds)).image
        assert np.array_equal(result[~hole], filled[~hole])
        return float(np.mean((result[hole] - truth[hole]) ** 2))

    without, two = hole_mse(0), hole_mse(2)
    assert without > 1e-2
    assert two < 1e-8


def test_propagation_rounds_are_validated():
    with pytest.raises(ValueError, match="propagation must be 0..8"):
        MRFConfig(propagation=9)
    with pytest.raises(ValueError, match="propagation must be 0..8"):
        MRFConfig(propagation=-1)


def _lattice_mrf(seed: int, n_labels: int = 5):
    """A lattice of a random hole (nodes flush with the borders too) with random costs."""
    rng = np.random.default_rng(seed)
    hole = rng.random((30, 27)) < 0.15
    hole[24:, 20:] = True
    lattice = build_lattice(hole, 7, 3)
    unary = rng.random((lattice.n_nodes, n_labels))
    pairwise = rng.random((len(lattice.edges), n_labels, n_labels))
    return lattice, unary, pairwise


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lattice_colours_are_a_checkerboard_of_the_edges(seed):
    lattice, _, _ = _lattice_mrf(seed)
    colours = lattice.colours
    assert set(np.unique(colours)) == {0, 1}
    assert (colours[lattice.edges[:, 0]] != colours[lattice.edges[:, 1]]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sweeps,weight", [(1, 1.0), (3, 0.5)])
def test_icm_matches_the_node_by_node_reference_and_never_raises_the_energy(seed, sweeps,
                                                                            weight):
    lattice, unary, pairwise = _lattice_mrf(seed)
    start = np.random.default_rng(seed + 10).integers(0, unary.shape[1], lattice.n_nodes)
    got, got_energy = icm(unary, pairwise, lattice.edges, start, lattice.colours,
                          sweeps=sweeps, pairwise_weight=weight)
    want = ref.icm(unary, pairwise, lattice.edges, start, lattice.colours, sweeps, weight)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, start)   # the case moves labels

    def energy(labels):
        e = np.arange(len(lattice.edges))
        return unary[np.arange(len(labels)), labels].sum() + weight * pairwise[
            e, labels[lattice.edges[:, 0]], labels[lattice.edges[:, 1]]].sum()

    energies = [energy(start)]
    for n in range(1, sweeps + 1):
        energies.append(energy(icm(unary, pairwise, lattice.edges, start, lattice.colours,
                                   sweeps=n, pairwise_weight=weight)[0]))
    # the energy returned is the MRF energy of the labels, the one ICM minimises
    e = np.arange(len(lattice.edges))
    assert got_energy == pytest.approx(unary[np.arange(len(got)), got].sum() + weight * pairwise[
        e, got[lattice.edges[:, 0]], got[lattice.edges[:, 1]]].sum())
    assert all(b <= a + 1e-9 for a, b in zip(energies, energies[1:]))
    assert energies[-1] < energies[0]


def test_icm_makes_neighbouring_copies_agree_in_smooth_paint():
    """Faint grain on a smooth ground (the case of the lattice-step mosaic): NCMP's beliefs
    are nearly flat there, so its argmax ignores which label a neighbour takes; ICM's labels
    have the lower MRF energy, which the inpainter reports as the last energy of the pass."""
    rng = np.random.default_rng(0)
    truth = np.clip(0.8 + 0.02 * rng.standard_normal((64, 64, 3)), 0, 1).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[20:44, 18:42] = True
    filled = prefill(np.where(hole[:, :, None], 0, truth).astype(np.float32), hole)
    stats = {}
    for sweeps in (0, 2):
        result = inpaint_mrf(filled, hole, config=MRFConfig(icm_sweeps=sweeps, propagation=0))
        stats[sweeps] = result.stats["passes"][0]["energies"]
    assert len(stats[2]) == len(stats[0]) + 1
    assert stats[2][:-1] == stats[0]             # NCMP itself is unchanged
    assert stats[2][-1] < stats[0][-1]            # ICM lowered the energy of the labels


def test_infer_returns_icms_labels_and_ncmps_beliefs():
    lattice, unary, pairwise = _lattice_mrf(4)
    cfg = MRFConfig(patch_size=7, patch_step=3)
    got = _infer(cfg, lattice, unary, pairwise)
    plain = ncmp(unary, pairwise, lattice.edges, iterations=cfg.iterations,
                 temperature=cfg.temperature)
    want, energy = icm(unary, pairwise, lattice.edges, plain.labels, lattice.colours,
                       sweeps=cfg.icm_sweeps)
    assert not np.array_equal(want, plain.labels)      # the case moves labels
    np.testing.assert_array_equal(got.labels, want)
    np.testing.assert_array_equal(got.beliefs, plain.beliefs)
    assert got.energies == [*plain.energies, energy]


def _spy_round(monkeypatch) -> dict:
    """Record, in a propagation round, the L + 4 labels' corners (what the pairwise costs are
    computed for), NCMP's argmax and ICM's choice."""
    import mrf.inpainter as inpainter_module
    seen = {}
    real_icm, real_ncmp = inpainter_module.icm, inpainter_module.ncmp
    real_pairwise = inpainter_module.edge_pairwise_tensor

    def icm_spy(*args, **kwargs):
        out = real_icm(*args, **kwargs)
        seen["icm"] = out[0]
        return out

    def ncmp_spy(*args, **kwargs):
        out = real_ncmp(*args, **kwargs)
        seen["ncmp"] = out.labels
        return out

    def pairwise_spy(image_, edges, offsets, label_tops, label_lefts, *args, **kwargs):
        seen["tops"], seen["lefts"] = label_tops, label_lefts
        return real_pairwise(image_, edges, offsets, label_tops, label_lefts, *args, **kwargs)

    monkeypatch.setattr(inpainter_module, "icm", icm_spy)
    monkeypatch.setattr(inpainter_module, "ncmp", ncmp_spy)
    monkeypatch.setattr(inpainter_module, "edge_pairwise_tensor", pairwise_spy)
    return seen


def _coherent_scene(n_labels: int = 3):
    """A pattern of period 6 and a 10-px hole; every node of colour 0 copies the patch 18 px
    above it (an exact, coherent source), every node of colour 1 a random one: each colour-1
    node is offered one source by all its neighbours."""
    rng = np.random.default_rng(5)
    image = np.tile(rng.random((6, 6, 3)), (11, 11, 1))[:64, :64].astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[28:38, 28:38] = True
    image[hole] = 0.5
    lattice = build_lattice(hole, 7, 3)
    kept_tops = rng.integers(40, 57, (lattice.n_nodes, n_labels))
    kept_lefts = rng.integers(0, 57, (lattice.n_nodes, n_labels))
    coherent = lattice.colours == 0
    kept_tops[coherent, 0] = lattice.tops[coherent] - 18
    kept_lefts[coherent, 0] = lattice.lefts[coherent]
    unary = rng.random((lattice.n_nodes, n_labels)).astype(np.float32)
    result = NCMPResult(labels=np.zeros(lattice.n_nodes, dtype=np.int64),
                        beliefs=np.full((lattice.n_nodes, n_labels), 1.0 / n_labels),
                        iterations=0)
    return image, hole, lattice, kept_tops, kept_lefts, unary, result


def test_a_source_offered_by_several_neighbours_is_kept_once_and_icms_choice_first(
        monkeypatch):
    image, hole, lattice, kept_tops, kept_lefts, unary, result = _coherent_scene()
    tops, _, valid = propagated_labels(lattice, kept_tops[:, 0], kept_lefts[:, 0], hole)
    offered = (lattice.colours == 1) & (valid.sum(1) >= 2)
    # every valid offer to these nodes is one source: the patch 18 px above
    above = (lattice.tops - 18)[:, None]
    assert offered.any() and (np.where(valid, tops, above)[offered] == above[offered]).all()
    seen = _spy_round(monkeypatch)
    cfg = MRFConfig(patch_size=7, patch_step=3, labels=3, shortlist=3)
    new_t, new_l, _, new = _propagate(cfg, image, hole, lattice, kept_tops, kept_lefts, unary,
                                      result)
    pairs = new_t * 10_000 + new_l
    assert all(len(set(row)) == len(row) for row in pairs.tolist())
    # the exact, coherent source won where it was offered, and it is kept first
    nodes = np.arange(lattice.n_nodes)
    np.testing.assert_array_equal(new_t[:, 0], seen["tops"][nodes, seen["icm"]])
    np.testing.assert_array_equal(new_l[:, 0], seen["lefts"][nodes, seen["icm"]])
    assert (new_t[offered, 0] == lattice.tops[offered] - 18).all()


def test_a_single_kept_label_survives_icm_choosing_a_label_of_zero_belief():
    """labels=1 and a tiny temperature: NCMP's beliefs are one-hot, ICM may choose another
    label, whose belief is 0; kept alone it takes the whole weight (no 0/0)."""
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 3)).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 22:42] = True
    out = inpaint_mrf(prefill(image, hole), hole,
                      config=MRFConfig(labels=1, temperature=1e-3, propagation=3))
    assert np.isfinite(out.image).all()


def test_the_cli_bounds_are_the_configs():
    from click.testing import CliRunner

    import cli
    from mrf.inpainter import MAX_ICM_SWEEPS, MAX_PROPAGATION
    params = {p.name: p for p in cli.main.commands["run"].params}
    assert params["icm_sweeps"].type.max == MAX_ICM_SWEEPS
    assert params["propagation"].type.max == MAX_PROPAGATION
    result = CliRunner().invoke(cli.main, ["run", "x.png", "--mask", "m.png", "-o", "o.png",
                                           "--icm-sweeps", str(MAX_ICM_SWEEPS + 1)])
    assert result.exit_code == 2 and "--icm-sweeps" in result.output


def test_proposals_pay_the_texture_term_like_the_other_labels(monkeypatch):
    """With ``texture_weight`` > 0 the kept labels' unary holds the texture term; the proposals
    pay it too (else they would be cheaper than the labels they compete with)."""
    import mrf.inpainter as inpainter_module
    image, hole, lattice, kept_tops, kept_lefts, unary, result = _coherent_scene()
    calls = []

    def texture_spy(image_, hole_, node_tops, node_lefts, missing, tops, lefts, patch):
        calls.append(tops.shape)
        return np.full(tops.shape, 1e3)

    monkeypatch.setattr(inpainter_module, "texture_unary", texture_spy)
    cfg = MRFConfig(patch_size=7, patch_step=3, labels=3, shortlist=3, texture_weight=1.0)
    _, _, new_u, _ = _propagate(cfg, image, hole, lattice, kept_tops, kept_lefts, unary, result)
    assert calls == [(lattice.n_nodes, 4)]
    # at this cost no proposal beats a kept label: all kept are the originals
    assert (new_u < 1e3).all()
