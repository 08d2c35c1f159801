"""The record block of README.md: the headline of the default run's results, as the pipeline's `report` rule wrote it
into its summary (docs/reference-run.md, between its <!-- headline --> markers)."""

from __future__ import annotations

import re

from doc_records import REPO, block

HEADLINE = re.compile(r"^<!-- headline -->\n(?P<body>.*?)^<!-- /headline -->$", re.DOTALL | re.MULTILINE)


@block("headline")
def headline() -> str:
    page = REPO / "docs" / "reference-run.md"
    found = HEADLINE.search(page.read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit(f"{page} has no <!-- headline --> section: copy report/summary.md of a default run there "
                         f"(snakemake --cores all, then cp report/summary.md {page.relative_to(REPO)})")
    where = f"`{page.relative_to(REPO)}`, the default run's `report/summary.md`"
    return found.group("body").strip() + f"\n\n*Written by the pipeline: {where}.*"
