"""``inpaint``: the command-line interface. Parses, validates and reports; no algorithms here.

Expected errors (bad paths, bad masks, wrong checkpoints, missing devices, impossible plans)
end with one ``Error: ...`` line and exit code 1; usage errors exit with code 2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _interrupted_while_loading(signum, frame) -> None:
    """Ctrl-C while the libraries load (seconds, before a command's own handler is in place):
    one line and exit 130 rather than an import traceback."""
    sys.stderr.write("interrupted\n")
    os._exit(130)


_loading = threading.current_thread() is threading.main_thread()
if _loading:
    _sigint_before = signal.signal(signal.SIGINT, _interrupted_while_loading)

import functools  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402

import click  # noqa: E402

from inpaint.errors import InpaintError  # noqa: E402

if _loading:   # from here on a command's _expected_errors turns Ctrl-C into the same line
    signal.signal(signal.SIGINT, _sigint_before)

# What a user can cause; anything else is a bug and keeps its traceback. The libraries (torch,
# rasterio, FAISS...) are imported by the commands that need them, not here, so that
# `inpaint --help` starts at once: their errors are looked up when an error is being handled
# (a module that was never imported cannot have raised its error).
_EXPECTED_ERRORS = (InpaintError, FileNotFoundError, PermissionError, IsADirectoryError,
                    NotADirectoryError)
_LIBRARY_ERRORS = (("descriptor.checkpoint", "CheckpointError"), ("masks.io", "MaskError"))


def expected_errors() -> tuple[type[BaseException], ...]:
    """The user-caused error types, those of the libraries loaded so far included."""
    return _EXPECTED_ERRORS + tuple(getattr(sys.modules[module], name)
                                    for module, name in _LIBRARY_ERRORS if module in sys.modules)


def _expected_errors(func):
    """Turn expected errors into one clear line and exit 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = _raise_on_sigterm()
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except MemoryError:
            raise click.ClickException("out of memory: lower --memory-budget or use smaller "
                                       "tiles") from None
        except RuntimeError as exc:  # torch reports CUDA out-of-memory as a RuntimeError
            if "out of memory" not in str(exc).lower():
                raise
            raise click.ClickException("the GPU ran out of memory: lower --memory-budget or "
                                       "use --device cpu") from None
        except expected_errors() as exc:
            raise click.ClickException(str(exc).strip().splitlines()[0] or type(exc).__name__) \
                from None
        except _Terminated:
            click.echo("terminated", err=True)
            sys.exit(143)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that writers remove their temporary files on the way out
    (the default action would kill the process and leave them)."""


def _raise_on_sigterm():
    """Install the SIGTERM -> _Terminated handler; returns the previous handler (None when not
    in the main thread, where handlers cannot be set)."""
    def handler(signum, frame):
        raise _Terminated()
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _check_output_not_input(out: str, inputs: list) -> None:
    """An input is never overwritten, even with --force (by name, symlink or hard link)."""
    from inpaint.paths import same_file

    for label, path in inputs:
        if path and not str(path).startswith("skimage:") and same_file(out, path):
            raise click.ClickException(f"output {out} is the {label} ({path}): an input is "
                                       "never overwritten; choose another name")


def _checkpoint_file(name: str) -> str | None:
    from inpaint.paths import checkpoint_file

    return checkpoint_file(name)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for chatty in ("faiss", "distributed", "bokeh", "tornado"):   # libraries' INFO chatter
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # GDAL's errors reach the user as the one Error line (inpaint.raster); logged as well they are
    # only noise before it (kept with -vv)
    logging.getLogger("rasterio").setLevel(logging.DEBUG if verbose > 1 else logging.CRITICAL)
    if verbose <= 1:
        _mute_libtiff()


def _mute_libtiff() -> None:
    """libtiff's default handlers print some messages straight to stderr (a full disk gives
    "_tiffWriteProc: File too large." twice); GDAL reports the same failure as an error, which
    becomes the one Error line. Mute libtiff's global handlers, in the libtiff bundled with the
    rasterio wheel (GDAL's own per-file handlers are untouched; elsewhere nothing is done)."""
    import ctypes
    import glob

    import rasterio

    folder = os.path.join(os.path.dirname(rasterio.__file__), os.pardir, "rasterio.libs")
    for path in glob.glob(os.path.join(folder, "libtiff*.so*")):
        try:
            lib = ctypes.CDLL(path)
            for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
                setter = getattr(lib, name)
                setter.restype, setter.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
                setter(None)
        except (OSError, AttributeError):   # another build of libtiff: leave it as it is
            continue


def _command_line() -> str:
    return "inpaint " + " ".join(shlex.quote(a) for a in sys.argv[1:])


verbosity = [
    click.option("-v", "--verbose", count=True, help="More messages (-vv for debugging)."),
    click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars."),
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
@click.option("--arch", type=click.Choice(["v32", "v128", "chen", "vae"]), default="v128",
              show_default=True, help="Descriptor architecture.")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint file to write (.pt).")
@click.option("--padding-mode", type=click.Choice(["valid_context", "same"]),
              default="valid_context", show_default=True,
              help="valid_context: IR-window pooling equals patch encoding exactly; "
                   "same: the papers' zero-padded convs.")
@click.option("--mask", "masks", multiple=True,
              help="Mask of pixels to avoid, one per image in the same order (repeat the option).")
@click.option("--patches", default=200_000, show_default=True, help="Patches sampled.")
@click.option("--val-fraction", default=0.1, show_default=True,
              help="Share held out for validation.")
@click.option("--epochs", "max_epochs", default=20, show_default=True, help="Maximum epochs.")
@click.option("--patience", default=3, show_default=True,
              help="Stop after this many epochs without validation improvement.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed for sampling and initialisation.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--patch-size", default=16, show_default=True,
              help="Patch side, a multiple of 8 (chen: 16 only; vae: 16 for inpainting, 56 as in "
                   "the paper's tables).")
@click.option("--latent", default=128, show_default=True, help="vae only: descriptor size.")
@click.option("--gamma", default=10.0, show_default=True,
              help="vae only: loss gamma*BCE + KL, gamma = 1/beta (the paper: gamma > 1).")
@click.option("--channels", type=click.Choice(["3", "1"]), default="3", show_default=True,
              help="vae only: 3 = RGB; 1 = grey as in the paper (can be inverted, not used by "
                   "`inpaint run`).")
@click.option("--max-side", type=click.IntRange(min=1), default=None,
              help="Reduce images whose longer side exceeds this (area averaging), e.g. 1024 "
                   "for high-resolution photo folders; not with --mask.  [default: no reduction]")
@with_verbosity
@_expected_errors
def train(images, arch, out, padding_mode, masks, patches, val_fraction, max_epochs, patience,
          batch_size, seed, device, force, patch_size, latent, gamma, channels, max_side, verbose,
          quiet):
    """Train a descriptor on IMAGES (files, folders, or skimage:NAME for images shipped with
    scikit-image). A folder contributes every image file under it (.jpg .jpeg .png .webp .tif
    .tiff .bmp .ppm .pgm, any depth, sorted by path).

    Patches (16x16, plus a 3-px context ring in valid_context mode) are sampled, seeded, from the
    known pixels; BCE + Adadelta (lr 1.0, rho 0.95, eps 1e-7) with early stopping on the
    validation split; the Chen baseline uses its sparse-autoencoder loss and L-BFGS; the vae
    (seed paper 2) uses gamma * BCE + KL and Adam (lr 1e-3).
    """
    from descriptor import ModelConfig, TrainConfig
    from inpaint.training import train_descriptor

    _setup_logging(verbose, quiet)
    try:
        cfg = TrainConfig(arch=arch, padding_mode=padding_mode, patch_size=patch_size,
                          patches=patches, val_fraction=val_fraction, max_epochs=max_epochs,
                          patience=patience, batch_size=batch_size, seed=seed, gamma=gamma,
                          latent=latent, channels=int(channels))
        ModelConfig(arch, padding_mode, patch_size, channels=int(channels), latent=latent)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from inpaint.training import expand_images

    # folders are expanded first: an image inside a folder is an input too
    _check_output_not_input(out, [("training image", i) for i in expand_images(images)] +
                            [("mask", m) for m in masks])
    meta = train_descriptor(images, out, cfg, masks=masks or None, device=device, force=force,
                            progress=not quiet, command=_command_line(), max_side=max_side)
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
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))
@click.option("--device", default="auto", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@with_verbosity
@_expected_errors
def finetune(checkpoint, image, mask, invert_mask, out, patches, max_epochs, seed, device, force,
             verbose, quiet):
    """Continue training CHECKPOINT (path or built-in name) on the known area of IMAGE."""
    from inpaint.training import finetune_descriptor

    _setup_logging(verbose, quiet)
    _check_output_not_input(out, [("checkpoint", _checkpoint_file(checkpoint)),
                                  ("image", image), ("mask", mask)])
    meta = finetune_descriptor(checkpoint, image, out, mask=mask, invert_mask=invert_mask,
                               patches=patches, max_epochs=max_epochs, seed=seed, device=device,
                               force=force, progress=not quiet, command=_command_line())
    click.echo(f"wrote {out}: {meta['epochs']} epochs, best validation loss "
               f"{meta['final_val_loss']:.5f}")


# --------------------------------------------------------------------------- run / demo
class ConfigOption(click.Option):
    """An option whose default is a ``RunConfig`` field's default (``inpaint/config.py``, the
    one source of the run's defaults), shown in ``--help`` and read only when needed, so that
    ``inpaint --help`` does not load the libraries behind RunConfig."""

    def __init__(self, *args, field: str, **kwargs):
        super().__init__(*args, show_default=True, **kwargs)
        self.config_field = field

    def get_default(self, ctx, call: bool = True):
        return run_defaults()[self.config_field]


@functools.cache
def run_defaults() -> dict:
    """RunConfig's field defaults, by field name. Loading them loads the libraries (seconds,
    while click parses, before a command's handler is in place): Ctrl-C meanwhile is the same
    one line and exit 130."""
    import dataclasses

    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, _interrupted_while_loading) if main_thread else None
    try:
        from inpaint.config import RunConfig
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, before)
    return {f.name: f.default for f in dataclasses.fields(RunConfig)}


