"""The pictures in the docs exist, are screenshots the browser tests take (tests/screenshots.py,
regenerated with WORKBENCH_UPDATE_SCREENSHOTS=1, never hand-made) and stay small."""

from __future__ import annotations

import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
IMAGES = ROOT / "docs" / "images"
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def referenced_images() -> dict[Path, list[str]]:
    """Each image file the docs show -> the docs showing it (Markdown image syntax)."""
    found: dict[Path, list[str]] = {}
    for doc in DOCS:
        for target in IMAGE.findall(doc.read_text(encoding="utf-8")):
            if not re.match(r"^[a-z]+:", target):
                found.setdefault((doc.parent / target).resolve(), []).append(doc.name)
    return found


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk (PNG specification, section 11.2.2)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path.name} is not a PNG file"
    return struct.unpack(">II", head[16:24])


def test_every_image_the_docs_show_exists():
    images = referenced_images()
    assert images, "the docs show no image: getting-started.md should show the report and the dashboard"
    missing = {
        str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p): docs
        for p, docs in images.items()
        if not p.is_file()
    }
    assert not missing, (
        f"images shown but missing (run the browser tests with WORKBENCH_UPDATE_SCREENSHOTS=1): {missing}"
    )


def test_docs_images_are_test_screenshots_and_small():
    """Every PNG in docs/images is shown by a doc, named by a save_screenshot call of a test, one
    screen of at most 1280×800 pixels and under 300 kB."""
    calls = set()
    for test in (ROOT / "tests").glob("test_*.py"):
        calls |= set(re.findall(r"save_screenshot\(\s*page\s*,\s*\"([\w-]+)\"", test.read_text(encoding="utf-8")))
    shown = referenced_images()
    pngs = sorted(IMAGES.glob("*.png"))
    assert {p.stem for p in pngs} >= {"report-summary", "report-results", "dashboard"}
    for png in pngs:
        assert png.resolve() in shown, f"docs/images/{png.name} is shown by no doc: remove it or show it"
        assert png.stem in calls, (
            f"docs/images/{png.name} is not taken by any test's save_screenshot(page, {png.stem!r})"
        )
        width, height = png_size(png)
        assert width <= 1280 and height <= 800, f"{png.name} is {width}×{height}"
        assert png.stat().st_size < 300_000, f"{png.name} is {png.stat().st_size:,} bytes"
