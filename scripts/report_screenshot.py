"""Open a Snakemake report in headless Chromium: a PNG of its first page, or its rendered DOM.

    .venv/bin/python scripts/report_screenshot.py results/report.html --png report.png
    .venv/bin/python scripts/report_screenshot.py results/report.html --dom dom.html

Debian: `apt-get install chromium`. The report renders its pages with JavaScript, so a plain
HTML parser does not see what a reader sees; the DOM dump is what the browser built.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
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


def screenshot(report: Path, png: Path, width: int = 1400, height: int = 3000) -> Path:
    chromium(report, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path)
    p.add_argument("--png", type=Path, help="write a screenshot of the first page here")
    p.add_argument("--dom", type=Path, help="write the rendered DOM here")
    p.add_argument("--size", default="1400x3000", help="window WIDTHxHEIGHT for --png")
    args = p.parse_args(argv)
    if not args.report.is_file():
        print(f"report_screenshot: error: {args.report}: no such file", file=sys.stderr)
        return 2
    if args.png:
        w, h = (int(x) for x in args.size.split("x"))
        print(screenshot(args.report, args.png, w, h))
    if args.dom:
        args.dom.write_text(rendered_dom(args.report), encoding="utf-8")
        print(args.dom)
    return 0


if __name__ == "__main__":
    sys.exit(main())
