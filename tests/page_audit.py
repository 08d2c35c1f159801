"""Audit an HTML page in headless Chromium: images, local links, NaN cells, template residue, console errors, and
tables that do not fit (wider than their box or the window, with every <details> closed and opened).

Used by tests/test_browser.py on the generated report and on hand-made pages that test the checks themselves.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

if TYPE_CHECKING:  # selenium is imported only where it is known to be installed
    from selenium.webdriver.remote.webdriver import WebDriver

WIDTH = 1400  # CSS px: the width at which the report must read well
INSTALL_HINT = "apt-get install chromium chromium-driver"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TEMPLATE_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

# Without the background-networking flags Chromium keeps opening connections that a closed network refuses;
# a fresh --user-data-dir keeps every run independent of any profile on the machine.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},1000")

# One pass over the DOM in the page itself, so that what is checked is what the browser rendered.
_COLLECT_JS = """
const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE']);
const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
const texts = [];
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  if (!skip.has(n.parentElement && n.parentElement.tagName)) texts.push(n.nodeValue);
}
const links = [];
for (const el of document.querySelectorAll('[href], [src]')) {
  for (const attr of ['href', 'src']) {
    const raw = el.getAttribute(attr);
    if (raw === null) continue;
    links.push({tag: el.tagName.toLowerCase(), attr: attr, raw: raw, resolved: new URL(raw, document.baseURI).href});
  }
}
const attributes = [];
for (const el of document.querySelectorAll('*')) {
  for (const a of el.attributes) attributes.push(el.tagName.toLowerCase() + '[' + a.name + ']=' + a.value);
}
return {
  title: document.title,
  text: texts.join(' '),
  attributes: attributes,
  cells: Array.from(document.querySelectorAll('td, th')).map(c => {
    // Where the cell is, for the failure message: the section heading, the row's first cell, the column header.
    let h = c.closest('table');
    while (h && !/^H[1-6]$/.test(h.tagName)) h = h.previousElementSibling || h.parentElement;
    const table = c.closest('table');
    const header = table && table.rows[0] && table.rows[0].cells[c.cellIndex];
    return {text: c.innerText.trim(), section: h ? h.innerText.trim() : '',
            row: Array.from(c.parentElement.cells).slice(0, Math.min(4, Math.max(1, c.cellIndex)))
                   .map(x => x.innerText.trim()).join(' | '),
            column: header ? header.innerText.trim() : ''};
  }),
  ids: Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name')),
  links: links,
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute('src'), complete: i.complete, naturalWidth: i.naturalWidth,
    naturalHeight: i.naturalHeight, clientWidth: i.clientWidth, clientHeight: i.clientHeight,
    pageX: Math.round(i.getBoundingClientRect().left + window.scrollX),
    pageY: Math.round(i.getBoundingClientRect().top + window.scrollY)})),
  viewport: {innerWidth: window.innerWidth, clientWidth: document.documentElement.clientWidth,
             devicePixelRatio: window.devicePixelRatio,
             scrollHeight: Math.max(document.documentElement.scrollHeight,
                                    document.body ? document.body.scrollHeight : 0)},
};
"""


# Every table's box against its container's content box and the window, and the page's width against the window,
# first with every <details> closed, then with all opened (a reader may open them); their state is restored after.
_FIT_JS = """
const details = Array.from(document.querySelectorAll('details'));
const was = details.map(d => d.open);
const seen = [];
for (const open of [false, true]) {
  details.forEach(d => { d.open = open; });
  const window_width = document.documentElement.clientWidth;
  Array.from(document.querySelectorAll('table')).forEach((t, index) => {
    const c = t.parentElement, style = getComputedStyle(c), box = c.getBoundingClientRect();
    const r = t.getBoundingClientRect();
    let h = t;
    while (h && !/^H[1-6]$/.test(h.tagName)) h = h.previousElementSibling || h.parentElement;
    seen.push({index: index, open: open, section: h ? h.innerText.trim() : '',
               columns: t.rows[0] ? t.rows[0].cells.length : 0, left: r.left, right: r.right, width: r.width,
               box_left: box.left + c.clientLeft + parseFloat(style.paddingLeft),
               box_right: box.left + c.clientLeft + c.clientWidth - parseFloat(style.paddingRight),
               window: window_width});
  });
  seen.push({page: true, open: open, width: document.documentElement.scrollWidth, window: window_width});
}
details.forEach((d, i) => { d.open = was[i]; });
return seen;
"""
SLACK = 0.5  # CSS px: sub-pixel rounding of a box that fits exactly

@dataclass
class PageAudit:
    """What the checks found on one page; `problems()` lists every failure in words."""

    url: str
    title: str
    broken_images: list[str] = field(default_factory=list)
    dangling_links: list[str] = field(default_factory=list)
    missing_fragments: list[str] = field(default_factory=list)
    nan_cells: list[str] = field(default_factory=list)
    nan_text: list[str] = field(default_factory=list)
    template_residue: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    viewport: dict = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Every failed check, one line each; empty when the page passes."""
        found = [] if self.title.strip() else ["the page has no title"]
        for name in ("broken_images", "dangling_links", "missing_fragments", "nan_cells", "nan_text",
                     "template_residue", "console_errors", "overflow"):
            found += [f"{name.replace('_', ' ')}: {item}" for item in getattr(self, name)]
        return found


