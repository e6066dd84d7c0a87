"""Summary of a mutmut run (``make mutation``): mutants per file and status, survivors with
their one-line diffs. Reads the ``mutants/`` folder that ``mutmut run`` leaves behind.

    python benchmarks/mutation_summary.py [-o benchmarks/results/mutation.txt] [--note FILE]

--note appends a hand-written note (e.g. why each remaining survivor is harmless).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def statuses() -> dict[str, str]:
    out = subprocess.run([MUTMUT, "results", "--all", "true"], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        name, _, status = line.strip().partition(": ")
        if name and status:
            found[name] = status
    return found


def diff(name: str) -> str:
    out = subprocess.run([MUTMUT, "show", name], capture_output=True, text=True).stdout
    lines = [x for x in out.splitlines()
             if x[:1] in "+-" and not x.startswith(("+++", "---"))]
    return "\n".join("      " + x.rstrip() for x in lines)


def module(name: str) -> str:
    return name.split(".x_")[0].split(".xǁ")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path)
    ap.add_argument("--note", type=Path, help="text appended after the survivors")
    args = ap.parse_args()
    found = statuses()
    if not found:
        sys.exit("no mutmut results: run `make mutation` first")
    by_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in found.items():
        by_module[module(name)][status] += 1
    lines = ["mutmut results (make mutation); tests: [tool.mutmut] in pyproject.toml", ""]
    lines.append(f"{'module':<22}{'mutants':>8}{'checked':>9}{'killed':>8}{'survived':>9}"
                 f"{'other':>7}{'survival':>10}")
    for mod, c in sorted(by_module.items()):
        checked = sum(v for k, v in c.items() if k != "not checked")
        other = checked - c["killed"] - c["survived"]
        rate = f"{100 * c['survived'] / checked:.1f} %" if checked else "-"
        lines.append(f"{mod:<22}{sum(c.values()):>8}{checked:>9}{c['killed']:>8}"
                     f"{c['survived']:>9}{other:>7}{rate:>10}")
    lines.append("")
    others = sorted(n for n, s in found.items() if s not in ("killed", "not checked"))
    lines.append(f"Not killed ({len(others)}):")
    for name in others:
        lines.append(f"  {name}: {found[name]}")
        lines.append(diff(name))
    if args.note:
        lines += ["", args.note.read_text().rstrip()]
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
