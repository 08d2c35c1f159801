"""The report in a real browser: headless Chromium through Selenium, at 1,400 px wide.

The checks themselves are tested first on hand-made pages, one clean and one with every kind of fault; then the
report of the shared test DAG run (fixture `workdir` in conftest.py) must pass them all. Skipped, with the
missing piece named, where selenium, chromium or chromedriver is not installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from matplotlib import image

from conftest import REPO
from page_audit import (WIDTH, artifacts_dir, audit, chromium, missing_browser, save_figure_sizes,
                        save_full_page)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    """One headless Chromium for this module's pages; skips when it cannot be started for lack of a piece."""
    why = missing_browser()
    if why:
        pytest.skip(f"browser test skipped, {why}")
    with chromium() as browser:
        yield browser


def _page(folder: Path, body: str, title: str = "A page") -> Path:
    """An HTML page in `folder` beside a real 60 x 40 PNG (figure.png) and a data file (table.csv)."""
    image.imsave(folder / "figure.png", np.linspace(0, 1, 60 * 40 * 3).reshape(40, 60, 3))
    (folder / "table.csv").write_text("a,b\n1,2\n")
    page = folder / "index.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                    f"<body>{body}</body></html>")
    return page


CLEAN = """<h1 id="top">Report</h1>
<img src="figure.png" alt="figure"> <img src="{absolute}" alt="the same by file URL">
<a href="table.csv">CSV</a> <a href="#top">top</a> <a href="#">also top</a> <a href="https://example.org/x">web</a>
<a href="{absolute}">absolute</a>
<table><tr><th>nanoseconds</th><th>σ_min</th></tr><tr><td>banana</td><td>1.5e-06</td></tr>
<tr><td>—</td><td>no certified run</td></tr></table>
<details><summary>values</summary><pre>{{"a": 1}}</pre></details>
<div style="width: 400px"><table><tr><th>a long header that wraps</th><th>another long header</th></tr>
<tr><td>text that wraps between its words to fit the box</td><td>more of it, wrapping too</td></tr></table></div>"""


def test_a_clean_page_passes(driver, tmp_path):
    page = _page(tmp_path, CLEAN.format(absolute=(tmp_path / "figure.png").as_uri()))
    result = audit(driver, page)
    assert result.problems() == []
    assert [img["naturalWidth"] for img in result.images] == [60, 60]
    assert result.viewport["innerWidth"] == WIDTH and result.title == "A page"


FAULTY = """<h1 id="top">Report {{ title }}</h1>
<img src="figure.png" alt="fine"> <img src="figures/gone.png" alt="broken">
<a href="tables/gone.csv">dangling</a> <a href="#nowhere">bad fragment</a> <a href="#top">good fragment</a>
<a href="https://example.org/x">web, not checked</a>
<table><tr><th>median loss</th></tr><tr><td>NaN</td></tr><tr><td> nan </td></tr><tr><td>0.25</td></tr></table>
<p>The smallest loss was NaN at depth 2.</p>
{% if studies %}<p>left over</p>{% endif %}
<details><summary>values</summary><pre>{"loss": NaN}</pre></details>
<div style="width: 300px; overflow-x: auto"><table><tr><th>a</th><th>b</th></tr>
<tr><td>an_unbreakable_word_far_wider_than_the_box</td><td>hidden</td></tr></table></div>
<table><tr><th>fine while closed</th></tr><tr><td><details><summary>open me</summary>
<pre>{WIDE_LINE}</pre></details></td></tr></table>
<script>console.error("boom from the page")</script>""".replace("{WIDE_LINE}", "x" * 400)


def test_every_kind_of_fault_is_detected(driver, tmp_path):
    result = audit(driver, _page(tmp_path, FAULTY, title="{{ title }}"))
    assert result.broken_images == ["figures/gone.png"]
    assert len(result.dangling_links) == 2  # the broken image and the CSV link, each with the path it looked for
    assert any(str(tmp_path / "figures" / "gone.png") in d for d in result.dangling_links)
    assert any('<a href="tables/gone.csv">' in d for d in result.dangling_links)
    assert result.missing_fragments == ['<a href="#nowhere">']
    assert result.nan_cells == ["'NaN' in section 'Report {{ title }}', row 'NaN', column 'median loss'",
                                "'nan' in section 'Report {{ title }}', row 'nan', column 'median loss'"]
    # Both cells, the sentence and the NaN hidden in the closed <details>, which a reader can open.
    assert len(result.nan_text) == 4 and any("at depth 2" in t for t in result.nan_text)
    residue = "\n".join(result.template_residue)
    for marker in ("'{{'", "'}}'", "'{%'", "'%}'"):
        assert marker in residue
    assert any("boom from the page" in e for e in result.console_errors)
    # the table scrolling in its box; once the details are opened, the table they widen and so the page
    # (widths in px depend on the fonts installed: only the box's, set by the page, is asserted)
    assert [re.sub(r" is \d+ px wide.*", "", line) for line in result.overflow] == [
        "table 2 (2 columns) in section 'Report {{ title }}'", "table 3 (1 columns) in section 'Report {{ title }}'",
        "the page"]
    assert "in a 300 px box" in result.overflow[0] and "once its details are opened" in result.overflow[1]
    problems = result.problems()
    assert len(problems) == sum(map(len, (result.broken_images, result.dangling_links, result.missing_fragments,
                                          result.nan_cells, result.nan_text, result.template_residue,
                                          result.console_errors, result.overflow)))


def test_an_untitled_page_fails(driver, tmp_path):
    result = audit(driver, _page(tmp_path, "<p>text</p>", title=""))
    assert result.problems() == ["the page has no title"]


@pytest.mark.integration
def test_report_renders_cleanly_at_1400_px(driver, request):
    # The DAG run is requested only once the browser is known to be there: as a session fixture it would
    # otherwise be set up first, and spend minutes before a skip.
    report = request.getfixturevalue("workdir") / "report" / "index.html"
    result = audit(driver, report)
    # The artifacts are written before any assertion, so a failing run still leaves its screenshot behind.
    out = artifacts_dir(REPO)
    png = save_full_page(driver, out / "report-1400px.png")
    sizes = save_figure_sizes(result, out / "report-1400px-figures.json")
    print(f"\nscreenshot of {report}: {png}\nfigure sizes: {sizes}")
    assert result.images, "the report shows no figure"
    problems = result.problems()
    assert not problems, f"{len(problems)} problem(s) in {report} (screenshot {png}):\n" + "\n".join(problems)
