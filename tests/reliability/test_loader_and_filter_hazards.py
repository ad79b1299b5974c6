"""Loader and filter hazards (issue 17, items 8 and 9), on DuckDB and PostgreSQL.

The GrowthBook sample loader: an INTEGER beyond 32 bits, ``inf``, an empty file (plain or
gzipped), ``amount`` beside ``AMOUNT`` in a header and a NUL byte in text are each refused by
``workbench load growthbook-sample`` with one sentence naming the file, line and column, before any
write transaction opens, and the tables loaded before are intact (row counts and sums equal pandas
on GrowthBook's files).

Metric filters: conditions holding ``;`` or ``--`` inside string literals are analysed and match
pandas on the raw rows; a trailing comment, a statement separator, a subquery and file-reading
functions are refused by ``workbench analyze`` with one line naming the file and the metric, and
not one statement reaches the database.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.db import bulk_write
from workbench.db.sql_files import TableDefinition
from workbench.experiments.analysis import analyze
from workbench.experiments.config import load_config
from workbench.experiments.engine import experiment
from workbench.growthbook_sample import FILE_TABLES, load_growthbook_sample

pytestmark = pytest.mark.reliability

INT_RANGE = "a whole number from -2,147,483,648 to 2,147,483,647, as INTEGER holds (or \\N for NULL)"


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends to any database while the block runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


# ------------------------------------------------------------------ the GrowthBook sample loader


def fingerprint(url: str) -> dict[str, int]:
    """Rows per sample table, and the sums of orders.amount and sessions.duration, in the database."""
    db = wb.connect(url)
    try:
        found = {t: int(db.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in FILE_TABLES.values()}
        sums = db.sql("SELECT (SELECT SUM(amount) FROM orders) AS amount, (SELECT SUM(duration) FROM sessions) AS d")
        found["orders.amount"], found["sessions.duration"] = int(sums["amount"].iloc[0]), int(sums["d"].iloc[0])
    finally:
        db.dispose()
    return found


def raw_fingerprint(sample_dir: Path) -> dict[str, int]:
    """The same figures by pandas on GrowthBook's files."""
    raw = {stem: pd.read_csv(sample_dir / f"{stem}.csv.gz", dtype=str) for stem in FILE_TABLES}
    found = {table: len(raw[stem]) for stem, table in FILE_TABLES.items()}
    amounts = raw["purchases"]["amount"]
    found["orders.amount"] = int(amounts[amounts != r"\N"].astype(int).sum())
    found["sessions.duration"] = int(raw["sessions"]["duration"].astype(int).sum())
    return found


@pytest.fixture(scope="module")
def loaded(backend, sample_dir) -> tuple[str, dict[str, int]]:
    """A database on ``backend`` holding GrowthBook's sample, and its fingerprint by pandas."""
    url = backend.new_url("loader_hazards")
    db = wb.connect(url, read_only=False)
    load_growthbook_sample(db, sample_dir)
    db.dispose()
    expected = raw_fingerprint(sample_dir)
    assert fingerprint(url) == expected
    return url, expected


def edit_line(path: Path, line_no: int, column: str, value: str) -> str:
    """Set ``column`` of line ``line_no`` (1 = header) of the plain CSV ``path`` to ``value``; the old value."""
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    fields = lines[line_no - 1].rstrip("\n").split(",")
    old, fields[header.index(column)] = fields[header.index(column)], value
    lines[line_no - 1] = ",".join(fields) + "\n"
    path.write_text("".join(lines))
    return old


def unzip(folder: Path, stem: str) -> Path:
    """Replace ``stem.csv.gz`` in ``folder`` with its plain ``stem.csv``."""
    packed = folder / f"{stem}.csv.gz"
    plain = folder / f"{stem}.csv"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    return plain


def integer_overflow(folder: Path) -> str:
    path = unzip(folder, "purchases")
    edit_line(path, 4_000, "amount", "2147483648")
    return f"{path} line 4000: column amount holds '2147483648', which is not {INT_RANGE}."


def infinity(folder: Path) -> str:
    path = unzip(folder, "sessions")
    edit_line(path, 1_234, "duration", "inf")
    return f"{path} line 1234: column duration holds 'inf', which is not {INT_RANGE}."


def minus_infinity(folder: Path) -> str:
    path = unzip(folder, "events")
    edit_line(path, 60_001, "value", "-Infinity")
    return f"{path} line 60001: column value holds '-Infinity', which is not {INT_RANGE}."


def empty_file(folder: Path) -> str:
    (folder / "pageViews.csv.gz").unlink()
    path = folder / "pageViews.csv"
    path.write_bytes(b"")
    columns = ["userId", "anonymousId", "sessionId", "browser", "country", "timestamp", "path"]
    return f"{path} is empty: it needs a header line naming {columns}, then one line per row."


def empty_gzip(folder: Path) -> str:
    path = folder / "experimentViews.csv.gz"
    path.write_bytes(gzip.compress(b""))
    columns = ["userId", "anonymousId", "sessionId", "browser", "country", "timestamp", "experimentId", "variationId"]
    return f"{path} is empty: it needs a header line naming {columns}, then one line per row."


