"""Output paths checked before any work (DESIGN.md section 8).

Every path a command writes is checked against every path it reads, through symlinks
(``os.path.realpath``) and hard links (``os.path.samefile``), with or without ``--force``: an
input is never overwritten. Each output's folder must exist, be a folder and be writable; the
output must not be a folder, nor exist unless ``force``. All of this happens before the first
pixel is read, so a bad ``--report`` or ``--preview`` path costs nothing and leaves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import InpaintError

Named = tuple[str, "str | os.PathLike[str]"]   # (what it is, e.g. "--report", path)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: same real path, or (both existing) same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:   # one of them does not exist (yet): the real paths decided
        return False


def check_output_path(label: str, path: str | os.PathLike, force: bool) -> None:
    """One output: its folder exists, is a folder and is writable; it is not a folder; it does
    not exist unless ``force``."""
    p = Path(path)
    try:
        _check_output_path(label, p, force)
    except OSError as exc:   # e.g. a name longer than the filesystem allows
        raise InpaintError(f"{label} {p}: {exc.strerror or exc}") from None


def _check_output_path(label: str, p: Path, force: bool) -> None:
    folder = p.parent
    if p.is_dir():
        raise InpaintError(f"{label} {p} is a folder: give a file name")
    if not folder.exists():
        raise InpaintError(f"output folder {folder} of {label} {p} does not exist")
    if not folder.is_dir():
        raise InpaintError(f"{label} {p}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InpaintError(f"output folder {folder} of {label} {p} is not writable")
    if p.exists() and not force:
        raise InpaintError(f"{p} exists; pass --force to overwrite")


def check_outputs(outputs: Iterable[Named], inputs: Iterable[Named], force: bool) -> None:
    """Every output valid (:func:`check_output_path`), none of them an input or another
    output. ``inputs`` may hold pseudo-paths (``skimage:NAME``) and None, which are skipped."""
    outputs = [(label, path) for label, path in outputs if path]
    inputs = [(label, path) for label, path in inputs
              if path and not str(path).startswith("skimage:")]
    for k, (label, path) in enumerate(outputs):
        for in_label, in_path in inputs:
            if same_file(path, in_path):
                raise InpaintError(f"{label} {path} is the {in_label} ({in_path}): an input is "
                                   "never overwritten; choose another name")
        for other_label, other in outputs[k + 1:]:
            if same_file(path, other):
                raise InpaintError(f"{label} and {other_label} are the same file ({path}); "
                                   "choose different names")
    for label, path in outputs:
        check_output_path(label, path, force)


def checkpoint_file(descriptor: str) -> str | None:
    """The checkpoint file a descriptor name or path reads, or None (pixel mode, or not found:
    loading it reports that later)."""
    if descriptor == "none":
        return None
    from descriptor.checkpoint import resolve

    try:
        return str(resolve(descriptor))
    except Exception:  # noqa: BLE001 - any problem is reported, clearly, when it is loaded
        return None
