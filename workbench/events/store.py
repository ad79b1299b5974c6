"""Create the event store (schema, tables, indexes) in a database; safe to run again."""

from __future__ import annotations

import sqlalchemy as sa

from workbench.db.connection import SqlDatabase
from workbench.errors import WorkbenchError
from workbench.events.settings import EventSettings, event_settings
from workbench.events.statements import schema_statements


def ensure_event_store(db: SqlDatabase, settings: EventSettings | None = None) -> str:
    """Create the ``events.schema`` schema and its tables if missing; the schema name."""
    settings = settings or event_settings()
    if db.read_only:
        raise WorkbenchError(
            "Creating the event store needs a writable session: open it with connect(read_only=False)."
        )
    with db.transaction() as conn:
        for statement in schema_statements(settings.schema, db.dialect):
            conn.execute(sa.text(statement))
    return settings.schema
