"""SQL in notebook cells: ``db.sql`` (row limit, elapsed time, the failing line) and ``%%sql``."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.db import connection
from workbench.db.connection import RowLimitWarning
from workbench.errors import DatabaseError

NAMES = ["Ann", "O'Brien", "Zoë", "Bob", "Eve"]


@pytest.fixture(scope="module")
def people(backend):
    url = backend.new_url("sql_cells")
    writer = wb.connect(url, read_only=False)
    writer.sql("CREATE TABLE people (id INTEGER, name TEXT, score DOUBLE PRECISION)")
    for i, name in enumerate(NAMES):
        writer.sql("INSERT INTO people VALUES (:id, :name, :score)", id=i, name=name, score=i * 1.5)
    writer.sql("CREATE TABLE numbers AS SELECT CAST(n AS INTEGER) AS n FROM (VALUES (0)) v(n)")
    writer.dispose()
    db = wb.connect(url)
    yield db
    db.dispose()


def test_row_limit_cuts_with_a_warning(people):
    with pytest.warns(RowLimitWarning, match="more than 3 rows: only the first 3"):
        frame = people.sql("SELECT id FROM people ORDER BY id", limit=3)
    assert list(frame["id"]) == [0, 1, 2] and frame.attrs["truncated"] is True
    frame = people.sql("SELECT id FROM people ORDER BY id", limit=5)  # exactly the limit: no cut
    assert len(frame) == 5 and frame.attrs["truncated"] is False
    assert len(people.sql("SELECT id FROM people", limit=None)) == len(NAMES)
    with pytest.raises(ValueError, match="limit must be a positive number"):
        people.sql("SELECT 1", limit=0)


def test_default_limit_is_large_and_announced(people, monkeypatch):
    assert connection.DEFAULT_ROW_LIMIT == 100_000
    with pytest.warns(RowLimitWarning, match="100,000"):
        frame = people.sql(
            "SELECT a.id FROM people a, people b, people c, people d, people e, people f, people g, people h"
        )
    assert len(frame) == 100_000 and frame.attrs["truncated"]  # 5**8 = 390,625 rows in the database


def test_slow_queries_print_their_elapsed_time(people, monkeypatch, capsys):
    people.sql("SELECT 1 AS x")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(connection, "SLOW_QUERY_S", 0.0)
    frame = people.sql("SELECT id FROM people")
    err = capsys.readouterr().err
    assert err.startswith("query ran in ") and err.endswith(f"s ({len(NAMES)} rows)\n") and err.count("\n") == 1
    assert frame.attrs["elapsed_s"] > 0


def test_failed_query_names_the_line_it_points_to(people):
    query = "SELECT id,\n       name\nFROM people\nWHERE no_such_column = :v\nORDER BY id"
    with pytest.raises(DatabaseError) as info:
        people.sql(query, v=1)
    message = str(info.value)
    assert "no_such_column" in message.split(";")[0]  # the database's own message
    assert message.endswith("at line 4 of the query: WHERE no_such_column = :v")
    assert info.value.sql_line_number == 4
    with pytest.raises(DatabaseError, match=r"at line 2 of the query: FORM people"):
        people.sql("SELECT id\nFORM people")


@pytest.fixture()
def shell(people):
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "workbench.toolkit.magics")
    ip.user_ns["db"] = people
    yield ip
    for name in ("db", "who", "low", "top", "found", "mine"):
        ip.user_ns.pop(name, None)


def test_sql_magic_binds_notebook_variables(shell):
    shell.user_ns.update(who="O'Brien", low=1.0)
    result = shell.run_cell(
        "%%sql found\nSELECT id, name FROM people\nWHERE name = {who} OR score >= :low\nORDER BY id"
    )
    result.raise_error()
    want = [i for i, n in enumerate(NAMES) if n == "O'Brien" or i * 1.5 >= 1.0]
    assert list(result.result["id"]) == want
    assert list(shell.user_ns["found"]["id"]) == want


def test_braces_inside_quoted_literals_stay_text():
    from workbench.toolkit.magics import bound_sql

    assert (
        bound_sql("SELECT '{who}' AS a, {who} AS b, 'it''s {x}' AS c")
        == "SELECT '{who}' AS a, :who AS b, 'it''s {x}' AS c"
    )


def test_sql_magic_uses_another_connection_and_limit(shell, people):
    shell.user_ns["mine"] = people
    with pytest.warns(RowLimitWarning):
        result = shell.run_cell("%%sql --db mine --limit 2\nSELECT id FROM people ORDER BY id")
    assert list(result.result["id"]) == [0, 1]


def test_sql_magic_errors_are_one_line(shell):
    from IPython.core.error import UsageError

    result = shell.run_cell("%%sql\nSELECT * FROM people WHERE id = {top}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "the parameter(s) top are not defined" in str(result.error_in_exec)
    result = shell.run_cell("%%sql\nSELECT id\nFROM people\nWHERE nope = 1")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).endswith("at line 3 of the query: WHERE nope = 1")
