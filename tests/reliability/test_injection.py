"""Injection: every hostile value of ``hostile_values.HOSTILE`` goes in wherever a user (or an
event producer) supplies a value, on DuckDB and on PostgreSQL, and either comes back intact as
data or is refused with one clear sentence; no statement other than the intended one runs.

Proof on PostgreSQL: a dedicated server logs every statement (``log_statement=all``); each
phase first runs with a benign value, then with the whole corpus, and every statement the
server logged for the corpus must be one the benign run logged too (cursor names aside), never a
DROP/DELETE/INSERT/COPY/UPDATE outside ingestion, with the hostile text only in the logged
bound parameters. Proof on DuckDB: the SQL text the builders produce for a hostile value equals
the text for a benign one, the in-process statements (SQLAlchemy's cursor events) likewise,
and the database's tables and row counts are the same afterwards.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from hostile_values import HOSTILE, NOTEBOOK_SUBSET, hostile_items, preview

import workbench as wb
from workbench.errors import ConfigError, WorkbenchError
from workbench.events.settings import FieldLimits
from workbench.experiments.config import load_config, parse_config

pytestmark = pytest.mark.reliability

ITEMS = hostile_items()
NUL = "\x00"
START, END = "2026-01-01", "2026-01-31"
BENIGN = "treatment"
WRITE_VERBS = (
    "DROP",
    "DELETE",
    "INSERT",
    "COPY",
    "UPDATE",
    "ALTER",
    "TRUNCATE",
    "CREATE",
    "ATTACH",
    "INSTALL",
    "LOAD",
    "GRANT",
)
# after a statement fails, the transaction rolls back and psycopg checks whether its server cursor survived
ERROR_HOUSEKEEPING = {"ROLLBACK", "SELECT 1 FROM pg_catalog.pg_cursors WHERE name = 'c_'"}


# ------------------------------------------------------------------ statement records


class StatementRecorder:
    """Statements run in this process (SQLAlchemy cursor events), for both engines."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        start = len(self.statements)
        taken: list[str] = []
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self)
        try:
            yield taken
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", self)
            taken.extend(self.statements[start:])


_ENTRY = re.compile(r"\n(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [A-Z]+ \[\d+\] )")
_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [A-Z]+ \[\d+\] ")
_LOGGED = re.compile(r"^LOG:  (?:statement|execute [^:]+): (.*)$", re.DOTALL)
_DETAIL = re.compile(r"^DETAIL:  parameters: (.*)$", re.DOTALL)
_CURSOR = re.compile(r"c_[0-9a-f]+_[0-9a-f]+")


def shape(statement: str) -> str:
    """A statement's text with server-side cursor names and white space normalised."""
    return " ".join(_CURSOR.sub("c_", statement).split())


@dataclass
class ServerLog:
    """The statement log of a PostgreSQL server started with ``log_statement=all``."""

    path: Path
    offset: int = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def entries(self) -> tuple[list[str], list[str]]:
        """(statements, bound-parameter details) logged since :meth:`mark`."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode("utf-8", errors="replace")
        statements, details = [], []
        for entry in _ENTRY.split(text):
            body = _PREFIX.sub("", entry.strip("\n")).replace("\n\t", "\n")
            if match := _LOGGED.match(body):
                statements.append(match.group(1))
            elif match := _DETAIL.match(body):
                details.append(match.group(1))
        return statements, details


@dataclass
class Engine:
    """One engine loaded with the hostile data set, its config and what it held at the start."""

    name: str
    url: str
    config: object
    config_path: Path
    assignments: pd.DataFrame
    purchases: pd.DataFrame
    tmp: Path
    log: ServerLog | None = None
    db: object = None
    recorder: StatementRecorder = field(default_factory=StatementRecorder)
    refused_variations: set[str] = field(default_factory=set)

    def storable(self, value: str) -> bool:
        """PostgreSQL text cannot hold NUL; every other value is stored as given."""
        return not (self.name == "postgresql" and NUL in value)

    @contextmanager
    def writable(self) -> Iterator[object]:
        """A writable session; DuckDB opens a file in one mode per process, so the read-only
        analysis session closes meanwhile and reopens after."""
        self.db.dispose()
        writer = wb.connect(self.url, read_only=False)
        try:
            yield writer
        finally:
            writer.dispose()
            self.db = wb.connect(self.url)

    @contextmanager
    def phase(self) -> Iterator[Phase]:
        """Statements run inside the block: in process (both engines) and logged by the server."""
        if self.log is not None:
            self.log.mark()
        phase = Phase()
        with self.recorder.recording() as taken:
            yield phase
        phase.in_process = list(taken)
        if self.log is not None:
            phase.logged, phase.details = self.log.entries()


@dataclass
class Phase:
    in_process: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def assert_same_statements(engine: Engine, benign: Phase, hostile: Phase, writes: bool = False) -> None:
    """Every statement of the hostile phase has a benign twin; no write outside ingestion."""
    allowed = {shape(s) for s in benign.in_process}
    extra = {shape(s) for s in hostile.in_process} - allowed
    assert not extra, (
        f"statements only the hostile values ran (in process): {[preview(s, 200) for s in sorted(extra)[:5]]}"
    )
    if engine.log is not None:
        allowed_logged = {shape(s) for s in benign.logged} | ERROR_HOUSEKEEPING
        extra = {shape(s) for s in hostile.logged} - allowed_logged
        assert not extra, (
            f"statements only the hostile values ran (server log): {[preview(s, 200) for s in sorted(extra)[:5]]}"
        )
    if not writes:
        for statement in hostile.in_process + hostile.logged:
            first = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            assert first not in WRITE_VERBS, f"a write ran during an analysis phase: {preview(statement, 200)}"


def logged_as_parameter(phase: Phase, value: str) -> bool:
    """Whether ``value`` reached the server as a bound parameter (quoted as PostgreSQL logs it)."""
    quoted = "'" + value.replace("'", "''") + "'"
    return any(quoted in detail for detail in phase.details)


def table_counts(db) -> dict[str, int]:
    """Every table of the database (schema.table) with its row count."""
    tables = db.sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type IN ('BASE TABLE', 'LOCAL TEMPORARY') AND table_schema NOT IN ('pg_catalog', 'information_schema')",
        limit=None,
    )
    counts = {}
    for row in tables.itertuples(index=False):
        name = f"{row.table_schema}.{row.table_name}"
        counts[name] = int(db.sql(f'SELECT count(*) FROM "{row.table_schema}"."{row.table_name}"').iloc[0, 0])
    return counts


# ------------------------------------------------------------------ the data set and config


def batch_variations(values: list[str]) -> tuple[list[str], list[str]]:
    """Variation ids of the batched experiment ``allvars`` (control + every value) and of its
    benign twin ``allvars_benign`` (control + as many plain ids)."""
    return ["control", *values], ["control", *(f"b{i:03d}" for i in range(len(values)))]


def hostile_frames(values: list[str], storable) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assignments and purchases where hostile values are variation ids (experiment ``allvars``),
    dimension values (``dims``) and experiment ids; purchases follow a fixed rule so pandas can
    recompute every figure."""
    rows, buys = [], []
    t0 = dt.datetime(2026, 1, 5, 12)
    stored = [v for v in values if storable(v)]
    notebook = ["control", *(HOSTILE[label] for label in NOTEBOOK_SUBSET if HOSTILE[label] in stored)]
    for key, variations in (*zip(("allvars", "allvars_benign"), batch_variations(stored)), ("nbvars", notebook)):
        for i, variation in enumerate(variations):
            for j in range(3):
                user = f"{key}_{i}_{j}"
                rows.append((user, t0 + dt.timedelta(minutes=j), key, variation, "benign"))
                if (i + j) % 3 != 2:
                    buys.append((user, t0 + dt.timedelta(hours=1), float(i + j)))
    for i, (_, value) in enumerate(ITEMS):
        if not storable(value):
            continue
        for j in range(2):  # experiment dims: the hostile value as a dimension value (country)
            rows.append((f"d{i}_{j}", t0, "dims", "control" if j == 0 else BENIGN, value))
            buys.append((f"d{i}_{j}", t0 + dt.timedelta(hours=2), float(i)))
        rows.append((f"h{i}", t0, value, "0", "benign"))  # the hostile value as an experiment id
    assignments = pd.DataFrame(rows, columns=["user_id", "timestamp", "experiment_id", "variation_id", "country"])
    purchases = pd.DataFrame(buys, columns=["user_id", "timestamp", "value"])
    return assignments, purchases


