"""The HTTP collection service (``workbench events serve``): an ASGI app (Starlette) that accepts what
``@grouparoo/client-web`` posts and stores it through file ingestion's loss-free path.

Routes:

- ``POST /api/v1/track``: one event, as the web client sends it (see
  :mod:`workbench.events.http_records`); body at most ``FieldLimits.record_bytes``.
- ``POST /api/v1/track/batch``: ``{"apiKey": …, "events": [event, …]}`` for server-side senders;
  body at most ``FieldLimits.request_bytes``, at most ``FieldLimits.batch_events`` events.
- ``GET /healthz``: 200 ``{"status": "ok"}`` when the database answers (with ``profiles``: the
  profile keeper's rounds so far, the events its last round left without a profile, and why the
  latest round failed or null), else 503.

Answers are JSON. 200 ``{"accepted": n}`` only after the transaction holding the events committed
(an event sent again, same ``messageId``, is accepted and not stored twice). An error is ``{"error": {"message": sentence}}`` (what the web client reads): 400
for a bad event (kept in the quarantine file, with its reason; in a batch the others are stored and
``refused`` lists ``{"index", "reason"}``), 401 for a missing, unknown or revoked API key (the
request is quarantined too; a revoked key is refused within ``KEY_CACHE_SECONDS``), 413 for a body over its limit, 503 when the database cannot commit
(nothing stored: send again). ``createdAt`` is the time of receipt; ``ipAddress`` the connection's
(see :func:`workbench.events.http_records.sender_address`). CORS preflights are answered for
``events.allowed_origins``. The API key never appears in answers, logs or the quarantine.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workbench import paths
from workbench.db.connection import SqlDatabase
from workbench.errors import ConfigError, DatabaseError
from workbench.events.api_keys import key_sha256, producer_for_key
from workbench.events.http_records import record_of, sender_address
from workbench.events.ingest import Invalid, Pending, Quarantine, Target, store_received, validated_event
from workbench.events.keep_current import ProfileKeeper
from workbench.events.properties import declared_properties
from workbench.events.settings import EventSettings
from workbench.events.statements import event_tables
from workbench.events.store import ensure_event_store

QUARANTINE_SOURCE = "HTTP"
KEY_CACHE_SECONDS = 5.0  # how long a key's producer is remembered: a revoked key works at most this long
# an apiKey inside a body too broken to parse, blanked before the body is quarantined
_KEY_IN_TEXT = re.compile(rb'("apiKey"\s*:\s*)"(?:[^"\\]|\\.)*"?')


class Refused(Exception):
    """A request answered with an error: ``status`` and one sentence (never holding the key)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Receipt:
    """What one request's events became: how many are in the store (stored now or before: a resent
    event is not stored twice), and (index, reason) of each refused."""

    accepted: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


class RecordingQuarantine(Quarantine):
    """A quarantine that also remembers the reason of each ``line`` added since :meth:`take`."""

    def __init__(self, path: Path, source: str):
        super().__init__(path, source)
        self.recent: dict[int, str] = {}

    def add(self, line: int, reason: str, raw: str) -> None:
        super().add(line, reason, raw)
        self.recent[line] = reason

    def take(self) -> dict[int, str]:
        taken, self.recent = self.recent, {}
        return taken


@dataclass
class _Ticket:
    """One request's events waiting for the group commit that stores them; ``first`` is the
    quarantine line of its first event."""

    producer: str
    first: int
    count: int
    pending: list[Pending] = field(default_factory=list)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)
    done: threading.Event = field(default_factory=threading.Event)
    receipt: Receipt | None = None


