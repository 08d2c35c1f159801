"""The record blocks of README.md: the headline of the default run's results, as the pipeline's `report` rule wrote it
into its summary (docs/reference-run.md, between its <!-- headline --> markers), and the Table 1 analog of the
Fashion-MNIST profile's summary (docs/reference-run-fashion-mnist.md) with its measured time."""

from __future__ import annotations

import re

from blocks_performance import FASHION_RECORD
from doc_records import REPO, block, num, record

HEADLINE = re.compile(r"^<!-- headline -->\n(?P<body>.*?)^<!-- /headline -->$", re.DOTALL | re.MULTILINE)


def headline_of(name: str, config: str) -> str:
    """The <!-- headline --> section of docs/<name>, the summary a run of `config` wrote."""
    page = REPO / "docs" / name
    found = HEADLINE.search(page.read_text(encoding="utf-8")) if page.exists() else None
    if found is None:
        raise SystemExit(f"{page} has no <!-- headline --> section: copy report/summary.md of a run there "
                         f"(snakemake --cores all{config}, then cp report/summary.md {page.relative_to(REPO)})")
    return found.group("body").strip()


@block("headline")
def headline() -> str:
    where = "`docs/reference-run.md`, the default run's `report/summary.md`"
    return headline_of("reference-run.md", "") + f"\n\n*Written by the pipeline: {where}.*"


@block("fashion-headline")
def fashion_headline() -> str:
    body = headline_of("reference-run-fashion-mnist.md", " --configfile config/fashion.yaml")
    first_table = body.split("\n\n")[0]
    rec = record(FASHION_RECORD)
    where = "`docs/reference-run-fashion-mnist.md`, that run's `report/summary.md`"
    return (first_table + f"\n\nThe whole profile took {num(rec['wall_seconds'] / 60, 1)} min on "
            f"{rec['machine']['cpus']} cores ({rec['jobs']} jobs). *Written by the pipeline: {where}; the time: "
            f"`benchmarks/results/{FASHION_RECORD}` (docs/performance.md).*")