def hostile_experiment(i: int, value: str) -> dict:
    return {
        "key": f"exp_{i:03d}",
        "variations": ["control", value],
        "control": "control",
        "start": START,
        "end": END,
        "goal_metrics": ["purchased", "revenue"],
    }


def accepted_variation(value: str, path: Path) -> bool:
    """Whether the config takes ``value`` as a variation id; when not, the refusal must be one
    sentence naming the file and the entry."""
    mapping = config_mapping()
    mapping["experiments"] = [hostile_experiment(0, value)]
    try:
        parse_config(mapping, path).strict()
    except ConfigError as exc:
        assert_one_sentence(str(exc), str(path), "exp_000", "variations")
        return False
    return True


def config_mapping(accepted=lambda value: True, batched: list[str] | None = None) -> dict:
    """The project config: one experiment per hostile value (control vs that value), the batched
    experiment ``allvars`` with every ``batched`` value as a variation, one broken down by the
    hostile country values, and a benign twin of each."""
    experiments = [
        {
            "key": "exp_benign",
            "variations": ["control", BENIGN],
            "control": "control",
            "start": START,
            "end": END,
            "goal_metrics": ["purchased", "revenue"],
        },
        {
            "key": "dims",
            "variations": ["control", BENIGN],
            "start": START,
            "end": END,
            "dimensions": ["country"],
            "goal_metrics": ["purchased", "revenue"],
        },
    ]
    if batched is not None:
        notebook = ["control", *(HOSTILE[label] for label in NOTEBOOK_SUBSET if HOSTILE[label] in batched)]
        for key, variations in (*zip(("allvars", "allvars_benign"), batch_variations(batched)), ("nbvars", notebook)):
            experiments.append(
                {
                    "key": key,
                    "variations": variations,
                    "control": "control",
                    "start": START,
                    "end": END,
                    "goal_metrics": ["purchased", "revenue"],
                }
            )
    for i, (_, value) in enumerate(ITEMS):
        if accepted(value):
            experiments.append(hostile_experiment(i, value))
    return {
        "identifier_types": ["user_id"],
        "assignment_queries": [
            {
                "name": "assignments",
                "identifier_type": "user_id",
                "dimensions": ["country"],
                "sql": "SELECT user_id, timestamp, experiment_id, variation_id, country FROM wb_assignments",
            }
        ],
        "metrics": [
            {"name": "purchased", "type": "binomial", "sql": "SELECT user_id, timestamp FROM wb_purchases"},
            {"name": "revenue", "type": "mean", "sql": "SELECT user_id, timestamp, value FROM wb_purchases"},
        ],
        "experiments": experiments,
    }


