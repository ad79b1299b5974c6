"""Where the study's tables live and how its SQL runs there.

The study's tables sit in ``public`` on a real copy of its database and in a schema of their own
(``ytdpnl`` by default) in the workbench's database, beside other areas' tables. Every query of
``sql/ytdpnl/`` is written with unqualified table names and runs with the search path set to the
validated schema name (``None``: the connection's own search path), so the same SQL file reads
both without any change to the study's database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, TypedDict

import pandas as pd
import sqlalchemy as sa

from workbench.db.connection import SqlDatabase, explain_error
from workbench.db.dialects import IDENTIFIER
from workbench.db.sql_files import read_sql, statements
from workbench.errors import DatabaseError, WorkbenchError, shown

WORKBENCH_SCHEMA = "ytdpnl"  # where the generator writes the workbench's own copy
FAR_PAST, FAR_FUTURE = pd.Timestamp("1970-01-01"), pd.Timestamp("9999-12-31")


def study_schema(schema: str | None) -> str | None:
    """``schema`` checked as a plain SQL identifier (``None`` keeps the connection's search path)."""
    if schema is None:
        return None
    if not isinstance(schema, str) or not IDENTIFIER.match(schema):
        raise WorkbenchError(
            f"schema={shown(schema)} is not a plain SQL identifier: use letters, digits and underscores (at most 63), e.g. 'ytdpnl' or 'public'."
        )
    return schema


class StudyScope(TypedDict, total=False):
    """The keyword filters every study analysis takes: ``schema`` (where the tables are), ``codes``
    (a participant subset) and ``start``/``end`` (the time window, start included, end excluded)."""

    schema: str | None
    codes: Iterable[str] | None
    start: Any
    end: Any


def codes_parameter(codes: Iterable[str] | None) -> dict[str, Any]:
    """Bound values for the ``(:all_codes OR p.code IN :codes)`` participant filter of the SQL files."""
    if codes is None:
        return {"all_codes": True, "codes": [""]}
    if isinstance(codes, str):
        codes = [codes]
    values = [str(c) for c in codes]
    return {"all_codes": False, "codes": values or [""]}


def time_window(start: Any = None, end: Any = None) -> dict[str, pd.Timestamp]:
    """``start`` (inclusive) and ``end`` (exclusive) as timestamps; missing bounds are far away.

    A bare date as ``end`` means the end of that day (the day is included)."""
    lower = FAR_PAST if start is None else timestamp_argument(start, "start")
    upper = FAR_FUTURE if end is None else timestamp_argument(end, "end")
    if end is not None and _is_day(end):
        upper += pd.Timedelta(days=1)
    if upper <= lower:
        raise WorkbenchError(f"The time window is empty: end ({end}) must come after start ({start}).")
    return {"start": lower.to_pydatetime(), "end": upper.to_pydatetime()}


def timestamp_argument(value: Any, name: str) -> pd.Timestamp:
    """``value`` as a timestamp, or one sentence naming the argument (never NaT or a year before 1)."""
    try:
        stamp = pd.Timestamp(value)
        stamp.to_pydatetime()
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise WorkbenchError(
            f"{name}={shown(value)} is not a date: write YYYY-MM-DD or an ISO timestamp such as 2023-02-01 12:00."
        )
    return stamp


def _is_day(value: Any) -> bool:
    return (isinstance(value, str) and len(value.strip()) == 10) or (
        isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    )


def study_query(db: SqlDatabase, name: str, schema: str | None = None, **params: Any) -> pd.DataFrame:
    """Run ``sql/ytdpnl/<name>.sql`` in ``schema`` with bound ``params``; ``attrs["sql"]`` holds the SQL.

    A ``codes`` list is bound as an expanding ``IN`` list.
    """
    return run_study_sql(db, read_sql(f"ytdpnl/{name}.sql"), schema, **params)


def scoped_query(db: SqlDatabase, name: str, scope: StudyScope, **params: Any) -> pd.DataFrame:
    """:func:`study_query` of ``name`` with the filters of ``scope`` bound (codes and the time window
    as ``:all_codes``/``:codes`` and ``:start``/``:end``); an unknown filter is refused."""
    unknown = sorted(set(scope) - set(StudyScope.__annotations__))
    if unknown:
        raise WorkbenchError(
            f"{', '.join(unknown)} is not a filter of the study's analyses: use schema, codes, start or end."
        )
    window = time_window(scope.get("start"), scope.get("end"))
    return study_query(db, name, scope.get("schema"), **window, **codes_parameter(scope.get("codes")), **params)


def run_study_sql(db: SqlDatabase, sql: str, schema: str | None = None, **params: Any) -> pd.DataFrame:
    """Run ``sql`` (a study SQL file's text, possibly wrapped) as :func:`study_query` does."""
    schema = study_schema(schema)
    statement = sa.text(sql)
    if "codes" in params:
        statement = statement.bindparams(sa.bindparam("codes", expanding=True))
    try:
        with db.engine.begin() as conn:
            if schema:
                conn.exec_driver_sql(db.dialect.set_search_path(schema))
            try:
                result = conn.execute(statement, params)
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            finally:
                if schema and (reset := db.dialect.reset_search_path()):
                    conn.exec_driver_sql(reset)
    except sa.exc.SQLAlchemyError as exc:
        error = explain_error(exc, db)
        low = str(error).lower()
        if ("does not exist" in low or "no catalog + schema" in low) and (
            "table" in low or "relation" in low or "schema" in low
        ):
            where = f"schema {schema!r}" if schema else "the connection's search path"
            raise DatabaseError(
                f"The study's tables are not in {where} of {db.settings.display_url}: pass schema= naming the schema that holds them "
                f"(e.g. 'public' on a real copy) or create them with `workbench study generate`. ({str(error).split('(', 1)[-1].rstrip(')')})"
            ) from None
        raise error from None
    frame.attrs["sql"] = sql
    return frame


def schema_statements(db: SqlDatabase) -> list[str]:
    """The DDL statements of the study for ``db``'s dialect (``sql/ytdpnl/schema_<dialect>.sql``)."""
    return statements(f"ytdpnl/schema_{db.dialect.name}.sql")


STUDY_TABLES = (
    "voucher",
    "transition_event",
    "transition_setting",
    "daily_activity_time",
    "video_metadata",
    "video_list_item",
    "video",
    "watch_time",
    "event",
    "session",
    "experiment_config",
    "participant",
    "unusable_channel",
    "channel_rotation_speed_setting",
    "channel_source_item",
    "channel_source",
    "admin",
)
STUDY_TYPES = ("experimentarm", "eventtype", "listtype", "videotype", "transitionreason", "operatortype")
