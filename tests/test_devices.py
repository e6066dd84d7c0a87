"""The inner MRF stages (masked SSD, pairwise, NCMP, composition) are device-agnostic torch.

Two kinds of checks, both honest on a CPU-only machine:

* the torch functions equal the slow references (tests/mrf_reference.py) whether they are given
  numpy arrays or tensors, on every device of this machine;
* they run on the device they are *given*: on torch's ``meta`` device (shapes only, no data) a
  result comes back on ``meta`` only if every operation ran there, so a dropped or swapped
  ``device`` argument (or a tensor made on the CPU inside, caught by ``OneDevicePerOp`` where
  ``meta`` would tolerate it, as a GPU does not) fails; and the run's device reaches
  each stage through ``RegionInpainter`` -> ``inpaint_pyramid`` -> ``inpaint_mrf``, recorded by
  spies that then run the real stage on the CPU.
"""

from __future__ import annotations

import mrf_reference as ref
import numpy as np
import pytest
import torch
from hardware import cuda_devices
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import inpaint.inpainter as region_module
import mrf.compose as compose_module
import mrf.inpainter as mrf_module
import mrf.pyramid as pyramid_module
from inpaint.config import PIXEL_MODE, RunConfig
from mrf import MRFConfig, MRFResult, build_lattice, inpaint_mrf, inpaint_pyramid, prefill
from mrf.compose import blend_patches, blend_patches_tensor, compose
from mrf.energy import (
    edge_pairwise,
    edge_pairwise_tensor,
    masked_ssd,
    masked_ssd_tensor,
    strip_ssd,
)

DEVICES = ["cpu"] + [f"cuda:{k}" for k in range(cuda_devices())]
META = torch.device("meta")


def _case(seed: int = 0, size: int = 36, patch: int = 7, labels: int = 4):
    """Random image, a lacuna with border losses, its lattice and random fully-in-image labels
    (N, labels)."""
    rng = np.random.default_rng(seed)
    image = rng.random((size, size, 3)).astype(np.float32)
    hole = np.zeros((size, size), bool)
    hole[8:20, 10:23] = True
    hole[size - 3:, size - 4:] = True
    lattice = build_lattice(hole, patch, 3)
    tops = rng.integers(0, size - patch + 1, (lattice.n_nodes, labels))
    lefts = rng.integers(0, size - patch + 1, (lattice.n_nodes, labels))
    return image, hole, lattice, tops, lefts, patch