def load_frames(url: str, assignments: pd.DataFrame, purchases: pd.DataFrame) -> None:
    """Create and fill the seed tables (test setup: plain bound INSERTs on a writable session)."""
    db = wb.connect(url, read_only=False)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE wb_assignments (user_id VARCHAR, timestamp TIMESTAMP, experiment_id VARCHAR, variation_id VARCHAR, country VARCHAR)"
            )
        )
        conn.execute(
            sa.text("CREATE TABLE wb_purchases (user_id VARCHAR, timestamp TIMESTAMP, value DOUBLE PRECISION)")
        )
        conn.execute(
            sa.text(
                "INSERT INTO wb_assignments VALUES (:user_id, :timestamp, :experiment_id, :variation_id, :country)"
            ),
            assignments.to_dict("records"),
        )
        conn.execute(
            sa.text("INSERT INTO wb_purchases VALUES (:user_id, :timestamp, :value)"), purchases.to_dict("records")
        )
    db.dispose()


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    """One database per engine with the hostile data set, the study and the event store; on
    PostgreSQL a dedicated server logging every statement."""
    tmp = tmp_path_factory.mktemp(f"injection-{request.param}")
    server = None
    if request.param == "duckdb":
        url = f"duckdb:///{tmp / 'injection.duckdb'}"
    else:
        from support.pg_server import start_postgres

        server = start_postgres(log_statements=True)
        server.create_database("injection")
        url = server.url_with_password("injection")
    storable = (lambda v: NUL not in v) if server is not None else (lambda v: True)
    config_path = tmp / "workbench.yml"
    refused = {label for label, value in ITEMS if not accepted_variation(value, config_path)}
    accepted = [value for label, value in ITEMS if label not in refused]
    assignments, purchases = hostile_frames(accepted, storable)
    load_frames(url, assignments, purchases)
    batched = [v for v in accepted if storable(v)]
    config_path.write_text(
        yaml.safe_dump(config_mapping(lambda v: v in accepted, batched), sort_keys=False), encoding="utf-8"
    )
    config = load_config(config_path)
    for i, (label, value) in enumerate(ITEMS):  # YAML round trip: every accepted value reaches the config intact
        if label not in refused:
            assert config.experiments[f"exp_{i:03d}"].variations == ("control", value)
    assert config.experiments["allvars"].variations == ("control", *batched)
    engine = Engine(
        request.param,
        url,
        config,
        config_path,
        assignments,
        purchases,
        tmp,
        log=ServerLog(server.log_file) if server else None,
        refused_variations=refused,
    )
    engine.db = wb.connect(url)
    yield engine
    engine.db.dispose()
    if server is not None:
        server.cleanup()


def pandas_users(assignments: pd.DataFrame, experiment_id: str, by: str | None = None) -> dict:
    """Distinct users per variation (and per ``by`` value) of one experiment, from the raw rows."""
    rows = assignments[assignments["experiment_id"] == experiment_id]
    keys = ["variation_id"] if by is None else [by, "variation_id"]
    return {k: int(v) for k, v in rows.groupby(keys)["user_id"].nunique().items()}


def pandas_purchases(engine: Engine, experiment_id: str) -> dict[str, tuple[int, float]]:
    """Per variation: users who bought (binomial sum) and the sum of their purchase values."""
    rows = engine.assignments[engine.assignments["experiment_id"] == experiment_id]
    merged = rows.merge(engine.purchases, on="user_id", how="left", suffixes=("", "_p"))
    out = {}
    for variation, group in merged.groupby("variation_id"):
        per_user = group.groupby("user_id")["value"].agg(["count", "sum"])
        out[variation] = (int((per_user["count"] > 0).sum()), float(per_user["sum"].sum()))
    return out


def assert_one_sentence(message: str, *names: str, limit: int = 2_000) -> None:
    """One line, naming each of ``names`` (file, entry, argument), never swollen by the value it
    refuses (the corpus holds 100,000-character values; lists of configured names may be long)."""
    assert "\n" not in message and "Traceback" not in message, f"not one line: {preview(message, 300)}"
    assert len(message) <= limit, f"{len(message):,} characters: {preview(message, 300)}"
    for name in names:
        assert name in message, f"{name!r} not named in: {preview(message, 300)}"


# ------------------------------------------------------------------ experiment keys, names, dates in the config


def minimal_mapping(**experiment) -> dict:
    mapping = config_mapping()
    mapping["experiments"] = [
        {
            "key": "exp_benign",
            "variations": ["control", BENIGN],
            "start": START,
            "end": END,
            "goal_metrics": ["purchased"],
            **experiment,
        }
    ]
    return mapping


def test_config_entries_refuse_hostile_names_and_dates(tmp_path, ledger):
    """Experiment keys, dimension names, metric names and start/end dates: a hostile value is
    refused with one sentence naming the file and the entry, or (keys only) kept exactly."""
    path = tmp_path / "workbench.yml"
    kept_keys, refused = [], 0
    for label, value in ITEMS:
        try:
            config = parse_config(minimal_mapping(key=value), path).strict()
        except ConfigError as exc:
            assert_one_sentence(str(exc), str(path), "experiment")
            refused += 1
        else:
            assert list(config.experiments) == [value]  # kept as given: letters, digits, _ . : - only
            assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}", value), label
            kept_keys.append(label)
        entries = (
            ({"dimensions": [value]}, "dimensions"),
            ({"start": value}, "start"),
            ({"end": value}, "end"),
            ({"goal_metrics": [value]}, "goal_metrics"),
            ({"assignment_query": value}, "assignment"),
        )
        for change, named in entries:
            with pytest.raises(ConfigError) as err:
                parse_config(minimal_mapping(**change), path).strict()
            assert_one_sentence(str(err.value), str(path), "exp_benign", named)
            refused += 1
        mapping = minimal_mapping()
        mapping["assignment_queries"][0]["dimensions"] = [value]
        with pytest.raises(ConfigError) as err:
            parse_config(mapping, path).strict()
        assert_one_sentence(str(err.value), str(path), "assignment query 'assignments'")
        refused += 1
    assert refused == len(ITEMS) * 7 - len(kept_keys)
    ledger(
        "Injection",
        f"{len(ITEMS)} hostile values as experiment key, dimension name (assignment query and experiment), "
        "metric name, assignment-query name, start and end in workbench.yml",
        f"{refused:,} refusals, each one sentence naming the file and entry; {len(kept_keys)} keys made of key characters "
        f"({', '.join(kept_keys)}) kept exactly; no value reached a database",
    )


