"""Write tables in bulk inside one transaction: DuckDB's Arrow scan, PostgreSQL's ``COPY``; on
Spark, staged Parquet catalog tables (:mod:`workbench.db.catalog_write`).

Writers hand over :class:`pyarrow.Table` batches whose columns are named like the target table.
Nothing is written row by row, and a failure rolls the whole transaction back.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from workbench.db.connection import SqlDatabase, explain_error
from workbench.db.sql_files import TableDefinition
from workbench.errors import DatabaseError, WorkbenchError

COPY_CHUNK_ROWS = 200_000


class BulkWriter:
    """One open write transaction on ``db``: replace tables and append Arrow batches to them."""

    def __init__(self, db: SqlDatabase, raw: Any):
        self.db, self.raw = db, raw
        self.dialect = db.dialect
        self.written: dict[str, None] = {}  # tables touched, in order, for ANALYZE before commit

    def execute(self, statement: str, params: tuple | None = None) -> None:
        cursor = self.raw.cursor()
        cursor.execute(statement, params) if params is not None else cursor.execute(statement)
        cursor.close()

    def replace_table(self, table: TableDefinition) -> None:
        """Drop ``table`` if it exists and create it empty (inside the transaction)."""
        self.execute(self.dialect.drop_table(table.name))
        self.execute(table.create_statement())

    def append(self, table: TableDefinition, batch: pa.Table) -> int:
        """Append ``batch`` (columns named as in ``table``) and return the number of rows written."""
        columns = table.column_names
        batch = batch.select(columns)
        self.written[table.name] = None
        if batch.num_rows == 0:
            return 0
        if self.dialect.bulk_load == "arrow":
            con = self.raw.driver_connection if hasattr(self.raw, "driver_connection") else self.raw
            # A relation rather than register(): DuckDB keeps registered Python objects alive until
            # the transaction ends, so a long load would hold every batch's Arrow memory. The batch
            # holds the table's columns in its order (select above), as insert_into expects.
            con.from_arrow(batch).insert_into(table.name)
        elif self.dialect.bulk_load == "copy":
            cursor = self.raw.cursor()
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
                for chunk in _csv_chunks(batch):
                    copy.write(chunk)
            cursor.close()
        else:
            raise WorkbenchError(f"{self.dialect.title} databases are not written by the workbench.")
        return batch.num_rows


def _csv_chunks(batch: pa.Table) -> Iterator[bytes]:
    """CSV bytes for ``COPY … (FORMAT csv)``: NULL is an unquoted empty field, text always quoted."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    for start in range(0, batch.num_rows, COPY_CHUNK_ROWS):
        buffer = io.BytesIO()
        pacsv.write_csv(batch.slice(start, COPY_CHUNK_ROWS), buffer, write_options=options)
        yield buffer.getvalue()


@contextmanager
def write_transaction(db: SqlDatabase) -> Iterator[BulkWriter]:
    """A :class:`BulkWriter` whose work is committed at the end, or rolled back on any error."""
    if db.read_only:
        raise WorkbenchError("Bulk writes need a writable session: open it with connect(read_only=False).")
    if db.dialect.bulk_load == "catalog":
        from workbench.db.catalog_write import catalog_transaction

        with catalog_transaction(db) as writer:
            yield writer  # type: ignore[misc]
        return
    try:
        raw = db.engine.raw_connection()
    except Exception as exc:  # the driver's own error is explained below
        raise explain_error(exc, db) from None
    driver = raw.driver_connection
    try:
        if db.dialect.autocommit_driver:
            driver.begin()
        writer = BulkWriter(db, raw)
        yield writer
        if db.dialect.analyze_after_write:
            for table in writer.written:  # fresh planner statistics: without them joins plan as nested loops
                writer.execute(f"ANALYZE {table}")
        driver.commit() if db.dialect.autocommit_driver else raw.commit()
    except WorkbenchError:
        _rollback(raw, db)
        raise
    except Exception as exc:
        _rollback(raw, db)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise DatabaseError(
            f"Writing to {db.settings.display_url} failed and nothing was kept: {explain_error(exc, db)}"
        ) from None
    finally:
        raw.close()


def _rollback(raw: Any, db: SqlDatabase) -> None:
    try:
        raw.driver_connection.rollback() if db.dialect.autocommit_driver else raw.rollback()
    except Exception:  # the connection is gone (server stopped); the first error matters
        raw.invalidate()  # dropped, not returned to the pool, whose reset would log a traceback


def write_tables(db: SqlDatabase, tables: Iterable[tuple[TableDefinition, Iterable[pa.Table]]]) -> dict[str, int]:
    """Replace each table with its batches, all in one transaction; rows written per table."""
    counts: dict[str, int] = {}
    with write_transaction(db) as writer:
        for table, batches in tables:
            writer.replace_table(table)
            counts[table.name] = sum(writer.append(table, batch) for batch in batches)
    return counts
