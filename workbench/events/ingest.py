"""Ingest events from JSON lines or CSV into the event store, losing nothing.

Every record read is counted exactly once: ``received == stored + quarantined + duplicates``.
A record that fails validation goes to a quarantine file (JSON lines: ``line``, ``reason``,
``raw``) and never stops its neighbours. Good records are stored in batches, each batch in one
transaction (all or nothing), so an interrupted run keeps every committed batch; a client
``messageId`` is unique per producer, so re-sending a file stores nothing twice and completes an
interrupted run.

Record fields (JSON lines: one object per line; CSV: a header naming the fields, payload
columns named ``data.<key>``): ``type`` (required), ``userId`` and/or ``anonymousId`` (one
required, strings or integers), ``occurredAt`` (ISO 8601, or epoch milliseconds; default: the
time the batch is received), ``messageId`` (optional), ``data`` (a flat object; values stored as
text, booleans and numbers as JSON writes them, nulls dropped). Other fields are ignored.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NamedTuple

from workbench import paths
from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import TableDefinition
from workbench.errors import DatabaseError, DataFileError
from workbench.events.settings import EventSettings, event_settings
from workbench.events.statements import (
    STAGED_DATA,
    STAGED_EVENTS,
    event_tables,
    staging_statements,
    store_staged_statements,
)
from workbench.events.store import ensure_event_store

BATCH_ROWS = 50_000
EPOCH = datetime(1970, 1, 1)
FORMATS = ("auto", "jsonl", "csv")
CSV_FIELDS = {"type", "userId", "anonymousId", "occurredAt", "messageId"}


@dataclass(frozen=True)
class IngestCounts:
    """What one ingestion did; ``received == stored + quarantined + duplicates``."""

    received: int
    stored: int
    quarantined: int
    duplicates: int
    quarantine_file: Path | None

    def __str__(self) -> str:
        where = f" (see {self.quarantine_file})" if self.quarantine_file else ""
        return (
            f"received {self.received:,}, stored {self.stored:,}, quarantined {self.quarantined:,}{where}, "
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


class Invalid(ValueError):
    """A record breaks a rule; the message is the quarantine reason."""


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
) -> IngestCounts:
    """Store the events of ``source`` (a path, ``"-"`` for stdin, or a binary stream) as the producer
    whose API key is ``producer_key``; refused before reading anything when the key is unknown.

    Bad records go to ``quarantine_file`` (default ``data/quarantine/<source>-<UTC time>.jsonl``,
    created only when needed); ``ip_address`` is recorded as where the events came from.
    """
    settings = settings or event_settings()
    producer = settings.producer_for(producer_key)
    if format not in FORMATS:
        raise DataFileError(f"format must be one of {FORMATS}, not {format!r}.")
    if batch_size < 1:
        raise DataFileError(f"batch_size must be at least 1, not {batch_size}.")
    ensure_event_store(db, settings)
    tables = event_tables(settings.schema)
    stream, name, close = _open_source(source)
    quarantine = Quarantine(quarantine_file or _default_quarantine_file(name))
    received = stored = duplicates = 0
    batch: list[Event] = []
    try:
        for line_number, raw, record in _records(stream, format, name):
            received += 1
            if isinstance(record, Invalid):
                quarantine.add(line_number, str(record), raw)
                continue
            batch.append(record)
            if len(batch) >= batch_size:
                written, dropped = _store_batch(db, tables, producer, ip_address, batch)
                stored, duplicates, batch = stored + written, duplicates + dropped, []
        if batch:
            written, dropped = _store_batch(db, tables, producer, ip_address, batch)
            stored, duplicates = stored + written, duplicates + dropped
    except DatabaseError as exc:
        raise DatabaseError(
            f"Ingesting {name} stopped after {stored:,} events were stored in whole batches: {str(exc).rstrip('.')}. "
            "Send the same file again once fixed; records with a messageId are not stored twice."
        ) from None
    finally:
        quarantine.close()
        close()
    return IngestCounts(received, stored, quarantine.count, duplicates, quarantine.path if quarantine.count else None)


def _open_source(source: str | Path | IO[bytes]) -> tuple[IO[bytes], str, Any]:
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return source, name if isinstance(name, str) else "stream", lambda: None  # type: ignore[return-value]
    if str(source) == "-":
        return sys.stdin.buffer, "stdin", lambda: None
    path = Path(source)
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist or is not a file: pass a JSON lines or CSV file of events, or - for stdin."
        )
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise DataFileError(f"{path} cannot be opened ({exc.strerror}): check its permissions.") from None
    return stream, str(path), stream.close


def _default_quarantine_file(name: str) -> Path:
    stem = Path(name).name.split(".")[0] or "events"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return paths.data_dir() / "quarantine" / f"{stem}-{stamp}.jsonl"


class Quarantine:
    """Appends rejected records to a JSON lines file, created on the first one."""

    def __init__(self, path: Path):
        self.path, self.count, self._file = Path(path), 0, None

    def add(self, line: int, reason: str, raw: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps({"line": line, "reason": reason, "raw": raw}, ensure_ascii=True) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# ---------------------------------------------------------------- reading and validation


def _records(stream: IO[bytes], format: str, name: str) -> Iterator[tuple[int, str, Event | Invalid]]:
    """(line number, raw text, validated event or the reason it is invalid) per record; blank lines skipped."""
    lines = iter(stream)
    head = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    lines = itertools.chain(head, lines)
    if format == "auto":
        format = _sniffed_format(name, head[-1] if head else b"")
    return _csv_records(lines, name) if format == "csv" else _json_records(lines)


def _sniffed_format(name: str, first_line: bytes) -> str:
    """csv or jsonl from the file name, else CSV only when the first line is a header naming ``type``."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    header = [cell.strip(b'" \r\n') for cell in first_line.split(b",")]
    return "csv" if not first_line.lstrip().startswith(b"{") and b"type" in header else "jsonl"


