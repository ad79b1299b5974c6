"""Secrets (issue 9): a canary database password and a canary study API token, given the ways a
user gives them (the URL, $WORKBENCH_DATABASE_PASSWORD in .env, $YTDPNL_API_TOKEN), go through every
command and notebook against a PostgreSQL that is up and one that refuses (a closed port, a wrong
password); the canaries must appear in no stdout/stderr, no file written under the project, no
executed notebook or HTML, no served dashboard page, no log record, no exception (str, repr, chained
causes) and no repr of the objects that hold them. Connections never travel as notebook parameters."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from connect_audit import audit_entries, audit_env

import workbench as wb
from support.generated_project import SETUP, experiment_entry
from support.pg_server import free_port
from workbench.errors import DatabaseError

pytestmark = [pytest.mark.reliability, pytest.mark.postgres, pytest.mark.notebook]

BIN = Path(sys.executable).parent
WORKBENCH = str(BIN / "workbench")
MARK = "c4nary"  # every canary starts with it: a secret cut by percent-encoding still shows
PASSWORD = "c4nary-Pw@7f3e/x:q 1"  # '@', '/', ':' and ' ' must be percent-encoded in a URL
WRONG_PASSWORD = "c4nary-wrong-5b9e"
TOKEN = "c4nary-token-3d1e5a77"
WRONG_TOKEN = "c4nary-badtoken-0c2f"
PRODUCER_KEY = "c4nary-producer-88aa"
ROLE, DATABASE = "analyst", "secrets_db"
CONFIG = (
    SETUP
    + "experiments:\n"
    + experiment_entry("price-display")
    + """events:
  api_keys:
    web: PRODUCER
"""
)
EVENTS = (
    "\n".join(
        json.dumps(r)
        for r in (
            {
                "type": "page_view",
                "userId": "u1",
                "messageId": "m1",
                "occurredAt": "2026-10-01T10:00:00Z",
                "data": {"path": "/"},
            },
            {
                "type": "purchase",
                "anonymousId": "a1",
                "messageId": "m2",
                "occurredAt": "2026-10-01T10:05:00Z",
                "data": {"amount": "3"},
            },
        )
    )
    + "\n{broken\n"
)


def secret_forms() -> list[str]:
    """Each canary as given and as a URL would carry it."""
    forms = {MARK}
    for secret in (PASSWORD, WRONG_PASSWORD, TOKEN, WRONG_TOKEN, PRODUCER_KEY):
        forms |= {secret, quote(secret, safe=""), quote_plus(secret)}
    return sorted(forms)


def leaks(text: str | bytes) -> list[str]:
    """The canary forms found in ``text`` (case-insensitive for the common prefix)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = [form for form in secret_forms() if form in text]
    return found or ([MARK] if MARK in text.lower() else [])


def pg_url(port: int, password: str | None = None) -> str:
    import sqlalchemy as sa

    url = sa.URL.create(
        "postgresql+psycopg", username=ROLE, password=password, host="127.0.0.1", port=port, database=DATABASE
    )
    return url.render_as_string(hide_password=False)