# ------------------------------------------------------------------ variation ids and dimension values (data)


def test_variation_ids_are_bound_and_come_back_intact(engine, ledger):
    """Each hostile variation id builds the very SQL text a benign id builds (only the bound
    values differ); all of them at once, as the variations of one experiment, come back intact
    through analyze() and unit_metrics() with the units, conversion and means pandas computes
    from the raw rows, and the statements that ran are those of a benign twin experiment."""
    from workbench.errors import DatabaseError
    from workbench.experiments import sql as sql_builder
    from workbench.experiments.analysis import analyze
    from workbench.experiments.engine import Experiment, unit_metrics

    cfg, db = engine.config, engine.db
    before = table_counts(db)

    def texts(experiment) -> set[str]:
        return {q(cfg, experiment.settings).sql for q in (sql_builder.experiment_query, sql_builder.unit_metrics_query)}

    benign_text = texts(Experiment(cfg, cfg.experiment("exp_benign")))
    built = 0
    for i, (label, value) in enumerate(ITEMS):
        if label in engine.refused_variations:
            continue
        exp = Experiment(cfg, cfg.experiment(f"exp_{i:03d}"))
        assert texts(exp) == benign_text, label
        assert value in sql_builder.experiment_query(cfg, exp.settings).params.values(), label
        built += 1
    twin, batch = (Experiment(cfg, cfg.experiment(k)) for k in ("allvars_benign", "allvars"))
    assert texts(batch) == texts(twin)
    with engine.phase() as benign_phase:
        analyze(twin, db, dimensions=())
        unit_metrics(twin, db)
    with engine.phase() as hostile_phase:
        results = analyze(batch, db, dimensions=())
        per_unit = unit_metrics(batch, db)
    users = pandas_users(engine.assignments, "allvars")
    bought = pandas_purchases(engine, "allvars")
    rows = [r for r in results.to_dict()["results"] if r["dimension"] == "overall"]
    assert {r["variation"] for r in rows} == set(batch.variations) - {"control"}
    for r in rows:
        buyers, total = bought[r["variation"]]
        assert r["units"] == users[r["variation"]] and r["baseline_units"] == users["control"], preview(r["variation"])
        expected_mean = buyers / users[r["variation"]] if r["metric"] == "purchased" else total / users[r["variation"]]
        assert r["mean"] == pytest.approx(expected_mean, rel=1e-12), preview(r["variation"])
    assert per_unit.groupby("variation")["unit"].nunique().to_dict() == users
    str(results)
    refused_by_db = []
    for i, (label, value) in enumerate(ITEMS):
        if label not in engine.refused_variations and not engine.storable(value):
            with pytest.raises(DatabaseError) as err:
                analyze(Experiment(cfg, cfg.experiment(f"exp_{i:03d}")), db, dimensions=())
            assert_one_sentence(str(err.value), "NUL")
            refused_by_db.append(label)
    assert_same_statements(engine, benign_phase, hostile_phase)
    bound = 0
    if engine.log is not None:
        bound = sum(logged_as_parameter(hostile_phase, v) for v in batch.variations[1:])
        assert bound == len(batch.variations) - 1
    assert table_counts(db) == before
    where = (
        f"the server logged {len(hostile_phase.logged):,} statements, each also run for the benign twin, with all {bound} values "
        "only among the bound parameters"
        if engine.log
        else f"{len(hostile_phase.in_process):,} statements ran, each also run for the benign twin"
    )
    ledger(
        "Injection",
        f"{engine.name}: {len(ITEMS)} hostile values as variation ids in workbench.yml and in the data, through "
        "the SQL builder, analyze() and unit_metrics()",
        f"{built} built SQL text identical to a benign id's; {len(batch.variations) - 1} came back intact with pandas' units and means; "
        f"{len(engine.refused_variations)} refused by the config ({', '.join(sorted(engine.refused_variations))}) and "
        f"{len(refused_by_db)} by the database ({', '.join(refused_by_db) or 'none'}), each in one sentence; {where}; no write ran; "
        f"{len(before)} tables, same row counts",
    )


