"""report.html in a real headless Chromium: every figure loads, every table renders, and both
still hold after the report folder is moved (figure paths are relative).

The page is opened as a copy with a small script that, once the page has loaded, writes what
the browser sees (each image's naturalWidth, each table's rows and height) into the DOM;
``chromium --dump-dom`` prints it. Needs the OS package ``chromium``; without it the test is
skipped, unless CASTBENCH_REQUIRE_BROWSER=1 (as ``.ci/run`` sets) makes that a failure.
"""

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from report_inputs import ONE_CLASS, write_backbone_experiment

from castbench.report import write_report

BROWSER = next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)
PROBE = """<script>
window.addEventListener("load", () => {
  const seen = {
    images: [...document.images].map(i => ({src: i.getAttribute("src"), width: i.naturalWidth})),
    tables: [...document.querySelectorAll("table")].map(t => ({
      rows: t.rows.length, cells: t.querySelectorAll("td").length,
      height: t.getBoundingClientRect().height})),
  };
  const out = document.createElement("pre");
  out.id = "castbench-probe";
  out.hidden = true;  // kept out of the screenshot's layout
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def browser():
    if BROWSER is None:
        if os.environ.get("CASTBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("CASTBENCH_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return BROWSER


def open_in_browser(browser: str, report: Path, profile: Path, screenshot: Path | None = None):
    """What Chromium sees of ``report/report.html``: {"images": [...], "tables": [...]}."""
    page = report / "probe.html"
    page.write_text((report / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--window-size=1400,1800", "--dump-dom"]  # fmt: skip
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    try:
        dom = subprocess.run([*command, page.as_uri()], capture_output=True, text=True,
                             timeout=60, check=True).stdout  # fmt: skip
    finally:
        page.unlink()
    found = re.search(r'<pre id="castbench-probe"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading"
    return json.loads(html.unescape(found.group(1)))


def assert_renders(seen: dict, source: str) -> None:
    assert len(seen["images"]) == source.count("<img ") >= 3
    assert all(image["width"] > 0 for image in seen["images"]), seen["images"]
    assert len(seen["tables"]) == source.count("<table>") >= 3
    for table in seen["tables"]:
        assert table["rows"] >= 2 and table["cells"] > 0 and table["height"] > 20, table


def test_report_html_renders_in_chromium_and_survives_a_move(browser, tmp_path):
    strong = {0, 1}
    write_backbone_experiment(tmp_path / "backbone", {
        "Strong": [strong, strong], "Weak": [set(range(2, 12))] * 2, "Stuck": [ONE_CLASS] * 2,
    })  # fmt: skip
    report = tmp_path / "report"
    write_report([tmp_path / "backbone"], report)
    source = (report / "report.html").read_text()
    assert "Pairwise significance" in source

    screenshot = tmp_path / "report.png"
    assert_renders(open_in_browser(browser, report, tmp_path / "profile", screenshot), source)
    with Image.open(screenshot) as shot:
        assert shot.size == (1400, 1800)
        assert len(shot.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16

    moved = tmp_path / "elsewhere" / "moved-report"
    moved.parent.mkdir()
    shutil.move(report, moved)
    assert_renders(open_in_browser(browser, moved, tmp_path / "profile"), source)

    # the check can fail: a missing figure is seen as an image of width 0
    (moved / "figures" / "confusion.png").unlink()
    seen = open_in_browser(browser, moved, tmp_path / "profile")
    broken = [image["src"] for image in seen["images"] if image["width"] == 0]
    assert broken == ["figures/confusion.png"]
