"""The study server's HTTP API as a data source and an admin tool: the seed's twelve endpoints, read
as the production server (``Algorithmic-Personalization/server``) really answers them.

The token goes in the ``authorization`` header as is (no ``Bearer``). Answers are ``{"kind":
"Success", "value": …}``; failures come as ``{"kind": "Failure", "message": …}`` (api-2 routes: 500,
404 for not found; 401 from the auth middleware, with ``code: "NOT_AUTHENTICATED"``) or, from the
older routes, ``{"kind": "Error", "message": …}`` (404 "Participant not found", 500 "Error getting
participants"); an unknown route is Express's HTML 404 page. Every :class:`ApiError` carries the
server's own message, and the token is registered with :mod:`workbench.redaction`, so it never
appears in a repr or a message. The costly participants report is fetched at most once per hour per
server and token unless forced.

Reading (frames equal to the SQL path's): ``participants()`` (``GET /api/participants/{page}``, newest
first, 15 a page, the ``count`` checked), ``participant_summary(code)`` (``GET /api/participant/{code}``:
sessions newest first, so the server's ``firstSessionDate`` is the *newest* session — the client takes
first and latest from the sessions themselves; ``eventCount`` arrives as a string),
``session_events(session_uuid)`` (``GET /api/event-overviews/{sessionUuid}``: details under ``data``,
``{kind: "watchtime", watchtime}`` or ``{kind: "recommendations", recommendations: {nonPersonalized,
personalized, shown}}`` whose items carry ``source``), ``participants_report(force=False)``.

Writing (inputs checked before sending, see :mod:`~workbench.studies.ytdpnl.api_inputs`):
``create_participant``, ``update_participant`` (production resets ``isPaid`` on an update without
``isPaid: 1``, so the current state is read and sent back unless ``is_paid`` is given),
``upload_participants_csv``, ``add_vouchers``, ``create_channel_source``, ``update_channel_source``,
``channel_rotation_speed`` (24 h when never set) and ``set_channel_rotation_speed``.

Limits, each refused with one sentence: every request (connection, headers and whole body) ends
within ``timeout_s``; one method call reads at most ``max_pages`` pages (1,000: 15,000 participants
at the server's 15 a page) and ``max_bytes`` bytes (200 MB). Codes and session ids travel as one
percent-encoded path segment (``.`` and ``..`` are refused), so they cannot change the route. The
client connects directly (no proxy from the environment) and never retries a request.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import math
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd

from workbench.errors import WorkbenchError, shown
from workbench.redaction import redact, register_secret
from workbench.studies.ytdpnl import api_inputs as inputs
from workbench.studies.ytdpnl.analyses import LIST_COLUMNS, REPORT_TIMES, millisecond_timestamps

REPORT_CACHE_SECONDS = 3600.0
MAX_PAGES = 1000  # pages of participants one call reads (the server sends at most 15 a page)
MAX_BYTES = 200_000_000  # bytes of answers one method call reads
CHUNK_BYTES = 65536
_report_cache: dict[str, tuple[float, pd.DataFrame]] = {}
_report_lock = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # control characters (C0 and DEL)
_NO_BODY = object()  # _call without a JSON body


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
    def _fetch(
        self, method: str, path: str, budget: int, body: bytes | None = None, content_type: str = ""
    ) -> tuple[int, bytes]:
        """Status and body of ``method path`` (sending ``body``), connection to last byte within
        ``timeout_s`` and at most ``budget`` bytes of answer; a watchdog shuts the socket at the
        deadline, however slow the server."""
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self.timeout_s)
        expired, sockets = threading.Event(), []

        def cut() -> None:
            expired.set()
            for sock in sockets:  # the socket itself: http.client hands it to the response and forgets it
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        headers = {"authorization": self._token.value, "accept": "application/json"}
        if body is not None:
            headers["content-type"] = content_type
        watchdog = threading.Timer(self.timeout_s, cut)
        watchdog.start()
        chunks, size = [], 0
        try:
            connection.connect()
            sockets.append(connection.sock)
            if expired.is_set():  # the deadline passed while connecting, before the watchdog could see the socket
                raise TimeoutError
            connection.request(method, self._prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            while chunk := response.read(CHUNK_BYTES):
                size += len(chunk)
                if size > budget:
                    raise ApiError(
                        f"The study API's answers passed max_bytes={self.max_bytes:,} bytes at {method} {path}: "
                        "raise max_bytes if the study is that large, otherwise check the server."
                    )
                chunks.append(chunk)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise self._too_slow(method, path) from None
            raise ApiError(
                f"Cannot reach the study API at {self.base_url} ({type(exc).__name__}): check base_url and the network."
            ) from None
        finally:
            watchdog.cancel()
            connection.close()
        if expired.is_set():  # a body without a length ends at the cut as at a normal close
            raise self._too_slow(method, path)
        return response.status, b"".join(chunks)

    def _too_slow(self, method: str, path: str) -> ApiError:
        return ApiError(
            f"The study API did not answer {method} {path} within {self.timeout_s:g} s (connection, headers and whole "
            "body): retry later or raise timeout_s."
        )

    def _call(
        self,
        method: str,
        path: str,
        payload: Any = _NO_BODY,
        *,
        budget: int | None = None,
        raw: tuple[bytes, str] | None = None,
    ) -> tuple[Any, int]:
        """The ``value`` of a Success answer to ``method path`` (``payload`` sent as JSON, or ``raw``
        body and content type) and the answer's size, or an :class:`ApiError` carrying the server's
        own message (``Failure`` and older ``Error`` envelopes alike)."""
        body, content_type = raw if raw is not None else (None, "")
        if payload is not _NO_BODY:
            body, content_type = json.dumps(payload, allow_nan=False).encode(), "application/json"
        status, data = self._fetch(method, path, self.max_bytes if budget is None else budget, body, content_type)
        where = f"{method} {path}"
        try:
            answer = json.loads(data)
        except ValueError:
            if status == 404 and data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
                raise ApiError(
                    f"The study server has no route {where} (HTML 404 page): check base_url, or the server is older "
                    "than this client."
                ) from None
            raise ApiError(
                f"The study API answered {where} with status {status} and a body that is not JSON: check base_url "
                "points at the study server."
            ) from None
        kind = answer.get("kind") if isinstance(answer, dict) else None
        message = _server_message(answer)
        if status in (401, 403):
            raise ApiError(
                f"The study API rejected the token for {where} (status {status}: {message}): generate a new API "
                "token in the admin panel."
            )
        if kind not in ("Success", "Failure", "Error"):
            raise ApiError(
                f'The study API answered {where} without a {{"kind": "Success"|"Failure"|"Error"}} envelope: check '
                "base_url points at the study server."
            )
        if kind != "Success" or status >= 400:
            raise ApiError(f"The study API failed {where} with status {status}: {message}.")
        if "value" not in answer:
            raise ApiError(
                f"The study API answered {where} with Success but no value: the server's answer is malformed."
            )
        return answer["value"], len(data)

    def _get(self, path: str, budget: int | None = None) -> tuple[Any, int]:
        return self._call("GET", path, budget=budget)

    # ------------------------------------------------------------------ reading endpoints
    def participants(self) -> pd.DataFrame:
        """Every participant (all pages of GET /api/participants/{page}, at most ``max_pages``), as
        :func:`~workbench.studies.ytdpnl.participants` (every field of production's Participant entity,
        src/server/models/participant.ts); the server pages newest first, so a participant
        created while paging would shift the pages: the count is checked and a change refused."""
        rows: dict[int, dict] = {}
        page, used, count = 0, 0, None
        while True:
            value, size = self._get(f"/api/participants/{page}", self.max_bytes - used)
            used += size
            try:
                for r in value["results"]:
                    rows[_int(r["id"])] = r
                page_count = _int(value["pageCount"])
                count = None if value.get("count") is None else _int(value["count"])
            except (TypeError, KeyError, ValueError, AttributeError):
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
        if count is not None and count != len(rows):
            raise ApiError(
                f"The study API counts {count:,} participants but its pages held {len(rows):,} distinct ones: "
                "participants changed while paging, retry."
            )
        rows_list = [rows[i] for i in sorted(rows)]
        try:
            return pd.DataFrame(
                {
                    "id": pd.Series([_int(r["id"]) for r in rows_list], dtype="int64"),
                    "code": pd.Series([r["code"] for r in rows_list]),
                    "arm": pd.Series([r["arm"] for r in rows_list]),
                    "phase": pd.Series([_int(r["phase"]) for r in rows_list], dtype="int64"),
                    "is_paid": pd.Series([bool(r.get("isPaid")) for r in rows_list], dtype=bool),
                    "extension_installed": pd.Series([bool(r["extensionInstalled"]) for r in rows_list], dtype=bool),
                    "extension_activated_at": _times([r.get("extensionActivatedAt") for r in rows_list]),
                    "channel_source_id": pd.Series(
                        [_int_or_none(r.get("channelSourceId")) for r in rows_list], dtype="Int64"
                    ),
                    "pos_in_channel_source": pd.Series(
                        [_int(r["posInChannelSource"]) for r in rows_list], dtype="int64"
                    ),
                    "pos_in_channel_source_last_updated_at": _times(
                        [r["posInChannelSourceLastUpdatedAt"] for r in rows_list]
                    ),
                    "created_at": _times([r["createdAt"] for r in rows_list]),
                    "updated_at": _times([r["updatedAt"] for r in rows_list]),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("GET /api/participants", exc) from None

    def _participant_overview(self, code: str) -> dict:
        value, _ = self._get(f"/api/participant/{_segment('code', code)}")
        if not isinstance(value, dict):
            raise ApiError("The study API's participant overview is not an object: the server's answer is malformed.")
        return value

    def participant_summary(self, code: str) -> pd.DataFrame:
        """The sessions of participant ``code`` (GET /api/participant/{code}), as
        :func:`~workbench.studies.ytdpnl.participant_summary`. The server sends sessions newest first
        and names the newest ``firstSessionDate``: ``first_session`` and ``latest_session`` here are
        the oldest and newest sessions' ``createdAt``; ``attrs["participant"]`` holds the
        participant's own fields as the server sent them."""
        value = self._participant_overview(code)
        try:
            sessions = sorted(value.get("sessions", []), key=lambda s: _int(s["id"]), reverse=True)
            frame = pd.DataFrame(
                {
                    "code": pd.Series([str(code)] * len(sessions)),
                    "session_id": pd.Series([_int(s["id"]) for s in sessions], dtype="int64"),
                    "session_uuid": pd.Series([str(s["uuid"]) for s in sessions]),
                    "created_at": _times([s["createdAt"] for s in sessions]),
                    "started_at": _times([s.get("startedAt") for s in sessions]),
                    "ended_at": _times([s.get("endedAt") for s in sessions]),
                    "event_count": pd.Series([_int(s.get("eventCount", 0)) for s in sessions], dtype="int64"),
                }
            )
            n_sessions = _int(value.get("sessionCount", len(sessions)))
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("GET /api/participant", exc) from None
        frame.attrs.update(
            n_sessions=n_sessions,
            first_session=frame["created_at"].min() if len(frame) else None,
            latest_session=frame["created_at"].max() if len(frame) else None,
            participant={k: v for k, v in value.items() if k not in _OVERVIEW_KEYS},
        )
        return frame

    def session_events(self, session_uuid: str) -> pd.DataFrame:
        """The events of one session newest first (GET /api/event-overviews/{sessionUuid}), as
        :func:`~workbench.studies.ytdpnl.session_events`: ``seconds_watched`` from WATCH_TIME's
        ``data.watchtime``, the three lists from RECOMMENDATIONS_SHOWN's ``data.recommendations``
        (``video_type`` is each item's ``source``). An event ``data`` kind this client does not know is
        refused rather than dropped."""
        value, _ = self._get(f"/api/event-overviews/{_segment('session_uuid', session_uuid)}")
        if not isinstance(value, list):
            raise ApiError("The study API's event overviews are not a list: the server's answer is malformed.")
        try:
            events = sorted(value, key=lambda e: (_parse_time(e["createdAt"]), _int(e["id"])), reverse=True)
            seconds, lists = [], {column: [] for column in LIST_COLUMNS.values()}
            for e in events:
                data = e.get("data")
                kind = data.get("kind") if isinstance(data, dict) else None
                if data is not None and kind not in ("watchtime", "recommendations"):
                    raise ApiError(
                        f"The study API's event {e['id']} carries data of kind {shown(kind)}, which this client does not "
                        "read: update the client rather than lose it."
                    )
                seconds.append(_float(data["watchtime"]) if kind == "watchtime" else None)
                recommendations = data["recommendations"] if kind == "recommendations" else None
                for list_type, column in LIST_COLUMNS.items():
                    if recommendations is None:
                        lists[column].append([] if e["type"] == "RECOMMENDATIONS_SHOWN" else None)
                        continue
                    lists[column].append(
                        [
                            {
                                "youtube_id": v["youtubeId"],
                                "url": v["url"],
                                "title": v["title"],
                                "video_type": v["source"],
                            }
                            for v in recommendations[_CAMEL_LISTS[list_type]]
                        ]
                    )
            frame = pd.DataFrame(
                {
                    "id": pd.Series([_int(e["id"]) for e in events], dtype="int64"),
                    "type": pd.Series([e["type"] for e in events]),
                    "url": pd.Series([e["url"] for e in events]),
                    "context": pd.Series([e.get("context") for e in events]),
                    "arm": pd.Series([e["arm"] for e in events]),
                    "phase": pd.Series([_int(e["phase"]) for e in events], dtype="int64"),
                    "created_at": _times([e["createdAt"] for e in events]),
                    "seconds_watched": pd.Series(seconds, dtype="float64"),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("GET /api/event-overviews", exc) from None
        for column, values in lists.items():
            frame[column] = values
        return frame

    def participants_report(self, force: bool = False) -> pd.DataFrame:
        """GET /api/participants-report as :func:`~workbench.studies.ytdpnl.participants_report`; the
        answer is reused for ``report_cache_s`` seconds (one hour) unless ``force``."""
        with _report_lock:
            cached = _report_cache.get(self._cache_key)
            if cached is not None and not force and time.monotonic() - cached[0] < self.report_cache_s:
                return cached[1].copy()
        value, _ = self._get("/api/participants-report")
        try:
            frame = pd.DataFrame(
                {
                    "identifier": pd.Series([r["identifier"] for r in value]),
                    "phase": pd.Series([_int(r["phase"]) for r in value], dtype="int64"),
                    **{
                        column: pd.Series([_int_or_none(r.get(column)) for r in value], dtype="Int64")
                        for column in REPORT_TIMES
                    },
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("GET /api/participants-report", exc) from None
        with _report_lock:
            _report_cache[self._cache_key] = (time.monotonic(), frame.copy())
        return frame

    # ------------------------------------------------------------------ writing endpoints
    def create_participant(self, code: str, arm: str | int = "control", is_paid: bool = False) -> dict:
        """POST /api/participant: a new participant in ``arm`` ("control"/"treatment", or 0/1), paid or
        not; the server's participant record. An existing code is refused by the server."""
        body = {"code": inputs.code(code), "arm": inputs.arm(arm)}
        if inputs.flag("is_paid", is_paid):
            body["isPaid"] = 1  # production sets isPaid only for the number 1
        value, _ = self._call("POST", "/api/participant", body)
        return value

    def update_participant(
        self,
        code: str,
        *,
        phase: int | None = None,
        arm: str | int | None = None,
        is_paid: bool | None = None,
        channel_source_id: int | None = None,
        pos_in_channel_source: int | None = None,
    ) -> dict:
        """PUT /api/participant/{code} with the fields given; the server's participant record.
        Production sets ``isPaid`` to false on any update without ``isPaid: 1``, so with
        ``is_paid=None`` the current paid state is read first (GET /api/participant/{code}) and sent
        back; the read and the write are two requests, not one transaction."""
        fields = {
            "phase": None if phase is None else inputs.phase(phase),
            "arm": None if arm is None else inputs.arm(arm),
            "channelSourceId": None
            if channel_source_id is None
            else inputs.whole("channel_source_id", channel_source_id, 1),
            "posInChannelSource": (
                None
                if pos_in_channel_source is None
                else inputs.whole("pos_in_channel_source", pos_in_channel_source, 0)
            ),
        }
        body = {k: v for k, v in fields.items() if v is not None}
        if not body and is_paid is None:
            raise WorkbenchError(
                "update_participant got nothing to change: pass phase, arm, is_paid, channel_source_id or pos_in_channel_source."
            )
        segment = _segment("code", code)
        paid = (
            inputs.flag("is_paid", is_paid)
            if is_paid is not None
            else bool(self._participant_overview(code).get("isPaid"))
        )
        if paid:
            body["isPaid"] = 1
        value, _ = self._call("PUT", f"/api/participant/{segment}", body)
        return value

    def upload_participants_csv(self, path: str | Path) -> str:
        """POST /api/upload-participants with the CSV at ``path`` (columns ``code``, ``arm``, optional
        ``isPaid`` and ``phase``), checked row by row before sending; the server's summary sentence
        ("Created 2 new participants. Updated 1 existing participants."). A summary reporting invalid
        records raises :class:`ApiError` with it: the valid rows were applied."""
        text = inputs.participants_csv(path)
        boundary = "workbench-" + secrets.token_hex(16)
        body = (
            f'--{boundary}\r\ncontent-disposition: form-data; name="participants"; filename="participants.csv"\r\n'
            f"content-type: text/csv\r\n\r\n{text}\r\n--{boundary}--\r\n"
        ).encode()
        value, _ = self._call(
            "POST", "/api/upload-participants", raw=(body, f"multipart/form-data; boundary={boundary}")
        )
        if not isinstance(value, str):
            raise ApiError("The study API's upload summary is not a sentence: the server's answer is malformed.")
        if value.startswith("Some records are invalid"):
            raise ApiError(f"The study API applied the upload only in part: {redact(value)}")
        return value

    def add_vouchers(self, codes: Iterable[str]) -> list[dict]:
        """POST /api/voucher with the voucher ``codes`` (non-empty, distinct strings); the saved
        voucher records."""
        value, _ = self._call("POST", "/api/voucher", inputs.voucher_codes(codes))
        return value

    def create_channel_source(
        self, channel_ids: Iterable[str], title: str | None = None, is_default: bool = False
    ) -> dict:
        """POST /api/channel-source: a channel source of YouTube ``channel_ids`` in this order; the
        server's record (its ``id`` is what :meth:`update_participant` takes). The first source created
        becomes the default whatever ``is_default`` says."""
        body: dict[str, Any] = {"channelIds": inputs.channel_ids(channel_ids)}
        if title is not None:
            body["title"] = inputs.title(title)
        body["isDefault"] = inputs.flag("is_default", is_default)
        value, _ = self._call("POST", "/api/channel-source", body)
        return value

    def update_channel_source(
        self,
        source_id: int,
        channel_ids: Iterable[str],
        title: str | None = None,
        is_default: bool | None = None,
        reset_participant_positions: bool = False,
    ) -> dict:
        """POST /api/channel-source/{id}: replace the source's channels (and, with
        ``reset_participant_positions``, put its participants back at position 0); the server's
        record. ``is_default=None`` keeps the default flag: production refuses an update of the
        default source that does not repeat ``isDefault: true`` (and changes nothing), so that answer
        is retried once with it. Production changes the title only when the update makes the source
        the default: a title the server did not keep raises :class:`ApiError` after the update."""
        number = inputs.whole("source_id", source_id, 1)
        body: dict[str, Any] = {"channelIds": inputs.channel_ids(channel_ids)}
        if title is not None:
            body["title"] = inputs.title(title)
        if is_default is not None:
            body["isDefault"] = inputs.flag("is_default", is_default)
        body["resetParticipantPositions"] = inputs.flag("reset_participant_positions", reset_participant_positions)
        path = f"/api/channel-source/{number}"
        try:
            value, _ = self._call("POST", path, body)
        except ApiError as exc:
            if is_default is not None or "Cannot unset default channel source" not in str(exc):
                raise
            value, _ = self._call("POST", path, {**body, "isDefault": True})
        if title is not None and isinstance(value, dict) and value.get("title") != title:
            raise ApiError(
                f"The study API updated channel source {number}'s channels but kept its title {shown(value.get('title'))}: "
                "production changes a title only when the update makes the source the default."
            )
        return value

    def channel_rotation_speed(self) -> float:
        """GET /api/channel-rotation-speed: hours after which a treatment participant's channel
        rotates without clicks (24 when never set)."""
        value, _ = self._get("/api/channel-rotation-speed")
        try:
            return _float(value["speedHours"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("GET /api/channel-rotation-speed", exc) from None

    def set_channel_rotation_speed(self, hours: float) -> float:
        """POST /api/channel-rotation-speed: a new current rotation speed of ``hours`` (a positive
        number, not necessarily whole; the server keeps the history); the hours the server recorded."""
        value, _ = self._call("POST", "/api/channel-rotation-speed", {"speedHours": inputs.hours(hours)})
        try:
            return _float(value["speedHours"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed("POST /api/channel-rotation-speed", exc) from None


_CAMEL_LISTS = {"NON_PERSONALIZED": "nonPersonalized", "PERSONALIZED": "personalized", "SHOWN": "shown"}
_OVERVIEW_KEYS = {"sessionCount", "firstSessionDate", "latestSessionDate", "sessions"}


def _server_message(answer: object) -> str:
    """The server's own ``message`` (and ``code``) of an answer, redacted, or "no message"."""
    if not isinstance(answer, dict) or not isinstance(answer.get("message"), str):
        return "no message"
    message = answer["message"].rstrip(".")
    if isinstance(answer.get("code"), str):
        message += f" ({answer['code']})"
    return redact(_CONTROL.sub(" ", message))[:500]


def _malformed(where: str, exc: Exception) -> ApiError:
    detail = f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
    return ApiError(f"The study API's answer to {where} is malformed ({detail}): check the server's version.")


def _int(value: object) -> int:
    """A whole number sent as a number or as a string (PostgreSQL's bigint counts reach JSON as strings)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a count")
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value} is not whole")
    return int(value)  # type: ignore[call-overload]


def _int_or_none(value: object) -> int | None:
    return None if value is None else _int(value)


def _float(value: object) -> float:
    if isinstance(value, bool) or value is None:
        raise TypeError("not a number")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _parse_time(value: str) -> pd.Timestamp:
    return pd.Timestamp(value)


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
