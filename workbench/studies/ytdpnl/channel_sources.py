"""The channel sources behind the injected home-page tiles: where treatment participants stand
in them, how fast they rotate, and which channels the extension found unusable.

Production keeps only each participant's current position and when it last moved
(``pos_in_channel_source_last_updated_at``), so positions are a snapshot; the rotation speed
keeps its whole history, and the replacement pools of the home pages show the rotation day by day
(:func:`pool_channels`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.studies.ytdpnl.tables import (
    StudyScope,
    codes_parameter,
    scoped_query,
    study_query,
    timestamp_argument,
)

DEFAULT_SPEED_HOURS = 24.0  # production's rotation speed when no setting exists


def channel_positions(
    db: SqlDatabase, as_of: Any = None, *, schema: str | None = None, codes: Iterable[str] | None = None
) -> pd.DataFrame:
    """One row per channel source and position: channel_source_id, title, is_default, position,
    youtube_channel_id (None past a source's items), is_last, unusable_since (None when usable),
    participants (treatment, a missing channel_source_id reading the default source),
    participants_due (in phase 0 or 1 and last moved at least speed_hours before ``as_of``, default
    now in UTC: production moves them when the extension next asks for their channel),
    first_moved_at, last_moved_at and speed_hours (the current setting, 24 when none)."""
    moment = pd.Timestamp.now(tz="UTC").tz_localize(None) if as_of is None else timestamp_argument(as_of, "as_of")
    frame = study_query(db, "channel_positions", schema, as_of=moment.to_pydatetime(), **codes_parameter(codes))
    for column in ("channel_source_id", "position", "participants", "participants_due"):
        frame[column] = frame[column].astype("int64")
    frame["is_last"] = frame["is_last"].astype(bool)
    channels = frame["youtube_channel_id"].astype(object)
    frame["youtube_channel_id"] = channels.where(channels.notna(), None)
    frame["speed_hours"] = frame["speed_hours"].astype("float64")
    for column in ("unusable_since", "first_moved_at", "last_moved_at"):
        frame[column] = pd.to_datetime(frame[column])
    frame.attrs["as_of"] = moment
    return frame


def rotation_speeds(db: SqlDatabase, *, schema: str | None = None) -> pd.DataFrame:
    """Every rotation speed setting in the order set: id, speed_hours, is_current, set_at and
    replaced_at (NaT for the latest). Empty: production rotates every 24 hours."""
    frame = study_query(db, "rotation_speeds", schema)
    frame["speed_hours"] = frame["speed_hours"].astype("float64")
    frame["is_current"] = frame["is_current"].astype(bool)
    for column in ("set_at", "replaced_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def unusable_channels(
    db: SqlDatabase, *, schema: str | None = None, codes: Iterable[str] | None = None
) -> pd.DataFrame:
    """Unusable channels in the order marked: id, youtube_channel_id, marked_at, and per channel
    source still listing it its channel_source_id and position (<NA> when none does) with
    participants_there (treatment participants currently at that position)."""
    frame = study_query(db, "unusable_channels", schema, **codes_parameter(codes))
    frame["marked_at"] = pd.to_datetime(frame["marked_at"])
    for column in ("channel_source_id", "position"):
        frame[column] = frame[column].astype("Int64")
    frame["participants_there"] = frame["participants_there"].astype("int64")
    return frame


def pool_channels(db: SqlDatabase, **scope: Unpack[StudyScope]) -> pd.DataFrame:
    """Per participant (code), arm, phase, day and channel (None: videos without metadata): the
    home pages whose replacement pool (``HOME_REPLACEMENT_SOURCE``) held that channel's videos
    (home_shown) and how many pool items were its (pool_videos), day by day; ``scope`` as for
    :func:`~workbench.studies.ytdpnl.home_page.home_page_sums`."""
    frame = scoped_query(db, "pool_channels", scope)
    frame["arm"] = frame["arm"].astype(str)
    frame["day"] = pd.to_datetime(frame["day"])
    channels = frame["youtube_channel_id"].astype(object)
    frame["youtube_channel_id"] = channels.where(channels.notna(), None)
    for column in ("phase", "home_shown", "pool_videos"):
        frame[column] = frame[column].astype("int64")
    return frame