class OneDevicePerOp(TorchDispatchMode):
    """Every torch operation run inside must take its tensors from one device, as on a GPU
    (``meta`` alone tolerates e.g. a CPU tensor indexed by a ``meta`` one); 0-d CPU scalars
    excepted."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        tensors = [t for t in tree_flatten((args, kwargs or {}))[0]
                   if isinstance(t, torch.Tensor) and not (t.dim() == 0 and t.device.type == "cpu")]
        devices = {t.device for t in tensors}
        assert len(devices) <= 1, f"{func} mixes devices {devices}"
        return func(*args, **(kwargs or {}))


def _tensors(device, *arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


# -- equal to the references, numpy or tensor inputs -------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_masked_ssd_equals_the_reference_from_numpy_and_from_tensors(device):
    image, hole, lat, tops, lefts, patch = _case(1)
    want = np.array([[ref.masked_ssd(image, hole, (lat.tops[i], lat.lefts[i]),
                                     (tops[i, j], lefts[i, j]), patch)
                      for j in range(tops.shape[1])] for i in range(lat.n_nodes)])
    from_numpy = masked_ssd(image, hole, lat.tops, lat.lefts, tops, lefts, patch, chunk=5,
                            device=device)
    assert from_numpy.dtype == np.float64 and from_numpy.shape == want.shape
    np.testing.assert_allclose(from_numpy, want, rtol=1e-5, atol=1e-6)
    on_device = masked_ssd_tensor(*_tensors(device, image, hole, lat.tops, lat.lefts, tops,
                                            lefts), patch, chunk=5, device=device)
    assert on_device.device == torch.device(device)
    assert np.array_equal(on_device.cpu().numpy(), from_numpy)


@pytest.mark.parametrize("device", DEVICES)
def test_edge_pairwise_equals_the_reference_from_numpy_and_from_tensors(device):
    image, _, lat, tops, lefts, patch = _case(2, labels=3)
    got = edge_pairwise(image, lat.edges, lat.offsets, tops, lefts, patch, chunk=4,
                        device=device)
    assert got.dtype == np.float32
    for e, (a, b) in enumerate(lat.edges):
        for x in range(3):
            for y in range(3):
                want = ref.overlap_ssd(image, (lat.tops[a], lat.lefts[a]),
                                       (tops[a, x], lefts[a, x]), (lat.tops[b], lat.lefts[b]),
                                       (tops[b, y], lefts[b, y]), patch)
                assert got[e, x, y] == pytest.approx(want, rel=1e-4, abs=1e-3), (e, x, y)
    on_device = edge_pairwise_tensor(*_tensors(device, image, lat.edges, lat.offsets, tops,
                                               lefts), patch, chunk=4, device=device)
    assert on_device.device == torch.device(device)
    assert np.array_equal(on_device.cpu().numpy(), got)


def test_strip_ssd_gives_the_same_on_tensors_as_on_arrays():
    """Pruning calls it with numpy patches, pairwise with tensors: one implementation."""
    rng = np.random.default_rng(4)
    first, second = rng.random((5, 3, 7, 7, 3)), rng.random((5, 4, 7, 7, 3))
    for offset in [(3, 0), (0, 3), (1, 0), (0, 6)]:
        arrays = strip_ssd(first, second, offset)
        tensors = strip_ssd(torch.from_numpy(first), torch.from_numpy(second), offset)
        assert isinstance(arrays, np.ndarray) and isinstance(tensors, torch.Tensor)
        assert arrays.dtype == np.float32 and tensors.dtype == torch.float32
        np.testing.assert_allclose(tensors.numpy(), arrays, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_blend_patches_equals_the_reference_on_the_device(device):
    image, _, lat, tops, lefts, patch = _case(3)
    weights = np.random.default_rng(5).random(lat.n_nodes)
    got, wsum = blend_patches(image, lat.tops, lat.lefts, tops[:, 0], lefts[:, 0], patch,
                              patch_weights=weights, chunk=7, device=device)
    want, want_sum = ref.blend(image, lat.tops, lat.lefts, tops[:, 0], lefts[:, 0], patch, 2.0,
                               weights)
    np.testing.assert_allclose(wsum, want_sum, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# -- run on the device given --------------------------------------------------------------------

def test_masked_ssd_runs_on_the_device_it_is_given():
    image, hole, lat, tops, lefts, patch = _case()
    with OneDevicePerOp():
        out = masked_ssd_tensor(image, hole, lat.tops, lat.lefts, tops, lefts, patch, chunk=5,
                                device=META)
    assert out.device == META and tuple(out.shape) == tops.shape and out.dtype == torch.float64
    # label pixels cut on the host are moved to the device too
    cut = np.zeros((*tops.shape, patch, patch, 3), np.float32)
    with OneDevicePerOp():
        out = masked_ssd_tensor(image, hole, lat.tops, lat.lefts, tops, lefts, patch,
                                label_patches=cut, device="meta")
    assert out.device == META


def test_edge_pairwise_runs_on_the_device_it_is_given():
    image, _, lat, tops, lefts, patch = _case()
    with OneDevicePerOp():
        out = edge_pairwise_tensor(image, lat.edges, lat.offsets, tops, lefts, patch, chunk=5,
                                   device=META)
    assert out.device == META and out.dtype == torch.float32
    assert tuple(out.shape) == (len(lat.edges), tops.shape[1], tops.shape[1])


@pytest.mark.parametrize("weights", ["patch", "pixel"])
def test_blend_patches_accumulates_on_the_device_it_is_given(weights):
    image, _, lat, tops, lefts, patch = _case()
    rng = np.random.default_rng(0)
    kwargs = ({"patch_weights": rng.random(lat.n_nodes)} if weights == "patch" else
              {"pixel_weights": rng.random((lat.n_nodes, patch, patch))})
    with OneDevicePerOp():
        blend, wsum = blend_patches_tensor(image, lat.tops, lat.lefts, tops[:, 0], lefts[:, 0],
                                           patch, chunk=5, device=META, **kwargs)
    assert blend.device == META and wsum.device == META
    assert tuple(blend.shape) == image.shape and blend.dtype == torch.float64


def _spy(monkeypatch, module, name: str, seen: dict, result=None):
    """Replace ``module.name`` by a spy that records the ``device`` keyword it is given and runs
    the real function on the CPU (or returns ``result(*args)`` when given)."""
    real = getattr(module, name)

    def spy(*args, device="cpu", **kwargs):
        seen.setdefault(name, []).append(str(device))
        return result(*args) if result else real(*args, device="cpu", **kwargs)
    monkeypatch.setattr(module, name, spy)


@pytest.mark.parametrize("message", ["sum", "last"])
def test_ncmp_puts_its_arrays_on_the_device_it_is_given(monkeypatch, message):
    """NCMP's unary, pairwise costs, edges (and edge directions) go to ``device`` (``meta``
    here; a spy of ``torch.as_tensor`` records it and builds the tensor on the CPU), and the
    result still comes back right."""
    import mrf.inference as inference

    real, asked = torch.as_tensor, []

    def spy(data, dtype=None, device=None):
        asked.append(str(device))
        return real(data, dtype=dtype)
    monkeypatch.setattr(inference.torch, "as_tensor", spy)
    rng = np.random.default_rng(0)
    unary, pairwise = rng.random((4, 3)), rng.random((3, 3, 3))
    edges, vertical = np.array([[0, 1], [1, 2], [2, 3]]), np.array([False, True, False])
    got = inference.ncmp(unary, pairwise, edges, message=message, vertical=vertical,
                         device="meta")
    assert len(asked) >= 3 and set(asked) == {"meta"}, asked   # unary, pairwise, edges, ...
    monkeypatch.undo()
    want = inference.ncmp(unary, pairwise, edges, message=message, vertical=vertical)
    np.testing.assert_array_equal(got.labels, want.labels)


@pytest.mark.parametrize("composition", ["copy", "blend"])
def test_compose_accumulates_on_its_device(monkeypatch, composition):
    image, hole, lat, tops, lefts, patch = _case(5)
    seen: dict[str, list[str]] = {}
    _spy(monkeypatch, compose_module, "blend_patches", seen)
    kwargs = ({"rank": np.arange(lat.n_nodes)} if composition == "copy" else
              {"patch_weights": np.ones(lat.n_nodes)})
    out = compose(image, hole, lat.tops, lat.lefts, tops[:, 0], lefts[:, 0], patch,
                  composition=composition, device="meta", **kwargs)
    assert seen == {"blend_patches": ["meta"]}
    assert np.array_equal(out[~hole], image[~hole])


def test_inpaint_mrf_hands_its_device_to_every_inner_stage(monkeypatch):
    """Re-ranking SSD, pairwise, NCMP, ICM and composition each receive ``inpaint_mrf``'s
    device (``meta`` here: the spies run the stages on the CPU, so the fill is a real one),
    the propagation round's included."""
    image, hole, *_ = _case(6, size=48)
    filled = prefill(image, hole)
    seen: dict[str, list[str]] = {}
    stages = ("masked_ssd", "edge_pairwise_tensor", "ncmp", "icm", "compose")
    for name in stages:
        _spy(monkeypatch, mrf_module, name, seen)
    cfg = MRFConfig(passes=2, shortlist=8, labels=3, use_context=False)
    assert cfg.icm_sweeps > 0 and cfg.propagation > 0
    out = inpaint_mrf(filled, hole, None, cfg, device="meta")
    assert set(seen) == set(stages)
    # per pass: NCMP and ICM after pruning, and again in the propagation round
    assert len(seen["ncmp"]) == len(seen["icm"]) == 2 * cfg.passes
    assert all(d == "meta" for calls in seen.values() for d in calls), seen
    assert np.array_equal(out.image[~hole], filled[~hole])
    # the default is the CPU, so that library callers see no change
    seen.clear()
    inpaint_mrf(filled, hole, None, cfg)
    assert all(d == "cpu" for calls in seen.values() for d in calls), seen