def missing_browser() -> str | None:
    """What is missing for a browser test here (selenium, chromium, chromedriver) and how to install it, or None."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium: pip install -c constraints.txt -e '.[dev]'")
    debian = [name for name, found in (("chromium", browser_binary()), ("chromedriver", shutil.which("chromedriver")))
              if found is None]
    if debian:
        missing.append(f"{'/'.join(debian)} not installed: {INSTALL_HINT}")
    return "; ".join(missing) or None


def browser_binary() -> str | None:
    """Path of the first Chromium-family browser on PATH."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium driven by chromedriver, with its console log readable, in a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_binary()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="globalmin-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        # An explicit driver path: Selenium then never tries to download one.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
        try:
            # Exact layout width and one device pixel per CSS pixel, whatever the window manager does.
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
            yield driver
        finally:
            driver.quit()


def _local_path(url: str) -> Path:
    return Path(url2pathname(unquote(urlparse(url).path)))


def audit(driver: WebDriver, page: Path) -> PageAudit:
    """Load `page` from disk and run every check on what the browser rendered."""
    url = page.resolve().as_uri()
    driver.get_log("browser")  # drop what an earlier page left in the log
    driver.get(url)  # returns after the load event, so every image has either loaded or failed
    seen = driver.execute_script(_COLLECT_JS)
    result = PageAudit(url=url, title=seen["title"], images=seen["images"], viewport=seen["viewport"])
    for img in seen["images"]:
        if not img["complete"] or img["naturalWidth"] == 0:
            result.broken_images.append(img["src"])
    ids = set(seen["ids"])
    for link in seen["links"]:
        target = urlparse(link["resolved"])
        where = f"<{link['tag']} {link['attr']}=\"{link['raw']}\">"
        if target.scheme != "file":
            continue  # http(s), mailto, data: are outside the page's folder and not ours to check offline
        if link["raw"].startswith("#"):
            if target.fragment and unquote(target.fragment) not in ids:
                result.missing_fragments.append(where)
        elif not _local_path(link["resolved"]).exists():
            result.dangling_links.append(f"{where} -> {_local_path(link['resolved'])}")
    result.nan_cells = [f"{c['text']!r} in section {c['section']!r}, row {c['row']!r}, column {c['column']!r}"
                        for c in seen["cells"] if c["text"].lower() == "nan"]
    result.nan_text = [_context(seen["text"], m.start()) for m in NAN.finditer(seen["text"])]
    for marker in TEMPLATE_MARKERS:
        for source in [seen["title"], seen["text"]]:
            at = source.find(marker)
            if at >= 0:
                result.template_residue.append(f"{marker!r} in text: {_context(source, at)}")
        result.template_residue += [f"{marker!r} in attribute {a}" for a in seen["attributes"] if marker in a]
    result.console_errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    result.overflow = overflow(driver.execute_script(_FIT_JS))
    return result


def overflow(seen: list[dict]) -> list[str]:
    """Each table that runs past its container's content box (so the container scrolls it sideways or it spills
    out) or past the window, and a page wider than the window: one line each, each named once (closed details
    first)."""
    found, named = [], set()
    for item in seen:
        where = " once its details are opened" if item["open"] else ""
        if item.get("page"):
            if item["width"] > item["window"] + SLACK and "page" not in named:
                named.add("page")
                found.append(f"the page is {item['width']} px wide in a {item['window']} px window{where}")
            continue
        fits = (item["left"] >= item["box_left"] - SLACK and item["right"] <= item["box_right"] + SLACK
                and item["left"] >= -SLACK and item["right"] <= item["window"] + SLACK)
        if not fits and item["index"] not in named:
            named.add(item["index"])
            found.append(f"table {item['index'] + 1} ({item['columns']} columns) in section {item['section']!r} is "
                         f"{item['width']:.0f} px wide in a {item['box_right'] - item['box_left']:.0f} px box "
                         f"(window {item['window']} px){where}: its last columns are cut off or scroll sideways")
    return found


def _context(text: str, at: int, width: int = 40) -> str:
    return " ".join(text[max(0, at - width):at + width].split())


def save_full_page(driver: WebDriver, png: Path, height: int | None = None) -> Path:
    """Screenshot of the whole page at the emulated width (beyond the viewport), or of its top `height` CSS px,
    written to `png`."""
    height = height or driver.execute_script(
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}})
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    return png


def save_figure_sizes(result: PageAudit, path: Path) -> Path:
    """JSON of every image's natural and displayed size (CSS px) and the scale between them."""
    figures = [{**img, "displayed_scale": round(img["clientWidth"] / img["naturalWidth"], 3)
                if img["naturalWidth"] else None} for img in result.images]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": result.url, "viewport": result.viewport, "figures": figures}, indent=1) + "\n")
    return path


def artifacts_dir(repo: Path) -> Path:
    """Where test artifacts go: $GLOBALMIN_TEST_ARTIFACTS, else test-artifacts/ at the repository root."""
    return Path(os.environ.get("GLOBALMIN_TEST_ARTIFACTS") or repo / "test-artifacts")


def main(argv: list[str] | None = None) -> int:
    """`python tests/page_audit.py REPORT PNG [--height PX]`: audit a report at 1,400 px and save its screenshot
    (docs/report.png is the default run's, its top 1,100 px); exits 1 on any problem the browser test would fail."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--height", type=int, default=None, help="CSS px from the top (default: the whole page)")
    args = parser.parse_args(argv)
    if (missing := missing_browser()) is not None:
        raise SystemExit(missing)
    with chromium() as driver:
        problems = audit(driver, args.report).problems()
        print(f"wrote {save_full_page(driver, args.png, args.height)}")
    print("\n".join(problems) or "no problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