def test_dimension_values_are_data_and_dimension_names_are_refused(engine, ledger):
    """Hostile values in a dimension column come back intact, per value and variation, with the
    users pandas counts; hostile dimension names are refused before any statement runs."""
    from workbench.experiments.engine import Experiment, health_facts, sufficient_stats

    cfg, db = engine.config, engine.db
    before = table_counts(db)
    dims = Experiment(cfg, cfg.experiment("dims"))
    expected = pandas_users(engine.assignments, "dims", by="country")
    with engine.phase() as benign_phase:
        sufficient_stats(dims, "country", db, top_n=len(ITEMS) + 5)
        health_facts(dims, "country", db, top_n=len(ITEMS) + 5)
    with engine.phase() as hostile_phase:
        stats = sufficient_stats(dims, "country", db, top_n=len(ITEMS) + 5)
        units, _ = health_facts(dims, "country", db, top_n=len(ITEMS) + 5)
    rows = stats[(stats["metric"] == "purchased") & (stats["dimension"] == "country")]
    got = {(r.dimension_value, r.variation): int(r.users) for r in rows.itertuples() if r.users > 0}
    assert got == expected
    unit_rows = units[units["dimension"] == "country"]
    assert {(r.dimension_value, r.variation): int(r.users) for r in unit_rows.itertuples()} == expected
    values = {v for v, _ in expected}
    assert values == {v for _, v in ITEMS if engine.storable(v)}
    assert_same_statements(engine, benign_phase, hostile_phase)
    with engine.phase() as names_phase:
        for _label, value in ITEMS:
            for run in (sufficient_stats, health_facts):
                with pytest.raises(ConfigError) as err:
                    run(dims, value, db)
                assert_one_sentence(str(err.value), str(engine.config_path), "dims", "dimension")
    assert not names_phase.in_process and not names_phase.logged, "a hostile dimension name reached the database"
    assert table_counts(db) == before
    ledger(
        "Injection",
        f"{engine.name}: {len(values)} hostile values in a dimension column; {len(ITEMS)} hostile dimension names "
        "passed to sufficient_stats and health_facts",
        f"{len(values)} dimension values came back intact with pandas' users per value and variation ({len(expected)} cells); "
        f"{2 * len(ITEMS)} names refused in one sentence with 0 statements run; same statements as a benign run; tables unchanged",
    )


# ------------------------------------------------------------------ the YouTube study: participant codes and dates

STUDY_ID0 = 10_000  # hostile participants get ids from here


@pytest.fixture(scope="module")
def study(engine) -> list[str]:
    """The tiny generated study in schema ytdpnl, plus one participant per hostile code (as the
    study's server would store a code typed in by a participant); returns those codes."""
    from workbench.studies.ytdpnl.generator import generate_study

    codes = [v for _, v in ITEMS if engine.storable(v)]
    with engine.writable() as writer:
        generate_study(writer, "tiny", seed=0, schema="ytdpnl")
        with writer.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO ytdpnl.participant (id, code, arm, phase, extension_installed, is_paid, pos_in_channel_source, "
                    "pos_in_channel_source_last_updated_at, created_at, updated_at) VALUES (:id, :code, 'control', 0, false, false, 0, :t, :t, :t)"
                ),
                [{"id": STUDY_ID0 + i, "code": code, "t": dt.datetime(2023, 2, 1)} for i, code in enumerate(codes)],
            )
    return codes


