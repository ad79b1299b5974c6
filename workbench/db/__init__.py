"""Databases: opening an analysis session (``connection``, ``settings``), every dialect difference
(``dialects``), bulk writes (``bulk_write``), Spark SQL (``spark``) and the SQL files in ``sql/``
(``sql_files``).

:class:`Database` is what the experiment engine, the toolkit and the analyses need of a database;
:class:`~workbench.db.connection.SqlDatabase` (DuckDB, PostgreSQL: what ``connect()`` returns) and
:class:`~workbench.db.spark.SparkDatabase` implement it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from workbench.db.dialects import Dialect

if TYPE_CHECKING:
    import pandas as pd


@runtime_checkable
class Database(Protocol):
    """A database the workbench runs SQL on: its :class:`~workbench.db.dialects.Dialect`, a way to
    run a query into a DataFrame, and a way to let go of its connections."""

    dialect: Dialect

    def sql(self, query: str, /, *, limit: int | None = ..., **params: Any) -> pd.DataFrame:
        """Run ``query`` (DuckDB/PostgreSQL text, ``:name`` placeholders bound from ``params``) and
        return at most ``limit`` rows (``None``: all) as a DataFrame."""
        ...

    def dispose(self) -> None:
        """Release the connections it opened (it may be used again afterwards)."""
        ...
