"""connect(): the embedded default, PostgreSQL through psycopg, read-only sessions, timeouts,
secrets kept out of every message, and one clear sentence for each way it can go wrong."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest
import sqlalchemy as sa

import workbench as wb
from workbench import paths
from workbench.errors import ConfigError, DatabaseError
from workbench.redaction import install_log_redaction, redact

CANARY = "canary-Pw-7f3a9"


def _existing_database(backend, label: str) -> str:
    """A fresh database on ``backend`` that exists (DuckDB creates its file on first write)."""
    url = backend.new_url(label)
    wb.connect(url, read_only=False).dispose()
    return url


def test_default_is_an_embedded_duckdb_file_under_data(isolated_home):
    with pytest.raises(DatabaseError, match=r"does not exist yet.*workbench generate"):
        wb.connect()
    writer = wb.connect(read_only=False)
    assert writer.settings.source == "default"
    assert writer.settings.url.database == str(paths.data_dir() / "workbench.duckdb")
    writer.sql("CREATE OR REPLACE TABLE t AS SELECT * FROM range(5) r(x)")
    writer.dispose()
    db = wb.connect()
    assert isinstance(db.engine, sa.Engine) and db.dialect.name == "duckdb" and db.read_only
    assert (
        pd.read_sql("SELECT SUM(x) AS s FROM t", db.engine)["s"].iloc[0] == 10
    )  # its engine is a plain SQLAlchemy engine
    assert db.sql("SELECT x FROM t WHERE x >= :lo ORDER BY x", lo=3)["x"].tolist() == [3, 4]
    db.dispose()


def test_analysis_sessions_cannot_write(backend):
    url = backend.new_url("read_only")
    writer = wb.connect(url, read_only=False)
    writer.sql("CREATE TABLE t (x INTEGER)")
    writer.sql("INSERT INTO t VALUES (1)")
    writer.dispose()
    db = wb.connect(url)
    for statement in ("INSERT INTO t VALUES (2)", "DELETE FROM t", "DROP TABLE t", "CREATE TABLE u (y INTEGER)"):
        with pytest.raises(DatabaseError, match="read-only"):
            db.sql(statement)
    assert db.sql("SELECT COUNT(*) AS n FROM t")["n"].iloc[0] == 1
    db.dispose()


def test_sessions_hold_their_engine_and_implement_the_database_protocol(backend):
    from workbench.db.connection import SqlDatabase
    from workbench.db.dialects import DIALECTS
    from workbench.db.spark import SparkDatabase

    url = backend.new_url("protocol")
    writer = wb.connect(url, read_only=False)
    assert isinstance(writer, SqlDatabase) and isinstance(writer, wb.Database) and not isinstance(writer, sa.Engine)
    assert writer.dialect is DIALECTS[backend.name] and writer.engine.dialect.name == backend.name
    with writer.transaction() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
    with (
        pytest.raises(DatabaseError, match="reported an error"),
        writer.transaction() as conn,
    ):  # rolled back, explained
        conn.execute(sa.text("INSERT INTO t VALUES (3)"))
        conn.execute(sa.text("SELECT no_such_function(1)"))
    assert writer.sql("SELECT COUNT(*) AS n FROM t")["n"].iloc[0] == 2
    writer.dispose()
    assert writer.sql("SELECT MAX(x) AS m FROM t")["m"].iloc[0] == 2  # usable again after dispose()
    writer.dispose()
    spark = SparkDatabase(session=None)  # the protocol needs no running session
    assert isinstance(spark, wb.Database) and spark.dialect is DIALECTS["spark"]
    assert not isinstance(sa.create_engine("sqlite://"), wb.Database)  # a bare engine is not a workbench database


def test_statement_timeout_stops_a_runaway_query(backend):
    db = wb.connect(_existing_database(backend, "timeout"), statement_timeout_s=1)
    runaway = (
        "SELECT pg_sleep(30)"
        if backend.name == "postgresql"
        else "SELECT COUNT(*) FROM range(100000000000) a, range(1000) b"
    )
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="statement timeout"):
        db.sql(runaway)
    assert time.monotonic() - started < 10
    assert db.sql("SELECT 1 AS one")["one"].iloc[0] == 1  # the session is still usable
    db.dispose()


def test_missing_table_names_the_fix(backend):
    db = wb.connect(_existing_database(backend, "missing_table"))
    with pytest.raises(DatabaseError, match=r"table the query reads is missing.*workbench load"):
        db.sql("SELECT * FROM experiment_viewed")
    db.dispose()


def test_errors_keep_the_engines_hint_and_name_a_missing_value(backend):
    """The engine's own suggestion survives (DuckDB names the table and the columns it meant;
    PostgreSQL hints at the column), SQLAlchemy's link does not, and a placeholder without a value
    is named with how to pass it."""
    url = backend.new_url("hints")
    writer = wb.connect(url, read_only=False)
    writer.sql("CREATE TABLE experiment_viewed (userId TEXT, amount DOUBLE PRECISION)")
    writer.dispose()
    db = wb.connect(url)
    with pytest.raises(DatabaseError) as column:
        db.sql("SELECT amout FROM experiment_viewed")
    assert "amount" in str(column.value)
    if backend.name == "duckdb":  # PostgreSQL offers no table suggestion
        with pytest.raises(DatabaseError, match=r"is missing.*Did you mean \"experiment_viewed\"\?"):
            db.sql("SELECT * FROM experiment_viewd")
    with pytest.raises(DatabaseError) as missing:
        db.sql("SELECT * FROM experiment_viewed WHERE userId = :user_id")
    assert str(missing.value) == (
        "The query has a placeholder :user_id with no value: pass one, e.g. db.sql(query, user_id=…)."
    )
    assert "sqlalche.me" not in str(missing.value)
    db.dispose()


@pytest.mark.postgres
def test_postgresql_password_from_environment_never_shown(pg_server, monkeypatch, caplog):
    url = pg_server.url(pg_server.create_database("env_password").split("/")[-1])
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
    monkeypatch.setenv("WORKBENCH_DATABASE_PASSWORD", pg_server.password)
    db = wb.connect()
    assert db.settings.source == "WORKBENCH_DATABASE_URL" and db.dialect.name == "postgresql"
    assert db.sql("SELECT current_setting('default_transaction_read_only') AS ro")["ro"].iloc[0] == "on"
    for text in (repr(db), str(db), repr(db.settings), db.settings.display_url):
        assert pg_server.password not in text
    logging.getLogger().addHandler(caplog.handler)
    install_log_redaction()
    logging.getLogger("workbench.test").warning(
        "connecting with %s", db.settings.url.render_as_string(hide_password=False)
    )
    assert pg_server.password not in caplog.text and "***" in caplog.text
    db.dispose()


@pytest.mark.postgres
def test_password_from_dotenv_file(pg_server, isolated_home, monkeypatch):
    name = "dotenv_password"
    pg_server.create_database(name)
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", pg_server.url(name))
    (isolated_home / ".env").write_text(f"WORKBENCH_DATABASE_PASSWORD={pg_server.password}\n")
    try:
        db = wb.connect()
        assert db.sql("SELECT current_database() AS d")["d"].iloc[0] == name
        db.dispose()
    finally:
        (isolated_home / ".env").unlink()


@pytest.mark.postgres
def test_wrong_password_and_missing_database_are_explained(pg_server):
    wrong = f"postgresql+psycopg://workbench:{CANARY}@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(DatabaseError) as caught:
        wb.connect(wrong)
    assert "rejected the credentials" in str(caught.value) and CANARY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # driver text not chained
    with pytest.raises(DatabaseError, match="does not exist: create it"):
        wb.connect(pg_server.url_with_password("no_such_db"))


def test_server_down_gives_one_sentence_without_password(isolated_home):
    from support.pg_server import free_port

    url = f"postgresql://analyst:{CANARY}@127.0.0.1:{free_port()}/experiments"
    with pytest.raises(DatabaseError) as caught:
        wb.connect(url)
    message = str(caught.value)
    assert message.startswith("Cannot reach the database") and "start the server" in message
    assert CANARY not in message and "***" in message


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mysql://root:" + CANARY + "@localhost/db", "unsupported database 'mysql'"),
        ("not a url at all " + CANARY, "is not a database URL"),
        ("postgresql+asyncpg://u:" + CANARY + "@h/db", "driver 'asyncpg'"),
        ("spark://u:" + CANARY + "@h/db", "Spark SQL driver 'spark'; use"),  # Spark needs sc:// or spark+local://
        ("sc://h:15002/;token=" + CANARY, "holds a Spark Connect token: remove ;token=… from the URL"),
    ],
)
def test_bad_urls_are_refused_clearly(url, expected):
    with pytest.raises(ConfigError) as caught:
        wb.connect(url)
    assert expected in str(caught.value) and CANARY not in str(caught.value)


def test_config_file_selects_the_database_and_refuses_passwords(isolated_home, tmp_path, monkeypatch):
    config = tmp_path / "workbench.yml"
    target = tmp_path / "from_config.duckdb"
    config.write_text(f"database:\n  url: duckdb:///{target}\n  statement_timeout_seconds: 42\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    db = wb.connect(read_only=False)
    assert db.settings.url.database == str(target) and db.settings.statement_timeout_s == 42
    db.dispose()
    config.write_text(f"database:\n  url: postgresql://u:{CANARY}@db.internal/x\n")
    with pytest.raises(ConfigError, match="holds a password") as caught:
        wb.connect()
    assert CANARY not in str(caught.value)
    config.write_text("database:\n  urll: duckdb:///x.duckdb\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['urll'\]"):
        wb.connect()
    config.write_text("database: [unclosed\n")
    with pytest.raises(ConfigError, match=r"workbench.yml line"):
        wb.connect()


def test_environment_url_beats_config(isolated_home, tmp_path, monkeypatch):
    config = tmp_path / "workbench.yml"
    config.write_text(f"database:\n  url: duckdb:///{tmp_path / 'config.duckdb'}\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"duckdb:///{tmp_path / 'env.duckdb'}")
    db = wb.connect(read_only=False)
    assert db.settings.url.database.endswith("env.duckdb") and db.settings.source == "WORKBENCH_DATABASE_URL"
    db.dispose()


def test_redact_masks_registered_secrets_and_their_url_forms():
    from workbench.redaction import register_secret

    register_secret("p@ss word/1")
    assert redact("x p@ss word/1 y p%40ss%20word%2F1 z p%40ss+word%2F1") == "x *** y *** z ***"
