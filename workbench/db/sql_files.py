"""Read the SQL shipped in ``sql/``: whole files, their statements, and table definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from workbench import paths
from workbench.db.dialects import IDENTIFIER
from workbench.errors import WorkbenchError

_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(\w+)\s*\((.*?)\)\s*;", re.IGNORECASE | re.DOTALL)


@cache
def read_sql(name: str) -> str:
    """The text of ``sql/<name>`` (e.g. ``"growthbook/schema.sql"``)."""
    path = paths.sql_dir() / name
    if not path.is_file():
        raise WorkbenchError(f"The SQL file {path} is missing from this installation: reinstall workbench.")
    return path.read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """The statements of ``sql/<name>``, comments removed, split on ``;``."""
    text = re.sub(r"--[^\n]*", "", read_sql(name))
    return [s.strip() for s in text.split(";") if s.strip()]


@dataclass(frozen=True)
class TableDefinition:
    """One ``CREATE TABLE`` of a schema file: its name, ordered columns and their SQL types."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def create_statement(self) -> str:
        cols = ",\n  ".join(f"{c} {t}" for c, t in self.columns)
        return f"CREATE TABLE {self.name} (\n  {cols}\n)"


@cache
def table_definitions(name: str) -> dict[str, TableDefinition]:
    """The tables a schema file creates, by name, with validated identifiers."""
    text = re.sub(r"--[^\n]*", "", read_sql(name))
    tables = {}
    for table, body in _CREATE_TABLE.findall(text):
        columns = []
        for line in body.split(","):
            column, sql_type = line.split(None, 1)
            if not (IDENTIFIER.match(table) and IDENTIFIER.match(column)):
                raise WorkbenchError(f"sql/{name}: {table}.{column} is not a plain identifier.")
            columns.append((column, sql_type.strip().upper()))
        tables[table] = TableDefinition(table, tuple(columns))
    return tables
