"""Fetch the photo corpus of the paper-2 benchmark (``make paper-data``) from Debian packages.

The VAE paper trained on 80,748 56x56 patches from ImageNet and KonIQ-10k photos. Neither ships
with this project, so the benchmark (``benchmarks/vae_tables.py --images DIR``) can read any
folder of images; this script fills one with the photographs (and a few paper / canvas texture
scans) that ordinary Debian packages ship as desktop backgrounds. For every package it

1. downloads the ``.deb`` with ``apt-get download`` (no installation, nothing run as root
   inside the package),
2. unpacks it with ``dpkg -x`` into ``OUT/extract/PKG``,
3. copies the selected raster images into ``OUT/images/PKG/`` (flattened file names) and the
   package's ``usr/share/doc/PKG/copyright`` into ``OUT/licences/PKG.copyright``,
4. records package, version, files, size and the licences named in the copyright file in
   ``OUT/manifest.json`` and ``OUT/PROVENANCE.md``.

Packages whose images are logos, icons or flat vector art (desktop-base, sway-backgrounds,
jigzo-data) are left out; near-duplicate images (one wallpaper at several resolutions, light and
dark variants) are removed later, when vae_tables.py loads the folder. Only this data step uses
the network (the Debian mirror configured in apt); ``inpaint`` and the benchmark never do, and
CI does not run this step. The data stay outside git (``data/`` is git-ignored).

    python benchmarks/paper_data.py [--out data/paper] [--packages PKG ...]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

RASTER = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
#: Files never taken: previews, screenshots, thumbnails of the same wallpapers.
EXCLUDE = ("*screenshot*", "*preview*", "*thumb*", "*/grub/*", "*logo*")


@dataclass(frozen=True)
class Package:
    """A Debian package and the images taken from it (globs on paths inside the package)."""

    name: str
    include: tuple[str, ...] = ("*",)
    note: str = ""
    #: Keep only the largest file of each folder (one wallpaper shipped at many resolutions).
    largest_per_folder: bool = False


PACKAGES = (
    Package("lomiri-wallpapers-16.04", ("usr/share/backgrounds/*",),
            "Ubuntu wallpaper-contest photographs (landscapes, close-ups)"),
    Package("lomiri-wallpapers-20.04", ("usr/share/backgrounds/*",),
            "Ubuntu wallpaper-contest photographs"),
    Package("mate-backgrounds", ("usr/share/backgrounds/mate/nature/*",
                                 "usr/share/backgrounds/mate/abstract/Elephants*"),
            "MATE nature photographs (the abstract/desktop sets are vector art)"),
    Package("plasma-workspace-wallpapers", ("usr/share/wallpapers/*/contents/images/*",),
            "KDE Plasma wallpapers (largest size of each): photographs and digital art",
            largest_per_folder=True),
    Package("ukui-wallpapers", ("usr/share/backgrounds/*",),
            "UKUI wallpapers: photographs and some digital art"),
    Package("gnome-backgrounds", ("usr/share/backgrounds/gnome/*",),
            "GNOME 43 backgrounds: rendered and photographic"),
    Package("mypaint-data-extras", ("usr/share/mypaint/backgrounds/*",),
            "scanned paper, canvas and cork textures (painting supports)"),
)


@dataclass
class Record:
    package: str
    version: str
    note: str
    licences: list[str]
    copyright_file: str
    files: list[str] = field(default_factory=list)
    bytes: int = 0


def run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a command; exit with its stderr on one line when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        sys.exit(f"paper-data: {' '.join(cmd)} failed: {last}")
    return proc.stdout


def fetch(pkg: str, debs: Path) -> Path:
    """The package's .deb in ``debs``, downloaded with apt-get unless already there."""
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        run(["apt-get", "download", pkg], cwd=debs)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        sys.exit(f"paper-data: apt-get download {pkg} produced no .deb")
    return found[-1]


def licences(copyright_text: str) -> list[str]:
    """The distinct ``License:`` short names of a (DEP-5 or free-form) copyright file."""
    names = re.findall(r"^License:\s*(.+)$", copyright_text, flags=re.MULTILINE)
    return sorted({n.strip() for n in names}) or ["(free-form; see the copyright file)"]


def selected(root: Path, package: Package) -> list[Path]:
    """Raster files of an unpacked package matching its globs and no exclusion."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or path.suffix.lower() not in RASTER:
            continue
        if any(fnmatch.fnmatch(rel.lower(), e) for e in EXCLUDE):
            continue
        if any(fnmatch.fnmatch(rel, g) for g in package.include):
            out.append(path)
    if package.largest_per_folder:
        largest: dict[Path, Path] = {}
        for path in out:
            best = largest.get(path.parent)
            if best is None or path.stat().st_size > best.stat().st_size:
                largest[path.parent] = path
        out = sorted(largest.values())
    return out


def collect(package: Package, out: Path) -> Record:
    """Download, unpack and copy one package's images; its provenance record."""
    deb = fetch(package.name, out / "debs")
    version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    root = out / "extract" / package.name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    run(["dpkg", "-x", str(deb), str(root)])
    copyright_path = root / "usr/share/doc" / package.name / "copyright"
    text = copyright_path.read_text(errors="replace") if copyright_path.is_file() else ""
    (out / "licences").mkdir(exist_ok=True)
    kept = out / "licences" / f"{package.name}.copyright"
    kept.write_text(text or "no copyright file in the package\n")
    record = Record(package.name, version, package.note,
                    licences(text) if text else ["(no copyright file in the package)"],
                    str(kept.relative_to(out)))
    target = out / "images" / package.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in selected(root, package):
        rel = path.relative_to(root).as_posix()
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.split("usr/share/", 1)[-1])
        shutil.copyfile(path, target / name)
        record.files.append(f"{name} <- /{rel}")
        record.bytes += path.stat().st_size
    shutil.rmtree(root)
    return record


def provenance(records: list[Record]) -> str:
    lines = ["# Photo corpus of the paper-2 benchmark", "",
             "Made by `make paper-data` (benchmarks/paper_data.py) from Debian packages; "
             "each package's full copyright file is in `licences/`.", "",
             "| package | version | images | MB | licences named in its copyright file | what |",
             "|---|---|---:|---:|---|---|"]
    for r in records:
        lines.append(f"| {r.package} | {r.version} | {len(r.files)} | {r.bytes / 1e6:.1f} | "
                     f"{', '.join(r.licences)} | {r.note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("data/paper"))
    p.add_argument("--packages", nargs="+", default=[pkg.name for pkg in PACKAGES],
                   choices=[pkg.name for pkg in PACKAGES])
    args = p.parse_args()
    for tool in ("apt-get", "dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            sys.exit(f"paper-data: needs {tool} (a Debian-based system)")
    (args.out / "debs").mkdir(parents=True, exist_ok=True)
    records = []
    for package in PACKAGES:
        if package.name in args.packages:
            record = collect(package, args.out)
            print(f"{package.name} {record.version}: {len(record.files)} images, "
                  f"{record.bytes / 1e6:.1f} MB ({', '.join(record.licences)})")
            records.append(record)
    (args.out / "manifest.json").write_text(json.dumps([asdict(r) for r in records], indent=1))
    (args.out / "PROVENANCE.md").write_text(provenance(records))
    total = sum(len(r.files) for r in records)
    print(f"{total} images in {args.out / 'images'}; provenance in {args.out / 'PROVENANCE.md'}")


if __name__ == "__main__":
    main()
