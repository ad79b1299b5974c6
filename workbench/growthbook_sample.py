"""Load GrowthBook's sample data (seed 000): five CSV files into the tables the seed's SQL reads.

Files may be plain or gzipped; ``\\N`` is SQL NULL; timestamps are UTC without a zone. Every file
is parsed and checked before the database is touched (an empty file, two header names differing
only in case, a value its column's type cannot hold such as ``inf`` or an INTEGER beyond 32 bits,
a NUL byte in text: one sentence naming file, line and column), then all five tables are replaced
in one transaction, so a bad file loads nothing and loading twice replaces rather than duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from workbench.db.bulk_write import write_tables
from workbench.db.connection import SqlDatabase
from workbench.db.sql_files import TableDefinition, table_definitions
from workbench.errors import DataFileError, shown
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
TIMESTAMP_KIND = "a timestamp like 2026-09-25 00:24:01"
INTEGER_BITS = {"INTEGER": 32, "BIGINT": 64}  # SQL integer type -> its width, hence its range


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
        raw = pd.read_csv(
            path, dtype=str, header=None, keep_default_na=False, na_values=[r"\N"], on_bad_lines="error", engine="c"
        )
    except pd.errors.EmptyDataError:
        raise DataFileError(
            f"{path} is empty: it needs a header line naming {table.column_names}, then one line per row."
        ) from None
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: malformed CSV ({exc}); fix that line or re-export the file.") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path} cannot be read ({exc}): the file is damaged or not CSV.") from None
    header = _header(raw.iloc[0].tolist(), path)
    raw = raw.iloc[1:].reset_index(drop=True)
    expected = {c.lower(): c for c in table.column_names}
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


def _header(names: list[object], path: Path) -> dict[str, int]:
    """Position of each column by its lower-case name; two names differing only in case are an error,
    since unquoted SQL identifiers would make them one column."""
    positions: dict[str, int] = {}
    for i, name in enumerate(str(n) for n in names):
        if name.lower() in positions:
            first = names[positions[name.lower()]]
            raise DataFileError(
                f"{path} line 1: columns {first!r} (column {positions[name.lower()] + 1}) and {name!r} (column {i + 1}) "
                "name the same column, as SQL ignores case; rename or remove one."
            )
        positions[name.lower()] = i
    return positions


def _first_bad(bad: pd.Series, text: pd.Series, path: Path, name: str, problem: str) -> None:
    """Raise one sentence naming the file, line and column of the first row flagged in ``bad``."""
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataFileError(f"{path} line {row + 2}: column {name} holds {shown(text.iloc[row])}, {problem}.")


def _typed_column(text: pd.Series, sql_type: str, path: Path, name: str) -> pa.Array:
    if sql_type.startswith("TIMESTAMP"):
        values = pd.to_datetime(text, format=TIMESTAMP_FORMAT, errors="coerce")
        _first_bad(values.isna() & text.notna(), text, path, name, f"which is not {TIMESTAMP_KIND} (or \\N for NULL)")
        return pa.array(values, type=pa.timestamp("us"))
    if sql_type in INTEGER_BITS:
        bits = INTEGER_BITS[sql_type]
        numbers = pd.to_numeric(text, errors="coerce")
        whole = (numbers == numbers.round()) & (numbers >= -(2 ** (bits - 1))) & (numbers < 2 ** (bits - 1))
        kind = f"a whole number from {-(2 ** (bits - 1)):,} to {2 ** (bits - 1) - 1:,}, as {sql_type} holds"
        _first_bad(~whole & text.notna(), text, path, name, f"which is not {kind} (or \\N for NULL)")
        return pa.array(numbers.astype("Int64"), type=pa.int32() if bits == 32 else pa.int64())
    _first_bad(
        text.str.contains("\x00", regex=False, na=False),
        text,
        path,
        name,
        "which contains a NUL byte (\\x00) that PostgreSQL cannot store; remove it from the file",
    )
    return pa.array(text.astype(object).where(text.notna(), None), type=pa.string())


def load_growthbook_sample(db: SqlDatabase, directory: Path) -> dict[str, int]:
    """Replace the five sample tables in ``db`` with the files in ``directory``; rows per table."""
    samples = find_sample_files(directory)
    parsed = [(s.table, [read_sample_file(s)]) for s in progress(samples, desc="Reading CSV files", unit="file")]
    return write_tables(db, parsed)
