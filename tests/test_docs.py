"""The docs: every record block is what benchmarks/render_docs.py writes from the records (and the check names a
block that differs), and every relative link and #anchor in README.md and docs/*.md resolves, with GitHub's
heading anchors. Both checks are first run on hand-made pages with each fault."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import BENCH, REPO, load_benchmark

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
HTML_LINK = re.compile(r"\b(?:href|src)=\"([^\"]+)\"")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


# ---- the link check ---------------------------------------------------------------------------------------------

def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code removed (a link or heading quoted in code is text)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(INLINE_CODE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text as rendered, lower case, without punctuation, spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #anchor a Markdown page has: its headings' (a repeated one gets -1, -2, ...) and explicit HTML ones."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text().splitlines():  # a heading's inline code is part of its text
        fenced = not fenced if FENCE.match(line) else fenced
        if not fenced and (m := HEADING.match(line)):
            base = slug(m.group(1))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found | {a.lower() for line in prose_lines(path.read_text()) for a in HTML_ANCHOR.findall(line)}


def targets(text: str) -> list[str]:
    """The link targets of a page: inline links and images, reference definitions, HTML href and src."""
    found = []
    for line in prose_lines(text):
        found += LINK.findall(line) + REFERENCE.findall(line) + HTML_LINK.findall(line)
    return found


def broken_links(path: Path) -> list[str]:
    """'page: target (why)' for every relative link of `path` whose file or #anchor does not exist."""
    problems = []
    for target in targets(path.read_text()):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path}: {target} (no such file)")
        elif fragment and dest.suffix == ".md" and unquote(fragment).lower() not in anchors(dest):
            problems.append(f"{path}: {target} (no heading or anchor #{fragment} in {dest.name})")
    return problems


def doc_pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Memory plan for the paper's sizes", "memory-plan-for-the-papers-sizes"),
    ("Preemption, time-outs, cancellations", "preemption-time-outs-cancellations"),
    ("How `qr` fits the paper's sizes", "how-qr-fits-the-papers-sizes"),
    ("A(base) & the [library](library.md)", "abase--the-library"),
    ("Φ × τ: train_subset", "φ--τ-train_subset"),
])
def test_heading_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_link_check_finds_each_broken_link_and_passes_good_ones(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Same\n\n## Same\n\n<a id=\"kept\"></a>\n"
                                                 "```bash\n# not a heading\n```\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n"
        "[ok](docs/other.md) [ok](docs/other.md#same-1) [ok](docs/other.md#kept) [ok](#top) [ok](docs/)\n"
        "[web](https://example.org/x#y) [mail](mailto:a@b.c) ![img](docs/other.md)\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#same-2) [fenced heading](docs/other.md#not-a-heading)\n"
        "[here](#nowhere) `[quoted](docs/also-missing.md)` <a href=\"docs/html-missing.md\">x</a>\n\n"
        "[ref]: docs/ref-missing.md\n\n```\n[in code](docs/code-missing.md)\n```\n")
    found = broken_links(page)
    assert [p.split(": ", 1)[1] for p in found] == [
        "docs/missing.md (no such file)", "docs/other.md#same-2 (no heading or anchor #same-2 in other.md)",
        "docs/other.md#not-a-heading (no heading or anchor #not-a-heading in other.md)",
        "#nowhere (no heading or anchor #nowhere in README.md)", "docs/html-missing.md (no such file)",
        "docs/ref-missing.md (no such file)"]


def test_every_link_and_anchor_in_the_docs_resolves() -> None:
    problems = [p for page in doc_pages(REPO) for p in broken_links(page)]
    assert not problems, "\n".join(problems)


# ---- the record blocks ------------------------------------------------------------------------------------------

def render(*args: str) -> subprocess.CompletedProcess:
    """benchmarks/render_docs.py with `args`, its output captured (its exit status is what the tests check)."""
    return subprocess.run([sys.executable, str(BENCH / "render_docs.py"), *args], check=False, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the pages and the records: `root` with README.md and docs/, and `root`/results."""
    shutil.copy(REPO / "README.md", tmp_path)
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "benchmarks" / "results", tmp_path / "results")
    return tmp_path


def test_docs_blocks_are_what_the_records_give() -> None:
    done = render("--check")
    assert done.returncode == 0, done.stderr


def test_every_block_is_on_a_page() -> None:
    blocks = load_benchmark("render_docs.py").BLOCKS
    text = "\n".join(p.read_text() for p in doc_pages(REPO) if p.exists())
    assert [name for name in blocks if f"<!-- record:{name} -->" not in text] == []


def test_check_names_the_block_whose_record_changed_and_render_rewrites_it(checkout: Path) -> None:
    record = checkout / "results" / "resume-cost-cpu-2core.json"
    data = json.loads(record.read_text())
    data["saved_wall_s"] = 4.56
    record.write_text(json.dumps(data))
    page = checkout / "docs" / "troubleshooting.md"
    before = page.read_text()
    args = ("--root", str(checkout), "--results", str(checkout / "results"))
    done = render("--check", *args)
    assert done.returncode == 1
    assert "docs/troubleshooting.md: block record:resume-cost differs" in done.stderr
    assert "docs/performance.md: block record:resume-cost differs" in done.stderr
    assert "record:throughput " not in done.stderr  # the blocks of other records still match
    assert page.read_text() == before  # --check changes nothing
    assert render(*args).returncode == 0
    assert "4.56 s of its" in page.read_text() and "4.56" not in before
    assert render("--check", *args).returncode == 0


def test_check_names_a_block_edited_by_hand(checkout: Path) -> None:
    page = checkout / "docs" / "certificates.md"
    text = page.read_text()
    start = text.index("<!-- record:certificate-time -->")
    page.write_text(text[:start] + text[start:].replace("93.16 s", "9.16 s", 1))
    done = render("--check", "--root", str(checkout))
    assert done.returncode == 1
    assert done.stderr.strip() == ("docs/certificates.md: block record:certificate-time differs from what the "
                                   "records give; run `python benchmarks/render_docs.py`")


def test_markers_that_name_no_block_or_do_not_pair_are_named(checkout: Path) -> None:
    page = checkout / "docs" / "extra.md"
    page.write_text("# Extra\n\n<!-- record:no-such-block -->\n<!-- /record:no-such-block -->\n\n"
                    "<!-- record:compile -->\ntext\n\nQuoted in a sentence, `<!-- record:nope -->` is text.\n")
    done = render("--check", "--root", str(checkout))
    assert done.returncode == 1
    assert "docs/extra.md: unknown block record:no-such-block (known: " in done.stderr
    assert "docs/extra.md: record:compile is never closed with <!-- /record:compile -->" in done.stderr
    assert "nope" not in done.stderr


def test_a_missing_record_is_one_line_naming_it_and_its_command(checkout: Path) -> None:
    (checkout / "results" / "slurm-vs-local-test-cpu-2core.json").unlink()
    done = render("--check", "--root", str(checkout), "--results", str(checkout / "results"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        (f"{checkout}/results/slurm-vs-local-test-cpu-2core.json: no such record; write it with "
        "`deploy/slurm/start-local.sh python benchmarks/slurm_time.py --out "
        "benchmarks/results/slurm-vs-local-test-cpu-2core.json` or drop the block that reads it")]


def test_a_record_names_the_command_that_wrote_it(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    code = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); sys.argv = ['{BENCH}/x.py', '--out', 'a b']; "
            f"import workspace; workspace.save_json({{'what': 1}}, {str(out)!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert json.loads(out.read_text()) == {"what": 1, "command": "python benchmarks/x.py --out 'a b'"}
