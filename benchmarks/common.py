"""Shared helpers for the benchmark scripts in this folder.

Every script follows the same pattern::

    args = parser("what it measures").parse_args()      # --quick, --out
    result = measure_subprocess(child_function, {...})   # one measurement, fresh process
    print_table(rows, columns)
    write_json(args.out, "name", payload, args=args)
    save_plot(fig, args.out, "name")

Full runs write to ``benchmarks/results/``; ``--quick`` runs to ``benchmarks/results/quick/`` so
that a quick check never overwrites the committed full results. Peak-memory figures come from
fresh child processes (``measure_subprocess``) so that one size cannot contaminate another.

Import from a script in this folder with::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from descriptor.checkpoint import atomic_write_bytes

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
QUICK_RESULTS_DIR = RESULTS_DIR / "quick"

#: A table column: (row key, header, format spec for ``format(value, spec)`` or a callable).
Column = tuple[str, str, "str | Callable[[Any], str]"]


# --------------------------------------------------------------------------- command line

class BenchmarkParser(argparse.ArgumentParser):
    """ArgumentParser whose ``--out`` default depends on ``--quick`` (filled in after parsing)."""

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        if getattr(ns, "out", None) is None:
            ns.out = QUICK_RESULTS_DIR if getattr(ns, "quick", False) else RESULTS_DIR
        ns.out = Path(ns.out)
        return ns, rest


def parser(description: str) -> BenchmarkParser:
    """Argument parser with the options every benchmark shares.

    ``--quick``: small sizes, the whole script runs in under a minute (a smoke test, not figures
    to quote). ``--out DIR``: where JSON and PNG go (default ``benchmarks/results/``, or
    ``benchmarks/results/quick/`` with ``--quick``). Scripts add their own options.
    """
    p = BenchmarkParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="small sizes, whole script under a minute (smoke test)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: benchmarks/results/, or "
                        "benchmarks/results/quick/ with --quick)")
    return p


# --------------------------------------------------------------------------- output

def machine_info() -> dict[str, Any]:
    """Hardware and software facts that matter for timings; deliberately no host name."""
    import torch  # every benchmark uses torch; imported here to keep this module light

    try:
        import psutil
        total_ram = int(psutil.virtual_memory().total)
    except ImportError:  # pragma: no cover - psutil is a project dependency
        total_ram = None
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable_cpus = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "cpu_model": _cpu_model(),
        "total_ram_bytes": total_ram,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda_available": bool(torch.cuda.is_available()),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_commit() -> str | None:
    """HEAD commit of the checkout (read-only query), with ``-dirty`` if files are modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def _jsonable(value: Any) -> Any:
    """json.dump fallback: numpy scalars/arrays, paths, torch dtypes/devices."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_json(out_dir: str | os.PathLike, name: str, payload: dict[str, Any],
               args: argparse.Namespace | None = None) -> Path:
    """Write ``payload`` plus a ``meta`` block to ``out_dir/<name>.json`` atomically.

    ``meta`` holds the UTC date, the command line, the git commit, the parsed arguments and the
    quick flag (from ``args``), and ``machine_info()``. Returns the file written.
    """
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": _git_commit(),
        "quick": bool(getattr(args, "quick", False)) if args is not None else None,
        "arguments": dict(vars(args)) if args is not None else None,
        "machine": machine_info(),
    }
    document = {"meta": meta, **payload}
    path = Path(out_dir) / f"{name}.json"
    text = json.dumps(document, indent=2, default=_jsonable) + "\n"
    atomic_write_bytes(path, text.encode())
    return path


def _cell(value: Any, fmt: str | Callable[[Any], str]) -> str:
    if value is None:
        return "-"
    if callable(fmt):
        return fmt(value)
    try:
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def _cells(rows: Sequence[dict], columns: Sequence[Column]) -> tuple[list[str], list[list[str]]]:
    headers = [header for _, header, _ in columns]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    return headers, body


def _is_numeric_column(rows: Sequence[dict], key: str) -> bool:
    values = [row.get(key) for row in rows if row.get(key) is not None]
    return bool(values) and all(isinstance(v, (int, float, np.number)) for v in values)


def format_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """Aligned plain-text table (numbers right-aligned, text left-aligned); None prints as '-'."""
    headers, body = _cells(rows, columns)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(headers)]
    right = [_is_numeric_column(rows, key) for key, _, _ in columns]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    return "\n".join(out)


def print_table(rows: Sequence[dict], columns: Sequence[Column], title: str | None = None) -> None:
    """Print ``format_table(rows, columns)`` to stdout, with an optional title line."""
    if title:
        print(f"\n{title}")
    print(format_table(rows, columns), flush=True)


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """The same table as GitHub markdown (numeric columns right-aligned), for README."""
    headers, body = _cells(rows, columns)
    align = ["---:" if _is_numeric_column(rows, key) else ":---" for key, _, _ in columns]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(align), *(line(r) for r in body)]) + "\n"


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (7.0, 4.5),
               **subplot_kw: Any):
    """(figure, axes) drawn off-screen with the Agg canvas; no pyplot, so no global state.

    ``axes`` is a single Axes for 1x1, else an array as from ``Figure.subplots``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, subplot_kw=subplot_kw or None)
    return fig, axes


