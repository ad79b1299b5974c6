"""Ingest events from JSON lines or CSV into the event store, losing nothing.

Every record read is counted exactly once: ``received == stored + quarantined + duplicates``.
A record that fails validation, or that the database refuses, goes to a quarantine file (JSON
lines: ``file``, ``line``, ``reason``, ``raw``) and never stops its neighbours: a batch the
database refuses is split in halves until the refused records are found. Good records are stored
in batches, each batch in one transaction (all or nothing) that also records how far the source
was read (``ingest_progress``), so an interrupted run keeps every committed batch and
``resume=True`` continues after the last one. Re-sending stores nothing twice: a client
``messageId`` is unique per producer, and an event without one gets an id derived from where it
was read and what it holds (:func:`derived_event_id`).

Record fields (JSON lines: one object per line; CSV: a header naming the fields, payload
columns named ``data.<key>``): ``type`` (required), ``userId`` and/or ``anonymousId`` (one
required, strings or integers), ``occurredAt`` (ISO 8601, or epoch milliseconds; default: the
time the batch is received), ``messageId`` (optional), ``data`` (a flat object; values stored as
text, booleans and numbers as JSON writes them, nulls dropped). Other fields are ignored. Sizes
are limited by :class:`workbench.events.settings.FieldLimits`; a UTF-8 byte order mark at the
start of the input is ignored; a NUL byte anywhere quarantines its record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NamedTuple

from workbench import paths
from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import TableDefinition
from workbench.errors import DatabaseError, DataFileError, shown
from workbench.events.api_keys import producer_for_key
from workbench.events.settings import EventSettings, FieldLimits, event_settings
from workbench.events.statements import (
    STAGED_DATA,
    STAGED_EVENTS,
    event_tables,
    last_progress_query,
    staging_statements,
    store_staged_statements,
)
from workbench.events.store import ensure_event_store

BATCH_ROWS = 50_000
EPOCH = datetime(1970, 1, 1)
FORMATS = ("auto", "jsonl", "csv")
CSV_FIELDS = {"type", "userId", "anonymousId", "occurredAt", "messageId"}
BOM = b"\xef\xbb\xbf"
# the namespace of derived event ids (UUIDv5); changing it would change every derived id
EVENT_ID_NAMESPACE = uuid.UUID("0b6f4c1e-5d0a-5b7e-9c51-3f2a8e6d4b17")
# what a database refusing a record (not failing as a whole) raises: PEP 249's IntegrityError and
# DataError (DuckDB's constraint, conversion and out-of-range errors derive from them), and PostgreSQL's
# SQLSTATE classes 22 data exception, 23 integrity constraint violation, 54 program limit exceeded
# (an index row too large)
REFUSAL_DBAPI_ERRORS = ("IntegrityError", "DataError")
REFUSAL_SQLSTATE_CLASSES = ("22", "23", "54")


@dataclass(frozen=True)
class IngestCounts:
    """What one ingestion did; ``received == stored + quarantined + duplicates`` over the lines it
    read (after line ``resumed_after`` when it resumed)."""

    received: int
    stored: int
    quarantined: int
    duplicates: int
    quarantine_file: Path | None
    resumed_after: int = 0

    def __str__(self) -> str:
        where = f" (see {self.quarantine_file})" if self.quarantine_file else ""
        resumed = f"resumed after line {self.resumed_after:,}: " if self.resumed_after else ""
        return (
            f"{resumed}received {self.received:,}, stored {self.stored:,}, quarantined {self.quarantined:,}{where}, "
            f"duplicates {self.duplicates:,}"
        )


class Event(NamedTuple):
    """One validated record, ids as text and the payload as (key, text value) pairs."""

    type: str
    user_id: str | None
    anonymous_id: str | None
    occurred_at: datetime | None
    message_id: str | None
    data: list[tuple[str, str]]


class Pending(NamedTuple):
    """A validated record waiting for its batch: where it was read, its text, the event, and the
    sender's address when it differs from record to record (HTTP; else the target's)."""

    line: int
    raw: str
    event: Event
    ip_address: str | None = None


class Progress(NamedTuple):
    """How far a source was read: lines and bytes, and the SHA-256 of those bytes (hex)."""

    line: int
    offset: int
    sha256: str


@dataclass(frozen=True)
class Target:
    """Where a batch goes: the store's tables, the producer, the sender's address and the source name."""

    tables: dict[str, TableDefinition]
    producer: str
    ip_address: str | None
    source: str | None  # None: an unnamed input (stdin, a stream without a name), which has no progress


class Invalid(ValueError):
    """A record breaks a rule; the message is the quarantine reason."""


class RecordsRefused(DatabaseError):
    """The database refused a batch because of what a record in it holds; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(f"The database refused a record: {reason}.")
        self.reason = reason


