"""The home-page experiment per arm and phase: how often the home page was shown, where its tiles
came from and how often an injected tile was clicked (``sql/ytdpnl/home_page.sql``).

Arm and phase are the event's own (the participant's at the time of the event); a unit is a
participant with at least one event of that arm and phase in the window, and phase ``"all"``
gathers a participant's events of that arm in every phase.
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.studies.ytdpnl.tables import StudyScope, scoped_query

COUNTS = ("participants", "participants_shown_home")


def home_page_sums(db: SqlDatabase, **scope: Unpack[StudyScope]) -> pd.DataFrame:
    """Per arm and phase (text: ``"0"``, ``"1"``, ``"2"``, ``"all"``): the units and the per-unit
    sums, sums of squares and products of home_shown, shown/default/replacement tiles and
    injected_clicks, as ``sql/ytdpnl/home_page.sql`` returns them (floats; counts as int64).
    ``scope``: schema (None = the connection's search path), codes (None = everyone) and the
    start/end window of the events (start included, end excluded; a bare date as end includes it)."""
    frame = scoped_query(db, "home_page", scope)
    frame["arm"], frame["phase"] = frame["arm"].astype(str), frame["phase"].astype(str)
    for column in frame.columns.drop(["arm", "phase"]):
        frame[column] = frame[column].astype("int64" if column in COUNTS else "float64")
    return frame


def home_page(db: SqlDatabase, **scope: Unpack[StudyScope]) -> pd.DataFrame:
    """Per arm and phase: participants (with any event there), participants_shown_home,
    home_shown (HOME_SHOWN events) and home_shown_per_participant, shown_tiles split into
    default_tiles / replacement_tiles / other_tiles with default_share and replacement_share (of
    shown tiles), injected_clicks and click_through (injected clicks per HOME_SHOWN; NaN without
    any), for the filters of :func:`home_page_sums`. ``attrs["sql"]`` holds the query."""
    sums = home_page_sums(db, **scope)
    frame = sums[["arm", "phase", *COUNTS, "home_shown"]].copy()
    frame["home_shown_per_participant"] = _share(sums["home_shown"], sums["participants"])
    frame["shown_tiles"] = sums["shown_tiles"]
    frame["default_tiles"] = sums["default_tiles"]
    frame["replacement_tiles"] = sums["replacement_tiles"]
    frame["other_tiles"] = sums["shown_tiles"] - sums["default_tiles"] - sums["replacement_tiles"]
    frame["default_share"] = _share(sums["default_tiles"], sums["shown_tiles"])
    frame["replacement_share"] = _share(sums["replacement_tiles"], sums["shown_tiles"])
    frame["injected_clicks"] = sums["injected_clicks"]
    frame["click_through"] = _share(sums["injected_clicks"], sums["home_shown"])
    for column in ("home_shown", "shown_tiles", "default_tiles", "replacement_tiles", "other_tiles", "injected_clicks"):
        frame[column] = frame[column].astype("int64")
    frame.attrs["sql"] = sums.attrs["sql"]
    return frame


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole`` as floats, NaN where ``whole`` is 0."""
    return pd.Series(np.where(whole > 0, part / whole.where(whole > 0, 1.0), np.nan), index=part.index)
