"""Profile properties computed from events in the database: one row per profile.

Declared under ``events.properties`` in ``workbench.yml`` (or passed as :class:`PropertySpec`
objects or mappings)::

    events:
      properties:
        purchases_14d: {type: purchase, aggregate: count, within_days: 14}
        revenue:       {type: purchase, aggregate: sum, key: amount,
                        filters: [{key: currency, op: equals, value: USD}]}
        last_path:     {type: pageview, aggregate: most_recent, key: path}
        first_seen:    {type: pageview, aggregate: least_recent, column: occurred_at}
        score_change:  {type: quiz, aggregate: diff, key: score}     # latest − earliest
        score_step:    {type: quiz, aggregate: diff, key: score, between: last_two}

Aggregates: ``count`` (events; 0 when none), ``sum``/``avg``/``min``/``max`` of a payload key
read as a number (text that is not a decimal number is ignored), ``diff`` of such a number (seed
001's "diffs": the latest value minus the earliest, 0 for a single event; with ``between:
last_two``, the latest minus the one before it, null for a single event), ``most_recent``/``least_recent``
value of a payload key or an events column, ``all_values`` (a list ordered by occurred_at).
Filters on payload keys: ``equals``, ``not_equals``, ``contains``, ``not_contains`` (text),
``greater``, ``less`` (numbers); an event lacking the key never matches a filter. Time rules:
``since`` (inclusive) and ``until`` (exclusive) as ISO dates, ``within_days`` N counted back from
``as_of`` (default now, UTC). Profiles without matching events get 0 (count) or null.
The ``profiles`` table joins anonymous and user ids (``profile_identities``), so the result serves
as metrics and dimensions keyed by either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.db import Database
from workbench.db.connection import SqlDatabase
from workbench.errors import ConfigError
from workbench.events.settings import EventSettings, event_settings, validated_name
from workbench.events.statements import (
    EVENT_COLUMNS,
    clear_property_values,
    event_tables,
    profile_properties_query,
)

AGGREGATES = ("count", "sum", "avg", "min", "max", "diff", "most_recent", "least_recent", "all_values")
DIFF_BETWEEN = ("earliest_and_latest", "last_two")  # what a diff subtracts from the latest value
OPERATORS = ("equals", "not_equals", "contains", "not_contains", "greater", "less")
SPEC_KEYS = {"type", "aggregate", "key", "column", "filters", "since", "until", "within_days", "between"}


@dataclass(frozen=True)
class PayloadFilter:
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class PropertySpec:
    """One validated property; build it with :func:`property_spec`."""

    name: str
    type: str
    aggregate: str
    key: str | None = None
    column: str | None = None
    filters: tuple[PayloadFilter, ...] = field(default_factory=tuple)
    since: datetime | None = None
    until: datetime | None = None
    within_days: float | None = None
    between: str | None = None  # diff only: one of DIFF_BETWEEN


def property_spec(name: str, declaration: Mapping[str, Any], where: str = "events.properties") -> PropertySpec:
    """Validate one declaration; errors name ``where.name`` and the offending key."""
    here = f"{where}.{name}"
    validated_name(name, f"the property name {here}")
    unknown = set(declaration) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"{here}: unknown key(s) {sorted(unknown)}; allowed: {sorted(SPEC_KEYS)}.")
    event_type = declaration.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ConfigError(f"{here}: 'type' (the event type the property reads) is required.")
    aggregate = declaration.get("aggregate")
    if aggregate not in AGGREGATES:
        raise ConfigError(f"{here}: 'aggregate' must be one of {AGGREGATES}, not {aggregate!r}.")
    key, column = declaration.get("key"), declaration.get("column")
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{here}: 'key' must be a payload key name.")
    if column is not None and column not in EVENT_COLUMNS:
        raise ConfigError(f"{here}: 'column' must be one of {EVENT_COLUMNS}, not {column!r}.")
    if key is not None and column is not None:
        raise ConfigError(f"{here}: give 'key' (a payload key) or 'column' (an events column), not both.")
    between = declaration.get("between")
    if between is not None and (aggregate != "diff" or between not in DIFF_BETWEEN):
        raise ConfigError(f"{here}: 'between' applies to aggregate diff and is one of {DIFF_BETWEEN}, not {between!r}.")
    if aggregate in ("sum", "avg", "min", "max", "diff") and key is None:
        raise ConfigError(f"{here}: aggregate {aggregate} needs 'key', the payload key holding the number.")
    if aggregate in ("most_recent", "least_recent", "all_values") and key is None and column is None:
        raise ConfigError(
            f"{here}: aggregate {aggregate} needs 'key' (a payload key) or 'column' (one of {EVENT_COLUMNS})."
        )
    within = declaration.get("within_days")
    if within is not None and (isinstance(within, bool) or not isinstance(within, (int, float)) or within <= 0):
        raise ConfigError(f"{here}: 'within_days' must be a positive number of days.")
    return PropertySpec(
        name,
        event_type,
        aggregate,
        key,
        column,
        _filters(declaration.get("filters") or [], here),
        _moment(declaration.get("since"), f"{here}.since"),
        _moment(declaration.get("until"), f"{here}.until"),
        within,
        (between or DIFF_BETWEEN[0]) if aggregate == "diff" else None,
    )


def _filters(items: Any, here: str) -> tuple[PayloadFilter, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{here}: 'filters' must be a list of {{key, op, value}} mappings.")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) != {"key", "op", "value"}:
            raise ConfigError(f"{here}.filters[{i}] must be a mapping with exactly key, op and value.")
        if item["op"] not in OPERATORS:
            raise ConfigError(f"{here}.filters[{i}]: 'op' must be one of {OPERATORS}, not {item['op']!r}.")
        if not isinstance(item["key"], str) or not item["key"]:
            raise ConfigError(f"{here}.filters[{i}]: 'key' must be a payload key name.")
        value = item["value"]
        if item["op"] in ("greater", "less"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"{here}.filters[{i}]: op {item['op']} compares numbers, so 'value' must be a number."
                )
        elif isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{here}.filters[{i}]: 'value' must be a text or a number.")
        out.append(PayloadFilter(item["key"], item["op"], value))
    return tuple(out)


def _moment(value: Any, here: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{here} must be an ISO 8601 date or time like 2026-01-31, not {value!r}.") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def declared_properties(settings: EventSettings | None = None) -> list[PropertySpec]:
    """The properties declared under ``events.properties`` in the project config."""
    settings = settings or event_settings()
    return [
        property_spec(name, declaration, f"{settings.source}: events.properties")
        for name, declaration in settings.properties.items()
    ]


def profile_properties(
    db: Database,
    properties: Sequence[PropertySpec | Mapping[str, Any]] | Mapping[str, Mapping[str, Any]] | None = None,
    *,
    as_of: datetime | None = None,
    settings: EventSettings | None = None,
):
    """A DataFrame, one row per profile (profile_id, user_id, anonymous_id, then one column per
    property), computed in the database. ``properties`` default to the declared ones;
    ``as_of`` (UTC) anchors ``within_days``. The SQL that ran is in ``result.attrs["sql"]``."""
    settings = settings or event_settings()
    specs = _specs(properties, settings)
    if not specs:
        raise ConfigError(
            f"No profile properties to compute: declare some under events.properties in {settings.source} or pass them."
        )
    names = [s.name for s in specs]
    if len(set(names)) != len(names) or set(names) & {"profile_id", "user_id", "anonymous_id"}:
        raise ConfigError(f"Property names must be distinct and not profile_id, user_id or anonymous_id: got {names}.")
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
    windows = [as_of - timedelta(days=s.within_days) if s.within_days else None for s in specs]
    sql, params = profile_properties_query(settings.schema, db.dialect, specs, windows)
    frame = db.sql(sql, limit=None, **params)
    frame.attrs["sql"] = sql
    return frame


def refresh_property_values(db: SqlDatabase, settings: EventSettings | None = None) -> int:
    """Rewrite ``profile_property_values`` with the declared properties of every profile, in one
    transaction; the number of rows written (0, leaving the table alone, when none are declared)."""
    import pyarrow as pa

    from workbench.db.bulk_write import write_transaction

    settings = settings or event_settings()
    if not settings.properties:
        return 0
    frame = profile_properties(db, settings=settings)
    names = [c for c in frame.columns if c not in ("profile_id", "user_id", "anonymous_id")]
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(p, n, _as_text(v)) for n in names for p, v in zip(frame["profile_id"], frame[n])]
    table = pa.table(
        {
            "profile_id": pa.array([r[0] for r in rows], pa.string()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()),
            "computed_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
    with write_transaction(db) as writer:
        writer.execute(clear_property_values(settings.schema))
        writer.append(event_tables(settings.schema)["profile_property_values"], table)
    return len(rows)


def _as_text(value: Any) -> str | None:
    """A property value as text: None for nulls, ISO 8601 for times, JSON for lists, else str()."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([_as_text(v) for v in value])
    if value is None or pd.isna(value):
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _specs(properties: Any, settings: EventSettings) -> list[PropertySpec]:
    if properties is None:
        return declared_properties(settings)
    if isinstance(properties, Mapping):
        return [property_spec(name, d, "properties") for name, d in properties.items()]
    out = []
    for i, item in enumerate(properties):
        if isinstance(item, PropertySpec):
            out.append(item)
        elif isinstance(item, Mapping) and "name" in item:
            out.append(property_spec(item["name"], {k: v for k, v in item.items() if k != "name"}, "properties"))
        else:
            raise ConfigError(
                f"properties[{i}] must be a PropertySpec or a mapping with a name, not {type(item).__name__}."
            )
    return out
