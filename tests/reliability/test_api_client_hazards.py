"""The study API client against hostile local HTTP servers started here (issue 17, item 10): a server
that drips its answer (headers, or a body with or without a length), one that always announces
another page or a huge answer, one that records the paths it is asked for; plus a ``base_url`` with
``user:password@`` and tokens with control characters. Each must end within the stated bound, with
one sentence, without reaching for another route and without showing a secret."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import pytest

from workbench.errors import WorkbenchError
from workbench.redaction import redact
from workbench.studies import ytdpnl
from workbench.studies.ytdpnl.api_client import MAX_PAGES, ApiError

pytestmark = pytest.mark.reliability

TOKEN = "c4nary-api-token-91f2"
PASSWORD = "c4nary-url-pw-7e1d"
DRIP_BYTES = 200  # one byte every DRIP_PAUSE_S: 10 s for a whole answer
DRIP_PAUSE_S = 0.05
DEADLINE_S = 1.0


class Recorder:
    """A local HTTP server: ``answer(handler)`` replies to each GET; ``paths`` and ``tokens`` record what arrived."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]):
        self.paths: list[str] = []
        self.tokens: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                recorder.paths.append(self.path)
                recorder.tokens.append(self.headers.get("authorization"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@contextlib.contextmanager
def serving(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[Recorder]:
    recorder = Recorder(answer)
    try:
        yield recorder
    finally:
        recorder.httpd.shutdown()
        recorder.httpd.server_close()


def send_json(handler: BaseHTTPRequestHandler, body: object, status: int = 200) -> int:
    """Send ``body`` as a JSON answer with its length; the number of body bytes sent."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
    return len(data)


def drip(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        time.sleep(DRIP_PAUSE_S)


def drip_headers(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    drip(handler, b"x-drip: " + b"a" * DRIP_BYTES + b"\r\n\r\n")


def drip_body(handler: BaseHTTPRequestHandler, with_length: bool) -> None:
    body = json.dumps({"kind": "Success", "value": {"padding": "a" * DRIP_BYTES}}).encode()
    handler.send_response(200)
    if with_length:
        handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    drip(handler, body)


def test_a_dripping_answer_stops_at_the_deadline(ledger):
    variants = {
        "headers": drip_headers,
        "body with a length": lambda h: drip_body(h, with_length=True),
        "body read to the close": lambda h: drip_body(h, with_length=False),
    }
    elapsed = {}
    for label, answer in variants.items():
        with serving(answer) as server:
            client = ytdpnl.ApiClient(server.url, TOKEN, timeout_s=DEADLINE_S)
            start = time.monotonic()
            with pytest.raises(ApiError) as caught:
                client.participants_report(force=True)
            elapsed[label] = time.monotonic() - start
        message = str(caught.value)
        assert message == (
            "The study API did not answer GET /api/participants-report within 1 s (connection, headers and whole "
            "body): retry later or raise timeout_s."
        ), message
        assert DEADLINE_S <= elapsed[label] < DEADLINE_S + 0.3, (label, elapsed[label])
    unbounded = DRIP_BYTES * DRIP_PAUSE_S
    ledger(
        "Study API client",
        f"servers dripping one byte every {DRIP_PAUSE_S:g} s (≥ {unbounded:g} s per answer) in the headers, in a body "
        f"with a length and in a body read to the close, against timeout_s={DEADLINE_S:g}",
        "each refused with one sentence naming the deadline after "
        + ", ".join(f"{seconds:.2f} s ({label})" for label, seconds in elapsed.items()),
    )


def endless_pages(handler: BaseHTTPRequestHandler) -> None:
    page = int(handler.path.rsplit("/", 1)[1])
    row = {"id": page, "code": f"p{page}", "arm": "control", "phase": 0, "createdAt": "2023-02-06T10:00:00.000Z"}
    send_json(
        handler, {"kind": "Success", "value": {"results": [row], "page": page, "pageSize": 1, "pageCount": page + 2}}
    )


def huge_page_count(handler: BaseHTTPRequestHandler) -> None:
    send_json(handler, {"kind": "Success", "value": {"results": [], "page": 0, "pageSize": 15, "pageCount": 10**9}})


def test_paging_and_answer_sizes_are_bounded(ledger):
    start = time.monotonic()
    with serving(endless_pages) as server, pytest.raises(ApiError) as endless:
        ytdpnl.ApiClient(server.url, TOKEN).participants()
    endless_seconds = time.monotonic() - start
    assert str(endless.value) == (
        f"The study API announces {MAX_PAGES + 1:,} pages of participants (at page {MAX_PAGES - 1}), more than "
        f"max_pages={MAX_PAGES:,}: raise max_pages if the study is that large, otherwise check the server."
    )
    assert len(server.paths) == MAX_PAGES and server.paths[-1] == f"/api/participants/{MAX_PAGES - 1}"

    with serving(huge_page_count) as huge, pytest.raises(ApiError, match=r"announces 1,000,000,000 pages"):
        ytdpnl.ApiClient(huge.url, TOKEN).participants()
    assert len(huge.paths) == 1

    sizes: list[int] = []

    def fat_pages(handler: BaseHTTPRequestHandler) -> None:  # 300 kB a page, 100 pages announced
        page = int(handler.path.rsplit("/", 1)[1])
        value = {"results": [], "page": page, "pageSize": 15, "pageCount": 100, "padding": "a" * 300_000}
        sizes.append(send_json(handler, {"kind": "Success", "value": value}))

    with serving(fat_pages) as fat, pytest.raises(ApiError) as too_big:
        ytdpnl.ApiClient(fat.url, TOKEN, max_bytes=1_000_000).participants()
    assert str(too_big.value) == (
        "The study API's answers passed max_bytes=1,000,000 bytes at GET /api/participants/3: raise max_bytes if "
        "the study is that large, otherwise check the server."
    )
    assert len(fat.paths) == 4 and sum(sizes[:3]) <= 1_000_000 < sum(sizes)
    ledger(
        "Study API client",
        "a server that always announces one more page (the review's probe made 2,002 requests), one announcing "
        "10^9 pages, and 300 kB pages against max_bytes=1,000,000",
        f"stopped after {len(server.paths):,} requests (max_pages={MAX_PAGES:,}) in {endless_seconds:.1f} s, after "
        f"{len(huge.paths)} request for 10^9 pages, and at the 4th page ({sum(sizes[:3]):,} bytes read before it), "
        "each with one sentence naming the bound to raise",
    )


def any_success(handler: BaseHTTPRequestHandler) -> None:
    value = [] if handler.path.startswith("/api/event-overviews/") else {"sessionCount": 0, "sessions": []}
    send_json(handler, {"kind": "Success", "value": value})


ENCODED = ["../participants-report", "a/b", "x?y=1", "x#frag", "%2e%2e", "..%2F", "a b", "ü-code", "./", "/", "..."]
REFUSED = ["..", ".", "", "a\nb", "nul\x00", "tab\t"]


def test_codes_and_session_ids_cannot_change_the_route(ledger):
    with serving(any_success) as server:
        client = ytdpnl.ApiClient(server.url, TOKEN)
        for value in ENCODED:
            client.participant_summary(value)
            client.session_events(value)
        for value in REFUSED:
            for method, name in ((client.participant_summary, "code"), (client.session_events, "session_uuid")):
                with pytest.raises(WorkbenchError) as caught:
                    method(value)
                assert str(caught.value).startswith(f"{name}=") and "cannot be a participant code or session id" in str(
                    caught.value
                )
        ytdpnl.ApiClient(server.url + "/study/", TOKEN).participant_summary("a/b")  # a server under a path prefix
    assert server.paths.pop() == "/study/api/participant/a%2Fb"
    expected = [
        f"{route}{quote(v, safe='')}" for v in ENCODED for route in ("/api/participant/", "/api/event-overviews/")
    ]
    assert server.paths == expected  # nothing else was requested, the refused values not at all
    received = [path.split("/") for path in server.paths]
    assert all(len(parts) == 4 and parts[:3] == ["", "api", parts[2]] for parts in received)
    assert [unquote(parts[3]) for parts in received] == [v for v in ENCODED for _ in range(2)]
    ledger(
        "Study API client",
        f"{len(ENCODED)} codes and session ids that could move a path (../participants-report, a/b, x?y=1, x#frag, "
        f"%2e%2e, …) through participant_summary and session_events; {len(REFUSED)} more ('..', '.', '', newline, "
        "NUL, tab)",
        f"the server received exactly {len(server.paths)} requests, each on its own route with the value as one "
        f"segment that decodes back to it (and under a base_url path prefix); the {len(REFUSED)} others refused with "
        "one sentence before any request",
    )


def test_credentials_in_base_url_are_refused_and_never_shown(ledger, caplog):
    caplog.set_level(logging.DEBUG)
    with serving(any_success) as server:
        host = server.url.removeprefix("http://")
        urls = [
            f"http://alice:{PASSWORD}@{host}",
            f"http://{PASSWORD}@{host}",
            f"https://alice:{PASSWORD}@{host}/study",
            f"ftp://alice:{PASSWORD}@{host}",
            f"alice:{PASSWORD}@{host}",
        ]
        texts = []
        for url in urls:
            with pytest.raises(WorkbenchError) as caught:
                ytdpnl.ApiClient(url, TOKEN)
            assert str(caught.value) == (
                "base_url carries a user name or password (user:password@ before the host): remove it; the study API "
                "authenticates with the token alone."
            )
            texts += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
        texts += [record.getMessage() for record in caplog.records]
        assert redact(f"logged {PASSWORD}") == "logged ***"  # registered: a redacting log filter masks it too
        client = ytdpnl.ApiClient(server.url + "/", TOKEN)
        assert repr(client) == f"<ytdpnl.ApiClient {server.url} (token hidden)>"
    assert not [t for t in texts if PASSWORD in t] and server.paths == []
    ledger(
        "Study API client",
        f"{len(urls)} base_urls carrying user:password@ (http, https with a path, ftp, no scheme, password only)",
        f"each refused with one sentence before any request (the server saw {len(server.paths)}); the password in "
        f"none of {len(texts)} texts (str, repr, traceback, log records) and masked by workbench.redaction",
    )


BAD_TOKENS = {
    f"{TOKEN}\n": "a line break",
    f"{TOKEN}\r\nx-injected: 1": "a carriage return",
    f"{TOKEN}\x00": "a control character",
    f"\t{TOKEN}": "a control character",
    f"{TOKEN} ": "a space",
    f"{TOKEN}\x7f": "a control character",
    f"{TOKEN}é": "a non-ASCII character",
}


def test_a_token_with_control_characters_is_refused_up_front(ledger):
    with serving(any_success) as server:
        for token, kind in BAD_TOKENS.items():
            position = next(i for i, c in enumerate(token, start=1) if not "!" <= c <= "~")
            with pytest.raises(WorkbenchError) as caught:
                ytdpnl.ApiClient(server.url, token)
            message = str(caught.value)
            assert message == (
                f"token contains {kind} (character {position} of {len(token)}): copy the API token again from the "
                "admin panel; it is one line of visible ASCII characters."
            ), message
            assert TOKEN not in repr(caught.value) and "Cannot reach" not in message
        ytdpnl.ApiClient(server.url, TOKEN).participant_summary("p1")
    assert server.tokens == [TOKEN]  # only the good token was ever sent
    ledger(
        "Study API client",
        f"{len(BAD_TOKENS)} tokens with a newline, CR LF plus an injected header, NUL, tab, space, DEL, non-ASCII",
        "each refused at ApiClient() with one sentence naming the character's kind and position, never the token "
        f"and never 'Cannot reach'; the server received {len(server.tokens)} request, with the good token",
    )
