"""A local stand-in for the study's production server, answering as its source does (not as the client
expects): GitHub ``Algorithmic-Personalization/server`` at commit 69f2056, with the shared models of
``Algorithmic-Personalization/ytdpnl-common``. Each answer cites the file it is taken from:

- ``src/server/server.ts``: the routes and their verbs; admin routes behind the auth middleware; an
  unknown path falls through to Express's default 404, an HTML page ``Cannot GET /path`` (a GET asking
  for ``text/html`` gets the admin app's index.html instead); the upload takes the multipart field
  ``participants`` (multer ``upload.single('participants')``).
- ``src/server/lib/authMiddleware.ts``: 401 ``{"kind": "Failure", "message": "Missing authorization
  header" | "Invalid token" | …, "code": "NOT_AUTHENTICATED"}``.
- ``src/server/lib/routeCreation.ts`` (the api-2 routes): ``{"kind": "Success", "value": …}``; a
  thrown error is 500 ``{"kind": "Failure", "message": err.message}``, a NotFoundError 404.
- ``src/server/api/getParticipants.ts`` + ``lib/pagination.ts``: ``GET /api/participants/:page?``,
  newest participant first (``createdAt DESC``), 15 a page, ``{results, page, pageSize, pageCount,
  count}``; a database failure is 500 ``{"kind": "Error", "message": "Error getting participants"}``.
- ``src/server/api/getParticipantOverview.ts`` + ``projections/ParticipantOverview.ts``,
  ``SessionOverview.ts``: the participant record plus ``sessionCount``, sessions newest first, so
  ``firstSessionDate`` is the *newest* session's ``createdAt`` and ``latestSessionDate`` the oldest
  (both ``new Date(0)`` without sessions); each session carries ``startedAt``/``endedAt`` (MIN/MAX of
  its events' ``created_at``, null without events) and ``eventCount`` as PostgreSQL's ``COUNT(*)``
  reaches JavaScript: a string. Unknown code: 404 ``{"kind": "Error", "message": "Participant not found"}``.
- ``src/server/api/getEventOverviews.ts`` + ``projections/EventOverview.ts``,
  ``RecommendationsList.ts``, ``ytdpnl-common/models/event.ts``: every event column, ``createdAt
  DESC``; WATCH_TIME adds ``data: {kind: "watchtime", watchtime}``, RECOMMENDATIONS_SHOWN adds ``data:
  {kind: "recommendations", recommendations: {nonPersonalized, personalized, shown}}`` whose items are
  video records (``models/video.ts``) with ``source``: NON_PERSONALIZED / PERSONALIZED for the first
  two lists, the list item's ``videoType`` for ``shown``. Other events have no ``data``.
- ``src/server/api-2/participantsGetReport.ts``: one row per participant; the latest transition to
  each phase by transition id, its time taken from ``updatedAt`` (Unix milliseconds).
- ``src/server/api-2/participantCreate.ts``: ``POST /api/participant``; ``arm`` falsy, "control" or
  "0" → control, 1, "treatment" or "1" → treatment; ``isPaid`` true only for the number 1.
- ``src/server/api-2/participantUpdate.ts``: ``PUT /api/participant/:code``; ``isPaid = (isPaid === 1)``
  on *every* update; phase, arm (strings only), ``channelSourceId`` and ``posInChannelSource`` numbers.
- ``src/server/api/uploadParticipants.ts`` + ``lib/participant.ts``: CSV columns code, arm
  (control|treatment), isPaid (1), phase; the answer's value is a sentence of counts.
- ``src/server/api-2/voucherCreate.ts``, ``channelSourceCreate.ts``, ``channelSourceUpdate.ts``,
  ``channelRotationSpeedGet.ts``, ``channelRotationSpeedSet.ts`` with ``models/channelSource.ts``,
  ``channelRotationSpeedSetting.ts`` and ``migrations/52_rotation_settings.sql`` (``speed_hours real``):
  never set, the speed is a fresh record with ``speedHours: 24`` and ``id: 0``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import struct
import threading
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd

PAGE_SIZE = 15  # lib/pagination.ts: extractPaginationRequest's default and maximum


class _Thrown(Exception):
    """An ``Error`` thrown inside a routeCreation handler: 500 Failure (404 for a NotFoundError)."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


