"""Descriptor checkpoints: one ``.pt`` file with architecture, config, weights, normalisation and
training metadata, loaded with ``torch.load(weights_only=True)`` and validated.

A SHA-256 digest over the config and every tensor is stored alongside, so a file whose weights or
config were edited after saving is refused instead of silently producing other descriptors.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from .metadata import BUILTIN_DIR, builtin_names
from .models import build_model

FORMAT = "inpaint-descriptor"
FORMAT_VERSION = 1
NORMALISATION = {"colour": "RGB", "input_range": [0.0, 1.0]}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, tampered or of the wrong kind."""


@dataclass
class Checkpoint:
    """A loaded, validated descriptor model."""

    config: ModelConfig
    model: nn.Module
    training: dict = field(default_factory=dict)
    normalisation: dict = field(default_factory=lambda: dict(NORMALISATION))
    source: str = ""

    @property
    def arch(self) -> str:
        return self.config.arch


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A built-in name or a file path -> the checkpoint file (clear error when neither)."""
    text = str(name_or_path)
    builtin = BUILTIN_DIR / f"{text}.pt"
    if os.sep not in text and not text.endswith(".pt") and builtin.is_file():
        return builtin
    path = Path(text).expanduser()
    if path.is_file():
        return path
    names = ", ".join(builtin_names()) or "none installed"
    raise CheckpointError(f"descriptor {text!r} not found: no such file, and not a built-in "
                          f"name ({names})")


def state_digest(config: dict, state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the config (as canonical JSON) and every tensor's bytes, in key order."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path: str | os.PathLike,
                    training: dict | None = None) -> Path:
    """Write ``model`` (with its ``config``) and training metadata to ``path`` atomically."""
    config = model.config.to_dict()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.config.arch,
        "config": config,
        "state_dict": state,
        "normalisation": dict(NORMALISATION),
        "training": _plain(training or {}),
        "sha256": state_digest(config, state),
    }
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    expected_arch: str | tuple[str, ...] | None = None,
) -> Checkpoint:
    """Load and validate a checkpoint by path or built-in name; raises ``CheckpointError``."""
    path = resolve(name_or_path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable descriptor checkpoint "
                              f"({reason[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an inpaint descriptor checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('format_version')} "
                              f"is not supported (expected {FORMAT_VERSION})")
    try:
        config = ModelConfig(**payload["config"])
        state = payload["state_dict"]
        if payload.get("arch") != config.arch:
            raise CheckpointError(f"{path}: architecture field {payload.get('arch')!r} does not "
                                  f"match its config ({config.arch!r})")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: malformed checkpoint ({exc})") from None
    if payload.get("sha256") != state_digest(payload["config"], state):
        raise CheckpointError(f"{path}: integrity check failed (weights or config were modified "
                              "after saving)")
    expected = (expected_arch,) if isinstance(expected_arch, str) else expected_arch
    if expected and config.arch not in expected:
        raise CheckpointError(f"{path}: holds a {config.arch} model, expected "
                              f"{' or '.join(expected)}")
    model = build_model(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit a {config.arch} model "
                              f"({first})") from None
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError(f"{path}: weights contain NaN or infinite values")
    model.to(device).eval()
    return Checkpoint(config=config, model=model, training=payload.get("training", {}),
                      normalisation=payload.get("normalisation", dict(NORMALISATION)),
                      source=str(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value):
    """Training metadata restricted to types ``weights_only`` loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None:
        return None
    for kind in (bool, int, float, str):  # exact builtins: subclasses (numpy scalars,
        if isinstance(value, kind):       # TorchVersion) would not unpickle with weights_only
            return kind(value)
    return str(value)