def test_participant_codes_and_dates_of_the_study(engine, study, ledger):
    """Hostile participant codes select exactly the participant holding that code (and nobody
    else) through the study's analyses; hostile start/end dates are refused in one sentence
    naming the argument before any statement runs."""
    from workbench.studies import ytdpnl

    db = engine.db
    before = table_counts(db)
    everyone = ytdpnl.participants(db, schema="ytdpnl")
    generated = everyone[everyone["id"] < STUDY_ID0]["code"].tolist()

    def by_code(code: str) -> tuple:
        return (
            ytdpnl.participants(db, schema="ytdpnl", codes=[code]),
            ytdpnl.participants_report(db, schema="ytdpnl", codes=[code]),
            ytdpnl.daily_activity(db, schema="ytdpnl", codes=[code]),
            ytdpnl.participant_summary(db, code, schema="ytdpnl"),
        )

    with engine.phase() as benign_phase:
        by_code(generated[0])
        ytdpnl.participants(db, schema="ytdpnl", codes=[f"benign-{i}" for i in range(len(study))])
    with engine.phase() as hostile_phase:
        for i, code in enumerate(study):
            people, report, days, sessions = by_code(code)
            assert people[["id", "code"]].values.tolist() == [[STUDY_ID0 + i, code]], preview(code)
            assert report["identifier"].tolist() == [code], preview(code)
            assert days.empty and sessions.empty, preview(code)  # hostile participants have no events
        together = ytdpnl.participants(db, schema="ytdpnl", codes=study)
    assert sorted(together["code"]) == sorted(study) and len(together) == len(study)
    assert_same_statements(engine, benign_phase, hostile_phase)
    bound = sum(logged_as_parameter(hostile_phase, c) for c in study) if engine.log else 0
    assert bound == (len(study) if engine.log else 0)
    refused = 0
    with engine.phase() as dates_phase:
        for _label, value in ITEMS:
            for name, call in (
                ("start", lambda v: ytdpnl.participant_overview(db, schema="ytdpnl", start=v)),
                ("end", lambda v: ytdpnl.daily_activity(db, schema="ytdpnl", end=v)),
                ("start", lambda v: ytdpnl.monitoring(db, start=v, schema="ytdpnl")),
            ):
                with pytest.raises(WorkbenchError) as err:
                    call(value)
                assert_one_sentence(str(err.value), f"{name}=")
                refused += 1
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
                with pytest.raises(WorkbenchError) as err:
                    ytdpnl.participants(db, schema=value)
                assert_one_sentence(str(err.value), "schema=")
                refused += 1
    assert not dates_phase.in_process and not dates_phase.logged, "a hostile date or schema reached the database"
    keywords = [v for _, v in ITEMS if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", v)]
    with engine.phase() as keyword_phase:  # plain names (SQL keywords among them) are schema names, quoted as such
        for value in keywords:
            with pytest.raises(WorkbenchError) as err:
                ytdpnl.participants(db, schema=value)
            assert_one_sentence(str(err.value), f"schema {value!r}")
    session_own = {"SET TRANSACTION READ ONLY"}  # each read-only transaction's first statement
    search_paths = {s for s in keyword_phase.in_process + keyword_phase.logged if s.startswith("SET")} - session_own
    assert search_paths == (
        {f'SET LOCAL search_path TO "{v.lower()}"' for v in keywords}
        if engine.log
        else {f"SET search_path = '{v}'" for v in keywords}
    )
    nul_refused = 0
    for code in (v for _, v in ITEMS if not engine.storable(v)):
        with pytest.raises(WorkbenchError) as err:
            ytdpnl.participants(db, schema="ytdpnl", codes=[code])
        assert_one_sentence(str(err.value), "NUL")
        nul_refused += 1
    assert table_counts(db) == before
    where = (
        f"the server logged {len(hostile_phase.logged):,} statements, each also run for a benign code, every code only among the bound parameters"
        if engine.log
        else f"{len(hostile_phase.in_process):,} statements, each also run for a benign code"
    )
    ledger(
        "Injection",
        f"{engine.name}: {len(ITEMS)} hostile participant codes (stored as participants) through participants, "
        "participants_report, daily_activity and participant_summary, one by one and all at once; the corpus as start, end and schema",
        f"each of {len(study)} codes selected exactly its own participant; {nul_refused} NUL code refused by the database in one sentence; "
        f"{refused:,} dates and schemas refused in one sentence naming the argument with 0 statements run; {len(keywords)} keyword schemas ({', '.join(keywords)}) set as quoted names and reported missing; {where}; tables unchanged",
    )


# ------------------------------------------------------------------ event payloads (Grouparoo ingestion)

PRODUCER_KEY = "k-injection-producer-0001"
LIMITS = FieldLimits()  # 255 bytes per type, id and data key; 32,768 per record


def event_records(values: list[str], prefix: str) -> list[dict]:
    """Six records per value: it as the type, the userId, the anonymousId, the messageId, a
    payload key and a payload value; every other field plain and unique."""
    records = []
    for i, v in enumerate(values):
        records += [
            {"type": v, "userId": f"user-{i}", "messageId": f"{prefix}type-{i}", "data": {"k": f"v{i}"}},
            {"type": "probe", "userId": v, "messageId": f"{prefix}user-{i}"},
            {"type": "probe", "anonymousId": v, "messageId": f"{prefix}anon-{i}"},
            {"type": "probe", "userId": f"user-{i}", "messageId": v},
            {"type": "probe", "userId": f"user-{i}", "messageId": f"{prefix}key-{i}", "data": {v: "x"}},
            {"type": "probe", "userId": f"user-{i}", "messageId": f"{prefix}value-{i}", "data": {"k": v}},
        ]
    return records


def expected_rows(records: list[dict]) -> tuple[set[tuple], int]:
    """(stored rows as (message_id, type, user_id, anonymous_id, key, value), quarantined count),
    from the ingestion rules of docs/events.md: NUL anywhere, a blank type, no id, an empty
    payload key, or a type, id or key over 255 bytes or a record over 32,768 bytes quarantine the record; empty ids are absent; payload values are kept as text."""
    rows, quarantined = set(), 0
    for r in records:
        texts = [
            r["type"],
            r.get("userId") or "",
            r.get("anonymousId") or "",
            r["messageId"],
            *r.get("data", {}),
            *r.get("data", {}).values(),
        ]
        if (
            any(NUL in t for t in texts)
            or not r["type"].strip()
            or not (r.get("userId") or r.get("anonymousId"))
            or "" in r.get("data", {})
            or any(len(t.encode()) > LIMITS.id_bytes for t in [*texts[:4], *r.get("data", {})])
            or len(json.dumps(r, ensure_ascii=False).encode()) > LIMITS.record_bytes
        ):
            quarantined += 1
            continue
        base = (r["messageId"] or None, r["type"], r.get("userId") or None, r.get("anonymousId") or None)
        rows |= {(*base, k, v) for k, v in r["data"].items()} if r.get("data") else {(*base, None, None)}
    return rows, quarantined


def test_event_payloads_are_stored_as_sent(engine, tmp_path, ledger):
    """Hostile event types, ids, payload keys and values are stored exactly as sent or
    quarantined by the documented rules; the statements of the ingestion are those of a benign
    file; the exploration functions take them back as bound values."""
    from workbench.events.explore import event_counts, profile_stream
    from workbench.events.ingest import ingest
    from workbench.events.settings import EventSettings

    settings = EventSettings(schema="grouparoo", api_keys={"web": PRODUCER_KEY})
    values = [v for _, v in ITEMS]
    files = {}
    for name, batch in (("benign", [f"benign-{i}" for i in range(len(values))]), ("hostile", values)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in event_records(batch, name[0] + "-")),
            encoding="utf-8",
        )
    with engine.writable() as writer:
        with engine.phase() as benign_phase:
            ingest(
                writer,
                files["benign"],
                PRODUCER_KEY,
                settings=settings,
                quarantine_file=tmp_path / "benign-quarantine.jsonl",
            )
        before = table_counts(writer)
        with engine.phase() as hostile_phase:
            counts = ingest(
                writer,
                files["hostile"],
                PRODUCER_KEY,
                settings=settings,
                quarantine_file=tmp_path / "hostile-quarantine.jsonl",
            )
    records = event_records(values, "h-")
    expected, quarantined = expected_rows(records)
    assert (counts.received, counts.quarantined, counts.duplicates) == (len(records), quarantined, 0)
    assert counts.stored == len(records) - quarantined
    db = engine.db
    stored = db.sql(
        "SELECT e.message_id, e.type, e.user_id, e.anonymous_id, d.key, d.value FROM grouparoo.events e "
        "LEFT JOIN grouparoo.event_data d ON d.event_id = e.id",
        limit=None,
    )
    rows = {tuple(None if pd.isna(x) else x for x in row) for row in stored.itertuples(index=False)}
    got = {
        row for row in rows if not (row[0] and (row[0].startswith("b-") or re.fullmatch(r"benign-\d+", row[0])))
    }  # the benign file's
    assert got == expected
    after = table_counts(db)
    grown = {t: after[t] - before[t] for t in before if after[t] != before[t]}
    assert grown == {
        "grouparoo.events": counts.stored,
        "grouparoo.event_data": sum(1 for row in expected if row[4] is not None),
        "grouparoo.ingest_progress": 1,  # the hostile file's one batch
    }
    assert set(after) == set(before)
    assert_same_statements(engine, benign_phase, hostile_phase, writes=True)
    types = sorted({row[1] for row in expected} - {"probe"})
    with engine.phase() as benign_explore:
        event_counts(db, types=[f"benign-{i}" for i in range(len(types))], settings=settings)
        with pytest.raises(WorkbenchError):
            profile_stream(db, user_id="benign-0", settings=settings)
    with engine.phase() as hostile_explore:
        per_type = event_counts(db, types=types, settings=settings)
        for value in values:
            if engine.storable(value):
                with pytest.raises(
                    WorkbenchError
                ) as err:  # no identity resolution has run: no profile holds any id yet
                    profile_stream(db, user_id=value, settings=settings)
                assert_one_sentence(str(err.value), "user_id")
    assert per_type.groupby("type")["events"].sum().to_dict() == dict.fromkeys(types, 1)
    assert_same_statements(engine, benign_explore, hostile_explore)
    with engine.phase() as dates_phase:
        for value in values:
            if value:
                with pytest.raises(WorkbenchError) as err:
                    event_counts(db, start=value, settings=settings)
                assert_one_sentence(str(err.value), "start")
    assert not dates_phase.in_process and not dates_phase.logged
    assert table_counts(db) == after
    bound = sum(logged_as_parameter(hostile_explore, t) for t in types) if engine.log else 0
    where = (
        f"the server logged {len(hostile_phase.logged):,} ingestion and {len(hostile_explore.logged):,} exploration statements, each also run "
        f"for a benign file, {bound} types only among the bound parameters"
        if engine.log
        else "the statements of a benign file"
    )
    ledger(
        "Injection",
        f"{engine.name}: {len(records)} events carrying the {len(values)} hostile values as type, userId, anonymousId, "
        "messageId, payload key and payload value; the types and user ids back through event_counts and profile_stream; the corpus as start",
        f"{counts.stored} events stored exactly as sent, {counts.quarantined} quarantined by the documented rules (NUL, blank type, no id, "
        f"empty key, size limits), received = stored + quarantined; {len(types)} hostile types counted once each; {where}; only the event tables grew, "
        "by the events stored",
    )


