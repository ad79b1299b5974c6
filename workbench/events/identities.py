"""Associate events with profiles (identity resolution), incrementally and set-based.

Each run takes the events that have no profile yet, oldest first (occurred_at, then id), in
batches of at most ``batch_size``; each batch is the statements of ``sql/events/resolve_batch.sql``
in ONE transaction, so an interrupted run leaves every batch either done or untouched and the
next run completes the work. Events written straight into the events table by other systems
have no profile either and are picked up the same way.

The rules (the Grouparoo reference, made independent of the order events arrive in): a user id
wins; an anonymous id seen with a user id belongs to the first user it was seen with, and its
anonymous profile is merged into that user's (logged in ``profile_merges``); a user on several
devices ends as one profile with the whole history. Resolving after every batch gives the same
profiles as one run over everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.db.connection import SqlDatabase
from workbench.errors import WorkbenchError
from workbench.events.settings import EventSettings, event_settings
from workbench.events.statements import (
    RESOLVE_TEMP_TABLES,
    drop_temp_tables,
    resolve_batch_size,
    resolve_batch_statements,
    store_counts_query,
)
from workbench.events.store import ensure_event_store
from workbench.progress import progress_bar

BATCH_EVENTS = 100_000


@dataclass(frozen=True)
class ResolutionCounts:
    """What one run did, and the state of the store after it."""

    batches: int
    associated: int
    profiles: int
    merges: int
    unassociated: int

    def __str__(self) -> str:
        return (
            f"associated {self.associated:,} events in {self.batches} batch(es); "
            f"{self.profiles:,} profiles, {self.merges:,} merges logged, {self.unassociated:,} events left without a profile"
        )


def resolve_identities(
    db: SqlDatabase,
    batch_size: int = BATCH_EVENTS,
    *,
    max_batches: int | None = None,
    settings: EventSettings | None = None,
) -> ResolutionCounts:
    """Associate every event without a profile, ``batch_size`` events per transaction.

    ``max_batches`` stops early (the next run continues). Events with neither a user id nor an
    anonymous id can never be associated and stay counted in ``unassociated``.
    """
    if batch_size < 1:
        raise WorkbenchError(f"batch_size must be at least 1, not {batch_size}.")
    settings = settings or event_settings()
    ensure_event_store(db, settings)
    statements = resolve_batch_statements(settings.schema)
    bar = progress_bar(total=None, desc="Resolving identities", unit="event")
    batches = associated = 0
    try:
        while max_batches is None or batches < max_batches:
            done = _resolve_one_batch(db, statements, batch_size)
            if done == 0:
                break
            batches, associated = batches + 1, associated + done
            bar.update(done)
    finally:
        bar.close()
    state = db.sql(store_counts_query(settings.schema)).iloc[0]
    return ResolutionCounts(
        batches, associated, int(state["profiles"]), int(state["merges"]), int(state["unassociated"])
    )


def _resolve_one_batch(db: SqlDatabase, statements: list[str], batch_size: int) -> int:
    """Run one batch in one transaction; the number of events it associated (0: nothing left)."""
    params = {"now": datetime.now(UTC).replace(tzinfo=None), "batch_size": batch_size}
    with db.transaction() as conn:
        for statement in drop_temp_tables(RESOLVE_TEMP_TABLES):
            conn.execute(sa.text(statement))
        size = None
        for statement in statements:
            clause = sa.text(statement)
            conn.execute(clause, {k: v for k, v in params.items() if k in clause.compile().params})
            if size is None:
                size = int(conn.execute(sa.text(resolve_batch_size())).scalar_one())
                if size == 0:
                    break
        for statement in drop_temp_tables(RESOLVE_TEMP_TABLES):
            conn.execute(sa.text(statement))
    return size or 0