def iso(value) -> str | None:
    """JavaScript's Date.toJSON(): ISO-8601 UTC with milliseconds and a Z; None and NaT stay null."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_iso() -> str:
    return iso(datetime.now(UTC).replace(tzinfo=None))


def _value(v):
    """A cell as JSON: NaN/NaT → null, numpy scalars → Python, timestamps → toJSON strings."""
    if v is None:
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return iso(v)
    if not isinstance(v, str | list | dict) and pd.isna(v):
        return None
    return v.item() if hasattr(v, "item") else v


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{_camel(k): _value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _float4(x: float) -> float:
    """A number as PostgreSQL's ``real`` stores it and node-postgres reads it back."""
    return float(f"{struct.unpack('f', struct.pack('f', x))[0]:.7g}")


def _js_truthy(v) -> bool:
    return v not in (None, False, 0, "") and not (isinstance(v, float) and math.isnan(v))


class ProductionStudyServer:
    """The production routes over in-memory tables built from the generator's raw tables (snake_case
    frames as read from the study schema). ``token`` is the one valid admin token; ``database_down``
    makes the routes fail as production does when PostgreSQL is unreachable; ``gateway`` plants a
    non-production fault in front of it ("html" a proxy's HTML 502, "slow" 1.5 s before answering)."""

    def __init__(self, raw: dict[str, pd.DataFrame], token: str):
        self.token, self.database_down, self.gateway = token, False, None
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, str, object]] = []  # method, path, parsed body
        self.lock = threading.Lock()
        self.participants = {p["code"]: p for p in _records(raw["participant"])}
        self.sessions = _records(raw["session"])
        self.events = _records(raw["event"])
        self.watch_time = {int(r.event_id): float(r.seconds_watched) for r in raw["watch_time"].itertuples()}
        self.videos = {v["id"]: v for v in _records(raw["video"])}
        self.items = _records(raw["video_list_item"])
        self.transitions = _records(raw["transition_event"])
        self.channel_sources: dict[int, dict] = {}
        self.channel_items: dict[int, list[str]] = {}
        self.vouchers: list[dict] = []
        self.speeds: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

            def do_PUT(self):
                server._handle(self, "PUT")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ HTTP
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(h.path)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        key = parts[1] if len(parts) > 1 else ""
        with self.lock:
            self.hits[key] = self.hits.get(key, 0) + 1
        if self.gateway == "slow":
            time.sleep(1.5)
        if self.gateway == "html":
            return self._send(h, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        route = self._route(method, parts)
        if route is None:  # Express's finalhandler
            if method == "GET" and (h.headers.get("accept") or "").startswith("text/html"):
                return self._send(h, 200, b"<!DOCTYPE html><html><body><div id=app></div></body></html>", "text/html")
            page = (
                '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
                f"</head>\n<body>\n<pre>Cannot {method} {split.path}</pre>\n</body>\n</html>\n"
            )
            return self._send(h, 404, page.encode(), "text/html; charset=utf-8")
        token = h.headers.get("authorization")
        if not token:
            return self._json(
                h, 401, {"kind": "Failure", "message": "Missing authorization header", "code": "NOT_AUTHENTICATED"}
            )
        if token != self.token:
            return self._json(h, 401, {"kind": "Failure", "message": "Invalid token", "code": "NOT_AUTHENTICATED"})
        handler, args, wrapped = route
        payload: object = None
        if body and (h.headers.get("content-type") or "").startswith("application/json"):
            try:
                payload = json.loads(body)
            except ValueError:  # body-parser's error reaches Express's default handler: HTML 400
                return self._send(h, 400, b"<!DOCTYPE html><pre>SyntaxError: Unexpected token</pre>", "text/html")
        elif body:
            payload = (h.headers.get("content-type") or "", body)
        with self.lock:
            self.requests.append((method, split.path, payload))
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        with self.lock:
            if wrapped:  # routeCreation.ts
                try:
                    if self.database_down:
                        raise _Thrown("connect ECONNREFUSED 127.0.0.1:5432")
                    status, answer = 200, {"kind": "Success", "value": handler(payload, query, *args)}
                except _Thrown as exc:
                    status, answer = exc.status, {"kind": "Failure", "message": str(exc)}
            else:  # the older routes answer for themselves
                status, answer = handler(payload, query, *args)
        self._json(h, status, answer)

    def _json(self, h, status: int, body: object) -> None:
        self._send(h, status, json.dumps(body).encode(), "application/json; charset=utf-8")

    @staticmethod
    def _send(h, status: int, data: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(data)

    def _route(self, method: str, parts: list[str]):
        """(handler, path arguments, wrapped by routeCreation) or None: server.ts's route table."""
        if len(parts) < 2 or parts[0] != "api":
            return None
        name, rest = parts[1], parts[2:]
        table = {
            ("GET", "participants"): (self.get_participants, 0, 1, False),
            ("GET", "participant"): (self.get_participant_overview, 1, 1, False),
            ("GET", "event-overviews"): (self.get_event_overviews, 1, 1, False),
            ("POST", "upload-participants"): (self.upload_participants, 0, 0, False),
            ("GET", "participants-report"): (self.participants_report, 0, 0, True),
            ("POST", "participant"): (self.create_participant, 0, 0, True),
            ("PUT", "participant"): (self.update_participant, 1, 1, True),
            ("POST", "voucher"): (self.add_vouchers, 0, 0, True),
            ("POST", "channel-source"): (self.channel_source, 0, 1, True),
            ("GET", "channel-rotation-speed"): (self.get_speed, 0, 0, True),
            ("POST", "channel-rotation-speed"): (self.set_speed, 0, 0, True),
        }
        found = table.get((method, name))
        if found is None or not found[1] <= len(rest) <= found[2] or any(p == "" for p in rest):
            return None
        return found[0], rest, found[3]

    # ------------------------------------------------------------------ older routes (src/server/api/)
    def get_participants(self, _body, query, page="0"):
        if self.database_down:
            return 500, {"kind": "Error", "message": "Error getting participants"}
        page = int(page) if page.lstrip("-").isdigit() else 0
        size = query.get("pageSize")
        size = PAGE_SIZE if size is None or not size.lstrip("-").isdigit() else max(0, min(int(size), PAGE_SIZE))
        people = sorted(self.participants.values(), key=lambda p: (p["createdAt"], p["id"]), reverse=True)
        results = people[page * size : (page + 1) * size] if size else []
        count = len(people)
        page_count = math.ceil(count / size) if size else None  # Math.ceil(n / 0) is Infinity: JSON null
        return 200, {
            "kind": "Success",
            "value": {"results": results, "page": page, "pageSize": size, "pageCount": page_count, "count": count},
        }

    def get_participant_overview(self, _body, _query, code):
        participant = self.participants.get(code)
        if participant is None:
            return 404, {"kind": "Error", "message": "Participant not found"}
        sessions = sorted(
            (s for s in self.sessions if s["participantCode"] == code), key=lambda s: s["createdAt"], reverse=True
        )
        overviews = []
        for s in sessions:
            times = [e["createdAt"] for e in self.events if e["sessionUuid"] == s["uuid"]]
            overviews.append(
                {
                    **s,
                    "startedAt": min(times) if times else None,
                    "endedAt": max(times) if times else None,
                    "eventCount": str(len(times)),
                }
            )
        epoch = "1970-01-01T00:00:00.000Z"
        value = {
            **participant,
            "sessionCount": len(sessions),
            "firstSessionDate": sessions[0]["createdAt"] if sessions else epoch,
            "latestSessionDate": sessions[-1]["createdAt"] if sessions else epoch,
            "sessions": overviews,
        }
        return 200, {"kind": "Success", "value": value}

    def get_event_overviews(self, _body, _query, session_uuid):
        events = sorted(
            (e for e in self.events if e["sessionUuid"] == session_uuid), key=lambda e: e["createdAt"], reverse=True
        )
        out = []
        for event in events:
            overview = dict(event)
            if event["type"] == "WATCH_TIME" and event["id"] in self.watch_time:
                overview["data"] = {"kind": "watchtime", "watchtime": self.watch_time[event["id"]]}
            if event["type"] == "RECOMMENDATIONS_SHOWN":
                mine = sorted((i for i in self.items if i["eventId"] == event["id"]), key=lambda i: i["position"])
                lists = {"nonPersonalized": [], "personalized": [], "shown": []}
                for item in mine:
                    video = self.videos.get(item["videoId"])
                    if video is None:
                        continue
                    key, source = {
                        "NON_PERSONALIZED": ("nonPersonalized", "NON_PERSONALIZED"),
                        "PERSONALIZED": ("personalized", "PERSONALIZED"),
                    }.get(item["listType"], ("shown", item["videoType"]))
                    lists[key].append({**video, "source": source})
                overview["data"] = {"kind": "recommendations", "recommendations": lists}
            out.append(overview)
        return 200, {"kind": "Success", "value": out}

    def upload_participants(self, body, _query):
        text = _multipart_file(body, "participants")
        if not text:
            return 400, {"kind": "Failure", "message": "No participants file"}
        try:
            records = list(csv.DictReader(io.StringIO(text), strict=True))
        except csv.Error:
            return 400, {"kind": "Failure", "message": "Failed to parse participants"}
        created = updated = 0
        errors: list[int] = []
        for line, record in enumerate(records, start=2):
            code, arm = record.get("code"), record.get("arm")
            if not code or arm not in ("control", "treatment"):
                errors.append(line)
                continue
            phase = record.get("phase")
            existing = self.participants.get(code)
            if existing is None:
                self._new_participant(code, arm, record.get("isPaid") == "1", None)
                created += 1
                changed = False
            else:
                changed = existing["arm"] != arm
                existing["arm"] = arm
                updated += 1 if changed else 0  # counted twice for an arm change, as production does
            if phase and self._transition(self.participants[code], int(phase)):
                changed = True
            updated += 1 if (existing is not None and changed) else 0
        messages = []
        if errors:
            shown = ", ".join(str(n) for n in errors[:10])
            messages.append(f"Some records are invalid ({len(errors)} total), at lines: {shown}...")
        messages += [f"Created {created} new participants.", f"Updated {updated} existing participants."]
        return 200, {"kind": "Success", "value": " ".join(messages)}

    # ------------------------------------------------------------------ api-2 routes (routeCreation)
    def participants_report(self, _body, _query):
        latest: dict[int, dict[int, str]] = {}
        for t in sorted(self.transitions, key=lambda t: t["id"]):
            latest.setdefault(t["participantId"], {})[t["toPhase"]] = t["updatedAt"]

        def ms(v):
            return None if v is None else int(pd.Timestamp(v).value // 1_000_000)

        return [
            {
                "identifier": p["code"],
                "phase": p["phase"],
                "activated_browser_extension_at": ms(p.get("extensionActivatedAt")),
                "entered_intervention_at": ms(latest.get(p["id"], {}).get(1)),
                "entered_post_intervention_at": ms(latest.get(p["id"], {}).get(2)),
                "was_reset_to_pre_intervention_at": ms(latest.get(p["id"], {}).get(0)),
            }
            for p in self.participants.values()
        ]

    def _new_participant(self, code, arm, is_paid, channel_source_id) -> dict:
        stamp = now_iso()
        record = {
            "id": max((p["id"] for p in self.participants.values()), default=0) + 1,
            "createdAt": stamp,
            "updatedAt": stamp,
            "code": code,
            "phase": 0,
            "arm": arm,
            "extensionInstalled": False,
            "extensionActivatedAt": None,
            "isPaid": is_paid,
            "channelSourceId": channel_source_id,
            "posInChannelSource": 0,
            "posInChannelSourceLastUpdatedAt": stamp,
        }
        self.participants[code] = record
        return record

    def _transition(self, participant: dict, to_phase: int) -> bool:
        if participant["phase"] == to_phase:
            return False
        stamp = now_iso()
        self.transitions.append(
            {
                "id": max((t["id"] for t in self.transitions), default=0) + 1,
                "participantId": participant["id"],
                "fromPhase": participant["phase"],
                "toPhase": to_phase,
                "reason": "FORCED",
                "createdAt": stamp,
                "updatedAt": stamp,
            }
        )
        participant["phase"] = to_phase
        return True

    def create_participant(self, body, _query):
        data = {k: v for k, v in (body or {}).items() if k != "id"} if isinstance(body, dict) else {}
        code = data.get("code")
        if (
            not isinstance(code, str)
            or not code
            or ("channelSourceId" in data and not _is_number(data["channelSourceId"]))
        ):
            raise _Thrown("Invalid participant record")
        if code in self.participants:
            raise _Thrown(
                "Participant with that code already exists, use the update endpoint (PUT method) if you want to update it"
            )
        arm = data.get("arm")
        if not _js_truthy(arm) or arm in ("control", "0"):
            arm = "control"
        elif arm in (1, "treatment", "1"):
            arm = "treatment"
        else:
            raise _Thrown("invalid participant arm")
        return self._new_participant(
            code, arm, data.get("isPaid") == 1 and data.get("isPaid") is not True, data.get("channelSourceId")
        )

    def update_participant(self, body, _query, code):
        data = body if isinstance(body, dict) else {}
        participant = self.participants.get(code)
        if participant is None:
            raise _Thrown("Participant with that email does not exist")
        phase, arm = data.get("phase"), data.get("arm")
        if arm in ("control", "treatment"):
            participant["arm"] = arm
        participant["isPaid"] = data.get("isPaid") == 1 and data.get("isPaid") is not True
        valid_phase = _is_number(phase) and 0 <= phase <= 2
        if _js_truthy(phase) and not valid_phase:
            raise _Thrown("Invalid phase, must be one of: 0, 1, 2")
        source = data.get("channelSourceId", None)
        if _is_number(source):
            participant["channelSourceId"] = source
        elif "channelSourceId" in data:
            raise _Thrown("Invalid channel source id, must be a number")
        if _is_number(data.get("posInChannelSource")):
            participant["posInChannelSource"] = data["posInChannelSource"]
            participant["posInChannelSourceLastUpdatedAt"] = now_iso()
        participant["updatedAt"] = now_iso()
        if valid_phase:
            self._transition(participant, int(phase))
        return dict(participant)

    def add_vouchers(self, body, _query):
        if not isinstance(body, list):
            raise _Thrown("Invalid vouchers record, please post a JSON array of voucher codes")
        for code in body:
            if not isinstance(code, str) or not code:
                raise _Thrown("Invalid voucher code, please post a JSON array of voucher codes")
        if {v["voucherCode"] for v in self.vouchers} & set(body) or len(set(body)) < len(body):
            raise _Thrown('duplicate key value violates unique constraint "voucher_voucher_code_key"')
        saved = []
        for code in body:
            stamp = now_iso()
            saved.append({"id": len(self.vouchers) + 1, "createdAt": stamp, "updatedAt": stamp, "voucherCode": code})
            self.vouchers.append(saved[-1])
        return saved

    def channel_source(self, body, _query, source_id=None):
        ok = isinstance(body, dict) and ("title" not in body or isinstance(body["title"], str))
        ok = ok and isinstance(body.get("channelIds"), list) and all(isinstance(c, str) for c in body["channelIds"])
        ok = ok and ("isDefault" not in body or isinstance(body["isDefault"], bool))
        if source_id is not None:
            ok = ok and ("resetParticipantPositions" not in body or isinstance(body["resetParticipantPositions"], bool))
        if not ok:
            raise _Thrown("Invalid channel source record")
        title, channel_ids, is_default = body.get("title"), body["channelIds"], body.get("isDefault")
        if source_id is None:  # channelSourceCreate.ts
            default = next((s for s in self.channel_sources.values() if s["isDefault"]), None)
            if default is not None and is_default:
                default["isDefault"] = False
            stamp = now_iso()
            source = {"id": len(self.channel_sources) + 1, "createdAt": stamp, "updatedAt": stamp}
            if title is not None:
                source["title"] = title
            source["isDefault"] = default is None
            self.channel_sources[source["id"]] = {**source, "title": title}
            self.channel_items[source["id"]] = list(channel_ids)
            return source
        if not source_id.lstrip("-").replace(".", "", 1).isdigit():  # channelSourceUpdate.ts
            raise _Thrown("Invalid channel source id")
        source = self.channel_sources.get(int(float(source_id)))
        if source is None:
            raise _Thrown("Channel source not found")
        if source["isDefault"] and not is_default:
            raise _Thrown("Cannot unset default channel source")
        if is_default and not source["isDefault"]:
            for other in self.channel_sources.values():
                other["isDefault"] = False
            source["isDefault"] = True
            if title:
                source["title"] = title
            source["updatedAt"] = now_iso()
        self.channel_items[source["id"]] = list(channel_ids)
        if body.get("resetParticipantPositions"):
            for p in self.participants.values():
                if p["channelSourceId"] == (None if source["isDefault"] else source["id"]):
                    p["posInChannelSource"] = 0
                    p["posInChannelSourceLastUpdatedAt"] = now_iso()
        return dict(source)

    def get_speed(self, _body, _query):
        current = next((s for s in self.speeds if s["isCurrent"]), None)
        if current is None:
            stamp = now_iso()
            return {"id": 0, "createdAt": stamp, "updatedAt": stamp, "speedHours": 24, "isCurrent": False}
        return {**current, "speedHours": _float4(current["speedHours"])}

    def set_speed(self, body, _query):
        hours = body.get("speedHours") if isinstance(body, dict) else None
        if not _is_number(hours):
            raise _Thrown("Invalid channel rotation speed")
        for s in self.speeds:
            s["isCurrent"] = False
        stamp = now_iso()
        setting = {
            "id": len(self.speeds) + 1,
            "createdAt": stamp,
            "updatedAt": stamp,
            "speedHours": hours,
            "isCurrent": True,
        }
        self.speeds.append(setting)
        return dict(setting)


def _is_number(v) -> bool:
    """JavaScript's ``typeof v === 'number'`` for a value parsed from JSON (NaN cannot arrive)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _multipart_file(payload, field: str) -> str | None:
    """The text of the multipart file field ``field`` (multer's ``req.file``), or None."""
    if not isinstance(payload, tuple) or not payload[0].startswith("multipart/form-data"):
        return None
    content_type, body = payload
    message = BytesParser(policy=HTTP).parsebytes(b"content-type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field and part.get_filename() is not None:
            return part.get_payload(decode=True).decode("utf-8")
    return None
