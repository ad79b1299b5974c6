"""The study server's HTTP API as a data source, returning the same frames as the SQL path.

The token goes in the ``authorization`` header as is (no ``Bearer``); answers are
``{"kind": "Success", "value": …}`` or ``{"kind": "Failure", "message": …}``. The costly
participants report is fetched at most once per hour per server and token unless forced. The
token is registered with :mod:`workbench.redaction`, so it never appears in a repr or a message.

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

import hashlib
import threading
import time
from typing import Any
from urllib.parse import quote

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.redaction import redact, register_secret
from workbench.studies.ytdpnl.analyses import LIST_COLUMNS, REPORT_TIMES, millisecond_timestamps

REPORT_CACHE_SECONDS = 3600.0
_report_cache: dict[str, tuple[float, pd.DataFrame]] = {}
_report_lock = threading.Lock()


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
    """A client of the study server at ``base_url`` authenticated by ``token`` (an admin API token)."""

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = 30.0, report_cache_s: float = REPORT_CACHE_SECONDS
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise WorkbenchError(
                f"base_url={base_url!r} is not an http(s) URL: pass the study server's address, e.g. https://personalization-server.example.org."
            )
        if not token or not isinstance(token, str):
            raise WorkbenchError(
                'token is empty: generate an API token in the study\'s admin panel ("API Tokens" tab) and pass it.'
            )
        register_secret(token)
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.report_cache_s = float(report_cache_s)
        self._token = _Token(token)
        self._cache_key = self.base_url + " " + hashlib.sha256(token.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<ytdpnl.ApiClient {self.base_url} (token hidden)>"

    __str__ = __repr__

    def __getstate__(self):  # a pickled client would carry the token: refuse
        raise TypeError("ApiClient holds an API token and cannot be pickled; create a new client where it is needed.")

    # ------------------------------------------------------------------ transport
    def _get(self, path: str) -> Any:
        """The ``value`` of a Success answer to ``GET path``, or an :class:`ApiError` naming what went wrong."""
        import requests

        url = self.base_url + path
        try:
            response = requests.get(
                url, headers={"authorization": self._token.value, "accept": "application/json"}, timeout=self.timeout_s
            )
        except requests.Timeout:
            raise ApiError(
                f"The study API did not answer GET {path} within {self.timeout_s:g} s: retry later or raise timeout_s."
            ) from None
        except requests.RequestException as exc:
            raise ApiError(
                f"Cannot reach the study API at {self.base_url} ({type(exc).__name__}): check base_url and the network."
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                f"The study API answered GET {path} with status {response.status_code} and a body that is not JSON: check base_url points at the study server."
            ) from None
        if response.status_code in (401, 403):
            raise ApiError(
                f"The study API rejected the token for GET {path} (status {response.status_code}): generate a new API token in the admin panel."
            )
        if not isinstance(body, dict) or body.get("kind") not in ("Success", "Failure"):
            raise ApiError(
                f'The study API answered GET {path} without a {{"kind": "Success"|"Failure"}} envelope: check base_url points at the study server.'
            )
        if body["kind"] == "Failure" or response.status_code >= 400:
            message = redact(body.get("message", "no message"))
            raise ApiError(f"The study API failed GET {path} with status {response.status_code}: {message}.")
        if "value" not in body:
            raise ApiError(
                f"The study API answered GET {path} with Success but no value: the server's answer is malformed."
            )
        return body["value"]

    # ------------------------------------------------------------------ endpoints
    def participants(self) -> pd.DataFrame:
        """Every participant (all pages of GET /api/participants/{page}), as :func:`~workbench.studies.ytdpnl.participants`."""
        rows, page = [], 0
        while True:
            value = self._get(f"/api/participants/{page}")
            try:
                rows.extend(value["results"])
                page_count = int(value["pageCount"])
            except (TypeError, KeyError, ValueError):
                raise ApiError(
                    f"The study API's page {page} of participants lacks results or pageCount: the server's answer is malformed."
                ) from None
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
        value = self._get(f"/api/participant/{quote(str(code), safe='')}")
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
        value = self._get(f"/api/event-overviews/{quote(str(session_uuid), safe='')}")
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
        value = self._get("/api/participants-report")
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


def _times(values: list[str | None]) -> pd.Series:
    """ISO-8601 UTC strings (JavaScript's ``toJSON``) as naive UTC ``datetime64[ms]``; None stays NaT."""
    stamps = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    return millisecond_timestamps(pd.DataFrame({"t": stamps.dt.tz_localize(None)}), ["t"])["t"]
