"""Learned patch descriptors: IR autoencoders (v32, v128), the Chen baseline, the invertible VAE,
checkpoints, training, and descriptor fields over an image. Imports nothing else of the project
but ``patches`` (patch extraction).

The names below are loaded on first use (PEP 562), so that a torch-free part such as
``descriptor.metadata`` (what ``inpaint info`` reads) does not pay for importing torch. No name
may equal a submodule's: importing ``descriptor.train`` binds that attribute to the module.
"""

from __future__ import annotations

import importlib

#: public name -> the submodule that defines it
_WHERE = {
    "Checkpoint": "checkpoint", "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint", "builtin_names": "metadata", "read_metadata": "metadata",
    "RF_RADIUS": "config", "ModelConfig": "config",
    "DenseField": "extract", "cell_bounds": "extract", "descriptor_dim": "extract",
    "pool_windows": "extract",
    "IRField": "field", "PatchEncoderField": "field", "dilate_mask": "field",
    "compute_ir": "ir",
    "ChenAutoencoder": "models", "ConvAutoencoder": "models", "build_model": "models",
    "TrainConfig": "training", "train": "training", "training_metadata": "training",
    "VariationalAutoencoder": "vae", "invert": "vae", "to_channels": "vae", "vae_loss": "vae",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value   # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
