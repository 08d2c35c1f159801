"""Write every measured figure of the docs from the benchmark records, into marked blocks.

A page holds a block as
    <!-- record:NAME -->
    (generated: never edit by hand)
    <!-- /record:NAME -->
and this script replaces what lies between the two markers with what the function registered as NAME returns, built
from the JSON records in benchmarks/results/ (and, for the two reference runs, from the summaries the pipeline
wrote). Each block ends by naming its record and the command that wrote it.
Usage: python benchmarks/render_docs.py            rewrite the blocks of README.md and docs/*.md
       python benchmarks/render_docs.py --check    change nothing; exit 1 naming each block that differs
A new block is one function with @block("NAME") in benchmarks/blocks_<page>.py (docs/performance.md, "Adding a
figure").
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from doc_records import BLOCKS, REPO, use_results

for module in sorted(Path(__file__).parent.glob("blocks_*.py")):  # each page's blocks register themselves
    importlib.import_module(module.stem)

# a marker is a line of its own (one quoted in a sentence or in code is text)
MARKED = re.compile(r"^(<!-- record:(?P<name>[\w-]+) -->\n)(?P<body>.*?)^(<!-- /record:(?P=name) -->)$",
                    re.DOTALL | re.MULTILINE)
OPENING = re.compile(r"^<!-- (/?)record:([\w-]+) -->$", re.MULTILINE)


def rendered(name: str) -> str:
    """The text between the markers of block `name`: a blank line, the block, a blank line."""
    return "\n" + BLOCKS[name]().strip() + "\n\n"


def pages(root: Path) -> list[Path]:
    """The pages whose blocks are rendered: README.md and docs/*.md under `root`."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def marker_problems(path: Path, text: str) -> list[str]:
    """Markers that do not pair up, or that name no registered block."""
    problems, open_name = [], None
    for m in OPENING.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if name not in BLOCKS:
            problems.append(f"{path}: unknown block record:{name} (known: {', '.join(sorted(BLOCKS))})")
        if closing != (open_name is not None) or (closing and name != open_name):
            problems.append(f"{path}: marker {m.group(0)} does not pair with the one before it")
        open_name = None if closing else name
    if open_name is not None:
        problems.append(f"{path}: record:{open_name} is never closed with <!-- /record:{open_name} -->")
    return problems


def render_page(text: str) -> tuple[str, list[str]]:
    """The page with every block rewritten, and the names of the blocks that changed."""
    changed: list[str] = []

    def fill(m: re.Match) -> str:
        body = rendered(m.group("name"))
        if body != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + body + m.group(4)
    return MARKED.sub(fill, text), changed


def run(root: Path, check: bool) -> int:
    """Render (or with `check`, compare) every page under `root`; the exit status."""
    status = 0
    for path in pages(root):
        text = path.read_text()
        problems = marker_problems(path.relative_to(root), text)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            status = 1
            continue
        new, changed = render_page(text)
        for name in changed:
            print(f"{path.relative_to(root)}: block record:{name} differs from what the records give"
                  + ("; run `python benchmarks/render_docs.py`" if check else ": rewritten"),
                  file=sys.stderr if check else sys.stdout)
        if changed and check:
            status = 1
        elif changed:
            path.write_text(new)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout whose pages are rendered")
    parser.add_argument("--results", type=Path, default=None, help="read the records here, not benchmarks/results")
    args = parser.parse_args(argv)
    if args.results:
        use_results(args.results)
    return run(args.root, args.check)


if __name__ == "__main__":
    sys.exit(main())
