"""Which source files each `globalmin` command runs, derived from the package's imports (never kept by hand).

Every rule declares these files as inputs, so that editing a function reruns exactly the jobs whose commands
import it (and, through their outputs, what depends on them). A command runs `cli.py` (and what it imports),
the package's `__init__.py` and its stage module; from there every `import globalmin...` and
`from globalmin import ...` anywhere in a module (lazy imports inside functions included) is followed. A
module's `PACKAGE_DATA` tuple names the non-Python files it reads (templates), which count too. The graph is
read from the source tree the workflow ships (`src/globalmin` beside the Snakefile). Torch-free: the
Snakefile calls it at every invocation.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "globalmin"


def module_file(module: str, root: Path) -> Path | None:
    """The source file of a globalmin module or package under `root` ('globalmin.figures.ntk' -> figures/ntk.py)."""
    path = root.joinpath(*module.split(".")[1:])
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def direct_imports(module: str, root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(globalmin modules imported anywhere in `module`, package data files it names in PACKAGE_DATA)."""
    path = module_file(module, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    data: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == PACKAGE:
            found.add(node.module)
            # `from globalmin import data` imports the module globalmin.data
            found.update(f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}", root))
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PACKAGE_DATA" for t in node.targets):
            data.extend(ast.literal_eval(node.value))
    return tuple(sorted(m for m in found if module_file(m, root))), tuple(data)


def closure(modules: list[str], root: Path) -> set[Path]:
    """Every source file the `modules` run: themselves, the packages above them and, transitively, their imports."""
    seen: set[str] = set()
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:k]) for k in range(1, len(parts)))  # a.b.c runs a/__init__, a/b/__init__ first
        path = module_file(name, root)
        files.add(path)
        imported, data = direct_imports(name, root)
        files.update(path.parent / d for d in data)
        todo.extend(imported)
    return files


def command_sources(command: str, root: str | Path, relative_to: str | Path) -> list[str]:
    """The source files `globalmin <command>` runs, as paths relative to `relative_to` (the workflow folder)."""
    from globalmin.cli import COMMANDS

    root, base = Path(root).resolve(), Path(relative_to).resolve()
    files = closure([f"{PACKAGE}.cli", COMMANDS[command].module], root)
    return sorted(str(f.relative_to(base)) for f in files)