def header_collision(folder: Path) -> str:
    path = unzip(folder, "purchases")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",AMOUNT", *(line + ",0" for line in lines[1:])]) + "\n")
    return (
        f"{path} line 1: columns 'amount' (column 8) and 'AMOUNT' (column 9) name the same column, as SQL "
        "ignores case; rename or remove one."
    )


def nul_byte(folder: Path) -> str:
    path = unzip(folder, "events")
    assert edit_line(path, 321, "browser", "Op\x00era") == "Opera"
    return (
        f"{path} line 321: column browser holds 'Op\\x00era', which contains a NUL byte (\\x00) that PostgreSQL "
        "cannot store; remove it from the file."
    )


LOADER_CASES: dict[str, Callable[[Path], str]] = {
    "INTEGER overflow (2147483648)": integer_overflow,
    "inf in an INTEGER column": infinity,
    "-Infinity in an INTEGER column": minus_infinity,
    "an empty .csv file": empty_file,
    "an empty .csv.gz file": empty_gzip,
    "amount and AMOUNT in one header": header_collision,
    "a NUL byte in a text field": nul_byte,
}


@pytest.mark.parametrize("case", LOADER_CASES)
def test_a_bad_sample_file_is_one_sentence_and_loads_nothing(
    backend, loaded, sample_dir, tmp_path, monkeypatch, case, ledger
):
    url, expected = loaded
    folder = tmp_path / "sample"
    shutil.copytree(sample_dir, folder, ignore=shutil.ignore_patterns("*.md"))
    message = LOADER_CASES[case](folder)
    opened = []
    real_transaction = bulk_write.write_transaction

    def spied_transaction(db):
        opened.append(db)
        return real_transaction(db)

    monkeypatch.setattr(bulk_write, "write_transaction", spied_transaction)
    result = CliRunner().invoke(app, ["load", "growthbook-sample", str(folder), "--database", url])
    assert result.exit_code == 1, (result.output, result.exception)
    assert stderr_lines(result.stderr) == [f"error: {message}"]
    assert "Traceback" not in result.output and result.stdout == ""
    assert opened == []  # refused while reading: no write transaction was opened
    assert fingerprint(url) == expected  # the previous tables, untouched
    ledger(
        "Loader hazards",
        f"`workbench load growthbook-sample` on {backend.name} with GrowthBook's files and {case}",
        f"exit 1, one stderr line naming file and line (`{message.split(': ', 1)[0].rsplit('/', 1)[-1]}`), "
        f"0 write transactions opened; the {sum(expected[t] for t in FILE_TABLES.values()):,} rows loaded before "
        f"intact (rows per table, SUM(amount) {expected['orders.amount']:,}, SUM(duration) "
        f"{expected['sessions.duration']:,}: equal to pandas on the files)",
    )


# ------------------------------------------------------------------ metric filters

START = dt.datetime(2026, 1, 1)
EVENTS = [";", "--", "it's; -- not a comment", "/* not a comment */", "Add to Cart", "Search"]
ACCEPTED = {
    "semicolon": "event = ';'",
    "dashes": "event = '--'",
    "quote_semicolon_dashes": "event = 'it''s; -- not a comment'",
    "slash_star": "event LIKE '/*%'",
    "cart_or_search": "lower(event) IN ('add to cart', 'search') AND NOT event = ';'",
}
REFUSED = {
    "trailing comment": ("event = 'Search' --", "holds a comment (-- or /* */)"),
    "block comment": ("event = 'Search' /* and more */", "holds a comment (-- or /* */)"),
    "statement separator": ("event = 'Search'; DROP TABLE events", "holds ';' outside a quoted string"),
    "read_csv": ("read_csv('{secret}') IS NOT NULL", "uses \"READ_CSV('"),
    "read_text": ("event IN (SELECT content FROM read_text('{secret}'))", "uses \"(SELECT content FROM READ_TEXT('"),
    "read_parquet": ("read_parquet('{secret}') IS NULL", "uses \"READ_PARQUET('"),
    "pg_read_file": ("pg_read_file('{secret}') <> ''", "uses \"PG_READ_FILE('"),
    "glob": ("event = 'a' OR glob('/root/**') IS NULL", "is not a SQL condition"),
    "subquery": ("event IN (SELECT event FROM events)", "uses '(SELECT event FROM events)'"),
    "not a condition": ("event || ';'", "is not a SQL condition"),
}


