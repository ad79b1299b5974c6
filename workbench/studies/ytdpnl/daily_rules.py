"""The study server's daily-activity rules, used by the generator to write what the server would.

Per participant and UTC day: ``pages_viewed`` counts PAGE_VIEW events; ``video_pages_viewed`` those
whose url contains ``/watch``; ``time_spent_on_youtube_seconds`` adds, for each PAGE_VIEW, the gap
since the previous PAGE_VIEW of the same session when it lies between 0 and 30 minutes;
``video_time_viewed_seconds`` sums WATCH_TIME seconds; ``sidebar_recommendations_clicked`` counts
the three ``*_CLICKED`` types. (Reference: /work/shared/reference/ytdpnl-schema.md.) The analyses
recompute the same figures in SQL (``sql/ytdpnl/daily_activity.sql``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIGURES = (
    "pages_viewed",
    "video_pages_viewed",
    "video_time_viewed_seconds",
    "time_spent_on_youtube_seconds",
    "sidebar_recommendations_clicked",
)
SIDEBAR_CLICKS = ("PERSONALIZED_CLICKED", "NON_PERSONALIZED_CLICKED", "MIXED_CLICKED")
MAX_GAP_SECONDS = 30 * 60
DAY_MS = 86_400_000


def page_view_gaps(session: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Seconds since the previous page view of the same session when within [0, 30 min], else 0.

    ``session`` and ``t_ms`` describe page views in any order; the result follows that order."""
    order = np.lexsort((t_ms, session))
    s, t = np.asarray(session)[order], np.asarray(t_ms, dtype="int64")[order]
    gap = np.zeros(t.size)
    same = np.zeros(t.size, dtype=bool)
    same[1:] = s[1:] == s[:-1]
    gap[1:] = (t[1:] - t[:-1]) / 1000.0
    gap = np.where(same & (gap >= 0) & (gap <= MAX_GAP_SECONDS), gap, 0.0)
    out = np.empty_like(gap)
    out[order] = gap
    return out


def daily_figures(events: pd.DataFrame, origin_ms: int) -> pd.DataFrame:
    """The five figures per (``p``, ``day``) from events with columns p, s, type, url, t (ms), seconds.

    ``day`` counts whole days since ``origin_ms``; days with no counted event are absent; the two
    real-valued figures are rounded to float32 as the database stores them."""
    day = (events["t"].to_numpy() - origin_ms) // DAY_MS
    kind = events["type"].to_numpy()
    view = kind == "PAGE_VIEW"
    gaps = np.zeros(len(events))
    gaps[view] = page_view_gaps(events["s"].to_numpy()[view], events["t"].to_numpy()[view])
    frame = pd.DataFrame(
        {
            "p": events["p"].to_numpy(),
            "day": day,
            "pages_viewed": view.astype("int64"),
            "video_pages_viewed": (
                view & events["url"].astype(str).str.contains("/watch", regex=False).to_numpy()
            ).astype("int64"),
            "video_time_viewed_seconds": np.where(
                kind == "WATCH_TIME", np.nan_to_num(events["seconds"].to_numpy(dtype="float64")), 0.0
            ),
            "time_spent_on_youtube_seconds": gaps,
            "sidebar_recommendations_clicked": np.isin(kind, SIDEBAR_CLICKS).astype("int64"),
            "counted": view | (kind == "WATCH_TIME") | np.isin(kind, SIDEBAR_CLICKS),
        }
    )
    figures = frame[frame["counted"]].groupby(["p", "day"], as_index=False)[list(FIGURES)].sum()
    for column in ("video_time_viewed_seconds", "time_spent_on_youtube_seconds"):
        figures[column] = figures[column].astype("float32")
    return figures


def day_matches(values: np.ndarray, minimums: dict[str, float], operator: str) -> bool:
    """Whether one day's figures (in :data:`FIGURES` order) meet ANY/ALL of the non-zero minimums.

    With every minimum zero each day matches (the rule becomes "days since phase entry")."""
    required = [(v, m) for v, m in zip(values, (minimums[c] for c in FIGURES)) if m > 0]
    if not required:
        return True
    hits = [float(v) >= m for v, m in required]
    return any(hits) if operator == "ANY" else all(hits)