# ------------------------------------------------------------------ command-line arguments


@functools.cache
def cli_command():
    """The click command of ``workbench``, built once (typer rebuilds it on every invoke)."""
    from typer.main import get_command

    from workbench.cli import app

    return get_command(app)


def cli_run(args: list[str]):
    import typer.testing

    from workbench.cli import app

    built = typer.testing._get_command
    typer.testing._get_command = lambda _: cli_command()
    try:
        return typer.testing.CliRunner().invoke(app, args, catch_exceptions=False)
    finally:
        typer.testing._get_command = built


def assert_cli_refused(result, *names: str) -> None:
    """Exit status 1 and one ``error:`` sentence on stderr naming ``names``; no traceback."""
    assert result.exit_code == 1, (result.exit_code, preview(result.output, 300))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), preview(result.stderr, 300)
    assert_one_sentence(lines[0], *names)


def test_cli_arguments(engine, study, monkeypatch, ledger):
    """``workbench analyze KEY``, ``stats --dimension``, ``report KEY`` and ``study check
    --schema`` with every hostile value: exit 1 with one sentence, no traceback, no statement
    beyond a benign argument's; ``analyze --format json`` and ``experiments`` print hostile
    variation and experiment ids intact."""
    full = str(engine.config_path)
    small = engine.tmp / "cli-workbench.yml"  # the benign entries only: each command reads its config once
    mapping = config_mapping(lambda v: False)
    small.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    path = str(small)
    monkeypatch.setenv("WORKBENCH_CONFIG", path)
    url = engine.url

    def commands(value: str) -> list[tuple[list[str], tuple[str, ...]]]:
        out = [
            (["analyze", "--database", url, "--", value], (path, "experiment")),
            (["stats", "dims", f"--dimension={value}", "--config", path, "--database", url], (path, "dimension")),
            (["report", "--config", path, "--", value], (path, "experiment")),
        ]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):  # plain names are schema names (see the study test)
            out.append((["study", "check", f"--schema={value}", "--database", url], ("schema=",)))
        return out

    with engine.phase() as benign_phase:
        for args, _names in commands("benign_missing"):
            result = cli_run(args)
            assert result.exit_code == 1 and "Traceback" not in result.output
    refused = 0
    with engine.phase() as hostile_phase:
        for _label, value in ITEMS:
            for args, names in commands(value):
                assert_cli_refused(cli_run(args), *names)
                refused += 1
    assert_same_statements(engine, benign_phase, hostile_phase)
    monkeypatch.setenv("WORKBENCH_CONFIG", full)
    shown = cli_run(["analyze", "allvars", "--format", "json", "--overall-only", "--database", url])
    assert shown.exit_code == 0, preview(shown.output, 300)
    variations = {r["variation"] for r in json.loads(shown.stdout)["results"]}
    assert variations == set(engine.config.experiments["allvars"].variations) - {"control"}
    listed = cli_run(["experiments", "--config", full, "--database", url])
    assert listed.exit_code == 0, preview(listed.output, 300)
    ids = set(engine.assignments["experiment_id"])
    # click drops ANSI styles when output is not a terminal, and the runner reads \r\n as \n
    missing = [
        preview(v)
        for v in ids
        if v not in listed.stdout and re.sub(r"\x1b\[[0-9;]*m", "", v).replace("\r\n", "\n") not in listed.stdout
    ]
    assert not missing, missing
    ledger(
        "Injection",
        f"{engine.name}: the {len(ITEMS)} hostile values as `workbench analyze KEY`, `stats --dimension`, `report KEY`, "
        "`study check --schema` (typer CliRunner); `analyze --format json` and `experiments` over hostile data",
        f"{refused} invocations exit 1 with one `error:` sentence naming the file or argument, no traceback, no statement beyond "
        f"a benign argument's; {len(variations)} hostile variation ids intact in the JSON; {len(ids)} experiment ids, hostile ones "
        "included, listed intact",
    )