def ingest(
    db: SqlDatabase,
    source: str | Path | IO[bytes],
    producer_key: str,
    *,
    format: str = "auto",
    quarantine_file: Path | None = None,
    batch_size: int = BATCH_ROWS,
    ip_address: str | None = None,
    settings: EventSettings | None = None,
    source_name: str | None = None,
    resume: bool = False,
) -> IngestCounts:
    """Store the events of ``source`` (a path, ``"-"`` for stdin, or a binary stream) as the producer
    whose API key is ``producer_key``; refused before reading anything when the key is unknown.

    Bad records go to ``quarantine_file`` (default ``data/quarantine/<source>-<UTC time>.jsonl``,
    created only when needed); ``ip_address`` is recorded as where the events came from.
    ``source_name`` (default: the file's name; stdin and unnamed streams have none) identifies the
    input in derived event ids and in the committed progress; ``resume`` skips the lines committed
    by the latest ingestion of that name, after checking that they are unchanged.
    """
    settings = settings or event_settings()
    if format not in FORMATS:
        raise DataFileError(f"format must be one of {FORMATS}, not {format!r}.")
    if batch_size < 1:
        raise DataFileError(f"batch_size must be at least 1, not {batch_size}.")
    limit = settings.limits.id_bytes
    if source_name is not None and not (
        _clean_text(source_name) and 0 < len(source_name.encode("utf-8", "surrogatepass")) <= limit
    ):
        raise DataFileError(
            f"source_name must be 1 to {limit} bytes of UTF-8 text without NUL, not {shown(source_name)}."
        )
    ensure_event_store(db, settings)
    producer = producer_for_key(db, producer_key, settings)
    stream, name, close, identity = _open_source(source)
    target = Target(event_tables(settings.schema), producer, ip_address, source_name or identity)
    if resume and target.source is None:
        close()
        raise DataFileError(
            f"Resuming {name} needs a name for it: pass --source-name (source_name=…) as when it was sent."
        )
    quarantine = Quarantine(quarantine_file or _default_quarantine_file(name), name)
    reader = LineReader(stream)
    received = stored = duplicates = 0
    batch: list[Pending] = []
    try:
        start = _last_progress(db, target) if resume else None
        committed = start.line if start else 0
        for line_number, raw, record in _records(reader, format, name, settings.limits, start):
            received += 1
            if isinstance(record, Invalid):
                quarantine.add(line_number, str(record), raw)
                continue
            batch.append(Pending(line_number, raw, record))
            if len(batch) >= batch_size:
                written, dropped = _commit(db, target, batch, reader.progress(), quarantine)
                stored, duplicates, batch, committed = stored + written, duplicates + dropped, [], reader.line
        if batch or (target.source is not None and reader.line > committed):
            written, dropped = _commit(db, target, batch, reader.progress(), quarantine)
            stored, duplicates = stored + written, duplicates + dropped
    except DatabaseError as exc:
        raise DatabaseError(
            f"Ingesting {name} stopped after {stored:,} events were stored in whole batches: {str(exc).rstrip('.')}. "
            "Send the same file again once fixed (with --resume to skip the lines already stored): events with a "
            "messageId, and those of a named file without one, are not stored twice."
        ) from None
    finally:
        quarantine.close()
        close()
    return IngestCounts(
        received,
        stored,
        quarantine.count,
        duplicates,
        quarantine.path if quarantine.count else None,
        start.line if start else 0,
    )


def _open_source(source: str | Path | IO[bytes]) -> tuple[IO[bytes], str, Any, str | None]:
    """(binary stream, name for messages, close, the file's name or None for stdin and unnamed streams)."""
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        if isinstance(name, str):
            return source, name, lambda: None, Path(name).name  # type: ignore[return-value]
        return source, "stream", lambda: None, None  # type: ignore[return-value]
    if str(source) == "-":
        return sys.stdin.buffer, "stdin", lambda: None, None
    path = Path(source)
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist or is not a file: pass a JSON lines or CSV file of events, or - for stdin."
        )
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise DataFileError(f"{path} cannot be opened ({exc.strerror}): check its permissions.") from None
    return stream, str(path), stream.close, path.name