class Runs:
    """Every command run in a project home, its streams kept for the leak checks."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env, self.done = home, env, []

    def __call__(
        self, label: str, *args: str, env: dict | None = None, stdin: str | None = None, timeout: int = 400
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [WORKBENCH, *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            input=stdin,
            timeout=timeout,
            check=False,
        )
        self.done.append((label, proc))
        return proc


@contextmanager
def study_api(db_url: str, token: str) -> Iterator[object]:
    """The production-shaped study API test server (tests/support/ytdpnl_server.py), answering from
    the study tables and accepting only ``token``."""
    from support.ytdpnl_server import ProductionStudyServer

    db = wb.connect(db_url)
    tables = ("participant", "session", "event", "watch_time", "video", "video_list_item", "transition_event")
    raw = {t: db.sql(f"SELECT * FROM ytdpnl.{t}", limit=None) for t in tables}
    db.dispose()
    for frame in raw.values():
        for column in ("arm", "type", "list_type", "video_type", "reason", "session_uuid", "uuid"):
            if column in frame:
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    server = ProductionStudyServer(raw, token)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def project(pg_server, tmp_path_factory):
    """A project home whose database role's password is the canary (in .env), with generated
    experiment data, the study and a few events written through that role, then every analysis
    command and notebook run against the live server and against two refusing ones."""
    import psycopg
    from psycopg import sql

    from support.pg_server import SUPERUSER

    with psycopg.connect(
        host="127.0.0.1",
        port=pg_server.port,
        user=SUPERUSER,
        password=pg_server.password,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
    home = tmp_path_factory.mktemp("secrets-home")
    (home / "workbench.yml").write_text(CONFIG.replace("PRODUCER", PRODUCER_KEY), encoding="utf-8")
    (home / ".env").write_text(f"WORKBENCH_DATABASE_PASSWORD='{PASSWORD}'\n", encoding="utf-8")
    (home / "events.jsonl").write_text(EVENTS, encoding="utf-8")
    audit_log = home.parent / f"{home.name}-connect-audit.jsonl"
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_DATABASE_URL": pg_url(pg_server.port),
        "WORKBENCH_EVENTS_API_KEY": PRODUCER_KEY,
        **audit_env(audit_log),
    }
    run = Runs(home, env)
    started = time.perf_counter()
    # writers, through the canary role
    assert run("generate", "generate", "--users", "2000", "--seed", "5").returncode == 0, run.done[-1][1].stderr
    assert run("study generate", "study", "generate", "--size", "tiny", "--seed", "3").returncode == 0, run.done[-1][
        1
    ].stderr
    assert run("ingest", "ingest", "events", str(home / "events.jsonl")).returncode == 0, run.done[-1][1].stderr
    assert run("identities", "identities", "resolve").returncode == 0, run.done[-1][1].stderr
    with study_api(pg_url(pg_server.port, PASSWORD), TOKEN) as api:
        # analysis against the live server: password from .env, then in the --database URL
        for label, args in (
            ("info", ["info"]),
            ("experiments", ["experiments"]),
            ("stats", ["stats", "price-display"]),
            ("analyze", ["analyze", "price-display"]),
            ("study check", ["study", "check"]),
            ("report", ["report", "price-display", "--database", pg_url(pg_server.port, PASSWORD)]),
            ("run-reports", ["run-reports"]),
            ("overview", ["overview"]),
            ("study report", ["study", "report"]),
        ):
            proc = run(label, *args)
            assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (label, proc.stderr)
        for label, token in (("study report api", TOKEN), ("study report api, wrong token", WRONG_TOKEN)):
            proc = run(
                label, "study", "report", "--source", "api", env={"YTDPNL_API_URL": api.url, "YTDPNL_API_TOKEN": token}
            )
            assert (proc.returncode == 0) == (token == TOKEN), (label, proc.stderr)
    # refusing servers: a closed port (password in the URL) and the live server with a wrong password (.env)
    refusing = {
        "closed port": {"WORKBENCH_DATABASE_URL": pg_url(free_port(), PASSWORD)},
        "wrong password": {"WORKBENCH_DATABASE_PASSWORD": WRONG_PASSWORD},
    }
    notebooks = {
        "closed port": [["report", "price-display"], ["study", "report"]],
        "wrong password": [["overview"], ["run-reports"]],
    }
    for kind, extra in refusing.items():
        commands = [
            ["info"],
            ["experiments"],
            ["stats", "price-display"],
            ["analyze", "price-display"],
            ["study", "check"],
            ["generate", "--users", "200"],
            ["ingest", "events", str(home / "events.jsonl")],
            ["identities", "resolve"],
            *notebooks[kind],
        ]
        for args in commands:
            proc = run(f"{' '.join(args[:2])} ({kind})", *args, env=extra)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, (kind, args, proc.stdout, proc.stderr)
    return {
        "home": home,
        "env": env,
        "runs": run.done,
        "url": pg_url(pg_server.port, PASSWORD),
        "audit_log": audit_log,
        "seconds": time.perf_counter() - started,
        "server": pg_server,
    }


@pytest.fixture(scope="module")
def dashboard(project) -> tuple[str, str]:
    """The served dashboard page and Voila's log (the reports of ``project`` as its cache)."""
    return serve_dashboard(project["home"], project["env"])


