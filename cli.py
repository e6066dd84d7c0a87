"""``inpaint``: the command-line interface. Parses, validates and reports; no algorithms here.

Expected errors (bad paths, bad masks, wrong checkpoints, missing devices, impossible plans)
end with one ``Error: ...`` line and exit code 1; usage errors exit with code 2.
"""

from __future__ import annotations

import functools
import logging
import shlex
import sys

import click

from descriptor import CheckpointError
from inpaint.errors import InpaintError

EXPECTED_ERRORS = (InpaintError, CheckpointError, FileNotFoundError, PermissionError, ValueError)


def _expected_errors(func):
    """Turn expected errors into one clear line and exit 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except MemoryError:
            raise click.ClickException("out of memory: lower --memory-budget or use smaller "
                                       "tiles") from None
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(str(exc).strip().splitlines()[0] or type(exc).__name__) \
                from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def _command_line() -> str:
    return "inpaint " + " ".join(shlex.quote(a) for a in sys.argv[1:])


verbosity = [
    click.option("-v", "--verbose", count=True, help="More messages (-vv for debugging)."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars."),
]


def with_verbosity(func):
    for option in reversed(verbosity):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="inpaint")
def main() -> None:
    """Virtual restoration of digitised paintings: fill paint-loss areas given a mask,
    changing no pixel outside it."""


# --------------------------------------------------------------------------- train / finetune
@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--arch", type=click.Choice(["v32", "v128", "chen"]), default="v128", show_default=True,
              help="Descriptor architecture.")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint file to write (.pt).")
@click.option("--padding-mode", type=click.Choice(["valid_context", "same"]),
              default="valid_context", show_default=True,
              help="valid_context: IR-window pooling equals patch encoding exactly; "
                   "same: the papers' zero-padded convs.")
@click.option("--mask", "masks", multiple=True,
              help="Mask of pixels to avoid, one per image in the same order (repeat the option).")
@click.option("--patches", default=200_000, show_default=True, help="Patches sampled.")
@click.option("--val-fraction", default=0.1, show_default=True, help="Share held out for validation.")
@click.option("--epochs", "max_epochs", default=20, show_default=True, help="Maximum epochs.")
@click.option("--patience", default=3, show_default=True,
              help="Stop after this many epochs without validation improvement.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed for sampling and initialisation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@with_verbosity
@_expected_errors
def train(images, arch, out, padding_mode, masks, patches, val_fraction, max_epochs, patience,
          batch_size, seed, device, force, verbose, quiet):
    """Train a descriptor on IMAGES (files, or skimage:NAME for images shipped with scikit-image).

    Patches (16x16, plus a 3-px context ring in valid_context mode) are sampled, seeded, from the
    known pixels; BCE + Adadelta (lr 1.0, rho 0.95, eps 1e-7) with early stopping on the
    validation split; the Chen baseline uses its sparse-autoencoder loss and L-BFGS.
    """
    from descriptor import TrainConfig
    from inpaint.training import train_descriptor

    _setup_logging(verbose, quiet)
    cfg = TrainConfig(arch=arch, padding_mode=padding_mode, patches=patches,
                      val_fraction=val_fraction, max_epochs=max_epochs, patience=patience,
                      batch_size=batch_size, seed=seed)
    meta = train_descriptor(images, out, cfg, masks=masks or None, device=device, force=force,
                            progress=not quiet, command=_command_line())
    click.echo(f"wrote {out}: {arch}, {meta['epochs']} epochs, best validation loss "
               f"{meta['final_val_loss']:.5f}, {meta['seconds']:.0f} s")


@main.command()
@click.argument("checkpoint")
@click.argument("image")
@click.option("--mask", help="Loss mask of IMAGE: its missing pixels never enter a patch.")
@click.option("--invert-mask", is_flag=True, help="Zero (black) mask pixels are the missing ones.")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False))
@click.option("--patches", default=50_000, show_default=True)
@click.option("--epochs", "max_epochs", default=5, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@with_verbosity
@_expected_errors
def finetune(checkpoint, image, mask, invert_mask, out, patches, max_epochs, seed, device, force,
             verbose, quiet):
    """Continue training CHECKPOINT (path or built-in name) on the known area of IMAGE."""
    from inpaint.training import finetune_descriptor

    _setup_logging(verbose, quiet)
    meta = finetune_descriptor(checkpoint, image, out, mask=mask, invert_mask=invert_mask,
                               patches=patches, max_epochs=max_epochs, seed=seed, device=device,
                               force=force, progress=not quiet, command=_command_line())
    click.echo(f"wrote {out}: {meta['epochs']} epochs, best validation loss "
               f"{meta['final_val_loss']:.5f}")


# --------------------------------------------------------------------------- info
@main.command()
@_expected_errors
def info():
    """Versions, compute devices and the built-in descriptors."""
    from inpaint.info import info_lines

    for line in info_lines():
        click.echo(line)


if __name__ == "__main__":
    main()
