"""The record block of docs/determinism.md: the default run's summaries from two hosts, compared cell by cell (the
summaries are the pipeline's `report` rule's, docs/reference-run*.md)."""

from __future__ import annotations

import re

from doc_records import REPO, block

CELL = re.compile(r"^(-?\d+(?:\.\d+)?) \((\d+(?:\.\d+)?)\)$")  # "mean (std)"
VERDICT = re.compile(r"^- \*\*(\w+)\*\* (supported|not supported|inconclusive|passed|failed)", re.MULTILINE)
# the columns of the report's tables that say which runs a row holds (the others are what they measured)
KEY_COLUMNS = {"dataset", "condition", "labels", "n", "# training points", "m_h", "augmentation", "τ / t", "seeds"}
NAMING = {"dataset", "condition", "augmentation", "τ / t"}  # those that name a row in a sentence


def summary_tables(text: str) -> dict[str, dict[tuple, dict[str, str]]]:
    """Each '## ' section's table of a results summary: row key (its KEY_COLUMNS cells) -> cells."""
    tables: dict[str, dict[tuple, dict[str, str]]] = {}
    heading, header = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].split(" (")[0], None
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells))
            key = tuple(c for h, c in row.items() if h.lower() in KEY_COLUMNS)
            tables.setdefault(heading, {})[key] = row
    return tables


def largest_difference(a: dict, b: dict) -> tuple[float, int, int, str]:
    """Over the 'mean (std)' cells two tables share: the largest difference, the cells compared, those differing
    by more than both standard deviations, and where the largest is."""
    best, compared, beyond, where = 0.0, 0, 0, ""
    for key in a.keys() & b.keys():
        for col, cell in a[key].items():
            x, y = CELL.match(cell), CELL.match(b[key].get(col, ""))
            if not (x and y):
                continue
            diff = abs(float(x[1]) - float(y[1]))
            compared += 1
            beyond += diff > max(float(x[2]), float(y[2]))
            if diff > best:
                row = ", ".join(f"{h} {v}" for h, v in a[key].items() if h.lower() in NAMING)
                best, where = diff, f"{row}; {col}: {cell} against {b[key][col]}"
    return best, compared, beyond, where


@block("reference-hosts")
def reference_hosts() -> str:
    files = [REPO / "docs" / "determinism" / "57673c8-host-a.md", REPO / "docs" / "determinism" / "57673c8-host-b.md"]
    here, there = (summary_tables(f.read_text()) for f in files)
    lines = []
    for heading in [h for h in here if h in there]:
        best, compared, beyond, where = largest_difference(here[heading], there[heading])
        if compared:
            lines.append(f"- {heading}: {compared} cells compared; the largest difference is {best:.2f} points "
                         f"({where}); {beyond} differ by more than either host's standard deviation.")
    verdicts = [dict(VERDICT.findall(f.read_text())) for f in files]
    same = [c for c in verdicts[0] if verdicts[1].get(c) == verdicts[0][c]]
    lines.append(f"- Claims and instrument checks: {len(same)} of {len(verdicts[0])} have the same verdict on both.")
    return "\n".join(lines) + "\n\n*From " + " and ".join(
        f"`{f.relative_to(REPO)}`" for f in files) + ", as the pipeline's `report` rule wrote them.*"
