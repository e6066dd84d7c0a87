"""Training and fine-tuning of the descriptor autoencoders.

Patches are sampled, seeded, from the known pixels of a set of images; a validation split drives
early stopping. v32 / v128 use binary cross-entropy and Adadelta (lr 1.0, rho 0.95, eps 1e-7, the
Keras settings of the paper); the Chen baseline uses its sparse-autoencoder loss with full-batch
L-BFGS, as in the original; the VAE uses ``gamma * BCE + KL`` (``descriptor.vae.vae_loss``) and
Adam (lr 1e-3), as in seed paper 2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .config import ModelConfig
from .models import build_model
from .vae import to_channels, vae_loss


class TrainingDataError(ValueError):
    """The training images cannot give what training needs (a user error, not a bug)."""


@dataclass
class TrainConfig:
    """Settings of one training run (every field is recorded in the checkpoint)."""

    arch: str = "v128"
    padding_mode: str = "valid_context"
    patch_size: int = 16
    patches: int = 200_000
    val_fraction: float = 0.1
    batch_size: int = 32
    max_epochs: int = 20
    patience: int = 3
    min_delta: float = 1e-4
    lr: float = 1.0
    rho: float = 0.95
    eps: float = 1e-7
    seed: int = 0
    # Chen baseline (sparse autoencoder, L-BFGS)
    sparsity: float = 0.05
    weight_decay: float = 3e-3
    sparsity_weight: float = 3.0
    lbfgs_iterations: int = 400
    # VAE (seed paper 2): loss gamma * BCE (summed over pixels) + KL (summed over the latent),
    # gamma = 1 / beta of the authors' "BCE + beta * KL"; the paper requires gamma > 1, and
    # 10 (= their raw beta 0.1) is our default. Adam with adam_lr. channels: 1 = grey, 3 = RGB.
    gamma: float = 10.0
    adam_lr: float = 1e-3
    latent: int = 128
    channels: int = 3

    def __post_init__(self) -> None:
        if self.patches < 10:
            raise ValueError("patches must be at least 10")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError("val_fraction must lie in (0, 0.5)")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, max_epochs and patience must be positive")
        if not self.gamma >= 1.0:
            raise ValueError("gamma must be at least 1 (the paper uses gamma > 1), "
                             f"got {self.gamma}")
        if not self.adam_lr > 0:
            raise ValueError("adam_lr must be positive")


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_val_loss: float = math.inf
    epochs: int = 0
    seconds: float = 0.0


class PatchSampler:
    """Random crops of side ``crop`` whose pixels are all known, drawn from several images.

    Positions are sampled once (seeded); crops are cut on demand so 200k patches cost only their
    coordinates in memory.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        crop: int,
        count: int,
        rng: np.random.Generator,
        masks: Sequence[np.ndarray | None] | None = None,
    ):
        self.images = [torch.from_numpy(np.ascontiguousarray(_rgb(im), dtype=np.float32))
                       for im in images]
        self.crop = crop
        masks = list(masks) if masks is not None else [None] * len(images)
        valid = [_valid_corners(im.shape[:2], crop, m) for im, m in zip(self.images, masks)]
        counts = np.array([int(v.sum()) for v in valid], dtype=np.int64)
        if counts.sum() == 0:
            raise TrainingDataError(f"no fully known {crop}x{crop} crop exists in the training "
                                    "images (too small, or their masks leave no such area)")
        which = rng.choice(len(valid), size=count, p=counts / counts.sum())
        self.image_index = which
        self.tops = np.empty(count, dtype=np.int64)
        self.lefts = np.empty(count, dtype=np.int64)
        for k, v in enumerate(valid):
            sel = np.flatnonzero(which == k)
            flat = np.flatnonzero(v.ravel())
            picked = flat[rng.integers(0, len(flat), size=len(sel))]
            self.tops[sel], self.lefts[sel] = np.divmod(picked, v.shape[1])

    def __len__(self) -> int:
        return len(self.tops)

    def crops(self, indices: np.ndarray) -> torch.Tensor:
        """(B, 3, crop, crop) float32 crops for the sampled ``indices``."""
        out = torch.empty((len(indices), 3, self.crop, self.crop))
        offsets = torch.arange(self.crop)
        for k in np.unique(self.image_index[indices]):
            sel = np.flatnonzero(self.image_index[indices] == k)
            rows = torch.from_numpy(self.tops[indices[sel]])[:, None] + offsets
            cols = torch.from_numpy(self.lefts[indices[sel]])[:, None] + offsets
            # (n, crop, crop, 3) -> (n, 3, crop, crop)
            out[sel] = self.images[k][rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        return out


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"training images must be grey or RGB, got shape {image.shape}")