def _json_records(lines: Iterable[bytes]) -> Iterator[tuple[int, str, Event | Invalid]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        raw = line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, raw, Invalid("the line is not valid UTF-8")
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            yield number, raw, Invalid(f"the line is not valid JSON ({str(exc).splitlines()[0][:120]})")
            continue
        # NUL and lone surrogates can only reach a JSON string through \\u escapes
        yield number, raw, _validated_or_reason(obj, screened=b"\\u" not in line)


def _csv_records(lines: Iterable[bytes], name: str) -> Iterator[tuple[int, str, Event | Invalid]]:
    text = (line.decode("utf-8", errors="surrogateescape") for line in lines)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataFileError(f"{name} line 1: the CSV header cannot be read ({exc}); fix it.") from None
    if "type" not in header:
        raise DataFileError(
            f"{name} line {reader.line_num}: the CSV header lacks a type column; expected type, userId, anonymousId, occurredAt, messageId and data.<key> columns."
        )
    ignored = [h for h in header if h not in CSV_FIELDS and not h.startswith("data.")]
    previous = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield previous + 1, "", Invalid(f"the CSV record cannot be parsed ({exc})")
            previous = reader.line_num
            continue
        number, previous = previous + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        raw = _csv_line(row)
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
        yield number, raw, _validated_or_reason(obj, screened=_clean_text("".join(row)))


def _csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue().encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _validated_or_reason(obj: Any, screened: bool) -> Event | Invalid:
    try:
        return validated_event(obj, screened)
    except Invalid as exc:
        return exc


def _clean_text(text: str) -> bool:
    try:
        _check_text(text, "")
    except Invalid:
        return False
    return True


def validated_event(obj: Any, screened: bool = False) -> Event:
    """The :class:`Event` in a decoded record, or :class:`Invalid` naming the broken rule.

    ``screened``: the caller already knows no string in ``obj`` holds NUL or invalid UTF-8.
    """
    check = _no_check if screened else _check_text
    if not isinstance(obj, dict):
        raise Invalid(f"a record must be a JSON object, not {type(obj).__name__}")
    event_type = obj.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise Invalid("type is required and must be a non-empty string")
    check(event_type, "type")
    user_id = _identifier(obj.get("userId"), "userId", check)
    anonymous_id = _identifier(obj.get("anonymousId"), "anonymousId", check)
    if user_id is None and anonymous_id is None:
        raise Invalid("userId or anonymousId is required")
    message_id = _identifier(obj.get("messageId"), "messageId", check)
    return Event(
        event_type,
        user_id,
        anonymous_id,
        _occurred_at(obj.get("occurredAt")),
        message_id,
        _payload(obj.get("data"), check),
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


def _identifier(value: Any, what: str, check=_check_text) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(f"{what} must be a string or an integer, not {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    check(text, what)
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


def _payload(data: Any, check=_check_text) -> list[tuple[str, str]]:
    if data is None:
        return []
    if not isinstance(data, dict):
        raise Invalid(f"data must be a flat object, not {type(data).__name__}")
    pairs = []
    for key, value in data.items():
        if not key:
            raise Invalid("data has an empty key")
        check(key, "a data key")
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            raise Invalid(f"data.{key[:60]} holds a nested {type(value).__name__}; data must be a flat object")
        text = value if isinstance(value, str) else json.dumps(value)
        check(text, f"data.{key[:60]}")
        pairs.append((key, text))
    return pairs


# ---------------------------------------------------------------- storing


def _store_batch(
    db: SqlDatabase, tables: dict[str, TableDefinition], producer: str, ip_address: str | None, batch: list[Event]
) -> tuple[int, int]:
    """Store ``batch`` in one transaction; (events stored, duplicates dropped)."""
    from workbench.db.bulk_write import write_transaction

    seen: set[str] = set()
    unique = []
    for event in batch:
        if event.message_id is not None:
            if event.message_id in seen:
                continue
            seen.add(event.message_id)
        unique.append(event)
    events, data = _arrow_batch(unique, producer, ip_address)
    schema = tables["events"].name.split(".")[0]
    drop_duplicates, count_left, store = store_staged_statements(schema, db.dialect)
    with write_transaction(db) as writer:
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
    return stored, len(batch) - stored


def _arrow_batch(events: list[Event], producer: str, ip_address: str | None):
    import pyarrow as pa

    now = datetime.now(UTC).replace(tzinfo=None)
    n = len(events)
    ids = prefixed_uuid4("evt_", n)
    timestamps = pa.array([now] * n, type=pa.timestamp("us"))
    table = pa.table(
        {
            "id": ids,
            "producer_id": pa.array([producer] * n, type=pa.string()),
            "profile_id": pa.nulls(n, type=pa.string()),
            "type": pa.array([e.type for e in events], type=pa.string()),
            "user_id": pa.array([e.user_id for e in events], type=pa.string()),
            "anonymous_id": pa.array([e.anonymous_id for e in events], type=pa.string()),
            "ip_address": pa.array([ip_address] * n, type=pa.string()),
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
