"""Screenshots of a report's figures, for the pages in docs/: headless Chromium through Playwright.

    .venv/bin/python scripts/screenshot.py results/degradation/report.html \
        depth-sweep=docs/degradation.png depth=docs/degradation-depth.png

Each ``ID=FILE`` saves the figure with that element id (see nas.report.SECTIONS).
Needs Chromium (scripts/install-test-packages.sh) and the test extra's playwright.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not all("=" in a for a in argv[1:]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                    "google-chrome"))), None)
    if chromium is None:
        print("screenshot: Chromium not found; run scripts/install-test-packages.sh",
              file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    report = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory() as home, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS,
                                    env={**os.environ, "HOME": home})
        page = browser.new_page(viewport={"width": 1000, "height": 800}, device_scale_factor=1)
        page.goto(report.as_uri(), wait_until="load")
        # the page unpacks plotly.js first, then draws; it says when it is done
        page.wait_for_function("document.body.dataset.figures !== undefined")
        if page.evaluate("document.body.dataset.figures") != "drawn":
            print(f"screenshot: {page.locator('#report-status').inner_text()}", file=sys.stderr)
            return 1
        for pair in argv[1:]:
            element_id, out = pair.split("=", 1)
            page.locator(f"#{element_id}").screenshot(path=out)
            print(f"{element_id} -> {out}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
