"""The seed's analyses of the study, each one SQL file of ``sql/ytdpnl/`` run in the database.

Every function takes a :class:`~workbench.db.connection.SqlDatabase` first and returns a small
DataFrame whose ``attrs["sql"]`` holds what ran. Common keyword arguments: ``schema`` (where the
study's tables are; None = the connection's search path, e.g. ``public`` on a real copy),
``codes`` (a participant subset; None = everyone), ``start``/``end`` (a time window, start
included, end excluded; a bare date as end includes that day). Values are always bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.errors import WorkbenchError
from workbench.studies.ytdpnl.daily_rules import FIGURES
from workbench.studies.ytdpnl.tables import codes_parameter, study_query, time_window

REPORT_TIMES = (
    "activated_browser_extension_at",
    "entered_intervention_at",
    "entered_post_intervention_at",
    "was_reset_to_pre_intervention_at",
)
PARTICIPANT_TIMES = ("extension_activated_at", "pos_in_channel_source_last_updated_at", "created_at", "updated_at")
LIST_COLUMNS = {"NON_PERSONALIZED": "non_personalized", "PERSONALIZED": "personalized", "SHOWN": "shown"}
FLOAT_TOLERANCE = 1e-3  # seconds: stored figures are float4 (real)


def epoch_milliseconds(values: pd.Series) -> pd.Series:
    """UTC timestamps as Unix epoch milliseconds (``Int64``, null stays null), as JavaScript's getTime()."""
    stamps = pd.to_datetime(values)
    out = pd.Series(pd.NA, index=values.index, dtype="Int64")
    present = stamps.notna()
    out[present] = (stamps[present].astype("datetime64[ms]").astype("int64")).astype("Int64")
    return out


def participants_report(
    db: SqlDatabase, *, schema: str | None = None, codes: Iterable[str] | None = None
) -> pd.DataFrame:
    """Rows of the seed's ``ParticipantsReportRow``: identifier (the code), phase,
    activated_browser_extension_at and the latest transition (by id) to phases 1, 2 and 0, in epoch ms.
    A transition's time is its ``updated_at``, as production's participantsGetReport takes it."""
    frame = study_query(db, "participants_report", schema, **codes_parameter(codes))
    for column in REPORT_TIMES:
        frame[column] = epoch_milliseconds(frame[column])
    frame["phase"] = frame["phase"].astype("int64")
    return frame


def participants(db: SqlDatabase, *, schema: str | None = None, codes: Iterable[str] | None = None) -> pd.DataFrame:
    """The participants in id order, every column production's Participant entity sends: id, code,
    arm, phase, is_paid, extension_installed, extension_activated_at, channel_source_id (<NA>: the
    default source), pos_in_channel_source, pos_in_channel_source_last_updated_at, created_at, updated_at."""
    frame = study_query(db, "participants", schema, **codes_parameter(codes))
    frame["phase"] = frame["phase"].astype("int64")
    frame["pos_in_channel_source"] = frame["pos_in_channel_source"].astype("int64")
    frame["channel_source_id"] = frame["channel_source_id"].astype("Int64")
    for column in ("is_paid", "extension_installed"):
        frame[column] = frame[column].astype(bool)
    return millisecond_timestamps(frame, PARTICIPANT_TIMES)