def _valid_corners(shape: tuple[int, int], crop: int, mask: np.ndarray | None) -> np.ndarray:
    """Bool map of top-left corners whose crop lies inside the image and avoids ``mask``."""
    height, width = shape
    if height < crop or width < crop:
        return np.zeros((0, 0), dtype=bool)
    if mask is None:
        return np.ones((height - crop + 1, width - crop + 1), dtype=bool)
    if mask.shape != (height, width):
        raise ValueError(f"mask of shape {mask.shape} does not match image of {height}x{width}")
    integral = np.pad(np.cumsum(np.cumsum(mask.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    missing = (integral[crop:, crop:] - integral[:-crop, crop:] - integral[crop:, :-crop]
               + integral[:-crop, :-crop])
    return missing == 0


def reconstruction_loss(model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy between the reconstruction and the patch it encodes."""
    return F.binary_cross_entropy(model(crops), model.target(crops))


def chen_loss(model: nn.Module, patches: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Sparse-autoencoder objective: 1/2 mean squared error + weight decay + KL sparsity."""
    hidden = model.encode(patches)
    recon = torch.sigmoid(model.decoder(hidden))
    err = 0.5 * ((recon - patches.flatten(1)) ** 2).sum(1).mean()
    decay = 0.5 * cfg.weight_decay * (model.encoder.weight.pow(2).sum()
                                      + model.decoder.weight.pow(2).sum())
    rho = cfg.sparsity
    rho_hat = hidden.mean(0).clamp(1e-6, 1 - 1e-6)
    kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    return err + decay + cfg.sparsity_weight * kl


def train(
    images: Sequence[np.ndarray],
    cfg: TrainConfig,
    *,
    masks: Sequence[np.ndarray | None] | None = None,
    model: nn.Module | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train (or, given ``model``, continue training) a descriptor autoencoder.

    images: float arrays in [0, 1], (H, W, 3) or (H, W). masks: optional bool arrays, True =
    missing (such pixels never enter a training crop).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if model is None:
        model = build_model(ModelConfig(cfg.arch, cfg.padding_mode, cfg.patch_size,
                                        channels=cfg.channels, latent=cfg.latent))
    device = torch.device(device)
    model = model.to(device)
    sampler = PatchSampler(images, model.config.input_size, cfg.patches, rng, masks)
    order = rng.permutation(len(sampler))
    n_val = max(1, int(round(cfg.val_fraction * len(sampler))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    start = time.perf_counter()
    if model.config.arch == "chen":
        result = _train_lbfgs(model, sampler, train_idx, val_idx, cfg, device, progress, log)
    elif model.config.arch == "vae":
        result = _train_adam(model, sampler, train_idx, val_idx, cfg, device, progress, log)
    else:
        result = _train_adadelta(model, sampler, train_idx, val_idx, cfg, device, progress, log)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def _evaluate(model, sampler, indices, device, loss_fn, batch=1024) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(indices), batch):
            idx = indices[s:s + batch]
            total += float(loss_fn(sampler.crops(idx).to(device))) * len(idx)
    model.train()
    return total / len(indices)


def _train_adadelta(model, sampler, train_idx, val_idx, cfg, device, progress, log) -> TrainResult:
    optimiser = torch.optim.Adadelta(model.parameters(), lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
    loss_fn = lambda crops: reconstruction_loss(model, crops)  # noqa: E731
    return _train_minibatch(model, optimiser, loss_fn, sampler, train_idx, val_idx, cfg, device,
                            progress, log)


def _train_adam(model, sampler, train_idx, val_idx, cfg, device, progress, log) -> TrainResult:
    """The VAE: Adam on ``gamma * BCE + KL``; RGB crops become grey for a 1-channel model.

    Validation runs in eval mode (z = mean), so the early-stopping loss is deterministic.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
    channels = model.config.channels
    loss_fn = lambda crops: vae_loss(model, to_channels(crops, channels), cfg.gamma)
    return _train_minibatch(model, optimiser, loss_fn, sampler, train_idx, val_idx, cfg, device,
                            progress, log)


class _EarlyStopping:
    """Records the history, keeps the best weights, says when validation stopped improving."""

    def __init__(self, result: TrainResult, cfg: TrainConfig):
        self.result, self.cfg = result, cfg
        self.best_state: dict | None = None
        self.stale = 0

    def update(self, model: nn.Module, step: int, train_loss: float, val_loss: float) -> bool:
        """Record one validation; True when training should stop."""
        r = self.result
        r.history.append({"epoch": step, "train_loss": train_loss, "val_loss": val_loss})
        r.epochs = step
        if val_loss < r.best_val_loss - self.cfg.min_delta:
            r.best_val_loss, self.stale = val_loss, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.cfg.patience

    def finish(self, model: nn.Module) -> TrainResult:
        """Restore the best weights seen (or keep the last if none improved on the start)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        elif self.result.history:
            self.result.best_val_loss = min(h["val_loss"] for h in self.result.history)
        return self.result


def _train_minibatch(model, optimiser, loss_fn, sampler, train_idx, val_idx, cfg, device, progress,
                     log) -> TrainResult:
    """Epochs of shuffled mini-batches, validation after each, early stopping, best state kept."""
    rng = np.random.default_rng(cfg.seed + 1)
    result = TrainResult(model=model)
    stopper = _EarlyStopping(result, cfg)
    val_loss = _evaluate(model, sampler, val_idx, device, loss_fn)
    result.history.append({"epoch": 0, "train_loss": None, "val_loss": val_loss})
    model.train()
    for epoch in range(1, cfg.max_epochs + 1):
        perm = train_idx[rng.permutation(len(train_idx))]
        running, seen = 0.0, 0
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"epoch {epoch}/{cfg.max_epochs}",
                   disable=None if progress else True, leave=False, unit="batch")
        for s in bar:
            idx = perm[s:s + cfg.batch_size]
            loss = loss_fn(sampler.crops(idx).to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            if s % (50 * cfg.batch_size) == 0:
                bar.set_postfix(loss=f"{running / seen:.4f}")
        val_loss = _evaluate(model, sampler, val_idx, device, loss_fn)
        if log:
            log(f"epoch {epoch}: train {running / seen:.5f}  validation {val_loss:.5f}")
        if stopper.update(model, epoch, running / seen, val_loss):
            break
    return stopper.finish(model)


def _train_lbfgs(model, sampler, train_idx, val_idx, cfg, device, progress, log) -> TrainResult:
    """Full-batch L-BFGS on the Chen objective, validated every block of 20 iterations."""
    data = sampler.crops(train_idx).to(device)
    val = sampler.crops(val_idx).to(device)
    loss_fn = lambda patches: chen_loss(model, patches, cfg)  # noqa: E731
    block = 20
    optimiser = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=block,
                                  history_size=20, line_search_fn="strong_wolfe")
    result = TrainResult(model=model)
    stopper = _EarlyStopping(result, cfg)

    def closure():
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(data)
        loss.backward()
        return loss

    blocks = max(1, cfg.lbfgs_iterations // block)
    for b in tqdm(range(1, blocks + 1), desc="L-BFGS", disable=None if progress else True,
                  leave=False):
        train_loss = float(optimiser.step(closure).detach())
        with torch.no_grad():
            val_loss = float(loss_fn(val))
        if log:
            log(f"iteration {b * block}: train {train_loss:.5f}  validation {val_loss:.5f}")
        if stopper.update(model, b * block, train_loss, val_loss):
            break
    return stopper.finish(model)


def training_metadata(cfg: TrainConfig, result: TrainResult, data: Sequence[str], **extra) -> dict:
    """What a checkpoint records about how it was made."""
    meta = {
        "data": list(data),
        "patches": cfg.patches,
        "epochs": result.epochs,
        "final_val_loss": result.best_val_loss,
        "seconds": round(result.seconds, 1),
        "history": result.history,
        "settings": asdict(cfg),
        "torch": torch.__version__,
    }
    meta.update(extra)
    return meta
