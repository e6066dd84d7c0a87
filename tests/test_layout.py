"""The layout: imports only go downward (README, *Development*).

    cli -> inpaint -> {mrf, descriptor, masks} -> patches

``descriptor`` and ``masks`` import nothing else of the project but ``patches``; ``mrf`` imports
no ``descriptor``, ``masks`` or ``inpaint``; the bottom package ``patches`` (one patch-extraction
primitive, may not exist yet) may be imported by anyone and imports nothing of the project; no
package imports ``cli``; and inside a package no two modules import each other, directly or
through others (lazy imports inside functions count too: a cycle held open by a lazy import is
still a cycle). Every import statement of every module is read with ``ast``, nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What each top-level part of the project may import of the project (besides itself).
ALLOWED: dict[str, set[str]] = {
    "cli": {"inpaint", "mrf", "descriptor", "masks", "patches"},
    "inpaint": {"mrf", "descriptor", "masks", "patches"},
    "mrf": {"patches"},
    "descriptor": {"patches"},
    "masks": {"patches"},
    "patches": set(),
    "benchmarks": {"inpaint", "mrf", "descriptor", "masks", "patches"},
}


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for cli.py and every .py file of the project's packages."""
    modules = {}
    for part in ALLOWED:
        single = root / f"{part}.py"
        if single.is_file():
            modules[part] = single
        folder = root / part
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                names = list(path.relative_to(root).with_suffix("").parts)
                if names[-1] == "__init__":
                    names.pop()
                modules[".".join(names)] = path
    return modules


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """Absolute names of every module imported by ``module`` (module-level or inside a
    function), with their line numbers; relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.append((prefix, node.lineno))
            # ``from pkg import sub``: sub may be a module of pkg
            found += [(f"{prefix}.{alias.name}", node.lineno) for alias in node.names]
    return found


def layout_violations(root: Path) -> list[str]:
    modules = project_modules(root)
    problems = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        part = module.split(".")[0]
        for name, line in imported_names(module, path):
            target = name.split(".")[0]
            if target not in ALLOWED or (target == part and name not in modules):
                continue   # a third-party module, or an attribute imported from a module
            where = f"{path.relative_to(root)}:{line}"
            if target != part and target not in ALLOWED[part]:
                problems.append(f"{where}: {part} may not import {name}")
            if target == part and name != module:
                graph[module].add(name)
    problems += [f"import cycle inside a package: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_only_go_downward_and_no_package_has_a_cycle():
    assert len(project_modules(ROOT)) > 40   # the scan sees the project
    assert layout_violations(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


BASE = {"cli.py": "import inpaint.run\n", "inpaint/__init__.py": "",
        "inpaint/run.py": "from mrf import solve\nfrom .errors import E\n",
        "inpaint/errors.py": "class E(Exception): pass\n",
        "mrf/__init__.py": "from .solve import solve\n", "mrf/solve.py": "import numpy\n",
        "descriptor/__init__.py": "", "masks/__init__.py": "",
        "patches/__init__.py": "def extract(): pass\n"}


def test_a_clean_tree_passes(tmp_path):
    assert layout_violations(_tree(tmp_path, BASE)) == []


@pytest.mark.parametrize("name, text, expected", [
    ("mrf/solve.py", "from inpaint.errors import E\n", "mrf may not import inpaint.errors"),
    ("mrf/solve.py", "def f():\n    import descriptor\n", "mrf may not import descriptor"),
    ("masks/io.py", "from descriptor import x\n", "masks may not import descriptor"),
    ("descriptor/a.py", "import masks.io\n", "descriptor may not import masks.io"),
    ("inpaint/errors.py", "import cli\n", "inpaint may not import cli"),
    ("patches/__init__.py", "from mrf import solve\n", "patches may not import mrf"),
    ("inpaint/errors.py", "from .run import x\n", "cycle inside a package: inpaint.errors -> "
                                                  "inpaint.run"),
    ("mrf/solve.py", "def f():\n    from . import other\n", "cycle"),
])
def test_an_upward_import_or_a_cycle_is_reported(tmp_path, name, text, expected):
    files = dict(BASE, **{name: text, "mrf/other.py": "from .solve import f\n"})
    problems = layout_violations(_tree(tmp_path, files))
    assert any(expected in p for p in problems), problems
