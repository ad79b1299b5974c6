"""Every SQL statement of the event store, qualified with the validated ``events.schema``.

Fixed statements come from ``sql/events/*.sql`` (``{schema}`` replaced by the schema name);
the others are built here from validated identifiers. Values are always bound parameters
(``:name``); the only identifiers spliced in are the schema name, table and column names from
fixed lists, and property names checked against :data:`workbench.events.settings.NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.db.dialects import Dialect
from workbench.db.sql_files import TableDefinition, statements, table_definitions

SCHEMA_FILE = "events/schema.sql"
# indexes on columns that identity resolution updates: only where such indexes are cheap (Dialect.cheap_index_updates)
UPDATED_COLUMN_INDEXES_FILE = "events/indexes_postgresql.sql"
RESOLVE_FILE = "events/resolve_batch.sql"
STAGED_EVENTS = "workbench_staged_events"
STAGED_DATA = "workbench_staged_event_data"
RESOLVE_TEMP_TABLES = (
    "resolve_batch",
    "resolve_new_users",
    "resolve_relinked",
    "resolve_held",
    "resolve_new_anonymous",
    "resolve_assigned",
)
TIME_BUCKETS = ("minute", "hour", "day", "month")
EVENT_COLUMNS = ("id", "producer_id", "profile_id", "type", "user_id", "anonymous_id", "ip_address", "occurred_at")
_INDEX = re.compile(r"^CREATE\s+(UNIQUE\s+)?INDEX\s+(\w+)\s+ON\s+(\w+)\s*(\(.*\))$", re.IGNORECASE | re.DOTALL)
# A decimal number, as text; anything else is NULL when a payload value is read as a number.
NUMBER_PATTERN = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def event_tables(schema: str) -> dict[str, TableDefinition]:
    """The store's tables by unqualified name, each named ``schema.table`` for writing."""
    return {name: TableDefinition(f"{schema}.{name}", t.columns) for name, t in table_definitions(SCHEMA_FILE).items()}


