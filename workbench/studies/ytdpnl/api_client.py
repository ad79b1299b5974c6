"""The study server's HTTP API as a data source, returning the same frames as the SQL path.

The token goes in the ``authorization`` header as is (no ``Bearer``); answers are
``{"kind": "Success", "value": …}`` or ``{"kind": "Failure", "message": …}``. The costly
participants report is fetched at most once per hour per server and token unless forced. The
token is registered with :mod:`workbench.redaction`, so it never appears in a repr or a message.

Limits, each refused with one sentence: every request (connection, headers and whole body) ends
within ``timeout_s``; one method call reads at most ``max_pages`` pages (1,000: 15,000 participants
at the server's 15 a page) and ``max_bytes`` bytes (200 MB). Codes and session ids travel as one
percent-encoded path segment (``.`` and ``..`` are refused), so they cannot change the route. The
client connects directly (no proxy from the environment).

Shapes assumed for the server's JSON (camelCase, times as ISO-8601 UTC strings, pages from 0):
``GET /api/participants/{page}`` → ``{results: [participant], page, pageSize, pageCount}``;
``GET /api/participant/{code}`` → participant with ``sessionCount``, ``firstSessionDate``,
``latestSessionDate`` and ``sessions`` (``id``, ``uuid``, ``createdAt``, ``startedAt``,
``endedAt``, ``eventCount``); ``GET /api/event-overviews/{sessionUuid}`` → events newest first
(``secondsWatched`` on WATCH_TIME; ``nonPersonalized``, ``personalized``, ``shown`` lists of
``{youtubeId, url, title, videoType}`` on RECOMMENDATIONS_SHOWN);
``GET /api/participants-report`` → ``ParticipantsReportRow[]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd

from workbench.errors import WorkbenchError, shown
from workbench.redaction import redact, register_secret
from workbench.studies.ytdpnl.analyses import LIST_COLUMNS, REPORT_TIMES, millisecond_timestamps

REPORT_CACHE_SECONDS = 3600.0
MAX_PAGES = 1000  # pages of participants one call reads (the server sends at most 15 a page)
MAX_BYTES = 200_000_000  # bytes of answers one method call reads
CHUNK_BYTES = 65536
_report_cache: dict[str, tuple[float, pd.DataFrame]] = {}
_report_lock = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # control characters (C0 and DEL)


class ApiError(WorkbenchError):
    """The study's API refused a request, failed, or answered something unreadable."""


