"""Learned patch descriptors: IR autoencoders (v32, v128), the Chen baseline, the invertible VAE,
checkpoints, training, and descriptor fields over an image. Imports nothing else of the project
but ``patches`` (patch extraction)."""

from .checkpoint import Checkpoint, CheckpointError, builtin_names, load_checkpoint, save_checkpoint
from .config import RF_RADIUS, ModelConfig
from .extract import DenseField, cell_bounds, descriptor_dim, pool_windows
from .field import IRField, PatchEncoderField, dilate_mask
from .ir import compute_ir
from .models import ChenAutoencoder, ConvAutoencoder, build_model
from .train import TrainConfig, train, training_metadata
from .vae import VariationalAutoencoder, invert, to_channels, vae_loss

__all__ = [
    "Checkpoint", "CheckpointError", "builtin_names", "load_checkpoint", "save_checkpoint",
    "DenseField", "cell_bounds", "descriptor_dim", "pool_windows",
    "IRField", "PatchEncoderField", "dilate_mask", "compute_ir",
    "RF_RADIUS", "ChenAutoencoder", "ConvAutoencoder", "ModelConfig", "build_model",
    "TrainConfig", "train", "training_metadata",
    "VariationalAutoencoder", "invert", "to_channels", "vae_loss",
]
