"""The seed's "ideas to check the correctness of the data", one SQL file each in ``sql/ytdpnl/checks/``.

Each check counts its offending rows in the database and brings back only the first ``max_rows``
of them by ``id`` (an event, session or video id as the check says).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import read_sql
from workbench.errors import WorkbenchError
from workbench.studies.ytdpnl.tables import run_study_sql

CHECKS = {
    "page_view_pairing": "PAGE_VIEW and RECOMMENDATIONS_SHOWN of a video page without a counterpart within the allowed gap (event ids)",
    "clicks_without_recommendation": "clicks with no list shown before them on their page (event ids)",
    "arm_or_phase_mismatch": "events whose arm or phase disagrees with the participant's arm and transition history (event ids)",
    "sessions_without_events": "sessions no event refers to (session ids)",
    "watch_times_without_event": "watch_time rows whose event is missing or not WATCH_TIME (event ids)",
    "watch_time_events_without_seconds": "WATCH_TIME events without a watch_time row (event ids)",
    "duplicate_local_uuids": "events sharing a local_uuid (event ids)",
    "list_position_gaps": "recommendation or home lists whose positions are not 0..n-1 (event ids)",
    "missing_video_metadata": "videos shown in lists without video_metadata (video ids)",
}
FIRST_PAGE_VIEW_FIX = pd.Timestamp("2023-02-13")


@dataclass(frozen=True)
class SanityCheckResults:
    """``summary`` (check, description, n_offending) and up to ``max_rows`` offending rows per check."""

    summary: pd.DataFrame
    offending: dict[str, pd.DataFrame]

    def offending_ids(self, check: str) -> list[int]:
        return sorted(int(i) for i in set(self.offending[check]["id"]))

    def _repr_html_(self) -> str:
        return self.summary.to_html(index=False)

    def __repr__(self) -> str:
        return "\n".join(f"{r.check:>36}: {r.n_offending}" for r in self.summary.itertuples())


def sanity_checks(
    db: SqlDatabase, *, schema: str | None = None, max_rows: int = 20, max_gap_seconds: float = 5.0
) -> SanityCheckResults:
    """Run every check of :data:`CHECKS`; ``max_gap_seconds`` is the largest accepted gap between
    a video page's PAGE_VIEW and its RECOMMENDATIONS_SHOWN."""
    if int(max_rows) != max_rows or max_rows < 1:
        raise WorkbenchError(f"max_rows must be a positive whole number of rows, got {max_rows!r}.")
    rows, offending = [], {}
    for check, description in CHECKS.items():
        params = (
            {"max_gap_seconds": float(max_gap_seconds), "first_page_view_fix": FIRST_PAGE_VIEW_FIX.to_pydatetime()}
            if check == "page_view_pairing"
            else {}
        )
        sql = f"SELECT count(*) OVER () AS n_offending, q.*\nFROM (\n{read_sql(f'ytdpnl/checks/{check}.sql').strip()}\n) q\nORDER BY q.id\nLIMIT :max_rows"
        found = run_study_sql(db, sql, schema, max_rows=int(max_rows), **params)
        total = int(found["n_offending"].iloc[0]) if len(found) else 0
        kept = found.drop(columns="n_offending")
        kept.attrs.update(sql=sql, n_offending=total)
        offending[check] = kept
        rows.append({"check": check, "description": description, "n_offending": total, "n_shown": len(kept)})
    return SanityCheckResults(pd.DataFrame(rows), offending)