class _Token:
    """Holds the API token; prints as ``***`` (in reprs, ``vars()``, tracebacks' locals)."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


class ApiClient:
    """A client of the study server at ``base_url`` authenticated by ``token`` (an admin API token);
    ``timeout_s`` bounds each whole request, ``max_pages`` and ``max_bytes`` each method call."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        report_cache_s: float = REPORT_CACHE_SECONDS,
        max_pages: int = MAX_PAGES,
        max_bytes: int = MAX_BYTES,
    ):
        self.base_url = _checked_base_url(base_url)
        _check_token(token)
        register_secret(token)
        parts = urlsplit(self.base_url)
        self._https, self._host, self._port = parts.scheme == "https", parts.hostname, parts.port
        self._prefix = parts.path
        self.timeout_s = float(timeout_s)
        self.report_cache_s = float(report_cache_s)
        self.max_pages = int(max_pages)
        self.max_bytes = int(max_bytes)
        self._token = _Token(token)
        self._cache_key = self.base_url + " " + hashlib.sha256(token.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<ytdpnl.ApiClient {self.base_url} (token hidden)>"

    __str__ = __repr__

    def __getstate__(self):  # a pickled client would carry the token: refuse
        raise TypeError("ApiClient holds an API token and cannot be pickled; create a new client where it is needed.")

    # ------------------------------------------------------------------ transport
    def _fetch(self, path: str, budget: int) -> tuple[int, bytes]:
        """Status and body of ``GET path``, connection to last byte within ``timeout_s`` and at most
        ``budget`` bytes of body; a watchdog shuts the socket at the deadline, however slow the server."""
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self.timeout_s)
        expired, sockets = threading.Event(), []

        def cut() -> None:
            expired.set()
            for sock in sockets:  # the socket itself: http.client hands it to the response and forgets it
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout_s, cut)
        watchdog.start()
        chunks, size = [], 0
        try:
            connection.connect()
            sockets.append(connection.sock)
            if expired.is_set():  # the deadline passed while connecting, before the watchdog could see the socket
                raise TimeoutError
            connection.request(
                "GET", self._prefix + path, headers={"authorization": self._token.value, "accept": "application/json"}
            )
            response = connection.getresponse()
            while chunk := response.read(CHUNK_BYTES):
                size += len(chunk)
                if size > budget:
                    raise ApiError(
                        f"The study API's answers passed max_bytes={self.max_bytes:,} bytes at GET {path}: "
                        "raise max_bytes if the study is that large, otherwise check the server."
                    )
                chunks.append(chunk)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise self._too_slow(path) from None
            raise ApiError(
                f"Cannot reach the study API at {self.base_url} ({type(exc).__name__}): check base_url and the network."
            ) from None
        finally:
            watchdog.cancel()
            connection.close()
        if expired.is_set():  # a body without a length ends at the cut as at a normal close
            raise self._too_slow(path)
        return response.status, b"".join(chunks)

    def _too_slow(self, path: str) -> ApiError:
        return ApiError(
            f"The study API did not answer GET {path} within {self.timeout_s:g} s (connection, headers and whole "
            "body): retry later or raise timeout_s."
        )

    def _get(self, path: str, budget: int | None = None) -> tuple[Any, int]:
        """The ``value`` of a Success answer to ``GET path`` and the answer's size in bytes (at most
        ``budget``, ``max_bytes`` by default), or an :class:`ApiError` naming what went wrong."""
        status, data = self._fetch(path, self.max_bytes if budget is None else budget)
        try:
            body = json.loads(data)
        except ValueError:
            raise ApiError(
                f"The study API answered GET {path} with status {status} and a body that is not JSON: check base_url points at the study server."
            ) from None
        if status in (401, 403):
            raise ApiError(
                f"The study API rejected the token for GET {path} (status {status}): generate a new API token in the admin panel."
            )
        if not isinstance(body, dict) or body.get("kind") not in ("Success", "Failure"):
            raise ApiError(
                f'The study API answered GET {path} without a {{"kind": "Success"|"Failure"}} envelope: check base_url points at the study server.'
            )
        if body["kind"] == "Failure" or status >= 400:
            message = redact(body.get("message", "no message"))
            raise ApiError(f"The study API failed GET {path} with status {status}: {message}.")
        if "value" not in body:
            raise ApiError(
                f"The study API answered GET {path} with Success but no value: the server's answer is malformed."
            )
        return body["value"], len(data)

    # ------------------------------------------------------------------ endpoints
    def participants(self) -> pd.DataFrame:
        """Every participant (all pages of GET /api/participants/{page}, at most ``max_pages``), as :func:`~workbench.studies.ytdpnl.participants`."""
        rows, page, used = [], 0, 0
        while True:
            value, size = self._get(f"/api/participants/{page}", self.max_bytes - used)
            used += size
            try:
                rows.extend(value["results"])
                page_count = int(value["pageCount"])
            except (TypeError, KeyError, ValueError):
                raise ApiError(
                    f"The study API's page {page} of participants lacks results or pageCount: the server's answer is malformed."
                ) from None
            if page_count > self.max_pages:
                raise ApiError(
                    f"The study API announces {page_count:,} pages of participants (at page {page}), more than "
                    f"max_pages={self.max_pages:,}: raise max_pages if the study is that large, otherwise check the server."
                )
            page += 1
            if page >= page_count:
                break
        frame = pd.DataFrame(
            {
                "id": pd.Series([r["id"] for r in rows], dtype="int64"),
                "code": pd.Series([r["code"] for r in rows]),
                "arm": pd.Series([r["arm"] for r in rows]),
                "phase": pd.Series([r["phase"] for r in rows], dtype="int64"),
                "is_paid": pd.Series([bool(r.get("isPaid")) for r in rows], dtype=bool),
                "extension_activated_at": _times([r.get("extensionActivatedAt") for r in rows]),
                "created_at": _times([r["createdAt"] for r in rows]),
            }
        )
        return frame.sort_values("id", ignore_index=True)

    def participant_summary(self, code: str) -> pd.DataFrame:
        """The sessions of participant ``code`` (GET /api/participant/{code}), as :func:`~workbench.studies.ytdpnl.participant_summary`."""
        value, _ = self._get(f"/api/participant/{_segment('code', code)}")
        sessions = sorted(value.get("sessions", []), key=lambda s: s["id"], reverse=True)
        frame = pd.DataFrame(
            {
                "code": pd.Series([str(code)] * len(sessions)),
                "session_id": pd.Series([s["id"] for s in sessions], dtype="int64"),
                "session_uuid": pd.Series([s["uuid"] for s in sessions]),
                "created_at": _times([s["createdAt"] for s in sessions]),
                "started_at": _times([s.get("startedAt") for s in sessions]),
                "ended_at": _times([s.get("endedAt") for s in sessions]),
                "event_count": pd.Series([s.get("eventCount", 0) for s in sessions], dtype="int64"),
            }
        )
        first, latest = value.get("firstSessionDate"), value.get("latestSessionDate")
        frame.attrs.update(
            n_sessions=int(value.get("sessionCount", len(sessions))),
            first_session=None if first is None else _times([first])[0],
            latest_session=None if latest is None else _times([latest])[0],
        )
        return frame

    def session_events(self, session_uuid: str) -> pd.DataFrame:
        """The events of one session newest first (GET /api/event-overviews/{sessionUuid}), as :func:`~workbench.studies.ytdpnl.session_events`."""
        value, _ = self._get(f"/api/event-overviews/{_segment('session_uuid', session_uuid)}")
        frame = pd.DataFrame(
            {
                "id": pd.Series([e["id"] for e in value], dtype="int64"),
                "type": pd.Series([e["type"] for e in value]),
                "url": pd.Series([e["url"] for e in value]),
                "context": pd.Series([e.get("context") for e in value]),
                "arm": pd.Series([e["arm"] for e in value]),
                "phase": pd.Series([e["phase"] for e in value], dtype="int64"),
                "created_at": _times([e["createdAt"] for e in value]),
                "seconds_watched": pd.Series([e.get("secondsWatched") for e in value], dtype="float64"),
            }
        )
        camel = {"NON_PERSONALIZED": "nonPersonalized", "PERSONALIZED": "personalized", "SHOWN": "shown"}
        for list_type, column in LIST_COLUMNS.items():
            frame[column] = [
                [
                    {"youtube_id": v["youtubeId"], "url": v["url"], "title": v["title"], "video_type": v["videoType"]}
                    for v in e.get(camel[list_type], [])
                ]
                if e["type"] == "RECOMMENDATIONS_SHOWN"
                else None
                for e in value
            ]
        return frame

    def participants_report(self, force: bool = False) -> pd.DataFrame:
        """GET /api/participants-report as :func:`~workbench.studies.ytdpnl.participants_report`; the
        answer is reused for ``report_cache_s`` seconds (one hour) unless ``force``."""
        with _report_lock:
            cached = _report_cache.get(self._cache_key)
            if cached is not None and not force and time.monotonic() - cached[0] < self.report_cache_s:
                return cached[1].copy()
        value, _ = self._get("/api/participants-report")
        frame = pd.DataFrame(
            {
                "identifier": pd.Series([r["identifier"] for r in value]),
                "phase": pd.Series([r["phase"] for r in value], dtype="int64"),
                **{column: pd.Series([r.get(column) for r in value], dtype="Int64") for column in REPORT_TIMES},
            }
        )
        with _report_lock:
            _report_cache[self._cache_key] = (time.monotonic(), frame.copy())
        return frame


