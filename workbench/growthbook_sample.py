"""Load GrowthBook's sample data (seed 000): five CSV files into the tables the seed's SQL reads.

Files may be plain or gzipped; ``\\N`` is SQL NULL; timestamps are UTC without a zone. Every file
is parsed and checked before the database is touched, then all five tables are replaced in one
transaction, so a bad file loads nothing and loading twice replaces rather than duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from workbench.db.bulk_write import write_tables
from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import TableDefinition, table_definitions
from workbench.errors import DataFileError
from workbench.progress import progress

SCHEMA = "growthbook/schema.sql"
# CSV file stem (as GrowthBook's generator names it) -> table name (as the seed's SQL reads it)
FILE_TABLES = {
    "experimentViews": "experiment_viewed",
    "purchases": "orders",
    "pageViews": "pages",
    "sessions": "sessions",
    "events": "events",
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class SampleFile:
    path: Path
    table: TableDefinition


def find_sample_files(directory: Path) -> list[SampleFile]:
    """The five files in ``directory`` (``name.csv`` or ``name.csv.gz``), or an error naming the first missing one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFileError(f"{directory} is not a folder: pass the folder that holds GrowthBook's five CSV files.")
    tables = table_definitions(SCHEMA)
    found = []
    for stem, table in FILE_TABLES.items():
        candidates = [directory / f"{stem}.csv", directory / f"{stem}.csv.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DataFileError(
                f"{candidates[0]} (or .csv.gz) is missing: GrowthBook's sample needs {', '.join(f'{s}.csv' for s in FILE_TABLES)}."
            )
        found.append(SampleFile(path, tables[table]))
    return found


def read_sample_file(sample: SampleFile) -> pa.Table:
    """Parse one CSV into an Arrow table typed like its database table; errors name file and line."""
    path, table = sample.path, sample.table
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[r"\N"], on_bad_lines="error", engine="c")
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: malformed CSV ({exc}); fix that line or re-export the file.") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path} cannot be read ({exc}): the file is damaged or not CSV.") from None
    expected = {c.lower(): c for c in table.column_names}
    header = {c.lower(): c for c in raw.columns}
    missing = sorted(set(expected) - set(header))
    if missing:
        raise DataFileError(
            f"{path} line 1: the header lacks column(s) {[expected[m] for m in missing]}; expected {table.column_names}."
        )
    columns = {}
    for lower, name in expected.items():
        text = raw[header[lower]]
        sql_type = dict(table.columns)[name]
        columns[name] = _typed_column(text, sql_type, path, name)
    return pa.table(columns)


def _typed_column(text: pd.Series, sql_type: str, path: Path, name: str) -> pa.Array:
    if sql_type.startswith("TIMESTAMP"):
        values = pd.to_datetime(text, format=TIMESTAMP_FORMAT, errors="coerce")
        kind = "a timestamp like 2026-09-25 00:24:01"
    elif sql_type in ("INTEGER", "BIGINT"):
        numbers = pd.to_numeric(text, errors="coerce")
        values = numbers.where(numbers == numbers.round())
        kind = "an integer"
    else:
        return pa.array(text.astype(object).where(text.notna(), None), type=pa.string())
    bad = values.isna() & text.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataFileError(
            f"{path} line {row + 2}: column {name} holds {text.iloc[row]!r}, which is not {kind} (or \\N for NULL)."
        )
    if sql_type.startswith("TIMESTAMP"):
        return pa.array(values, type=pa.timestamp("us"))
    return pa.array(values.astype("Int64"), type=pa.int32() if sql_type == "INTEGER" else pa.int64())


def load_growthbook_sample(db: SqlDatabase, directory: Path) -> dict[str, int]:
    """Replace the five sample tables in ``db`` with the files in ``directory``; rows per table."""
    samples = find_sample_files(directory)
    parsed = [(s.table, [read_sample_file(s)]) for s in progress(samples, desc="Reading CSV files", unit="file")]
    return write_tables(db, parsed)
