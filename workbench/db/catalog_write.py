"""Write tables into a Spark catalog as Parquet-backed tables (``bulk_load = "catalog"``).

Spark has no transactions across tables, so a load is staged: each table is written beside the
old one as ``<name>__wb_loading`` (Arrow batches travel to the server through the session), and
only when every batch is in are the old tables dropped and the staged ones renamed. A failure
before that drops the staged tables and leaves the old ones as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from workbench.db.connection import explain_error
from workbench.db.dialects import transpile
from workbench.db.sql_files import TableDefinition
from workbench.errors import DatabaseError, WorkbenchError

STAGING_SUFFIX = "__wb_loading"


class CatalogWriter:
    """One staged load into the Spark catalog of ``db`` (a writable
    :class:`~workbench.db.spark.SparkDatabase`): the :class:`~workbench.db.bulk_write.BulkWriter`
    methods loaders and the generator use."""

    def __init__(self, db: Any):
        self.db, self.dialect = db, db.dialect
        self.staged: dict[str, str] = {}  # table -> its staging table, in order

    def execute(self, statement: str, params: tuple | None = None) -> None:
        """Refused: writers that run their own SQL need transactions, which Spark lacks."""
        self.db.transaction()

    def replace_table(self, table: TableDefinition) -> None:
        """Create ``table``'s staging table empty (Parquet, the table's columns and types)."""
        staging = table.name + STAGING_SUFFIX
        create = transpile(TableDefinition(staging, table.columns).create_statement(), self.dialect)
        self.db.sql(self.dialect.drop_table(staging))
        self.db.sql(f"{create} USING PARQUET")
        self.staged[table.name] = staging

    def append(self, table: TableDefinition, batch: pa.Table) -> int:
        """Append ``batch`` (columns named as in ``table``) to its staging table; rows written."""
        batch = batch.select(table.column_names)
        if batch.num_rows:
            self.db.session.createDataFrame(batch).write.insertInto(self.staged[table.name])
        return batch.num_rows

    def publish(self) -> None:
        """Swap each staged table in for the old one."""
        for name, staging in self.staged.items():
            self.db.sql(self.dialect.drop_table(name))
            self.db.sql(f"ALTER TABLE {staging} RENAME TO {name}")

    def discard(self) -> None:
        """Drop the staging tables (after a failure)."""
        for staging in self.staged.values():
            with contextlib.suppress(WorkbenchError):  # the server is gone; the first error matters
                self.db.sql(self.dialect.drop_table(staging))


@contextmanager
def catalog_transaction(db: Any) -> Iterator[CatalogWriter]:
    """A :class:`CatalogWriter` whose tables replace the old ones at the end, or are dropped on error."""
    writer = CatalogWriter(db)
    try:
        yield writer
        writer.publish()
    except WorkbenchError:
        writer.discard()
        raise
    except Exception as exc:
        writer.discard()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise DatabaseError(
            f"Writing to {db.settings.display_url} failed and the old tables were kept: {explain_error(exc, db)}"
        ) from None