class Collector:
    """The service's only writer. Requests are validated in their own threads, then stored by group
    commit: whichever waiting request takes the writers' ``lock`` stores every request queued by
    then, one transaction per producer, and answers them all (the profile keeper holds the same
    lock: DuckDB has one writer). A key's producer is remembered for ``KEY_CACHE_SECONDS``."""

    def __init__(self, db: SqlDatabase, settings: EventSettings, quarantine_file: Path):
        self.db, self.settings, self.lock = db, settings, threading.Lock()
        self.quarantine = RecordingQuarantine(quarantine_file, QUARANTINE_SOURCE)
        self.tables = event_tables(settings.schema)
        self.received = 0  # events received by this run: their ``line`` in the quarantine
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._producers: dict[str, tuple[str, float]] = {}  # key SHA-256 -> (producer, valid until)

    def receive(self, key: Any, bodies: list[Any], ip_address: str | None) -> Receipt:
        """Store the events ``bodies`` sent with ``key`` from ``ip_address``; committed on return.
        :class:`Refused` (401) for a bad key, (503) when the database could not commit them."""
        first = self._lines(len(bodies))
        producer = self._producer(key)
        if producer is None:
            with self.lock:
                for i, body in enumerate(bodies):
                    self.quarantine.add(first + i, "the API key is missing, unknown or revoked", _raw(body))
                self.quarantine.sync()
                self.quarantine.take()
            raise Refused(
                401, "The apiKey is missing, unknown or revoked: send a key from `workbench events keys create`."
            )
        ticket = _Ticket(producer, first, len(bodies))
        for i, body in enumerate(bodies):
            try:
                record, raw = record_of(body)
                event = validated_event(record, self.settings.limits)
                ticket.pending.append(Pending(first + i, raw, event, ip_address))
            except Invalid as exc:
                ticket.invalid.append((first + i, str(exc), _raw(body)))
        with self._queue_lock:
            self._queue.append(ticket)
        with self.lock:
            if not ticket.done.is_set():
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if ticket.receipt is None:
            raise Refused(503, "The event store could not commit the events; nothing was stored: send them again.")
        return ticket.receipt

    def quarantine_unreadable(self, reason: str, text: str) -> None:
        """Keep a body that could not be read as JSON (its key already blanked)."""
        line = self._lines(1)
        with self.lock:
            self.quarantine.add(line, reason, text)
            self.quarantine.sync()
            self.quarantine.take()

    def _lines(self, count: int) -> int:
        """Reserve ``count`` quarantine line numbers; the first."""
        with self._queue_lock:
            self.received += count
            return self.received - count + 1

    def _producer(self, key: Any) -> str | None:
        if not isinstance(key, str) or not key:
            return None
        digest = key_sha256(key)
        known = self._producers.get(digest)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        with self.lock:
            try:
                producer = producer_for_key(self.db, key, self.settings)
            except ConfigError:
                return None
        self._producers[digest] = (producer, time.monotonic() + KEY_CACHE_SECONDS)
        return producer

    def _commit(self, batch: list[_Ticket]) -> None:
        """Store ``batch``'s events (one transaction per producer) and quarantine its bad ones; give
        each ticket whose events committed its receipt, then mark them all done."""
        try:
            for ticket in batch:
                for line, reason, raw in ticket.invalid:
                    self.quarantine.add(line, reason, raw)
            failed: set[str] = set()
            for producer in dict.fromkeys(t.producer for t in batch):
                pending = [p for t in batch if t.producer == producer for p in t.pending]
                try:
                    store_received(self.db, Target(self.tables, producer, None, None), pending, self.quarantine)
                except DatabaseError:
                    failed.add(producer)
            self.quarantine.sync()
            reasons = self.quarantine.take()
            for ticket in batch:
                if ticket.producer not in failed:
                    lines = range(ticket.first, ticket.first + ticket.count)
                    refused = [(line - ticket.first, reasons[line]) for line in lines if line in reasons]
                    ticket.receipt = Receipt(ticket.count - len(refused), refused)
        finally:
            for ticket in batch:
                ticket.done.set()

    def healthy(self) -> bool:
        """True when the database answers a query."""
        with self.lock:
            try:
                self.db.sql("SELECT 1 AS ok")
            except DatabaseError:
                return False
        return True