def filter_rows(units: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures (one per user, two arms) and events after exposure, each user a different mix."""
    exposures = pd.DataFrame(
        {
            "user_id": [f"u{i:02d}" for i in range(units)],
            "ts": [START + dt.timedelta(hours=i) for i in range(units)],
            "experiment_id": "filters",
            "variation_id": [str(i % 2) for i in range(units)],
        }
    )
    rows = [
        (f"u{i:02d}", START + dt.timedelta(hours=i + 1 + k), EVENTS[(i * 7 + k * 3) % len(EVENTS)])
        for i in range(units)
        for k in range(i % 4)
    ]
    events = pd.DataFrame(rows, columns=["user_id", "ts", "event"])
    return exposures, events


def write_filter_tables(url: str, exposures: pd.DataFrame, events: pd.DataFrame) -> None:
    db = wb.connect(url, read_only=False)
    tables = []
    for name, frame in (("exposures", exposures), ("events", events)):
        columns = tuple((c, "TIMESTAMP" if c == "ts" else "VARCHAR") for c in frame.columns)
        schema = pa.schema([(c, pa.timestamp("us") if c == "ts" else pa.string()) for c in frame.columns])
        tables.append(
            (TableDefinition(name, columns), [pa.Table.from_pandas(frame, schema=schema, preserve_index=False)])
        )
    bulk_write.write_tables(db, tables)
    db.dispose()


def filter_config(path: Path, filters: dict[str, str]) -> Path:
    metrics = [
        {"name": name, "type": "binomial", "sql": "SELECT user_id, ts AS timestamp, event FROM events", "filter": text}
        for name, text in filters.items()
    ]
    data = {
        "identifier_types": ["user_id"],
        "assignment_queries": [
            {
                "name": "exposures",
                "identifier_type": "user_id",
                "sql": "SELECT user_id, ts AS timestamp, experiment_id, variation_id FROM exposures",
            }
        ],
        "metrics": metrics,
        "experiments": [
            {
                "key": "filters",
                "start": "2026-01-01",
                "end": "2026-01-31",
                "variations": ["0", "1"],
                "goal_metrics": list(filters),
            }
        ],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_filters_with_separators_inside_strings_are_analysed(backend, tmp_path, ledger):
    exposures, events = filter_rows()
    url = backend.new_url("filter_accepted")
    write_filter_tables(url, exposures, events)
    config = load_config(filter_config(tmp_path / "workbench.yml", ACCEPTED))
    db = wb.connect(url)
    try:
        results = analyze(experiment("filters", config), db=db, dimensions=())
    finally:
        db.dispose()
    stats = results.sufficient_statistics.set_index(["metric", "variation"])
    arm = exposures.set_index("user_id")["variation_id"]
    # pandas: per arm, the users with at least one event the filter keeps
    keep = {
        "semicolon": events["event"] == ";",
        "dashes": events["event"] == "--",
        "quote_semicolon_dashes": events["event"] == "it's; -- not a comment",
        "slash_star": events["event"].str.startswith("/*"),
        "cart_or_search": events["event"].str.lower().isin(["add to cart", "search"]) & (events["event"] != ";"),
    }
    converted = {}
    for metric, rows in keep.items():
        users = arm.loc[events.loc[rows, "user_id"].unique()]
        for variation in ("0", "1"):
            want = int((users == variation).sum())
            got = stats.loc[(metric, variation)]
            assert int(got["users"]) == int((arm == variation).sum())
            assert got["main_sum"] == want, (metric, variation)
            converted[metric] = converted.get(metric, 0) + want
    assert all(converted.values())  # every filter matched some rows: none is vacuous
    ledger(
        "Filter validation",
        f"{len(ACCEPTED)} metric filters with `;`, `--`, `/*` and a doubled quote inside string literals "
        f"(e.g. `{ACCEPTED['semicolon']}`), analysed on {backend.name}",
        f"all accepted; users converted per filter {converted} over {len(exposures)} users and "
        f"{len(events)} events, equal to pandas on the raw rows for both arms",
    )


def test_refused_filters_never_reach_the_database(backend, tmp_path, ledger):
    exposures, events = filter_rows()
    url = backend.new_url("filter_refused")
    write_filter_tables(url, exposures, events)
    secret = tmp_path / "secret.csv"
    secret.write_text("secret\nnot for analysts\n")
    runner, sent_total = CliRunner(), 0
    for case, (template, wanted) in REFUSED.items():
        text = template.format(secret=secret)
        path = filter_config(tmp_path / f"{case.replace(' ', '_')}.yml", {"hostile": text})
        with statements_sent() as sent:
            result = runner.invoke(app, ["analyze", "filters", "--config", str(path), "--database", url])
        lines = stderr_lines(result.stderr)
        assert result.exit_code == 1, (case, result.output, result.exception)
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: metric 'hostile'.filter: "), (case, lines)
        assert wanted in lines[0], (case, lines)
        assert "not for analysts" not in result.output and result.stdout == ""
        assert sent == [], (case, sent)
        sent_total += len(sent)
    db = wb.connect(url)
    try:
        counts = db.sql("SELECT (SELECT COUNT(*) FROM exposures) AS e, (SELECT COUNT(*) FROM events) AS v")
    finally:
        db.dispose()
    assert (int(counts["e"].iloc[0]), int(counts["v"].iloc[0])) == (len(exposures), len(events))
    ledger(
        "Filter validation",
        f"`workbench analyze` on {backend.name} with {len(REFUSED)} hostile filters: {', '.join(REFUSED)}",
        f"each refused with exit 1 and one `error: <file>: metric 'hostile'.filter: …` line; {sent_total} statements "
        f"sent to the database; the secret file's text in no output; {len(exposures)} exposures and "
        f"{len(events)} events intact",
    )
