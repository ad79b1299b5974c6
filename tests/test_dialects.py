"""Every dialect difference lives in workbench/db/dialects.py: the registry is consistent, the SQL it
builds is the SQL the modules wrote before (byte for byte), and no other module compares engine
names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlglot

from workbench.db.dialects import DIALECTS, Dialect
from workbench.events import statements

ROOT = Path(__file__).resolve().parents[1]
DUCKDB, POSTGRESQL, SPARK = DIALECTS["duckdb"], DIALECTS["postgresql"], DIALECTS["spark"]
PATTERN = statements.NUMBER_PATTERN


def test_the_registry_is_keyed_by_name_and_names_real_sqlglot_dialects():
    assert list(DIALECTS) == ["duckdb", "postgresql", "spark"]
    for name, dialect in DIALECTS.items():
        assert isinstance(dialect, Dialect) and dialect.name == name
        sqlglot.Dialect.get_or_raise(dialect.sqlglot)
    with pytest.raises(AttributeError):
        DUCKDB.name = "other"  # frozen


def test_value_as_number_is_the_sql_each_engine_ran_before():
    assert statements.numeric("v", DUCKDB) == f"CASE WHEN regexp_full_match(v, '{PATTERN}') THEN CAST(v AS DOUBLE) END"
    assert statements.numeric("v", POSTGRESQL) == f"CASE WHEN v ~ '{PATTERN}' THEN CAST(v AS DOUBLE PRECISION) END"
    with pytest.raises(NotImplementedError, match="spark"):
        statements.numeric("v", SPARK)


def test_staging_tables_drop_at_commit_where_they_can_and_explicitly_elsewhere():
    drops = ["DROP TABLE IF EXISTS workbench_staged_events", "DROP TABLE IF EXISTS workbench_staged_event_data"]
    pg, duck = statements.staging_statements("s", POSTGRESQL), statements.staging_statements("s", DUCKDB)
    assert pg[:2] == duck[:2] == drops
    assert pg[2] == "CREATE TEMP TABLE workbench_staged_events ON COMMIT DROP AS SELECT * FROM s.events WHERE 1 = 0"
    assert duck[2] == "CREATE TEMP TABLE workbench_staged_events AS SELECT * FROM s.events WHERE 1 = 0"
    assert statements.store_staged_statements("s", DUCKDB)[2][-2:] == drops
    assert not set(drops) & set(statements.store_staged_statements("s", POSTGRESQL)[2])


def test_the_event_store_indexes_the_updated_profile_id_only_where_updates_of_indexed_columns_are_cheap():
    index = "CREATE INDEX IF NOT EXISTS events_profile_id ON s.events (profile_id)"
    assert index in statements.schema_statements("s", POSTGRESQL)
    assert index not in statements.schema_statements("s", DUCKDB)
    assert len(statements.schema_statements("s", POSTGRESQL)) == len(statements.schema_statements("s", DUCKDB)) + 1


def test_search_path_drop_sequence_and_quoting_statements():
    assert POSTGRESQL.set_search_path("YtdPnl") == 'SET LOCAL search_path TO "ytdpnl"'
    assert POSTGRESQL.set_search_path("ytdpnl", local=False) == 'SET search_path TO "ytdpnl"'
    assert POSTGRESQL.reset_search_path() is None
    assert DUCKDB.set_search_path("ytdpnl") == "SET search_path = 'ytdpnl'"
    assert DUCKDB.reset_search_path() == "RESET search_path"
    assert POSTGRESQL.drop_table("s.t", cascade=True) == "DROP TABLE IF EXISTS s.t CASCADE"
    assert DUCKDB.drop_table("s.t", cascade=True) == POSTGRESQL.drop_table("s.t") == "DROP TABLE IF EXISTS s.t"
    assert POSTGRESQL.sequence_reset("video") == (
        "SELECT setval(pg_get_serial_sequence('video', 'id'), GREATEST((SELECT max(id) FROM video), 1))"
    )
    assert DUCKDB.sequence_reset("video") is None and SPARK.sequence_reset("video") is None
    assert DUCKDB.quote('we"ird') == '"we""ird"' and POSTGRESQL.quote("user") == '"user"'
    assert SPARK.quote("a`b") == "`a``b`"


def _engine_name_comparisons(tree: ast.AST) -> list[str]:
    names = {"duckdb", "postgresql", "postgres", "spark"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            constants = [o.value for o in operands if isinstance(o, ast.Constant)]
            constants += [
                e.value
                for o in operands
                if isinstance(o, (ast.Tuple, ast.List, ast.Set))
                for e in o.elts
                if isinstance(e, ast.Constant)
            ]
            if names & {c for c in constants if isinstance(c, str)}:
                found.append(ast.unparse(node))
        if isinstance(node, ast.Attribute) and node.attr == "dialect_name":
            found.append(ast.unparse(node))
    return found


def test_no_module_but_dialects_py_branches_on_an_engine_name():
    offenders = {}
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "workbench/db/dialects.py":
            continue
        if found := _engine_name_comparisons(ast.parse(path.read_text(encoding="utf-8"))):
            offenders[rel] = found
    assert not offenders, offenders


# ------------------------------------------------------------------ the one identifier rule
def test_a_name_with_a_trailing_newline_is_not_an_identifier_anywhere(tmp_path):
    from workbench.db.dialects import IDENTIFIER, LOWER_CASE_IDENTIFIER
    from workbench.db.spark import SparkDatabase
    from workbench.errors import ConfigError, DatabaseError, WorkbenchError
    from workbench.events.settings import event_settings, validated_name
    from workbench.experiments.config import NAME
    from workbench.studies.ytdpnl.tables import study_schema
    from workbench.toolkit.sources import configured_sources, event_source

    assert NAME is IDENTIFIER  # the experiment config checks names with the same rule
    for rule in (IDENTIFIER, LOWER_CASE_IDENTIFIER):
        assert rule.match("clicks") and not rule.match("clicks\n") and not rule.match("x" * 64)
    # `$` matched before a final newline: each of these took "clicks\n" as a plain name
    with pytest.raises(ConfigError, match="must be a"):
        event_source("bad", {"table": "clicks\n", "unit": "uid", "timestamp": "ts"})
    with pytest.raises(ConfigError, match="must be a"):
        event_source("bad", {"table": "clicks", "unit": "uid\n", "timestamp": "ts"})
    config = tmp_path / "workbench.yml"
    config.write_text(
        'event_sources:\n  "clicks\\n":\n    table: clicks\n    unit: uid\n    timestamp: ts\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="event source name"):
        configured_sources(config)

    class Untouched:
        def sql(self, *args, **kwargs):
            raise AssertionError("no SQL may run for a refused name")

    with pytest.raises(DatabaseError, match="not a plain table name"):
        SparkDatabase(session=None).register_from(Untouched(), ["orders\n"])
    with pytest.raises(WorkbenchError, match="not a plain SQL identifier"):
        study_schema("ytdpnl\n")
    with pytest.raises(ConfigError, match="lower-case identifier"):
        validated_name("grouparoo\n", "events.schema")
    config.write_text('events:\n  schema: "grouparoo\\n"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"events.schema"):
        event_settings(config)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_rank_value_is_the_value_of_rank_ceil_n_q_for_every_q_from_one_half(engine, request):
    """``Dialect.rank_value`` (DuckDB's discrete quantile of a DOUBLE q, PostgreSQL's
    ``percentile_disc``) against the nearest-rank definition the window formulation computes: the
    ceil(n·q)-th smallest value, n·q in doubles, with ties, over every n up to 259 and some larger
    ones, on the engine itself."""
    import math
    import random

    import sqlalchemy as sa

    import workbench as wb

    dialect = DIALECTS[engine]
    if engine == "duckdb":
        db = wb.connect("duckdb:///:memory:", read_only=False)
    else:
        server = request.getfixturevalue("pg_server")
        server.create_database("rank_value")
        db = wb.connect(server.url_with_password("rank_value"), read_only=False)
    levels = [0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 1.0]
    aggregates = ", ".join(
        f"{dialect.rank_value.format(value='v', q=f'CAST({q!r} AS {dialect.double_type})')} AS q{k}"
        for k, q in enumerate(levels)
    )
    rng = random.Random(7)
    sizes = [*range(1, 260), 999, 1000, 1001, 4096]
    rows = [(n, float(rng.randint(0, n // 3 + 1))) for n in sizes for _ in range(n)]
    with db.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE t (n INTEGER, v DOUBLE PRECISION)"))
        conn.execute(sa.text("INSERT INTO t (n, v) VALUES (:n, :v)"), [{"n": n, "v": v} for n, v in rows])
    got = db.sql(f"SELECT n, {aggregates} FROM t GROUP BY n ORDER BY n", limit=None)
    for n, row in zip(sizes, got.itertuples(index=False), strict=True):
        ordered = sorted(v for m, v in rows if m == n)
        assert list(row)[1:] == [ordered[max(1, math.ceil(n * q)) - 1] for q in levels], n
    empty = db.sql(f"SELECT {aggregates} FROM t WHERE v < 0", limit=None)
    assert empty.isna().all(axis=None)
