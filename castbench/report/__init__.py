"""Reports: Markdown and HTML pages with tables and figures built from any mix of experiment
folders, timing results folders, training runs and the seed's reference numbers."""

from __future__ import annotations

from pathlib import Path

from castbench.report.load import Inputs, discover

__all__ = ["Inputs", "discover", "write_report"]


def write_report(paths: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Read ``paths``, write ``report.md``, ``report.html`` and ``figures/*.png`` into ``out``."""
    from castbench.files import atomic_write_text
    from castbench.report.page import build_blocks, to_html, to_markdown

    inputs = discover(list(paths))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(inputs, out_dir / "figures")
    markdown = out_dir / "report.md"
    page = out_dir / "report.html"
    atomic_write_text(markdown, to_markdown(blocks))
    atomic_write_text(page, to_html(blocks))
    return {
        "markdown": markdown,
        "html": page,
        "figures": out_dir / "figures",
    }