def millisecond_timestamps(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``columns`` as ``datetime64[ms]`` (the study stores JavaScript Date.now() times), in place."""
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ms]")
    return frame


def participant_overview(
    db: SqlDatabase,
    min_pages: int = 10,
    *,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """The seed's overview of participants with at least ``min_pages`` distinct page urls viewed
    (sessions created in the window): n_sessions, first_session, last_session, n_pages_viewed,
    pages_per_session, and clicks by kind (n_non_personalized_clicked, n_personalized_clicked,
    n_mixed_clicked, n_home_injected_tile_clicked)."""
    if int(min_pages) != min_pages or min_pages < 0:
        raise WorkbenchError(f"min_pages must be a whole number of pages >= 0, got {min_pages!r}.")
    frame = study_query(
        db,
        "participant_overview",
        schema,
        min_pages=int(min_pages),
        **time_window(start, end),
        **codes_parameter(codes),
    )
    frame["arm"] = frame["arm"].astype(str)
    for column in frame.columns:
        if column.startswith("n_"):
            frame[column] = frame[column].astype("int64")
    return frame


def participant_summary(
    db: SqlDatabase, code: str, *, schema: str | None = None, start: Any = None, end: Any = None
) -> pd.DataFrame:
    """One row per session of participant ``code`` (latest first): session_id, session_uuid,
    created_at, started_at and ended_at (first and last event), event_count. ``attrs`` also holds
    n_sessions, first_session and latest_session as GET /api/participant/:code gives them."""
    frame = study_query(db, "participant_summary", schema, code=str(code), **time_window(start, end))
    frame["event_count"] = frame["event_count"].astype("int64")
    frame["session_uuid"] = frame["session_uuid"].astype(str)
    millisecond_timestamps(frame, ["created_at", "started_at", "ended_at"])
    frame.attrs.update(
        n_sessions=len(frame),
        first_session=frame["created_at"].min() if len(frame) else None,
        latest_session=frame["created_at"].max() if len(frame) else None,
    )
    return frame


def _positive_limit(limit: int) -> int:
    if int(limit) != limit or limit < 1:
        raise WorkbenchError(f"limit must be a positive whole number of rows, got {limit!r}.")
    return int(limit)


def latest_sessions(db: SqlDatabase, code: str, limit: int = 50, *, schema: str | None = None) -> pd.DataFrame:
    """The seed's latest sessions of participant ``code``: code, session_id, session_uuid, created_at (latest first)."""
    frame = study_query(db, "latest_sessions", schema, code=str(code), limit=_positive_limit(limit))
    frame["session_uuid"] = frame["session_uuid"].astype(str)
    return millisecond_timestamps(frame, ["created_at"])


def latest_watch_times(db: SqlDatabase, code: str, limit: int = 50, *, schema: str | None = None) -> pd.DataFrame:
    """The seed's watch times of the latest videos of participant ``code``: code, event_id, url, created_at, seconds_watched."""
    frame = study_query(db, "latest_watch_times", schema, code=str(code), limit=_positive_limit(limit))
    frame["seconds_watched"] = frame["seconds_watched"].astype("float64")
    return millisecond_timestamps(frame, ["created_at"])


def latest_recommendations(db: SqlDatabase, code: str, limit: int = 50, *, schema: str | None = None) -> pd.DataFrame:
    """The seed's latest recommendation items shown to participant ``code`` with their videos:
    code, event_id, url, created_at, list_type, video_type, position, video_id, youtube_id, title, video_url."""
    frame = study_query(db, "latest_recommendations", schema, code=str(code), limit=_positive_limit(limit))
    return millisecond_timestamps(frame, ["created_at"])


def session_events(db: SqlDatabase, session_uuid: str, *, schema: str | None = None) -> pd.DataFrame:
    """The events of one session newest first: id, type, url, context, arm, phase, created_at,
    seconds_watched (WATCH_TIME) and, for RECOMMENDATIONS_SHOWN, the lists ``non_personalized``,
    ``personalized`` and ``shown`` (lists of dicts youtube_id, url, title, video_type, by position)."""
    _check_uuid(session_uuid)
    frame = study_query(db, "session_events", schema, session_uuid=str(session_uuid))
    items = study_query(db, "session_event_lists", schema, session_uuid=str(session_uuid))
    frame["type"], frame["arm"] = frame["type"].astype(str), frame["arm"].astype(str)
    frame["phase"] = frame["phase"].astype("int64")
    frame["seconds_watched"] = frame["seconds_watched"].astype("float64")
    millisecond_timestamps(frame, ["created_at"])
    lists: dict[tuple[int, str], list[dict]] = {}
    for row in items.itertuples(index=False):
        lists.setdefault((int(row.event_id), str(row.list_type)), []).append(
            {"youtube_id": row.youtube_id, "url": row.url, "title": row.title, "video_type": str(row.video_type)}
        )
    for list_type, column in LIST_COLUMNS.items():
        frame[column] = [
            lists.get((int(i), list_type), []) if t == "RECOMMENDATIONS_SHOWN" else None
            for i, t in zip(frame["id"], frame["type"])
        ]
    frame.attrs["sql"] = frame.attrs["sql"] + "\n;\n" + items.attrs["sql"]
    return frame


def _check_uuid(value: str) -> None:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        raise WorkbenchError(
            f"session_uuid={value!r} is not a UUID: pass a session's uuid (e.g. from participant_summary)."
        ) from None


def daily_activity(
    db: SqlDatabase,
    *,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Per participant and day: the five figures recomputed from raw events with the server's
    rules, the stored ``stored_*`` figures of daily_activity_time, and ``matches`` (every figure
    equal, real-valued ones within 1e-3 s; False when the day is missing on either side)."""
    frame = study_query(db, "daily_activity", schema, **time_window(start, end), **codes_parameter(codes))
    frame["day"] = pd.to_datetime(frame["day"])
    matches = pd.Series(True, index=frame.index)
    for column in FIGURES:
        recomputed = frame[column].astype("float64")
        stored = frame[f"stored_{column}"].astype("float64")
        frame[column], frame[f"stored_{column}"] = recomputed, stored
        matches &= (recomputed - stored).abs().le(FLOAT_TOLERANCE * np.maximum(1.0, stored.abs())).fillna(False)
    frame["matches"] = matches.astype(bool)
    return frame


def transition_audit(
    db: SqlDatabase,
    by: str = "transition",
    *,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Which days met each transition's ANY/ALL thresholds (``by="day"``: one row per transition
    and stored day of the phase it ends, with ``matched``), or per transition (``by="transition"``):
    stored num_days and figures beside matching_days and the recomputed sums over matching days,
    and ``consistent`` (AUTOMATIC only: matching days = num_days = min_days and equal sums)."""
    if by not in ("transition", "day"):
        raise WorkbenchError(f"by={by!r} is not a transition_audit view: use 'transition' or 'day'.")
    days = study_query(db, "transition_audit", schema, **time_window(start, end), **codes_parameter(codes))
    for column in ("reason", "operator"):
        days[column] = days[column].astype(object).where(days[column].isna(), days[column].astype(str))
    if by == "day":
        return days
    keys = [
        "transition_event_id",
        "participant_id",
        "code",
        "reason",
        "from_phase",
        "to_phase",
        "transitioned_at",
        "entry_day",
        "transition_day",
        "operator",
        "min_days",
        "num_days",
        *FIGURES,
    ]
    matched = days[days["matched"].fillna(False).astype(bool)]
    sums = matched.groupby("transition_event_id")[[f"day_{c}" for c in FIGURES]].sum()
    counts = matched.groupby("transition_event_id").size().rename("matching_days")
    frame = days[keys].drop_duplicates("transition_event_id").set_index("transition_event_id")
    frame = frame.join(counts).join(sums.rename(columns={f"day_{c}": f"matched_{c}" for c in FIGURES})).reset_index()
    frame["matching_days"] = frame["matching_days"].fillna(0).astype("int64")
    for column in FIGURES:
        frame[f"matched_{column}"] = frame[f"matched_{column}"].fillna(0.0).astype("float64")
    automatic = frame["reason"] == "AUTOMATIC"
    same_sums = np.logical_and.reduce(
        [
            (frame[c].astype("float64") - frame[f"matched_{c}"]).abs()
            <= FLOAT_TOLERANCE * np.maximum(1.0, frame[c].astype("float64").abs())
            for c in FIGURES
        ]
    )
    consistent = (frame["matching_days"] == frame["num_days"]) & (frame["num_days"] == frame["min_days"]) & same_sums
    frame["consistent"] = pd.Series(consistent, dtype="boolean").where(automatic, pd.NA)
    frame.attrs["sql"] = days.attrs["sql"]
    return frame


def monitoring(
    db: SqlDatabase,
    start: Any = None,
    end: Any = None,
    *,
    top: int = 10,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Page views in the window: section 'total' (key 'all'), 'path_type' (home, watch, search,
    channel, other) and the ``top`` most viewed 'url's, each with page_views, share of all page
    views and active_participants."""
    if int(top) != top or top < 1:
        raise WorkbenchError(f"top must be a positive whole number of urls, got {top!r}.")
    frame = study_query(db, "monitoring", schema, top=int(top), **time_window(start, end), **codes_parameter(codes))
    for column in ("page_views", "active_participants", "rank_in_section"):
        frame[column] = frame[column].astype("int64")
    frame["share"] = frame["share"].astype("float64")
    return frame
