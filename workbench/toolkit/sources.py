"""Event sources: which table holds the events and which of its columns are unit, time and type.

Every query of the toolkit reads one :class:`EventSource`. The built-in ones cover the GrowthBook
sample tables, the Grouparoo-style ``grouparoo.events`` and the study's ``event`` table; more are
mapped in ``workbench.yml``::

    event_sources:
      clicks:
        table: analytics.clicks        # [schema.]table
        unit: account_id               # who did it (a column of unit_join's table when set)
        timestamp: clicked_at          # when (UTC, no zone)
        type: kind                     # what (omit: every row is a page view of one kind)
        value: amount                  # optional number summed per unit
        session: visit_id              # optional session id on each event
        page_type: page_view           # optional type value that counts as a page view ("*": every row)
        unit_join: {table: visit, on: visit_id, key: id}   # optional: unit read from visit.account_id
        sessions: {table: visits, unit: account_id, id: id, start: started_at,
                   duration_seconds: seconds, pages: pages}                   # optional

Every name is checked against ``[A-Za-z_][A-Za-z0-9_]*`` here, once; the SQL builder trusts them.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config_file import read_config_file
from workbench.db.dialects import IDENTIFIER
from workbench.errors import ConfigError


@dataclass(frozen=True)
class UnitJoin:
    """The unit column lives in another table, joined on ``events.on = table.key``."""

    table: str
    on: str
    key: str


@dataclass(frozen=True)
class SessionTable:
    """An existing table of sessions: one row per session with its start and duration (seconds)."""

    table: str
    unit: str
    start: str
    duration_seconds: str
    id: str | None = None
    pages: str | None = None


@dataclass(frozen=True)
class EventSource:
    """A table of events and the roles of its columns (validated identifiers only)."""

    name: str
    table: str
    unit: str
    timestamp: str
    type: str | None = None
    value: str | None = None
    session: str | None = None
    page_type: str | None = None
    unit_join: UnitJoin | None = None
    sessions: SessionTable | None = None


BUILT_IN: dict[str, dict[str, Any]] = {
    "growthbook_pages": {
        "table": "pages",
        "unit": "userId",
        "timestamp": "timestamp",
        "type": "path",
        "session": "sessionId",
        "page_type": "*",
        "sessions": {
            "table": "sessions",
            "unit": "userId",
            "id": "sessionId",
            "start": "sessionStart",
            "duration_seconds": "duration",
            "pages": "pages",
        },
    },
    "growthbook_events": {
        "table": "events",
        "unit": "userId",
        "timestamp": "timestamp",
        "type": "event",
        "value": "value",
        "session": "sessionId",
    },
    "growthbook_orders": {"table": "orders", "unit": "userId", "timestamp": "timestamp", "value": "amount"},
    "grouparoo_events": {
        "table": "grouparoo.events",
        "unit": "profile_id",
        "timestamp": "occurred_at",
        "type": "type",
        "page_type": "pageview",
    },
    "grouparoo_events_by_user": {
        "table": "grouparoo.events",
        "unit": "user_id",
        "timestamp": "occurred_at",
        "type": "type",
        "page_type": "pageview",
    },
    "study_events": {
        "table": "event",
        "unit": "participant_code",
        "timestamp": "created_at",
        "type": "type",
        "session": "session_uuid",
        "page_type": "PAGE_VIEW",
        "unit_join": {"table": "session", "on": "session_uuid", "key": "uuid"},
    },
}


def _identifier(value: Any, where: str, qualified: bool = False) -> str:
    parts = value.split(".") if isinstance(value, str) else [value]
    if len(parts) > (2 if qualified else 1) or not all(isinstance(p, str) and IDENTIFIER.match(p) for p in parts):
        allowed = "a [schema.]table name" if qualified else "a plain column name"
        raise ConfigError(f"{where} is {value!r}; it must be {allowed} (letters, digits, _).")
    return value


def _names(cls: type, data: Any, where: str, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """The identifier keys of ``data`` for dataclass ``cls``, checked (unknown, missing, syntax)."""
    known = [f.name for f in fields(cls) if f.name not in skip]
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with keys {known}.")
    if unknown := sorted(set(data) - set(known)):
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {known}.")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.name not in skip]
    if missing := [k for k in required if data.get(k) is None]:
        raise ConfigError(f"{where}: missing key(s) {missing}.")
    nested = {"unit_join", "sessions", "page_type"}
    return {
        k: _identifier(v, f"{where}: {k}", qualified=k == "table")
        for k, v in data.items()
        if v is not None and k not in nested
    }


def event_source(name: str, mapping: Any, where: str = "event source") -> EventSource:
    """Validate one mapping (as in ``workbench.yml``) into an :class:`EventSource`."""
    where = f"{where} {name!r}"
    checked = _names(EventSource, mapping, where, skip=frozenset({"name"}))
    page_type = mapping.get("page_type")
    if page_type is not None and not isinstance(page_type, str):
        raise ConfigError(f"{where}: page_type must be the event type value (text) that counts as a page view.")
    join = sessions = None
    if (unit_join := mapping.get("unit_join")) is not None:
        if isinstance(unit_join, dict) and True in unit_join:  # YAML 1.1 reads a bare `on:` key as true
            unit_join = {"on" if k is True else k: v for k, v in unit_join.items()}
        join = UnitJoin(**_names(UnitJoin, unit_join, f"{where} unit_join"))
    if mapping.get("sessions") is not None:
        sessions = SessionTable(**_names(SessionTable, mapping["sessions"], f"{where} sessions"))
    return EventSource(name=name, page_type=page_type, unit_join=join, sessions=sessions, **checked)


def configured_sources(path: Path | None = None) -> dict[str, EventSource]:
    """The sources under ``event_sources:`` in ``workbench.yml`` (``path``), validated."""
    path = path or paths.config_path()
    section = read_config_file(path).get("event_sources") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'event_sources' must map source names to mappings (table, unit, timestamp, type).")
    for name in section:
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise ConfigError(f"{path}: event source name {name!r} must be letters, digits and _.")
    return {name: event_source(name, mapping, where=f"{path}: event_sources") for name, mapping in section.items()}


def available_sources(path: Path | None = None) -> dict[str, EventSource]:
    """The built-in sources, overridden or extended by those of ``workbench.yml``."""
    built_in = {name: event_source(name, mapping, where="built-in event source") for name, mapping in BUILT_IN.items()}
    return built_in | configured_sources(path)


def resolve_source(source: str | EventSource, path: Path | None = None) -> EventSource:
    """``source`` itself, or the built-in / configured source of that name."""
    if isinstance(source, EventSource):
        return source
    sources = available_sources(path)
    if source not in sources:
        raise ConfigError(
            f"No event source named {source!r}: pick one of {sorted(sources)} or map it under event_sources: in workbench.yml."
        )
    return sources[source]