def save_plot(fig, out_dir: str | os.PathLike, name: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``out_dir/<name>.png`` atomically (Agg backend)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path = Path(out_dir) / f"{name}.png"
    atomic_write_bytes(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------- measuring

def timed(fn: Callable[..., Any], *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[float, Any]:
    """Best-of-``repeat`` wall time of ``fn(*args, **kwargs)``: returns (seconds, last result).

    The previous result is released before each further call, so a repeat does not hold two
    results in memory at once.
    """
    best = float("inf")
    result: Any = None
    for _ in range(max(1, repeat)):
        result = None
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def current_rss() -> int:
    """Resident set size of this process now, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def _child_entry(func: Callable[..., dict], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Runs in the fresh child: the measurement, then the child's own lifetime peak RSS."""
    from inpaint.memory import process_peak_rss

    start = time.perf_counter()
    result = dict(func(**kwargs))
    result["child_peak_rss"] = process_peak_rss()
    result["child_seconds"] = time.perf_counter() - start
    return result


def measure_subprocess(func: Callable[..., dict], kwargs: dict[str, Any] | None = None,
                       timeout: float | None = None,
                       start_method: str | None = None) -> dict[str, Any]:
    """Run ``func(**kwargs)`` in a fresh child process and return its result dict.

    ``func`` must be a module-level function (it is pickled by name) returning a JSON-able dict.
    The child adds ``child_peak_rss`` (its own ``ru_maxrss`` at the end, in bytes: the runtime,
    the imports and everything it allocated) and ``child_seconds``. On failure (exception, crash,
    killed by the OOM killer, timeout) returns ``{"error": message, ...}`` instead of raising,
    so one failed size does not lose a whole benchmark run.

    ``start_method``: default ``forkserver`` where available (each child is forked from a clean
    server process that has only imported the main script's modules, so it starts in
    milliseconds yet shares no allocations with the parent or earlier children), else
    ``spawn`` (a new interpreter per call, about 2 s of torch import each).
    """
    if start_method is None:
        available = multiprocessing.get_all_start_methods()
        start_method = "forkserver" if "forkserver" in available else "spawn"
    context = multiprocessing.get_context(start_method)
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_child_entry, func, dict(kwargs or {}))
        try:
            return future.result(timeout=timeout)
        except BrokenProcessPool:
            return {"error": "child process died (killed, e.g. out of memory?)"}
        except concurrent.futures.TimeoutError:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()  # only the child this call started
            return {"error": f"timed out after {timeout} s"}
        except Exception as exc:  # noqa: BLE001 - the child's exception, reported not raised
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            remote = str(exc.__cause__) if exc.__cause__ is not None else ""
            return {"error": detail, "traceback": remote.strip()}


# --------------------------------------------------------------------------- data

def shared_data(relative: str | os.PathLike = "") -> Path | None:
    """``<checkout>/../shared/data/<relative>`` when it exists, else None (use a fallback)."""
    path = REPO_ROOT.parent / "shared" / "data" / relative
    return path if path.exists() else None


def sized_image(side: int, source: str = "astronaut", width: int | None = None) -> np.ndarray:
    """A ``side`` x ``width`` (default square) float32 RGB image in [0, 1] for speed tests.

    A natural image from ``skimage.data`` (shipped with scikit-image, offline) cropped, or
    mirror-tiled (no seams) up to the requested size: realistic statistics at any size.
    """
    import skimage.data
    from skimage.color import gray2rgb

    width = side if width is None else width
    base = getattr(skimage.data, source)()
    if base.ndim == 2:
        base = gray2rgb(base)
    base = base[..., :3]
    h, w = base.shape[:2]
    pad = ((0, max(0, side - h)), (0, max(0, width - w)), (0, 0))
    tiled = np.pad(base, pad, mode="symmetric")[:side, :width]
    return np.ascontiguousarray(tiled, dtype=np.float32) / np.float32(255.0)