def _raw(body: Any) -> str:
    """``body`` as JSON text without its API key."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "apiKey"}
    return json.dumps(body, ensure_ascii=True, sort_keys=True, default=str)


def create_app(
    db: SqlDatabase, settings: EventSettings, quarantine_file: Path | None = None, keep_profiles: bool = True
) -> Starlette:
    """The ASGI app storing into ``db``; bad events go to ``quarantine_file`` (default
    ``data/quarantine/http-<UTC time>.jsonl``); ``keep_profiles`` runs the profile keeper while it serves."""
    ensure_event_store(db, settings)
    declared_properties(settings)  # a bad declaration stops the start, not the keeper later
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    collector = Collector(db, settings, quarantine_file or paths.data_dir() / "quarantine" / f"http-{stamp}.jsonl")
    limits = settings.limits

    async def track(request: Request) -> JSONResponse:
        body = await _json_body(request, limits.record_bytes, collector)
        key = body.pop("apiKey", None) if isinstance(body, dict) else None
        return await _receive(collector, request, key, [body], single=True)

    async def track_batch(request: Request) -> JSONResponse:
        body = await _json_body(request, limits.request_bytes, collector)
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise Refused(
                400, 'A batch must be a JSON object {"apiKey": …, "events": [event, …]} with at least one event.'
            )
        if len(events) > limits.batch_events:
            raise Refused(413, f"A batch holds at most {limits.batch_events:,} events, not {len(events):,}: split it.")
        return await _receive(collector, request, body.get("apiKey"), events, single=False)

    async def healthz(request: Request) -> JSONResponse:
        if await run_in_threadpool(collector.healthy):
            keeper = request.app.state.keeper
            if keeper is None:
                return JSONResponse({"status": "ok"})
            left = keeper.last.unassociated if keeper.last else None
            profiles = {"rounds": keeper.rounds, "events_without_profile": left, "error": keeper.error}
            return JSONResponse({"status": "ok", "profiles": profiles})
        return JSONResponse({"status": "the database does not answer"}, status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        keeper = ProfileKeeper(db, settings, collector.lock) if keep_profiles else None
        if keeper:
            keeper.start()
        app.state.keeper = keeper
        try:
            yield
        finally:
            if keeper:
                await run_in_threadpool(keeper.stop)
            collector.quarantine.close()

    app = Starlette(
        routes=[
            Route("/api/v1/track", track, methods=["POST"]),
            Route("/api/v1/track/batch", track_batch, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
                max_age=600,
            )
        ],
        exception_handlers={Refused: _refused},
        lifespan=lifespan,
    )
    app.state.collector = collector
    return app


async def _json_body(request: Request, limit: int, collector: Collector) -> Any:
    """The request's JSON; 413 past ``limit`` bytes, 400 (and quarantined) when it is not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"The body is {int(declared):,} bytes, over the limit of {limit:,} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"The body is over the limit of {limit:,} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"the body is not JSON ({exc.__class__.__name__}: {str(exc)[:80]})"
        text = _KEY_IN_TEXT.sub(rb'\1"***"', raw).decode("utf-8", errors="backslashreplace")
        await run_in_threadpool(collector.quarantine_unreadable, reason, text)
        raise Refused(400, f"The event was refused: {reason}.") from None


async def _receive(collector: Collector, request: Request, key: Any, bodies: list[Any], single: bool) -> JSONResponse:
    peer = request.client.host if request.client else None
    ip_address = sender_address(peer, request.headers.get("x-forwarded-for"), collector.settings.trusted_proxies)
    receipt = await run_in_threadpool(collector.receive, key, bodies, ip_address)
    if not receipt.refused:
        return JSONResponse({"accepted": receipt.accepted})
    if single:
        return JSONResponse({"error": {"message": f"The event was refused: {receipt.refused[0][1]}."}}, status_code=400)
    refused = [{"index": i, "reason": reason} for i, reason in receipt.refused]
    message = f"{len(refused)} of {len(bodies)} events were refused (see refused); the others were stored."
    return JSONResponse(
        {"error": {"message": message}, "accepted": receipt.accepted, "refused": refused}, status_code=400
    )


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return JSONResponse({"error": {"message": str(exc)}}, status_code=exc.status)


def serve(db: SqlDatabase, settings: EventSettings, host: str = "127.0.0.1", port: int = 8870) -> None:
    """Run the service under uvicorn until interrupted (SIGINT/SIGTERM: finish requests, then stop)."""
    import uvicorn

    uvicorn.run(create_app(db, settings), host=host, port=port, log_level="warning", access_log=False)