def serve_dashboard(home: Path, env: dict[str, str]) -> tuple[str, str]:
    """The dashboard page as Voila serves it to a browser (the notebook executed in a Voila kernel
    whose environment holds the database URL and the .env password), after a click on "Refresh from
    database", and Voila's log."""
    from playwright.sync_api import sync_playwright

    from support.offline_browser import CHROMIUM, wait_for_port
    from workbench.reports.dashboard import voila_command, voila_environment

    port = free_port()
    log_path = home.parent / f"{home.name}-voila.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(voila_command(port), stdout=log, stderr=subprocess.STDOUT, env=voila_environment(env))
        try:
            wait_for_port(port)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.route(
                    "**/*",
                    lambda route: (
                        route.continue_()
                        if route.request.url.startswith(f"http://127.0.0.1:{port}/")
                        else route.abort()
                    ),
                )
                # Voila streams the page while the kernel runs the notebook: wait for the chart, not for "load"
                response = page.goto(f"http://127.0.0.1:{port}/", timeout=180_000, wait_until="commit")
                assert response is not None and response.ok, (
                    f"Voila answered {response and response.status}: see {log_path}"
                )
                page.wait_for_selector(".wb-interval-chart", timeout=180_000)
                computed = (
                    "() => (document.body.innerText.match(/computed [^\\n·<]*/) || [''])[0]"  # the status line's stamp
                )
                before = page.evaluate(computed)
                assert before, "the dashboard shows no computed time"
                page.get_by_role("button", name="Refresh from database").click()
                page.wait_for_function(
                    f"(b) => document.body.innerText.includes('Refresh failed') || "
                    f"(!document.body.innerText.includes('Recomputing') && ![b, ''].includes(({computed})()))",
                    arg=before,
                    timeout=180_000,
                )
                html = page.content() + "\n" + page.evaluate("() => document.body.innerText")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return html, log_path.read_text()


def test_no_canary_in_any_stream_of_any_command(project, ledger):
    runs = project["runs"]
    for label, proc in runs:
        assert not leaks(proc.stdout) and not leaks(proc.stderr), (label, leaks(proc.stdout + proc.stderr))
    failed = [label for label, proc in runs if proc.returncode]
    assert len(failed) >= 20 and any("closed port" in f for f in failed) and any("wrong password" in f for f in failed)
    refused = [
        proc.stderr for label, proc in runs if "wrong password" in label and label.startswith(("info", "analyze"))
    ]
    assert all("rejected the credentials" in err for err in refused), refused
    ledger(
        "Secrets",
        f"canary password (URL, .env) and API token through {len(runs)} command runs (generate, ingest, identities, info, "
        "experiments, stats, analyze, report, run-reports, overview, study generate/check/report, study report via the API) "
        "against live PostgreSQL, a closed port and a wrong password",
        f"canary absent from all {2 * len(runs)} stdout/stderr streams; {len(failed)} refused runs each ended in one sentence, "
        f"no traceback; {project['seconds']:.0f} s",
    )


def project_files(home: Path) -> list[Path]:
    """Every file the runs wrote under the project home (not the inputs holding secrets by design)."""
    inputs = {home / ".env", home / "workbench.yml"}
    return [p for p in home.rglob("*") if p.is_file() and p not in inputs]


def test_no_canary_in_any_file_written(project, ledger):
    files = project_files(project["home"])
    kinds = {p.suffix for p in files}
    assert {".ipynb", ".html", ".json", ".parquet"} <= kinds, kinds
    leaked = {str(p): leaks(p.read_bytes()) for p in files if leaks(p.read_bytes())}
    assert not leaked
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    assert len(notebooks) >= 6  # report, run-reports, overview, study report x2 and the failed ones
    ledger(
        "Secrets",
        "every file written under the project home by those runs: executed and failed notebooks, HTML reports, "
        "caches, status.json, quarantine files",
        f"canary absent from {len(files)} files ({len(notebooks)} executed notebooks, "
        f"{sum(p.suffix == '.html' for p in files)} HTML files)",
    )


