"""Open a report file in Debian's headless Chromium with the network cut, as a reader offline would,
and wait for a local server (Voila) a browser test is about to open."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"  # Debian's package: Playwright never downloads a browser here


@contextmanager
def offline_page(html: Path) -> Iterator[tuple[object, list[str]]]:
    """A page showing ``html`` in an offline context; every request that is not a local file is
    refused and its URL collected in the list yielded beside the page."""
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True, viewport={"width": 1280, "height": 900}).new_page()
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith("file:")
                    else (refused.append(route.request.url), route.abort())
                ),
            )
            page.goto(html.as_uri())
            yield page, refused
        finally:
            browser.close()


def wait_for_port(port: int, seconds: float = 90) -> None:
    """Return once something listens on 127.0.0.1:``port``; fail after ``seconds``."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"nothing listened on port {port} within {seconds} s")