def config_option(*decls, field: str, **kwargs):
    return click.option(*decls, cls=ConfigOption, field=field, **kwargs)


def mrf_options(func):
    """Options shared by ``run`` and ``demo``: descriptor, device and MRF parameters."""
    options = [
        config_option("--descriptor", field="descriptor", type=str,
                      help="Built-in descriptor (v128, v32, chen, vae), a checkpoint path, or "
                           "'none' "
                           "for pixel mode (raw-pixel SSD, the reference the descriptors must "
                           "beat)."),
        config_option("--device", field="device", type=str,
                      help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N."),
        config_option("--patch-step", "patch_step", field="patch_step", type=click.IntRange(1),
                      help="Lattice step g between patch nodes; smaller steps suit thin cracks."),
        config_option("--patch-size", field="patch_size", type=click.IntRange(0),
                      help="Patch side (0 = 2g+1). The chen descriptor needs 16, a vae its "
                           "training patch size (16 for the built-in)."),
        config_option("--labels", field="labels", type=int,
                      help="Labels per node kept by the pruning pass (L)."),
        config_option("--shortlist", field="shortlist", type=int,
                      help="Candidates per node found by FAISS and re-ranked exactly."),
        config_option("--iterations", field="iterations", type=int,
                      help="NCMP iterations (stops earlier when no label changes)."),
        config_option("--passes", field="passes", type=click.IntRange(1, 5),
                      help="Search + inference passes; later passes search with the previous "
                           "fill (measured no better than one pass after the fsr pre-fill)."),
        config_option("--icm-sweeps", field="icm_sweeps", type=click.IntRange(0, 20),
                      help="Sweeps of iterated conditional modes after NCMP: each node's "
                           "label made to agree with its neighbours' chosen labels (coherent "
                           "copies; no mosaic at the lattice step in smooth paint); 0 = NCMP's "
                           "labels."),
        config_option("--propagation", field="propagation", type=click.IntRange(0, 8),
                      help="Rounds after NCMP in which each node is also offered its "
                           "neighbours' chosen sources shifted by its offset from them "
                           "(PatchMatch's propagation: paint that repeats continues "
                           "coherently), then NCMP and ICM again; 0 = off."),
        config_option("--levels", field="levels", type=click.IntRange(1, 4),
                      help="Pyramid levels: > 1 fills lacunae wider than a patch coarse to fine "
                           "(the half-resolution fill guides the search inside them, so wide "
                           "structures continue); 1 = single resolution. Cracks are unaffected."),
        config_option("--prefill", field="prefill", type=click.Choice(["fsr", "telea"]),
                      help="First guess of the losses, the query of the candidate search and "
                           "the fill of thin cracks: OpenCV contrib's frequency-selective "
                           "reconstruction (fsr) or fast marching (telea, smooth)."),
        config_option("--composition", field="composition",
                      type=click.Choice(["copy", "blend"]),
                      help="copy: each node's chosen patch pasted in priority order with "
                           "smoothed seams (copied texture); blend: overlapping labels averaged "
                           "by belief (higher hole-PSNR, smooth fills)."),
        config_option("--crack-width", field="crack_width", type=click.FloatRange(0),
                      help="Missing pixels up to about this far (px) from known paint take the "
                           "pre-fill instead of a patch, cross-faded over 1 px around it (0 = "
                           "patches everywhere)."),
        config_option("--seam-smooth", field="seam_smooth", type=click.IntRange(0, 8),
                      help="copy: binomial smoothing passes across the seams between patches "
                           "(at most half the patch side)."),
        config_option("--texture-weight", field="texture_weight", type=click.FloatRange(0),
                      help="Weight of a unary term that prefers sources whose fine detail "
                           "matches the paint around the loss (more texture, lower hole-PSNR)."),
        config_option("--structure-sigma", field="structure_sigma", type=click.FloatRange(0),
                      help="copy: > 0 splits lacunae at a Gaussian of this sigma (px): the "
                           "smooth part from --structure, the fine detail from the copied "
                           "patches (0 = off)."),
        config_option("--structure", field="structure",
                      type=click.Choice(["prefill", "blend", "adaptive"]),
                      help="Smooth part of lacunae under --structure-sigma: the pre-fill, the "
                           "average of the kept labels (blend), or adaptive: the average where "
                           "the chosen labels fit their known paint, the pre-fill where not."),
        config_option("--structure-match", field="structure_match",
                      type=click.FloatRange(0, min_open=True),
                      help="adaptive: mean squared difference per known pixel (RGB summed, "
                           "0-1 scale) at which a label's fit counts exp(-1); smaller trusts "
                           "copies less."),
        config_option("--detail-gain", field="detail_gain", type=click.FloatRange(1),
                      help="Copied detail fainter than the paint around it is raised by up "
                           "to this factor (exact copies are left as they are; acts with "
                           "--structure-sigma > 0; 1 = off)."),
        config_option("--detail-damp", field="detail_damp", type=click.FloatRange(0, 1),
                      help="Copied detail stronger than the paint around it is lowered, down "
                           "to this factor (grain copied from busier paint; exact copies are "
                           "left as they are; acts with --structure-sigma > 0; 1 = off)."),
        config_option("--crack-fill", field="crack_fill", type=click.Choice(["prefill", "mean"]),
                      help="What pixels within --crack-width take: the pre-fill, or its mean "
                           "with the average of the kept labels."),
        config_option("--crack-detail", field="crack_detail", type=click.FloatRange(0, 1),
                      help="copy: share (0-1) of the copied patches' fine grain added to what "
                           "cracks take (texture for a little hole-PSNR; 0 = off)."),
        config_option("--unary", field="unary", type=click.Choice(["pixel", "field"]),
                      help="Distance that re-ranks the descriptor shortlist and is the unary "
                           "cost: masked pixel SSD (pixel), or the masked descriptor distance "
                           "of the papers (field; measured 0.2 dB lower and 3x slower, "
                           "benchmarks/results/variants/unary_field)."),
        click.option("--no-context", is_flag=True,
                     help="Search candidates in the whole image instead of context-matched "
                          "blocks."),
        config_option("--ir-dtype", field="ir_dtype", type=click.Choice(["float32", "float16"]),
                      help="Storage type of the IR."),
        config_option("--seed", field="seed", type=click.IntRange(0, 2**31 - 1),
                      help="Seed of the texton k-means (the only randomness)."),
        click.option("--memory-budget", default=None,
                     help="Peak memory to plan for, e.g. 4GB or 512MiB (default: half of the "
                          "available memory; on CUDA, half of the free GPU memory)."),
        config_option("--window", field="window", type=click.IntRange(64),
                      help="Largest work-window side in pixels; the memory plan may lower it."),
        config_option("--margin", field="margin", type=click.IntRange(8),
                      help="Context and source pixels kept around each group of losses."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_config(descriptor, device, patch_step, patch_size, labels, shortlist, iterations,
                passes, icm_sweeps, propagation, levels, prefill, composition, crack_width,
                seam_smooth, texture_weight, structure_sigma, structure, structure_match, detail_gain, detail_damp,
                crack_fill, crack_detail, unary, no_context, ir_dtype, seed, memory_budget,
                window, margin, workers=1):
    from inpaint.config import RunConfig
    from inpaint.plan import parse_size

    try:
        return RunConfig(descriptor=descriptor, device=device, patch_step=patch_step,
                         patch_size=patch_size or None, labels=labels, shortlist=shortlist,
                         iterations=iterations, passes=passes,
                         icm_sweeps=icm_sweeps, propagation=propagation, levels=levels,
                         prefill=prefill,
                         composition=composition, crack_width=crack_width,
                         seam_smooth=seam_smooth, texture_weight=texture_weight,
                         structure_sigma=structure_sigma, structure=structure,
                         structure_match=structure_match, detail_gain=detail_gain,
                         detail_damp=detail_damp,
                         crack_fill=crack_fill, crack_detail=crack_detail, unary=unary,
                         use_context=not no_context, ir_dtype=ir_dtype, seed=seed,
                         memory_budget=parse_size(memory_budget), window=window, margin=margin,
                         workers=workers)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("image", type=str)
@click.option("--mask", "mask_path", required=True,
              help="Loss mask: any raster of the same size; non-zero = missing. 'auto' detects "
                   "the losses first with `inpaint detect`'s cracks defaults (polarity auto; a "
                   "mask file named auto: ./auto).")
@click.option("-o", "--output", required=True,
              help="Output raster; format from its extension, profile from IMAGE.")
@click.option("--invert-mask", is_flag=True, help="Zero (black) mask pixels are the missing ones.")
@click.option("--dilate", "dilate_radius", default=0, show_default=True, type=click.IntRange(0),
              help="Grow the mask by this many pixels first (catches crack edges).")
@click.option("--report", "report_path",
              help="Write a JSON report: timings per stage, peak memory, counts, versions.")
@click.option("--preview", "preview_path",
              help="Write a PNG montage: input | mask overlay | result.")
@click.option("--force", is_flag=True,
              help="Overwrite existing output, report and preview files (never an input).")
@config_option("--workers", field="workers", type=click.IntRange(0),
               help="Processes inpainting work regions in parallel (0 = one per CPU core; "
                    "the memory plan may use fewer; always 1 on CUDA).")
@mrf_options
@with_verbosity
@_expected_errors
def run(image, mask_path, output, invert_mask, dilate_radius, report_path, preview_path, force,
        workers, verbose, quiet, **mrf):
    """Inpaint IMAGE where MASK marks paint loss, changing no other pixel.

    The output keeps the input's data type, bands (alpha copied, not inpainted) and profile
    (georeferencing, tags, ICC profile, tiling, compression); it is written atomically and
    never over an existing file without --force.
    """
    from inpaint.pipeline import run_file

    _setup_logging(verbose, quiet)
    cfg = _run_config(**mrf, workers=workers)
    report = run_file(image, mask_path, output, cfg, invert_mask=invert_mask,
                      dilate_radius=dilate_radius, force=force, report_path=report_path,
                      preview_path=preview_path, progress=not quiet)
    if report.get("nothing_to_do"):
        click.echo(f"the mask is empty: {output} is a copy of {image}")
    elif not quiet:
        m = report["mrf"]
        click.echo(f"wrote {output}: {report['mask']['missing']} pixels inpainted "
                   f"({100 * report['mask']['fraction']:.2f} %), {m['nodes']} nodes, "
                   f"{report['total_seconds']:.1f} s, peak "
                   f"{report['peak_rss_bytes'] / 2**20:.0f} MiB")


@main.command()
@click.option("-o", "--output", "out_dir", default="demo_out", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the demo files (created).")
@click.option("--image", default="skimage:coffee", show_default=True,
              help="Image to damage and restore (a file or skimage:NAME).")
@click.option("--coverage", default=0.05, show_default=True,
              help="Share of pixels removed by the synthetic paint-loss mask.")
@click.option("--force", is_flag=True, help="Overwrite earlier demo files.")
@mrf_options
@with_verbosity
@_expected_errors
def demo(out_dir, image, coverage, force, verbose, quiet, **mrf):
    """Damage a sample image with seeded paint loss and restore it with a built-in descriptor."""
    from pathlib import Path

    from inpaint.demo import run_demo

    _setup_logging(verbose, quiet)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    cfg = _run_config(**mrf)
    report = run_demo(out_dir, image=image, coverage=coverage, seed=mrf["seed"], config=cfg,
                      force=force, progress=not quiet)
    click.echo(f"{image}: {100 * report['mask']['fraction']:.1f} % paint loss restored with "
               f"{cfg.descriptor} in {report['total_seconds']:.1f} s; hole PSNR "
               f"{report['demo']['hole_psnr_db']:.2f} dB")
    click.echo(f"see {Path(out_dir) / 'preview.png'} (input | mask | result) and report.json")


# --------------------------------------------------------------------------- invert
@main.command()
@click.argument("checkpoint")
@click.argument("image")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="PNG grid to write: rows of originals above their reconstructions.")
@click.option("--count", default=32, show_default=True, type=click.IntRange(1),
              help="Random patches to encode and decode.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed of the patch positions.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@_expected_errors
def invert(checkpoint, image, out, count, seed, device, force):
    """Decode the descriptors of random patches of IMAGE (file or skimage:NAME) with the vae
    CHECKPOINT: writes originals above reconstructions and prints their mean PSNR / SSIM."""
    from inpaint.invert import invert_patches

    _check_output_not_input(out, [("checkpoint", _checkpoint_file(checkpoint)),
                                  ("image", image)])
    res = invert_patches(checkpoint, image, out, count=count, seed=seed, device=device,
                         force=force)
    click.echo(f"wrote {res.output}: {res.count} patches of {res.patch_size}x{res.patch_size}, "
               f"mean reconstruction PSNR {res.psnr:.2f} dB, SSIM {res.ssim:.3f}")


@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--output", "out_dir", required=True,
              help="Output folder (created); summary.json is written there.")
@click.option("--masks", "masks_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of masks (default: beside the panels).")
@click.option("--mask-pattern", default="{stem}_mask.png", show_default=True,
              help="Mask file name of a panel; {stem} is the panel's name without extension.")
@click.option("--mask", "panel_mask", type=str,
              help="Tile mode: the mask of the panel (default: found by --mask-pattern). "
                   "'auto' (both modes): detect every panel's losses first, as `run --mask "
                   "auto`.")
@click.option("--tile", type=int, default=None,
              help="Cut the SOURCE panel into tiles of this side and stitch them back.")
@click.option("--overlap", default=256, show_default=True, type=click.IntRange(0),
              help="Tile mode: unused (kept for old scripts): each work region reads the "
                   "window `inpaint run` plans for it, so tiles give the run's result.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Processes of the local Dask cluster.")
@click.option("--scheduler", default=None,
              help="Address of an existing Dask scheduler (e.g. tcp://host:8786).")
@click.option("--invert-mask", is_flag=True, help="Zero (black) mask pixels are the missing ones.")
@click.option("--force", is_flag=True, help="Redo items whose output exists, and overwrite.")
@mrf_options
@with_verbosity
@_expected_errors
def batch(source, out_dir, masks_dir, mask_pattern, panel_mask, tile, overlap, workers, scheduler,
          invert_mask, force, verbose, quiet, **mrf):
    """Inpaint every panel of the folder SOURCE, or the tiles of the panel SOURCE, on Dask.

    Finished outputs are skipped on a second run (resumable); a failed item is recorded in
    summary.json and the others go on; the exit code is 1 when any item failed.
    """
    from pathlib import Path

    from inpaint.batch import check_batch_outputs, folder_items, region_items, run_batch

    _setup_logging(verbose, quiet)
    cfg = _run_config(**mrf)
    src, out = Path(source), Path(out_dir)
    stitch_to = None
    auto = panel_mask == "auto"
    if panel_mask and not auto and not Path(panel_mask).is_file():
        raise click.BadParameter(f"mask file {panel_mask} does not exist", param_hint="--mask")
    if tile is not None:
        if src.is_dir():
            raise click.BadParameter("--tile needs a panel file, not a folder", param_hint="SOURCE")
        mask = Path(panel_mask) if panel_mask else src.with_name(mask_pattern.format(stem=src.stem))
        if not auto and not mask.exists():
            raise click.ClickException(f"mask of {src.name} not found: {mask} (use --mask)")
        items, cfg = region_items(src, mask, out, tile, cfg, invert_mask)  # run's own regions
        stitch_to = (src, out / src.name)
    elif src.is_dir():
        items = folder_items(src, out, mask_pattern, Path(masks_dir) if masks_dir else None)
        if auto:
            from dataclasses import replace

            items = [replace(item, mask="auto") for item in items]
    else:
        raise click.BadParameter("give a folder of panels, or a panel with --tile",
                                 param_hint="SOURCE")
    check_batch_outputs(items, out, src, cfg, stitch_to[1] if stitch_to else None)
    out.mkdir(parents=True, exist_ok=True)
    summary = run_batch(items, cfg, out, scheduler=scheduler, workers=workers, force=force,
                        invert_mask=invert_mask, progress=not quiet, stitch_to=stitch_to)
    counts = summary["counts"]
    click.echo(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
               f"in {summary['seconds']:.0f} s; summary in {out / 'summary.json'}")
    for record in summary["items"]:
        if record["status"] == "failed":
            click.echo(f"failed: {record['name']}: {record['error']}", err=True)
    if counts["failed"]:
        sys.exit(1)


# --------------------------------------------------------------------------- detect
@main.command()
@click.argument("image", type=str)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Mask to write (.tif or .png): one uint8 band, 255 = loss, 0 = paint, "
                   "aligned with IMAGE and with its georeferencing.")
@click.option("--method", type=click.Choice(["cracks", "trained"]), default="cracks",
              show_default=True,
              help="cracks: thin-structure filter, no training; trained: a random forest "
                   "trained on --scribbles (or loaded with --model).")
@click.option("--scribbles", type=str,
              help="trained: image of IMAGE's size with a few strokes: red (or value 1) = loss, "
                   "green or blue (or value 2) = paint; other pixels are unlabelled.")
@click.option("--save-model", type=click.Path(dir_okay=False),
              help="trained: save the classifier to reuse it on other panels with --model.")
@click.option("--model", type=str,
              help="trained: a classifier saved by --save-model. A model file is a pickle, i.e. "
                   "code: only load files you trust.")
@click.option("--ir-features", default=None,
              help="trained: add the IR channels of this descriptor (v32, v128 or a checkpoint) "
                   "to the pixel features.")
@click.option("--scales", default="1,2,3", show_default=True,
              help="cracks: ridge-filter scales (sigmas, px), comma-separated; a crack of width "
                   "w answers best at sigma ~ w/2.")
@click.option("--polarity", type=click.Choice(["auto", "dark", "light", "both"]),
              default="auto", show_default=True,
              help="cracks: dark lines (open cracks), light lines and lighter areas (flaked "
                   "paint, exposed ground), both, or auto: dark or light decided from the whole "
                   "image (the side with more thin-structure contrast).")
@click.option("--low", default=0.08, show_default=True, type=click.FloatRange(0),
              help="cracks: hysteresis low threshold (ridge contrast, grey levels 0..1).")
@click.option("--high", default=0.15, show_default=True, type=click.FloatRange(0),
              help="cracks: hysteresis high threshold; a crack needs one pixel above it.")
@click.option("--min-area", default=150, show_default=True, type=click.IntRange(0),
              help="Drop detected components smaller than this many pixels (trained: "
                   "default 0 = keep all).")
@click.option("--area-radius", default=20, show_default=True, type=click.IntRange(0),
              help="cracks, light or both: radius (px) of the white top-hat that finds lighter "
                   "areas up to ~2x this wide (flaked paint); 0 = thin lines only.")
@click.option("--area-low", default=0.2, show_default=True, type=click.FloatRange(0),
              help="cracks: hysteresis low threshold of the lighter areas (how much lighter "
                   "than around, grey levels 0..1).")
@click.option("--area-high", default=0.3, show_default=True, type=click.FloatRange(0),
              help="cracks: hysteresis high threshold of the lighter areas.")
@click.option("--closing", default=0, show_default=True, type=click.IntRange(0),
              help="cracks: radius of a final morphological closing that bridges gaps.")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="trained: loss probability above which a pixel is loss.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="trained: random-forest seed.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1),
              help="trained: random-forest processes.")