# ------------------------------------------------------------------ notebook parameters (real papermill runs)


def injected_parameters(notebook: Path) -> dict:
    """The values papermill wrote into the executed notebook's injected-parameters cell, read back
    by executing that cell's source on its own."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    namespace: dict = {}
    exec(compile(source, "injected-parameters", "exec"), namespace)  # our own test output
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


@pytest.mark.notebook
def test_notebook_parameters(engine, study, tmp_path, ledger):
    """Real papermill runs with hostile parameters: the experiment report over hostile variation
    ids, the study report over hostile participant codes and dates, and an experiment report
    with a hostile dimension. Values round-trip through papermill's parameter cell exactly, reach
    the database only as bound values, and reach the HTML only escaped."""
    import html as html_module

    from workbench.reports.notebooks import run_notebook
    from workbench.reports.runs import run_report

    values = [HOSTILE[label] for label in NOTEBOOK_SUBSET]
    stored = [v for v in values if engine.storable(v)]
    before = table_counts(engine.db)
    script = HOSTILE["script tag"]
    runs = []
    with engine.phase() as phase:
        good = run_report(
            "nbvars",
            database_url=engine.url,
            config_path=engine.config_path,
            dimension="none",
            reports_dir=tmp_path / "reports",
        )
        runs.append(good)
        assert good.status == "ok", good.error
        page = good.html.read_text(encoding="utf-8")
        for value in stored:
            assert html_module.escape(value, quote=False)[:200] in page or json.dumps(value)[1:-1][:200] in page, (
                preview(value)
            )
        if (
            engine.log is not None
        ):  # one more kernel per run: the study report and a refused dimension run on PostgreSQL only
            generated = engine.db.sql(
                "SELECT code FROM ytdpnl.participant WHERE id < :first ORDER BY id LIMIT 1", first=STUDY_ID0
            ).iloc[0, 0]
            codes = [*stored, generated]
            study_run = run_notebook(
                "ytdpnl_study_report.ipynb",
                tmp_path / "study",
                parameters={"codes": codes, "start": "", "end": ""},
                database_url=engine.url,
            )
            assert injected_parameters(study_run.notebook)["codes"] == codes
            study_page = study_run.html.read_text(encoding="utf-8")
            assert script not in study_page.replace(html_module.escape(script), ""), (
                "a parameter reached the HTML unescaped"
            )
            bad = run_report(
                "nbvars",
                database_url=engine.url,
                config_path=engine.config_path,
                dimension=HOSTILE["newline statement"],
                reports_dir=tmp_path / "reports",
            )
            runs.append(bad)
            assert bad.status == "failed" and bad.failed_notebook is not None
            assert_one_sentence(bad.error, "dimension")
            assert injected_parameters(bad.failed_notebook)["dimension"] == HOSTILE["newline statement"]
    assert injected_parameters(good.notebook)["experiment"] == "nbvars"
    assert table_counts(engine.db) == before
    assert script not in page.replace(html_module.escape(script), ""), "a variation id reached the HTML unescaped"
    written = phase.in_process + phase.logged
    for statement in written:
        first = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        assert first not in WRITE_VERBS, preview(statement, 200)
        for value in values:
            assert value not in statement, f"{preview(value)} in the text of {preview(statement, 200)}"
    bound = sum(logged_as_parameter(phase, v) for v in stored) if engine.log else 0
    if engine.log is not None:
        assert bound == len(stored)
    kernels = 1 + 2 * (engine.log is not None)
    ledger(
        "Injection",
        f"{engine.name}: {kernels} papermill run(s) with hostile parameters ({', '.join(NOTEBOOK_SUBSET)}): experiment "
        "report over hostile variation ids"
        + (", study report over hostile participant codes, a hostile report dimension" if engine.log else ""),
        "parameters read back from the executed notebooks equal to what was passed; HTML holds the values escaped, never a raw <script>; "
        + (
            f"the server logged {len(phase.logged):,} statements, none a write, none holding a hostile value in its text, "
            f"all {bound} values among the bound parameters; "
            if engine.log
            else ""
        )
        + (
            "the refused dimension failed in one sentence with the failed notebook kept"
            if engine.log
            else "the database file's tables and row counts unchanged"
        ),
    )


def test_report_keys_never_leave_the_reports_folder(tmp_path, ledger):
    """``run_report`` names a folder after the experiment key: a hostile key (``../``, ``/``,
    NUL, 100,000 characters) is refused in one sentence before anything is written."""
    from workbench.reports.runs import run_report

    reports = tmp_path / "reports"
    keys = [value for _, value in ITEMS if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}", value)]
    for value in keys:
        with pytest.raises(ConfigError) as err:
            run_report(value, reports_dir=reports)
        assert_one_sentence(str(err.value), "experiment key")
    assert not any(tmp_path.rglob("*")), sorted(str(p) for p in tmp_path.rglob("*"))[:5]
    ledger(
        "Injection",
        f"{len(keys)} hostile experiment keys (path traversal, absolute paths, NUL, 100,000 characters) passed to "
        "workbench.reports.run_report, which names a folder after the key",
        f"{len(keys)} refused in one sentence; 0 files or folders written anywhere",
    )