def _default_quarantine_file(name: str) -> Path:
    stem = Path(name).name.split(".")[0] or "events"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return paths.data_dir() / "quarantine" / f"{stem}-{stamp}.jsonl"


class Quarantine:
    """Appends rejected records of the input ``source`` to a JSON lines file, created on the first one."""

    def __init__(self, path: Path, source: str):
        self.path, self.source, self.count, self._file = Path(path), source, 0, None

    def add(self, line: int, reason: str, raw: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        entry = {"file": self.source, "line": line, "reason": reason, "raw": raw}
        self._file.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self.count += 1

    def sync(self) -> None:
        """On disk before a batch commits the progress past these lines."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class LineReader:
    """The lines of a binary stream, a UTF-8 byte order mark dropped from the first; counts the
    lines and bytes read and hashes them (SHA-256), so that a resumed run can check them."""

    def __init__(self, stream: IO[bytes]):
        self._lines, self.line, self.offset, self._digest = iter(stream), 0, 0, hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = next(self._lines)
        self.line, self.offset = self.line + 1, self.offset + len(line)
        self._digest.update(line)
        return line[len(BOM) :] if self.line == 1 and line.startswith(BOM) else line

    def progress(self) -> Progress:
        return Progress(self.line, self.offset, self._digest.hexdigest())

    def skip(self, start: Progress, name: str) -> bytes | None:
        """Read the ``start.line`` lines already committed, check them against ``start``; the first
        non-blank one (a CSV header), or None."""
        first = None
        for line in itertools.islice(self, start.line):
            if first is None and line.strip():
                first = line
        if self.progress() != start:
            raise DataFileError(
                f"{name} changed since its first {start.line:,} lines were ingested (they no longer match what was "
                "stored): send it again without --resume; nothing already stored is stored twice."
            )
        return first


def _last_progress(db: SqlDatabase, target: Target) -> Progress | None:
    """The latest committed position of the producer in the source, or None."""
    schema = target.tables["events"].name.split(".")[0]
    rows = db.sql(last_progress_query(schema), producer=target.producer, source=target.source)
    if rows.empty:
        return None
    line, offset, sha256 = rows.iloc[0]
    return Progress(int(line), int(offset), str(sha256))


# ---------------------------------------------------------------- reading and validation


def _records(
    reader: LineReader, format: str, name: str, limits: FieldLimits, start: Progress | None
) -> Iterator[tuple[int, str, Event | Invalid]]:
    """(line number, raw text, validated event or the reason it is invalid) per record after
    ``start``; blank lines skipped."""
    first = reader.skip(start, name) if start else None
    lines: Iterable[bytes] = reader
    sniffed = first or b""
    if first is None:  # look ahead to the first non-blank line, then read it again
        head = []
        for line in reader:
            head.append(line)
            if line.strip():
                break
        lines, sniffed = itertools.chain(head, reader), head[-1] if head else b""
    if format == "auto":
        format = _sniffed_format(name, sniffed)
    if format == "csv":
        return _csv_records(lines, reader, name, limits, first)
    return _json_records(lines, limits, start.line if start else 0)


def _sniffed_format(name: str, first_line: bytes) -> str:
    """csv or jsonl from the file name, else CSV only when the first line is a header naming ``type``."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    header = [cell.strip(b'" \r\n') for cell in first_line.split(b",")]
    return "csv" if not first_line.lstrip().startswith(b"{") and b"type" in header else "jsonl"


def _json_records(lines: Iterable[bytes], limits: FieldLimits, base: int) -> Iterator[tuple[int, str, Event | Invalid]]:
    for number, line in enumerate(lines, start=base + 1):
        if not line.strip():
            continue
        raw = line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
        if reason := _line_reason(len(line), b"\x00" in line, limits):
            yield number, raw, Invalid(reason)
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, raw, Invalid("the line is not valid UTF-8")
            continue
        try:
            obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:
            yield number, raw, Invalid(f"the line is not valid JSON ({str(exc).splitlines()[0][:120]})")
            continue
        # NUL and lone surrogates can only reach a JSON string through \\u escapes
        yield number, raw, _validated_or_reason(obj, limits, screened=b"\\u" not in line)


def _line_reason(size: int, has_nul: bool, limits: FieldLimits) -> str | None:
    """Why a whole line (or CSV record) of ``size`` bytes is refused before it is parsed, or None."""
    if size > limits.record_bytes:
        return f"the record is {size:,} bytes, over the limit of {limits.record_bytes:,} bytes per record"
    if has_nul:
        return "the record holds a NUL byte (0x00), which no field may hold"
    return None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def _csv_records(
    lines: Iterable[bytes], reader: LineReader, name: str, limits: FieldLimits, header_line: bytes | None
) -> Iterator[tuple[int, str, Event | Invalid]]:
    def text(source: Iterable[bytes]) -> Iterator[str]:
        for line in source:
            yield line.decode("utf-8", errors="surrogateescape")

    rows = csv.reader(text(lines))
    try:
        header = next(csv.reader(text([header_line]))) if header_line is not None else next(rows)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataFileError(f"{name} line 1: the CSV header cannot be read ({exc}); fix it.") from None
    if "type" not in header:
        raise DataFileError(
            f"{name} line 1: the CSV header lacks a type column; expected type, userId, anonymousId, occurredAt, messageId and data.<key> columns."
        )
    if not _clean_text("".join(header)):
        raise DataFileError(f"{name} line 1: the CSV header holds a NUL byte or bytes that are not UTF-8; fix it.")
    ignored = [h for h in header if h not in CSV_FIELDS and not h.startswith("data.")]
    previous, offset = reader.line, reader.offset
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield previous + 1, "", Invalid(f"the CSV record cannot be parsed ({exc})")
            previous, offset = reader.line, reader.offset
            continue
        number, size = previous + 1, reader.offset - offset
        previous, offset = reader.line, reader.offset
        if not any(cell.strip() for cell in row):
            continue
        raw, joined = _csv_line(row), "".join(row)
        if reason := _line_reason(size, "\x00" in joined, limits):
            yield number, raw, Invalid(reason)
            continue
        if len(row) != len(header):
            yield number, raw, Invalid(f"the record has {len(row)} fields but the header has {len(header)}")
            continue
        obj: dict[str, Any] = {"data": {}}
        for column, cell in zip(header, row):
            if cell == "" or column in ignored:
                continue
            if column.startswith("data."):
                obj["data"][column[5:]] = cell
            else:
                obj[column] = cell
        yield number, raw, _validated_or_reason(obj, limits, screened=_clean_text(joined))


def _csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue().encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _validated_or_reason(obj: Any, limits: FieldLimits, screened: bool) -> Event | Invalid:
    try:
        return validated_event(obj, limits, screened)
    except Invalid as exc:
        return exc


def _clean_text(text: str) -> bool:
    try:
        _check_text(text, "")
    except Invalid:
        return False
    return True


def validated_event(obj: Any, limits: FieldLimits | None = None, screened: bool = False) -> Event:
    """The :class:`Event` in a decoded record, or :class:`Invalid` naming the broken rule.

    ``limits``: the sizes allowed (default :class:`FieldLimits`); ``screened``: the caller already
    knows no string in ``obj`` holds NUL or invalid UTF-8.
    """
    limits = limits or FieldLimits()
    check = _no_check if screened else _check_text
    if not isinstance(obj, dict):
        raise Invalid(f"a record must be a JSON object, not {type(obj).__name__}")
    event_type = obj.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise Invalid("type is required and must be a non-empty string")
    check(event_type, "type")
    _check_size(event_type, limits.type_bytes, "type")
    user_id = _identifier(obj.get("userId"), "userId", check, limits.id_bytes)
    anonymous_id = _identifier(obj.get("anonymousId"), "anonymousId", check, limits.id_bytes)
    if user_id is None and anonymous_id is None:
        raise Invalid("userId or anonymousId is required")
    message_id = _identifier(obj.get("messageId"), "messageId", check, limits.id_bytes)
    return Event(
        event_type,
        user_id,
        anonymous_id,
        _occurred_at(obj.get("occurredAt")),
        message_id,
        _payload(obj.get("data"), check, limits.key_bytes),
    )


def _no_check(text: str, what: str) -> None:
    """For strings already screened as a whole."""


def _check_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise Invalid(f"{what} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what} holds bytes that are not valid UTF-8") from None


def _check_size(text: str, limit: int, what: str) -> None:
    """Invalid when ``text`` is over ``limit`` bytes in UTF-8 (``events.limits``, FieldLimits)."""
    if len(text) * 4 > limit and (size := len(text.encode("utf-8", errors="surrogatepass"))) > limit:
        raise Invalid(f"{what} is {size:,} bytes, over the limit of {limit:,} bytes")


def _identifier(value: Any, what: str, check: Callable[[str, str], None], limit: int) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"{what} must be a string or an integer, not {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    check(text, what)
    _check_size(text, limit, what)
    return text


def _occurred_at(value: Any) -> datetime | None:
    """UTC without a zone; None when absent (the receipt time applies)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            ms = float(value)
            if not math.isfinite(ms):
                raise ValueError
            return EPOCH + timedelta(milliseconds=ms)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
        raise TypeError
    except (ValueError, OverflowError, TypeError):
        shown = value if isinstance(value, (str, int, float)) else type(value).__name__
        raise Invalid(f"occurredAt {str(shown)[:60]!r} is neither ISO 8601 nor epoch milliseconds") from None


def _payload(data: Any, check: Callable[[str, str], None], key_limit: int) -> list[tuple[str, str]]:
    if data is None:
        return []
    if not isinstance(data, dict):
        raise Invalid(f"data must be a flat object, not {type(data).__name__}")
    pairs = []
    for key, value in data.items():
        if not key:
            raise Invalid("data has an empty key")
        check(key, "a data key")
        _check_size(key, key_limit, "a data key")
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            raise Invalid(f"data.{key[:60]} holds a nested {type(value).__name__}; data must be a flat object")
        text = value if isinstance(value, str) else json.dumps(value)
        check(text, f"data.{key[:60]}")
        pairs.append((key, text))
    return pairs


# ---------------------------------------------------------------- storing


def derived_event_id(producer: str, source: str, line: int, event: Event) -> str:
    """The id of an event sent without a messageId from a named source: ``evt_`` + the UUIDv5
    (namespace :data:`EVENT_ID_NAMESPACE`) of the JSON list [producer, source name, line number,
    SHA-256 of the JSON list of the event's type, userId, anonymousId, occurredAt (ISO 8601 or
    null) and data pairs], so the same line of the same source always gets the same id."""
    occurred = event.occurred_at.isoformat() if event.occurred_at else None
    content = json.dumps([event.type, event.user_id, event.anonymous_id, occurred, event.data], ensure_ascii=True)
    digest = hashlib.sha256(content.encode("ascii")).hexdigest()
    return "evt_" + str(uuid.uuid5(EVENT_ID_NAMESPACE, json.dumps([producer, source, line, digest])))


def _commit(db: SqlDatabase, target: Target, batch: list[Pending], progress: Progress, quarantine: Quarantine):
    """Store ``batch`` with ``progress`` in one transaction; when the database refuses it, store the
    records it accepts, quarantine the others, then record ``progress``. (stored, duplicates)."""
    quarantine.sync()
    try:
        return _store_batch(db, target, batch, progress)
    except RecordsRefused as exc:
        counts = _store_refused(db, target, batch, exc.reason, quarantine)
    quarantine.sync()
    _store_batch(db, target, [], progress)
    return counts


def store_received(db: SqlDatabase, target: Target, received: list[Pending], quarantine: Quarantine) -> tuple[int, int]:
    """Store events received from an unnamed source (``target.source`` None: HTTP requests) the way
    a file's batch is stored: in one transaction, the records the database refuses quarantined
    (under their ``line``) and the others stored; committed when this returns. (stored, duplicates)."""
    return _commit(db, target, received, Progress(0, 0, ""), quarantine)


def _store_refused(
    db: SqlDatabase, target: Target, batch: list[Pending], reason: str, quarantine: Quarantine
) -> tuple[int, int]:
    """``batch`` was refused for ``reason``: store each half apart, down to the single records refused,
    which are quarantined with the database's reason. (stored, duplicates)."""
    if len(batch) == 1:
        quarantine.add(batch[0].line, f"the database refused it: {reason}", batch[0].raw)
        return 0, 0
    stored = duplicates = 0
    for half in (batch[: len(batch) // 2], batch[len(batch) // 2 :]):
        try:
            written, dropped = _store_batch(db, target, half)
        except RecordsRefused as exc:
            written, dropped = _store_refused(db, target, half, exc.reason, quarantine)
        stored, duplicates = stored + written, duplicates + dropped
    return stored, duplicates


def _store_batch(
    db: SqlDatabase, target: Target, batch: list[Pending], progress: Progress | None = None
) -> tuple[int, int]:
    """Store ``batch`` (and ``progress``) in one transaction; (events stored, duplicates dropped).

    :class:`RecordsRefused` when the database refuses what a record holds (the transaction rolled back).
    """
    import pyarrow as pa

    from workbench.db.bulk_write import write_transaction

    seen: set[str] = set()
    unique = []
    for pending in batch:
        if pending.event.message_id is not None:
            if pending.event.message_id in seen:
                continue
            seen.add(pending.event.message_id)
        unique.append(pending)
    tables = target.tables
    schema = tables["events"].name.split(".")[0]
    stored = 0
    with write_transaction(db) as writer:
        if unique:
            events, data = _arrow_batch(unique, target)
            drop_duplicates, count_left, store = store_staged_statements(schema, db.dialect)
            try:
                for statement in staging_statements(schema, db.dialect):
                    writer.execute(statement)
                writer.append(TableDefinition(STAGED_EVENTS, tables["events"].columns), events)
                writer.append(TableDefinition(STAGED_DATA, tables["event_data"].columns), data)
                for statement in drop_duplicates:
                    writer.execute(statement)
                cursor = writer.raw.cursor()
                cursor.execute(count_left)
                stored = int(cursor.fetchone()[0])
                cursor.close()
                for statement in store:
                    writer.execute(statement)
            except Exception as exc:
                if (reason := refusal_reason(exc)) is None:
                    raise
                raise RecordsRefused(reason) from None
        if progress is not None and target.source is not None:
            now = datetime.now(UTC).replace(tzinfo=None)
            row = [[target.producer], [target.source], [progress.line], [progress.offset], [progress.sha256], [now]]
            writer.append(tables["ingest_progress"], pa.table(row, names=tables["ingest_progress"].column_names))
    return stored, len(batch) - stored


def refusal_reason(exc: BaseException) -> str | None:
    """The first line of the driver's message when ``exc`` refuses what a record holds (a constraint,
    a value, a size), None when the database failed for another reason (gone, out of space)."""
    sqlstate = getattr(exc, "sqlstate", None)
    refused = (isinstance(sqlstate, str) and sqlstate[:2] in REFUSAL_SQLSTATE_CLASSES) or any(
        cls.__name__ in REFUSAL_DBAPI_ERRORS for cls in type(exc).__mro__
    )
    if not refused:
        return None
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _arrow_batch(batch: list[Pending], target: Target):
    import pyarrow as pa

    now = datetime.now(UTC).replace(tzinfo=None)
    n = len(batch)
    events = [p.event for p in batch]
    fresh = prefixed_uuid4("evt_", n).to_pylist()
    ids = pa.array(
        [
            new
            if p.event.message_id is not None or target.source is None
            else derived_event_id(target.producer, target.source, p.line, p.event)
            for new, p in zip(fresh, batch)
        ],
        type=pa.string(),
    )
    timestamps = pa.array([now] * n, type=pa.timestamp("us"))
    table = pa.table(
        {
            "id": ids,
            "producer_id": pa.array([target.producer] * n, type=pa.string()),
            "profile_id": pa.nulls(n, type=pa.string()),
            "type": pa.array([e.type for e in events], type=pa.string()),
            "user_id": pa.array([e.user_id for e in events], type=pa.string()),
            "anonymous_id": pa.array([e.anonymous_id for e in events], type=pa.string()),
            "ip_address": pa.array([p.ip_address or target.ip_address for p in batch], type=pa.string()),
            "message_id": pa.array([e.message_id for e in events], type=pa.string()),
            "occurred_at": pa.array([e.occurred_at or now for e in events], type=pa.timestamp("us")),
            "profile_associated_at": pa.nulls(n, type=pa.timestamp("us")),
            "created_at": timestamps,
            "updated_at": timestamps,
        }
    )
    owners = [i for i, e in enumerate(events) for _ in e.data]
    data = pa.table(
        {
            "id": prefixed_uuid4("edt_", len(owners)),
            "event_id": ids.take(pa.array(owners, type=pa.int64())),
            "key": pa.array([k for e in events for k, _ in e.data], type=pa.string()),
            "value": pa.array([v for e in events for _, v in e.data], type=pa.string()),
        }
    )
    return table, data


def prefixed_uuid4(prefix: str, n: int):
    """``n`` random UUIDv4 strings (RFC 4122 layout) behind ``prefix``, as an Arrow string array."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexes = pa.array(np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype="S32").astype(str), type=pa.string())
    parts = [pc.utf8_slice_codeunits(hexes, a, b) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))]
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.binary_join_element_wise(*parts, "-"), "")