def test_inpaint_pyramid_hands_its_device_to_every_level(monkeypatch):
    image, hole, *_ = _case(7, size=96)
    hole[:] = False
    hole[30:60, 30:62] = True     # wider than a patch: the coarse level runs
    filled = prefill(image, hole)
    seen: dict[str, list[str]] = {}
    _spy(monkeypatch, pyramid_module, "inpaint_mrf", seen,
         result=lambda img, *_: MRFResult(image=img.copy(), stats={"nodes": 1}))
    result = inpaint_pyramid(filled, hole, None, MRFConfig(levels=2), device="meta")
    assert result.stats["pyramid"][0].get("nodes") == 1, result.stats["pyramid"]
    assert seen == {"inpaint_mrf": ["meta", "meta"]}     # coarse, then fine


@pytest.mark.parametrize("window", ["regular", "fallback"])
def test_region_inpainter_runs_the_mrf_on_the_runs_device(monkeypatch, window):
    """The run's device (``RegionInpainter.device``) reaches the MRF, for the configured patch
    and for the smaller-patch fallback of a window without a fully known 9 x 9 patch."""
    rng = np.random.default_rng(8)
    size = 40 if window == "regular" else 12
    colour = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    hole = np.zeros((size, size), bool)
    hole[size // 2 - 2:size // 2 + 2, size // 2 - 2:size // 2 + 2] = True
    seen: dict[str, list[str]] = {}
    fake = lambda img, *_: MRFResult(image=img.copy(), stats={"nodes": 1})
    _spy(monkeypatch, region_module, "inpaint_pyramid", seen, result=fake)
    _spy(monkeypatch, region_module, "inpaint_mrf", seen, result=fake)
    inpainter = region_module.RegionInpainter(RunConfig(descriptor=PIXEL_MODE), META,
                                              use_gpu=False)
    inpainter.inpaint(colour, hole)
    name = "inpaint_pyramid" if window == "regular" else "inpaint_mrf"
    assert seen == {name: [str(META)]}


def test_torch_threads_limits_the_cpu_only_and_restores():
    from mrf.threads import torch_threads

    before = torch.get_num_threads()
    with torch_threads("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(META):
        assert torch.get_num_threads() == before   # another device: the host is not touched
    with pytest.raises(RuntimeError), torch_threads(torch.device("cpu")):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_peak_memory_samples_device_wide_use_on_a_cuda_device(monkeypatch):
    """FAISS GPU indexes and worker processes allocate outside torch's counter: with a CUDA
    device, PeakMemory samples the device's use (total - free) and reports the highest minus
    the use at entry; on the CPU it reports None. The CUDA query is faked, so this holds on a
    GPU machine as on this one."""
    import time

    import inpaint.memory as memory

    used, asked = {"bytes": 1000}, []

    def mem_get_info(device):
        asked.append(device)
        return 10_000 - used["bytes"], 10_000

    monkeypatch.setattr(memory.torch.cuda, "mem_get_info", mem_get_info)
    with memory.PeakMemory(interval=0.005, device="cuda:1") as peak:
        used["bytes"] = 4000            # e.g. a FAISS GPU index, seen by no torch counter
        deadline = time.monotonic() + 5
        while max(peak._device_peak, 0) < 4000 and time.monotonic() < deadline:
            time.sleep(0.01)
        used["bytes"] = 1500
    assert peak.peak_device_in_use == 3000
    assert asked and all(torch.device(d) == torch.device("cuda:1") for d in asked)
    with memory.PeakMemory(device="cpu") as on_cpu:
        pass
    assert on_cpu.peak_device_in_use is None


def test_run_measures_device_memory_on_the_runs_device(monkeypatch):
    """``run`` opens PeakMemory on the device it runs on, and reports the device-wide peak
    (None on the CPU)."""
    import inpaint.pipeline as pipeline

    seen = []

    class Spy(pipeline.PeakMemory):
        def __init__(self, *args, device=None, **kwargs):
            seen.append(None if device is None else torch.device(device))
            super().__init__(*args, device=device, **kwargs)

    monkeypatch.setattr(pipeline, "PeakMemory", Spy)
    rng = np.random.default_rng(0)
    image = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    mask = np.zeros((48, 48), bool)
    mask[20:26, 20:26] = True
    result = pipeline.run(image, mask, RunConfig(descriptor=PIXEL_MODE, device="cpu"))
    assert seen == [torch.device("cpu")]
    assert "peak_device_in_use_bytes" in result.report
    assert result.report["peak_device_in_use_bytes"] is None
