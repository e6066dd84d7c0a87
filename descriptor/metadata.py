"""What a checkpoint says about itself, read without torch (``inpaint info`` starts at once).

A checkpoint is a ``torch.save`` zip archive whose ``data.pkl`` holds the payload dict; its
tensors are stored apart. Here that pickle is read with every torch object replaced by ``None``
(and nothing but torch objects and ``OrderedDict`` allowed, like ``weights_only``), so the
plain fields (format, architecture, config, training record) come out without loading weights.
Nothing here validates the weights: ``checkpoint.load_checkpoint`` does, before any use.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "weights"


def builtin_names() -> list[str]:
    """Names of the descriptors shipped inside the package (``v32``, ``v128``, ...)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.pt"))


class _PlainFields(pickle.Unpickler):
    """Unpickles a checkpoint payload with tensors and storages as ``None``."""

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _nothing
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a checkpoint")

    def persistent_load(self, pid):
        return None


def _nothing(*args, **kwargs) -> None:
    return None


def read_metadata(path: str | os.PathLike) -> dict:
    """The payload of a checkpoint file without its weights (``state_dict`` values are None).

    Raises ``ValueError`` for a file that is not a torch zip archive with one ``data.pkl``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(names) != 1:
                raise ValueError(f"{path}: not a torch checkpoint archive")
            with archive.open(names[0]) as stream:
                payload = _PlainFields(stream).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not an inpaint descriptor checkpoint")
    return payload