def _checked_base_url(base_url: object) -> str:
    """``base_url`` without its trailing ``/``, refused (one sentence, credentials never shown) unless
    it is an http(s) address with a host in visible ASCII, without ``user:password@``, query or fragment."""
    if isinstance(base_url, str) and "@" in base_url:
        userinfo = base_url.split("//", 1)[-1].rsplit("@", 1)[0]
        for secret in (userinfo, *userinfo.split(":", 1)):  # masked by redact() in any log or message
            register_secret(secret)
        raise WorkbenchError(
            "base_url carries a user name or password (user:password@ before the host): remove it; the study API "
            "authenticates with the token alone."
        )
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    try:
        valid = (
            parts is not None
            and parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.port != 0  # reading .port raises ValueError for a port that is not a number
            and not parts.query
            and not parts.fragment
            and all("!" <= char <= "~" for char in base_url)  # what a request line can carry as is
        )
    except ValueError:
        valid = False
    if not valid:
        raise WorkbenchError(
            f"base_url={shown(base_url)} is not an http(s) URL of a host: pass the study server's address, e.g. "
            "https://personalization-server.example.org."
        )
    return base_url.rstrip("/")


def _check_token(token: object) -> None:
    """Refuse a token that is not one line of visible ASCII, naming the first bad character's kind and position only."""
    if not token or not isinstance(token, str):
        raise WorkbenchError(
            'token is empty: generate an API token in the study\'s admin panel ("API Tokens" tab) and pass it.'
        )
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":
            kind = {"\n": "a line break", "\r": "a carriage return", " ": "a space"}.get(
                char, "a control character" if _CONTROL.match(char) else "a non-ASCII character"
            )
            raise WorkbenchError(
                f"token contains {kind} (character {position} of {len(token)}): copy the API token again from "
                "the admin panel; it is one line of visible ASCII characters."
            )


def _segment(name: str, value: object) -> str:
    """``value`` as one percent-encoded path segment (``/``, ``?``, ``#``, ``%`` encoded); an empty
    value, ``.``, ``..`` or a control character, which could change the route, are refused."""
    text = str(value)
    if text in ("", ".", "..") or _CONTROL.search(text):
        raise WorkbenchError(
            f"{name}={shown(text)} cannot be a participant code or session id (empty, '.', '..' or a control "
            f"character): pass the {name} as the study shows it."
        )
    return quote(text, safe="")


def _times(values: list[str | None]) -> pd.Series:
    """ISO-8601 UTC strings (JavaScript's ``toJSON``) as naive UTC ``datetime64[ms]``; None stays NaT."""
    stamps = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    return millisecond_timestamps(pd.DataFrame({"t": stamps.dt.tz_localize(None)}), ["t"])["t"]
