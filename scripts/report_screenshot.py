"""Open a Snakemake report in headless Chromium: a PNG of its first screen, its rendered DOM,
or the boxes of what the first screen shows.

    .venv/bin/python scripts/report_screenshot.py results/report.html --png report.png
    .venv/bin/python scripts/report_screenshot.py results/report.html --dom dom.html
    .venv/bin/python scripts/report_screenshot.py results/report.html --measure 1400x900 1280x720

Debian: `apt-get install chromium`. The report renders its pages with JavaScript, so a plain
HTML parser does not see what a reader sees; the DOM dump is what the browser built. `--dump-dom`
has no layout boxes, so `measure` runs a small script inside a copy of the page that writes them
(viewport, the content box's scroll, the title, the not-science banner, the verdict table, any
element that sticks out past the page's right edge outside a scroll box of its own) into the DOM.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def chromium(report: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found on PATH (tried {', '.join(BROWSERS)})")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=10000", *args, report.resolve().as_uri()]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


def rendered_dom(report: Path) -> str:
    """The DOM after the report's scripts ran (what the test asserts on)."""
    return chromium(report, "--dump-dom").stdout


def screenshot(report: Path, png: Path, width: int = 1400, height: int = 900) -> Path:
    """A PNG of what a reader first sees in a window of ``width`` x ``height``."""
    chromium(report, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    return png


#: Run inside the page: waits until React has rendered the verdict table, then writes the boxes
#: (viewport coordinates at scroll 0) as JSON into <pre id="dv2a-measure">.
MEASURE_JS = r"""
(function () {
  function box(el) {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  }
  function name(el) {
    const cls = typeof el.className === "string" && el.className ? "." + el.className.trim()
      .split(/\s+/).join(".") : "";
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls;
  }
  function ownScroll(el, stop) {  // an ancestor below `stop` that scrolls or clips sideways
    for (let a = el.parentElement; a && a !== stop; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  }
  function measure() {
    const table = document.querySelector("table.verdicts");
    const main = document.querySelector("#app div.grow.h-screen");
    if (!table || !main) return false;
    const edge = Math.min(window.innerWidth, main.getBoundingClientRect().right);
    const wide = [];
    for (const el of main.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > edge + 1 && !ownScroll(el, main)) wide.push(name(el));
    }
    const out = {
      viewport: [window.innerWidth, window.innerHeight],
      scroll: [main.scrollLeft, main.scrollTop, window.scrollX, window.scrollY],
      content: box(main),
      content_scroll_width: main.scrollWidth, content_client_width: main.clientWidth,
      page_scroll_width: document.documentElement.scrollWidth,
      title: box(document.querySelector("#app .prose h1")),
      title_text: (document.querySelector("#app .prose h1") || {}).textContent || null,
      not_science: box(document.getElementById("not-science")),
      verdicts: box(table),
      wider_than_page: wide.slice(0, 20), n_wider_than_page: wide.length,
    };
    const pre = document.createElement("pre");
    pre.id = "dv2a-measure";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
    return true;
  }
  const timer = setInterval(function () {  // React renders, then Tailwind styles it
    if (document.querySelector("table.verdicts")) {
      clearInterval(timer);
      setTimeout(measure, 1000);
    }
  }, 100);
})();
"""


def measure(report: Path, width: int = 1400, height: int = 900) -> dict:
    """What the first screen of a ``width`` x ``height`` window shows: boxes in viewport
    pixels at scroll 0 (``verdicts``, ``title``, ``not_science``: top/bottom/left/right or
    None), the scroll offsets, and ``wider_than_page``: elements past the right edge that
    no scroll box of their own holds."""
    page = report.read_text(encoding="utf-8")
    cut = page.rindex("</body>")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(f"{page[:cut]}<script>{MEASURE_JS}</script>{page[cut:]}", "utf-8")
        dom = chromium(copy, "--dump-dom", f"--window-size={width},{height}").stdout
    found = re.search(r'<pre id="dv2a-measure">(.*?)</pre>', dom, re.S)
    if found is None:
        raise RuntimeError(f"{report}: no verdict table rendered, nothing measured")
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<"))


def _size(text: str) -> tuple[int, int]:
    w, h = (int(x) for x in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path)
    p.add_argument("--png", type=Path, help="write a screenshot of the first page here")
    p.add_argument("--dom", type=Path, help="write the rendered DOM here")
    p.add_argument("--size", default="1400x900", help="window WIDTHxHEIGHT for --png")
    p.add_argument("--measure", nargs="+", metavar="WxH", help="print the first screen's boxes")
    args = p.parse_args(argv)
    if not args.report.is_file():
        print(f"report_screenshot: error: {args.report}: no such file", file=sys.stderr)
        return 2
    if args.png:
        print(screenshot(args.report, args.png, *_size(args.size)))
    for size in args.measure or []:
        print(json.dumps({"window": size, **measure(args.report, *_size(size))}))
    if args.dom:
        args.dom.write_text(rendered_dom(args.report), encoding="utf-8")
        print(args.dom)
    return 0


if __name__ == "__main__":
    sys.exit(main())
