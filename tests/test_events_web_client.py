"""Grouparoo's own browser client (@grouparoo/client-web 0.3.3 from npm, `make test-clients`) on a
page of one local origin, driven in headless Chromium against `workbench events serve` on another:
track, page, identify, more track, a wrong API key, a service killed and restarted mid-stream.
Every event arrives once, with its data, address and times, and ends in one merged profile."""

from __future__ import annotations

import functools
import http.server
import signal
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

import workbench as wb
from support.event_service import free_port, start_service, wait_for_current_profiles
from support.offline_browser import CHROMIUM
from workbench.events.api_keys import create_api_key
from workbench.events.settings import EventSettings

ROOT = Path(__file__).resolve().parents[1]
CLIENT_JS = ROOT / "test-clients" / "grouparoo-client-web-0.3.3" / "dist" / "grouparooWebClient.js"
PAGE = """<!doctype html><html><head><title>Shop home</title>
<script src="/grouparooWebClient.js"></script></head><body>shop</body></html>"""
PURCHASE_MS = 1_764_000_000_000  # the one event sent with an explicit time (track's third argument)

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    """The page and the client's bundle served from http://127.0.0.1:<port> (the site's origin)."""
    if not CLIENT_JS.exists():
        pytest.fail(
            f"{CLIENT_JS.relative_to(ROOT)} is missing: run `make test-clients` (npm pack @grouparoo/client-web@0.3.3)"
        )
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text(PAGE)
    (folder / "grouparooWebClient.js").write_bytes(CLIENT_JS.read_bytes())
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def wait_until(page, expression: str, seconds: float = 60) -> None:
    page.wait_for_function(expression, timeout=seconds * 1000)


def test_the_grouparoo_web_client_delivers_every_event_once(backend, site, tmp_path):
    from playwright.sync_api import sync_playwright

    url = backend.new_url("web_client")
    home = tmp_path / "home"
    home.mkdir()
    (home / "workbench.yml").write_text(f'events:\n  allowed_origins: ["{site}"]\n  resolve_every_seconds: 0.5\n')
    db = wb.connect(url, read_only=False)
    key = create_api_key(db, "Web API", EventSettings())
    db.dispose()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    service = start_service(url, port, home)
    started = datetime.utcnow()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(f"{site}/index.html?utm_source=google&utm_campaign=my-ad-campaign")
            page.evaluate(
                """([host, apiKey]) => {
                    window.errors = [];
                    window.client = new GrouparooWebClient({host, apiKey, retrySleep: 300, maxErrorCount: 1000,
                                                            errorHandlers: [(m) => window.errors.push(String(m))]});
                }""",
                [endpoint, key],
            )
            page.evaluate("client.page('home')")
            page.evaluate("client.track('add-to-cart', {sku: 'A1', qty: 2, gift: false})")
            wait_until(page, "client.queue.length === 0 && !client.processing")
            page.evaluate("client.identify('user-42', {plan: 'pro'})")
            page.evaluate(f"client.track('purchase', {{amount: 12.5}}, new Date({PURCHASE_MS}))")
            wait_until(page, "client.queue.length === 0 && !client.processing")
            assert page.evaluate("window.errors") == []

            page.evaluate(
                """([host]) => {
                    window.refusals = [];
                    window.intruder = new GrouparooWebClient({host, apiKey: 'wbk_not-a-key', maxErrorCount: 1,
                                                              errorHandlers: [(m) => window.refusals.push(String(m))]});
                    intruder.track('spam', {x: 1});
                }""",
                [endpoint],
            )
            wait_until(page, "window.refusals.length === 1")
            assert "apiKey is missing, unknown or revoked" in page.evaluate("window.refusals[0]")

            service.send_signal(signal.SIGKILL)  # the service dies; the client keeps tracking and retries
            service.wait()
            for step in range(3):
                page.evaluate(f"client.track('checkout-step', {{step: {step}}})")
            wait_until(page, "window.errors.length >= 1")  # a failed delivery, retried later
            service = start_service(url, port, home)
            wait_until(page, "client.queue.length === 0 && !client.processing")
            page.evaluate("client.track('thank-you')")
            wait_until(page, "client.queue.length === 0 && !client.processing")
            browser.close()
        wait_for_current_profiles(lambda: requests.get(f"{endpoint}/healthz", timeout=5).json())
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)
    finished = datetime.utcnow()

    db = wb.connect(url)
    events = db.sql(
        "SELECT id, type, producer_id, user_id, anonymous_id, ip_address, profile_id, occurred_at, created_at "
        "FROM grouparoo.events ORDER BY created_at, type",
        limit=None,
    )
    data = db.sql("SELECT event_id, key, value FROM grouparoo.event_data", limit=None)
    profiles = db.sql("SELECT id, user_id, anonymous_id FROM grouparoo.profiles", limit=None)
    db.dispose()

    assert sorted(events["type"]) == sorted(
        ["page", "add-to-cart", "identify", "purchase", "checkout-step", "checkout-step", "checkout-step", "thank-you"]
    )
    assert set(events["producer_id"]) == {"Web API"} and set(events["ip_address"]) == {"127.0.0.1"}
    anonymous = events["anonymous_id"].iloc[0]
    assert anonymous.startswith("aid-") and set(events["anonymous_id"]) == {anonymous}
    before_identify = events["type"].isin(["page", "add-to-cart"])
    assert events.loc[before_identify, "user_id"].isna().all()
    assert set(events.loc[~before_identify, "user_id"]) == {"user-42"}
    assert (events["created_at"] >= started - timedelta(seconds=1)).all() and (events["created_at"] <= finished).all()
    purchase = events[events["type"] == "purchase"].iloc[0]
    assert purchase["occurred_at"] == datetime(1970, 1, 1) + timedelta(milliseconds=PURCHASE_MS)
    others = events[events["type"] != "purchase"]
    # the browser stamps the others (same clock as this machine): before their receipt, within the test
    assert (others["occurred_at"] >= started - timedelta(seconds=1)).all()
    assert (others["occurred_at"] <= others["created_at"] + timedelta(seconds=1)).all()

    rows = {
        t: dict(data[data["event_id"] == i][["key", "value"]].itertuples(index=False))
        for i, t in zip(events["id"], events["type"])
    }
    session = rows["page"]["sessionId"]
    assert session.startswith("sid-") and all(r["sessionId"] == session for r in rows.values())
    assert rows["page"] == {
        "category": "home",
        "title": "Shop home",
        "href": f"{site}/index.html?utm_source=google&utm_campaign=my-ad-campaign",
        "pathname": "/index.html",
        "referrer": "",
        "utm_source": "google",
        "utm_campaign": "my-ad-campaign",
        "sessionId": session,
    }
    assert rows["add-to-cart"] == {"sku": "A1", "qty": "2", "gift": "false", "sessionId": session}
    assert rows["identify"] == {"plan": "pro", "sessionId": session}
    assert rows["purchase"] == {"amount": "12.5", "sessionId": session}
    steps = sorted(data[data["key"] == "step"]["value"])
    assert steps == ["0", "1", "2"]

    assert len(profiles) == 1 and profiles["user_id"].tolist() == ["user-42"]
    assert set(events["profile_id"]) == {profiles["id"].iloc[0]}