@click.option("--memory-budget", default=None,
              help="Peak memory of the process to size the windows for, e.g. 2GB (default: "
                   "half of the available memory).")
@click.option("--window", default=2048, show_default=True, type=click.IntRange(128),
              help="Largest window side in pixels; the memory budget may lower it.")
@click.option("--preview", "preview_path", type=click.Path(dir_okay=False),
              help="Write a PNG montage: input | mask overlay | mask.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write a JSON report: method, parameters, counts, timings, memory.")
@click.option("--force", is_flag=True, help="Overwrite existing output, model, preview, report.")
@with_verbosity
@_expected_errors
def detect(image, output, method, scribbles, save_model, model, ir_features, scales, polarity,
           low, high, min_area, area_radius, area_low, area_high, closing, threshold, seed, jobs,
           memory_budget, window, preview_path, report_path, force, verbose, quiet):
    """Detect paint loss or cracks in IMAGE and write a loss mask for `inpaint run --mask`."""
    from inpaint.detect import DetectConfig, detect_file
    from inpaint.plan import parse_size
    from masks.detect import CrackConfig, TrainedConfig

    _setup_logging(verbose, quiet)
    ctx = click.get_current_context()
    given = lambda name: ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
    try:
        sigmas = tuple(float(s) for s in scales.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"{scales!r} is not a comma-separated list of numbers",
                                 param_hint="--scales") from None
    cracks = CrackConfig(sigmas=sigmas, polarity=polarity, low=low, high=high,
                         min_area=min_area, closing=closing, area_radius=area_radius,
                         area_low=area_low, area_high=area_high)
    trained = TrainedConfig(threshold=threshold, seed=seed, n_jobs=jobs,
                            min_area=min_area if given("min_area") else 0)
    cfg = DetectConfig(method=method, cracks=cracks, trained=trained, ir_features=ir_features,
                       window=window, memory_budget=parse_size(memory_budget))
    _, report = detect_file(image, output, cfg, scribbles=scribbles, model=model,
                            save_model=save_model, preview_path=preview_path,
                            report_path=report_path, force=force, progress=not quiet)
    if not quiet:
        m = report["mask"]
        click.echo(f"wrote {output}: {m['loss_pixels']} loss pixels ({100 * m['fraction']:.2f} "
                   f"%), {m['components']} components, {method}"
                   + (f" ({report['config']['polarity']})" if method == "cracks" else "")
                   + ", "
                   f"{report['total_seconds']:.1f} s")


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
