"""``inpaint info`` without torch: the checkpoint records read by ``descriptor.metadata`` agree
with a full load, the reader refuses what is not a checkpoint, and on a CPU-only install the
command imports neither torch nor FAISS."""

import pickle
import subprocess
import sys
import zipfile

import pytest

from descriptor import builtin_names, load_checkpoint
from descriptor.metadata import BUILTIN_DIR, read_metadata
from inpaint.info import cpu_only_torch, gpu_faiss_installed


@pytest.mark.parametrize("name", builtin_names())
def test_metadata_reader_agrees_with_a_full_load(name):
    payload = read_metadata(BUILTIN_DIR / f"{name}.pt")
    ck = load_checkpoint(name)
    assert payload["arch"] == ck.arch
    assert payload["config"] == ck.config.to_dict()
    assert payload["training"] == ck.training
    assert set(payload["state_dict"]) == set(ck.model.state_dict())
    assert all(v is None for v in payload["state_dict"].values())   # weights are not read


def test_metadata_reader_refuses_what_is_not_a_checkpoint(tmp_path):
    text = tmp_path / "text.pt"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        read_metadata(text)
    empty = tmp_path / "empty.pt"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("archive/other.txt", "x")
    with pytest.raises(ValueError, match="not a torch checkpoint archive"):
        read_metadata(empty)
    hostile = tmp_path / "hostile.pt"   # a pickle that would call os.system on load
    with zipfile.ZipFile(hostile, "w") as z:
        z.writestr("archive/data.pkl", b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(ValueError, match="unexpected object os.system"):
        read_metadata(hostile)
    listing = tmp_path / "list.pt"
    with zipfile.ZipFile(listing, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not an inpaint descriptor checkpoint"):
        read_metadata(listing)


@pytest.mark.skipif(not cpu_only_torch() or gpu_faiss_installed(),
                    reason="only a CPU-only torch and faiss-cpu install can skip importing them")
def test_info_imports_neither_torch_nor_faiss_on_a_cpu_only_install():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom cli import main\n"
            "r = CliRunner().invoke(main, ['info'])\nassert r.exit_code == 0, r.output\n"
            "assert 'v128' in r.output and 'FAISS GPUs: 0' in r.output, r.output\n"
            "print(sorted(m for m in ('torch', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_descriptor_names_load_lazily_and_none_is_a_submodule():
    """``descriptor`` exports its names on first use; a name equal to a submodule's would turn
    into that module once the submodule is imported (``from descriptor import train`` returning
    a module), so none may be."""
    import importlib
    import pkgutil
    import types

    import descriptor

    submodules = {m.name for m in pkgutil.iter_modules(descriptor.__path__)}
    assert not submodules & set(descriptor.__all__), submodules & set(descriptor.__all__)
    for name in descriptor.__all__:
        value = getattr(descriptor, name)
        assert not isinstance(value, types.ModuleType), name
        assert value is getattr(importlib.import_module(f"descriptor.{descriptor._WHERE[name]}"),
                                name)