def schema_statements(schema: str, dialect: Dialect) -> list[str]:
    """Idempotent DDL creating the schema, its tables and the reference's indexes on ``dialect``."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {schema}"]
    out += [
        t.create_statement().replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
        for t in event_tables(schema).values()
    ]
    extra = statements(UPDATED_COLUMN_INDEXES_FILE) if dialect.cheap_index_updates else []
    for statement in statements(SCHEMA_FILE) + extra:
        if match := _INDEX.match(statement):
            unique, index, table, columns = match.groups()
            out.append(f"CREATE {unique or ''}INDEX IF NOT EXISTS {index} ON {schema}.{table} {columns}")
    return out


def resolve_batch_statements(schema: str) -> list[str]:
    """The ordered statements of one identity-resolution batch (binds ``:now``, ``:batch_size``)."""
    return [s.replace("{schema}", schema) for s in statements(RESOLVE_FILE)]


def resolve_batch_size() -> str:
    return "SELECT count(*) FROM resolve_batch"


def drop_temp_tables(names: Sequence[str]) -> list[str]:
    return [f"DROP TABLE IF EXISTS {name}" for name in names]


def staging_statements(schema: str, dialect: Dialect) -> list[str]:
    """Empty temporary copies of ``events`` and ``event_data`` to receive one ingestion batch.

    Where the dialect has ``ON COMMIT DROP`` (PostgreSQL) they drop themselves at commit (after
    the bulk writer's ANALYZE); elsewhere (DuckDB) :func:`store_staged_statements` drops them.
    """
    on_commit = " ON COMMIT DROP" if dialect.on_commit_drop else ""
    return [
        *drop_temp_tables([STAGED_EVENTS, STAGED_DATA]),
        f"CREATE TEMP TABLE {STAGED_EVENTS}{on_commit} AS SELECT * FROM {schema}.events WHERE 1 = 0",
        f"CREATE TEMP TABLE {STAGED_DATA}{on_commit} AS SELECT * FROM {schema}.event_data WHERE 1 = 0",
    ]


def store_staged_statements(schema: str, dialect: Dialect) -> tuple[list[str], str, list[str]]:
    """(drop events already stored, count what is left, store it and drop the staging).

    Stored already: the producer's ``message_id``, or for an event without one its derived ``id``
    (:func:`workbench.events.ingest.derived_event_id`). Both run for every batch, whatever it holds.
    """
    events_columns = ", ".join(event_tables(schema)["events"].column_names)
    data_columns = ", ".join(event_tables(schema)["event_data"].column_names)
    drop_duplicates = [
        (
            f"DELETE FROM {STAGED_EVENTS} WHERE message_id IS NOT NULL AND EXISTS ("
            f"SELECT 1 FROM {schema}.events e WHERE e.producer_id = {STAGED_EVENTS}.producer_id "
            f"AND e.message_id = {STAGED_EVENTS}.message_id)"
        ),
        (
            f"DELETE FROM {STAGED_EVENTS} WHERE message_id IS NULL AND EXISTS ("
            f"SELECT 1 FROM {schema}.events e WHERE e.id = {STAGED_EVENTS}.id)"
        ),
    ]
    store = [
        f"INSERT INTO {schema}.events ({events_columns}) SELECT {events_columns} FROM {STAGED_EVENTS}",
        (
            f"INSERT INTO {schema}.event_data ({data_columns}) SELECT {data_columns} FROM {STAGED_DATA} "
            f"WHERE event_id IN (SELECT id FROM {STAGED_EVENTS})"
        ),
        *(drop_temp_tables([STAGED_EVENTS, STAGED_DATA]) if not dialect.on_commit_drop else []),
    ]
    return drop_duplicates, f"SELECT count(*) FROM {STAGED_EVENTS}", store


def last_progress_query(schema: str) -> str:
    """The latest committed position of ``:producer`` in ``:source`` (line, byte_offset, prefix_sha256)."""
    return (
        f"SELECT line, byte_offset, prefix_sha256 FROM {schema}.ingest_progress "
        f"WHERE producer_id = :producer AND source = :source ORDER BY committed_at DESC, line DESC LIMIT 1"
    )


def api_key_statements(schema: str) -> dict[str, str]:
    """The ``api_keys`` table's statements by use: ``insert`` (binds :id, :name, :key_sha256, :now),
    ``active_by_name`` (:name), ``producer_of`` (:key_sha256), ``listing``, ``revoke`` (:name, :now)."""
    table = f"{schema}.api_keys"
    return {
        "insert": f"INSERT INTO {table} (id, name, key_sha256, created_at) VALUES (:id, :name, :key_sha256, :now)",
        "active_by_name": f"SELECT id FROM {table} WHERE name = :name AND revoked_at IS NULL",
        "producer_of": f"SELECT name FROM {table} WHERE key_sha256 = :key_sha256 AND revoked_at IS NULL",
        "listing": f"SELECT name, created_at, revoked_at FROM {table} ORDER BY created_at, name",
        "revoke": f"UPDATE {table} SET revoked_at = :now WHERE name = :name AND revoked_at IS NULL",
    }


def clear_property_values(schema: str) -> str:
    """Empties ``profile_property_values`` before a refresh writes it again (same transaction)."""
    return f"DELETE FROM {schema}.profile_property_values"


def numeric(expression: str, dialect: Dialect) -> str:
    """``expression`` (text) as a double, NULL when it is not a decimal number."""
    return f"CASE WHEN {dialect.full_match(expression, NUMBER_PATTERN)} THEN CAST({expression} AS {dialect.double_type}) END"


# ---------------------------------------------------------------- exploration


def catalogue_types(schema: str) -> str:
    return (
        f"SELECT type, count(*) AS events, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen "
        f"FROM {schema}.events GROUP BY type ORDER BY type"
    )


def catalogue_keys(schema: str) -> str:
    return (
        f"SELECT e.type, d.key, min(d.value) AS example, count(*) AS events "
        f"FROM {schema}.events e JOIN {schema}.event_data d ON d.event_id = e.id "
        f"GROUP BY e.type, d.key ORDER BY e.type, d.key"
    )


def event_counts_query(
    schema: str, by: str, start: Any, end: Any, types: Sequence[str] | None
) -> tuple[str, dict[str, Any]]:
    """Events per ``by`` bucket and type; ``by`` was checked against :data:`TIME_BUCKETS`."""
    where, params = ["1 = 1"], {}
    if start is not None:
        where.append("occurred_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("occurred_at < :end")
        params["end"] = end
    if types:
        names = [f"type_{i}" for i in range(len(types))]
        where.append(f"type IN ({', '.join(':' + n for n in names)})")
        params.update(zip(names, types))
    sql = (
        f"SELECT date_trunc('{by}', occurred_at) AS bucket, type, count(*) AS events "
        f"FROM {schema}.events WHERE {' AND '.join(where)} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return sql, params


def profile_of_identity(schema: str) -> str:
    return f"SELECT profile_id FROM {schema}.profile_identities WHERE kind = :kind AND value = :value"


def profile_stream_query(schema: str) -> str:
    return (
        f"SELECT e.id, e.type, e.occurred_at, e.user_id, e.anonymous_id, e.producer_id, d.key, d.value "
        f"FROM {schema}.events e LEFT JOIN {schema}.event_data d ON d.event_id = e.id "
        f"WHERE e.profile_id = :profile_id ORDER BY e.occurred_at, e.id, d.key"
    )


def busiest_profiles_query(schema: str) -> str:
    return (
        f"SELECT p.id AS profile_id, p.user_id, p.anonymous_id, count(e.id) AS events, "
        f"(SELECT count(*) FROM {schema}.profile_identities i WHERE i.profile_id = p.id AND i.kind = 'anonymous_id') AS anonymous_ids, "
        f"min(e.occurred_at) AS first_seen, max(e.occurred_at) AS last_seen "
        f"FROM {schema}.profiles p JOIN {schema}.events e ON e.profile_id = p.id "
        f"GROUP BY p.id, p.user_id, p.anonymous_id ORDER BY events DESC, p.id LIMIT :row_limit"
    )


def unassociated_query(schema: str) -> tuple[str, str]:
    """(count of events without a profile, the oldest ``:row_limit`` of them)."""
    return (
        f"SELECT count(*) AS events FROM {schema}.events WHERE profile_id IS NULL",
        (
            f"SELECT id, type, user_id, anonymous_id, occurred_at, created_at, producer_id FROM {schema}.events "
            f"WHERE profile_id IS NULL ORDER BY occurred_at, id LIMIT :row_limit"
        ),
    )


def store_counts_query(schema: str) -> str:
    return (
        f"SELECT (SELECT count(*) FROM {schema}.events) AS events, "
        f"(SELECT count(*) FROM {schema}.events WHERE profile_id IS NULL) AS unassociated, "
        f"(SELECT count(*) FROM {schema}.profiles) AS profiles, "
        f"(SELECT count(*) FROM {schema}.profile_merges) AS merges"
    )


# ---------------------------------------------------------------- profile properties


@dataclass
class _Params:
    """Bound values collected while building one query, each under a fresh name."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}_{len(self.values)}"
        self.values[name] = value
        return ":" + name


def profile_properties_query(
    schema: str, dialect: Dialect, properties: Sequence[Any], window_starts: Sequence[Any]
) -> tuple[str, dict[str, Any]]:
    """One row per profile with one column per property (validated :class:`PropertySpec` objects).

    ``window_starts[i]`` is the lower occurred_at bound of property ``i``'s "last N days" rule
    (or None), computed by the caller from its reference time.
    """
    params = _Params()
    selects, joins = ["p.id AS profile_id", "p.user_id", "p.anonymous_id"], []
    for i, (spec, window_start) in enumerate(zip(properties, window_starts)):
        alias = f"q{i}"
        sub = _property_subquery(schema, dialect, spec, window_start, params)
        joins.append(f"LEFT JOIN ({sub}) {alias} ON {alias}.profile_id = p.id")
        value = f"COALESCE({alias}.value, 0)" if spec.aggregate == "count" else f"{alias}.value"
        selects.append(f'{value} AS "{spec.name}"')
    sql = f"SELECT {', '.join(selects)} FROM {schema}.profiles p {' '.join(joins)} ORDER BY p.id"
    return sql, params.values


def _property_subquery(schema: str, dialect: Dialect, spec: Any, window_start: Any, params: _Params) -> str:
    where = [f"e.type = {params.bind('type', spec.type)}", "e.profile_id IS NOT NULL"]
    if spec.since is not None:
        where.append(f"e.occurred_at >= {params.bind('since', spec.since)}")
    if spec.until is not None:
        where.append(f"e.occurred_at < {params.bind('until', spec.until)}")
    if window_start is not None:
        where.append(f"e.occurred_at >= {params.bind('window', window_start)}")
    for f in spec.filters:
        where.append(_payload_filter(schema, dialect, f, params))
    source = f"{schema}.events e"
    if spec.key is not None:
        source += f" JOIN {schema}.event_data v ON v.event_id = e.id AND v.key = {params.bind('key', spec.key)}"
        value = "v.value"
    elif spec.column is not None:
        value = f"e.{spec.column}"
        where.append(f"e.{spec.column} IS NOT NULL")
    else:
        value = "NULL"
    conditions = " AND ".join(where)
    if spec.aggregate == "count":
        return f"SELECT e.profile_id, count(*) AS value FROM {source} WHERE {conditions} GROUP BY e.profile_id"
    if spec.aggregate in ("sum", "avg", "min", "max"):
        return f"SELECT e.profile_id, {spec.aggregate}({numeric(value, dialect)}) AS value FROM {source} WHERE {conditions} GROUP BY e.profile_id"
    if spec.aggregate == "diff":
        number = numeric(value, dialect)
        other = "oldest = 1" if spec.between == "earliest_and_latest" else "newest = 2"
        return (
            f"SELECT profile_id, max(CASE WHEN newest = 1 THEN number END) - max(CASE WHEN {other} THEN number END) "
            f"AS value FROM (SELECT e.profile_id, {number} AS number, "
            f"row_number() OVER (PARTITION BY e.profile_id ORDER BY e.occurred_at DESC, e.id DESC) AS newest, "
            f"row_number() OVER (PARTITION BY e.profile_id ORDER BY e.occurred_at, e.id) AS oldest "
            f"FROM {source} WHERE {conditions} AND {number} IS NOT NULL) ranked GROUP BY profile_id"
        )
    if spec.aggregate == "all_values":
        return f"SELECT e.profile_id, array_agg({value} ORDER BY e.occurred_at, e.id) AS value FROM {source} WHERE {conditions} GROUP BY e.profile_id"
    direction = "DESC" if spec.aggregate == "most_recent" else "ASC"
    return (
        f"SELECT profile_id, value FROM (SELECT e.profile_id, {value} AS value, row_number() OVER ("
        f"PARTITION BY e.profile_id ORDER BY e.occurred_at {direction}, e.id {direction}) AS position "
        f"FROM {source} WHERE {conditions}) ranked WHERE position = 1"
    )


def _payload_filter(schema: str, dialect: Dialect, f: Any, params: _Params) -> str:
    """An EXISTS over the event's payload: events lacking the key never match."""
    key = params.bind("filter_key", f.key)
    if f.op in ("greater", "less"):
        test = f"{numeric('f.value', dialect)} {'>' if f.op == 'greater' else '<'} {params.bind('filter_value', float(f.value))}"
    else:
        value = params.bind("filter_value", str(f.value))
        test = {
            "equals": f"f.value = {value}",
            "not_equals": f"f.value <> {value}",
            "contains": f"strpos(f.value, {value}) > 0",
            "not_contains": f"strpos(f.value, {value}) = 0",
        }[f.op]
    return f"EXISTS (SELECT 1 FROM {schema}.event_data f WHERE f.event_id = e.id AND f.key = {key} AND {test})"