def test_connections_never_travel_as_notebook_parameters(project, ledger):
    notebooks = [p for p in project_files(project["home"]) if p.suffix == ".ipynb"]
    url_like = re.compile(r"(?:postgresql|duckdb)[+\w]*://|127\.0\.0\.1|password", re.IGNORECASE)
    checked = 0
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        parameters = nb["metadata"]["papermill"]["parameters"]
        injected = [
            "".join(c["source"]) for c in nb["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])
        ]
        assert len(injected) == (1 if parameters else 0), path  # papermill injects a cell only when given parameters
        assert not url_like.search(json.dumps(parameters)) and not url_like.search("".join(injected)), (path, injected)
        assert not {"database", "database_url", "url", "db", "connection", "password", "token"} & set(parameters), path
        checked += 1
    assert checked >= 6
    ledger(
        "Secrets",
        "papermill's injected-parameters cell and parameters metadata of every executed notebook",
        f"{checked} notebooks: no URL, host, password or connection among the parameters (the URL reaches kernels via the environment)",
    )


@pytest.mark.browser
def test_served_dashboard_page_and_voila_log_hold_no_canary(dashboard, ledger):
    page, log = dashboard
    assert "price-display" in page and "wb-banner" in page, page[-2000:]  # the notebook ran and drew its widgets
    assert "Refresh failed" not in page  # the refresh reached the database with the .env password
    assert not leaks(page) and not leaks(log)
    ledger(
        "Secrets",
        "the dashboard page HTML served by Voila (dashboard notebook executed in a Voila kernel, database URL "
        "and .env password in its environment), after a click on Refresh from database, and Voila's log",
        f"canary absent from the {len(page) / 1e6:.1f} MB page and the {len(log.splitlines())}-line log",
    )


def test_postgres_server_log_holds_no_canary(project, ledger):
    log = project["server"].log_file.read_text(errors="replace")
    assert "password authentication failed" in log  # the wrong-password runs reached the server
    assert not leaks(log)
    ledger(
        "Secrets",
        "the PostgreSQL server log after the live and wrong-password runs",
        f"canary absent from {len(log.splitlines())} log lines ({log.count('password authentication failed')} refused logins)",
    )


# ------------------------------------------------------------------ in-process: exceptions, logs, reprs
def exception_texts(exc: BaseException) -> str:
    """str and repr of ``exc`` and of every exception chained to it, and the formatted traceback."""
    texts, seen, current = [], set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        current = current.__cause__ or current.__context__
    texts.append("".join(traceback.format_exception(exc)))
    return "\n".join(texts)


def test_refused_connections_raise_and_log_no_canary(project, monkeypatch, caplog, ledger):
    server = project["server"]
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy caps its loggers at WARNING unless asked
    cases = {
        "closed port, password in the URL": (pg_url(free_port(), PASSWORD), None),
        "wrong password in the URL": (pg_url(server.port, WRONG_PASSWORD), None),
        "wrong password in $WORKBENCH_DATABASE_PASSWORD": (pg_url(server.port), WRONG_PASSWORD),
    }
    checked = 0
    for label, (url, env_password) in cases.items():
        if env_password:
            monkeypatch.setenv("WORKBENCH_DATABASE_PASSWORD", env_password)
        with pytest.raises(DatabaseError) as caught:
            wb.connect(url)
        text = exception_texts(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__, label
        assert not leaks(text), (label, leaks(text))
        assert ROLE in text or "127.0.0.1" in text, text  # the message still names the target
        checked += 1
        monkeypatch.delenv("WORKBENCH_DATABASE_PASSWORD", raising=False)
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert not leaks(logged)
    ledger(
        "Secrets",
        "connect() to a closed port and with wrong passwords (URL and environment), with DEBUG logging on",
        f"{checked} DatabaseErrors: canary absent from str, repr, args, chained causes and the formatted traceback; "
        f"absent from {len(caplog.records)} log records",
    )


def test_reprs_of_live_objects_hold_no_canary(project, caplog, ledger):
    from workbench.db.settings import resolve_database

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQLAlchemy caps its loggers at WARNING unless asked
    url = pg_url(project["server"].port, PASSWORD)
    db = wb.connect(url)
    settings = resolve_database(url)
    views = [
        repr(db),
        str(db),
        repr(db.settings),
        str(db.settings),
        db.settings.display_url,
        repr(db.engine),
        str(db.engine),
        repr(db.engine.url),
        str(db.engine.url),
        repr(settings),
        repr(db.engine.pool),
        repr(db.engine.dialect),
        f"{db!r:>10}",
        json.dumps(str(vars(db.settings))),
    ]
    frame = db.sql("SELECT current_user AS who")
    assert frame["who"].iloc[0] == ROLE  # the canary password did log in
    with pytest.raises(DatabaseError) as caught:
        db.sql("SELECT * FROM no_such_table")
    views.append(exception_texts(caught.value))
    with pytest.raises(DatabaseError) as caught:
        db.sql("CREATE TABLE wb_probe (x int)")
    views.append(exception_texts(caught.value))
    db.dispose()
    assert not [v for v in views if leaks(v)], [v for v in views if leaks(v)]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) > 10 and not leaks(logged)
    ledger(
        "Secrets",
        "repr/str/format of a live Database, its settings, URL, pool and dialect; a failing query and a refused "
        "write on it",
        f"canary absent from {len(views)} texts and {len(caplog.records)} log records",
    )


def test_study_api_client_hides_the_token(project, ledger):
    from workbench.studies import ytdpnl
    from workbench.studies.ytdpnl.api_client import ApiError

    texts = []
    with study_api(project["url"], TOKEN) as api:
        client = ytdpnl.ApiClient(api.url, TOKEN)
        frame = client.participants()
        db = wb.connect(project["url"])
        assert len(frame) == int(db.sql("SELECT count(*) AS n FROM ytdpnl.participant").iloc[0, 0])  # the token worked
        db.dispose()
        texts += [
            repr(client),
            str(client),
            repr(vars(client) if hasattr(client, "__dict__") else client),
            repr(client._token),
        ]
        for label, base_url, token in (
            ("wrong token", api.url, WRONG_TOKEN),
            ("closed port", f"http://127.0.0.1:{free_port()}", TOKEN),
        ):
            with pytest.raises(ApiError) as caught:
                ytdpnl.ApiClient(base_url, token).participants()
            texts.append(exception_texts(caught.value))
            assert ("rejected the token" if label == "wrong token" else "Cannot reach") in str(caught.value)
        with pytest.raises(TypeError):
            import pickle

            pickle.dumps(client)
    assert not [t for t in texts if leaks(t)], [t for t in texts if leaks(t)]
    ledger(
        "Secrets",
        "the study API client with the canary token: a good call, a wrong token (401), a closed port; repr, vars, pickling",
        f"canary absent from {len(texts)} texts (repr, str, vars, 2 exceptions with their chains and tracebacks); pickling refused",
    )


@pytest.mark.browser
def test_analysis_sessions_in_commands_and_kernels_refused_writes_on_postgresql(project, dashboard, ledger):
    entries = audit_entries(
        project["audit_log"]
    )  # commands, report kernels and the dashboard's Voila kernel (its refresh)
    readers = [e for e in entries if e["read_only"]]
    writers = [e for e in entries if not e["read_only"]]
    assert readers and all(e["dialect"] == "postgresql" for e in entries)
    assert all(e["write"] == "refused" and "read-only transaction" in e["error"] for e in readers), [
        e for e in readers if e["write"] != "refused"
    ]
    kernels = {e["pid"] for e in readers if "ipykernel_launcher" in " ".join(e["argv"])}
    assert (
        len(kernels) >= 5
    )  # report, run-reports, overview, study report, the dashboard (kernels that reached the database)
    assert any("voila_" in " ".join(e["argv"]) for e in readers)  # the dashboard's refresh ran in a Voila kernel
    assert {(e["module"], e["function"]) for e in writers} == {
        ("workbench.cli.generate", "generate_command"),
        ("workbench.cli.study", "generate_command"),
        ("workbench.cli.events", "ingest_events_command"),
        ("workbench.cli.events", "resolve_identities_command"),
    }
    ledger(
        "Read-only",
        "a CREATE TABLE through every session the commands and notebook kernels opened on PostgreSQL "
        "(the dashboard's refresh included; audited in each process via sitecustomize)",
        f"{len(readers)} read-only sessions in {len({e['pid'] for e in readers})} processes ({len(kernels)} kernels): every write refused; "
        f"the {len(writers)} writable sessions came only from generate, study generate, ingest events and identities resolve",
    )


def test_the_config_copy_for_discovered_experiments_stays_out_of_the_reports(project, monkeypatch, ledger):
    """run-reports --all-discovered reports from a copy of workbench.yml, which holds events.api_keys."""
    from workbench import paths
    from workbench.reports.runs import report_keys

    monkeypatch.setenv("WORKBENCH_HOME", str(project["home"]))
    keys, copy = report_keys([], project["home"] / "workbench.yml", all_discovered=True, database_url=project["url"])
    db = wb.connect(project["url"])
    logged = set(db.sql("SELECT DISTINCT experimentId AS e FROM experiment_viewed")["e"])
    db.dispose()
    assert logged <= set(keys) and "price-display" in keys  # every experiment in the data, plus the configured one
    assert copy.is_file() and PRODUCER_KEY in copy.read_text()  # the copy is the whole config, secrets included
    reports = paths.reports_dir()
    assert reports not in copy.parents, copy
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert not {str(p): leaks(p.read_bytes()) for p in files if leaks(p.read_bytes())}
    ledger(
        "Secrets",
        "the config copy that run-reports --all-discovered writes (workbench.yml with events.api_keys, plus stub entries)",
        f"kept in data/, beside the database, not in reports/: {len(files)} files under reports/ hold no canary; "
        f"{len(keys)} experiments to report",
    )
