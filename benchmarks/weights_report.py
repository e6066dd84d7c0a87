"""The built-in descriptors: how they were trained, their loss curves, and held-out quality.

For every checkpoint in descriptor/weights/ this prints the exact ``inpaint train`` command it
records, plots its training and validation loss per epoch, and measures the reconstruction PSNR
and SSIM of its autoencoder on patches of ``skimage:coffee`` (an image held out of the training
set), plus the descriptor dimension. Retrain the built-ins with benchmarks/train_builtin.sh.

    python benchmarks/weights_report.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from descriptor import builtin_names, load_checkpoint  # noqa: E402
from descriptor.training import PatchSampler  # noqa: E402
from inpaint.dtypes import to_float  # noqa: E402
from inpaint.raster import read_raster  # noqa: E402

HELD_OUT = "skimage:coffee"


@torch.no_grad()
def held_out_quality(name: str, count: int, seed: int = 0) -> dict:
    """Mean reconstruction PSNR / SSIM (data range 1) on ``count`` held-out patches."""
    ck = load_checkpoint(name)
    model = ck.model.eval()
    image = to_float(read_raster(HELD_OUT).colour)
    sampler = PatchSampler([image], ck.config.input_size, count, np.random.default_rng(seed))
    crops = sampler.crops(np.arange(count))
    target = model.target(crops)
    if getattr(ck.config, "channels", 3) == 1:
        from descriptor.vae import to_channels

        crops = to_channels(crops, 1)
        target = to_channels(target, 1)
    out = model(crops)
    recon = out[0] if isinstance(out, tuple) else out
    err = ((recon - target) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    psnr = (10 * torch.log10(1.0 / err)).mean().item()
    t = target.permute(0, 2, 3, 1).numpy()
    r = recon.permute(0, 2, 3, 1).numpy()
    ssim = float(np.mean([structural_similarity(a, b, channel_axis=-1, data_range=1.0)
                          for a, b in zip(t, r)]))
    return {"psnr": psnr, "ssim": ssim, "patches": count}


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    for name in builtin_names():
        ck = load_checkpoint(name)
        t = ck.training
        quality = held_out_quality(name, 200 if args.quick else 5000)
        rows.append({"name": name, "arch": ck.arch, "dim": ck.config.descriptor_dim,
                     "padding": ck.config.padding_mode if ck.config.has_ir else "-",
                     "images": len(t.get("data", [])), "patches": t.get("patches"),
                     "epochs": t.get("epochs"), "val_loss": t.get("final_val_loss"),
                     "train_seconds": t.get("seconds"), "held_out_psnr": quality["psnr"],
                     "held_out_ssim": quality["ssim"], "command": t.get("command", "")})
        curves[name] = t.get("history", [])
    columns = [("name", "name", ""), ("arch", "arch", ""), ("dim", "dim", "d"),
               ("padding", "padding", ""), ("patches", "patches", "d"), ("epochs", "epochs", "d"),
               ("val_loss", "val loss", ".4f"), ("train_seconds", "train s", ".0f"),
               ("held_out_psnr", "held-out PSNR dB", ".2f"), ("held_out_ssim", "SSIM", ".3f")]
    common.print_table(rows, columns, title=f"built-in descriptors (held out: {HELD_OUT})")
    print(common.markdown_table(rows, columns))
    for row in rows:
        print(f"{row['name']}: {row['command']}")
    fig, axes = common.new_figure(1, max(1, len(curves)), figsize=(4 * max(1, len(curves)), 3.5))
    axes = np.atleast_1d(axes)
    for ax, (name, history) in zip(axes, curves.items()):
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
        train = [(h["epoch"], h["train_loss"]) for h in history if h["train_loss"] is not None]
        if train:
            ax.plot(*zip(*train), "s--", label="training")
        ax.set(title=name, xlabel="epoch (L-BFGS iteration for chen)", ylabel="loss (log)",
               yscale="log")
        ax.grid(alpha=0.3)
        ax.legend()
    common.save_plot(fig, args.out, "weights_loss_curves")
    path = common.write_json(args.out, "weights_report", {"held_out": HELD_OUT, "rows": rows,
                                                          "curves": curves}, args=args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
