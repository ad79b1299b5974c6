"""Faults (issue 9): PostgreSQL stopped in the middle of a run-reports batch and of an events
ingestion, a statement timeout on a runaway query, and a full disk while writing reports.

Every run is a real one: throwaway PostgreSQL servers that the tests stop (never the session's
shared server), the ``workbench`` CLI in subprocesses, papermill kernels, a tmpfs that fills up.
Expected figures come from the input files and raw tables, read independently of the workbench.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from support.generated_project import SETUP, experiment_entry, generated

pytestmark = pytest.mark.reliability

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
START, END = pd.Timestamp("2026-09-25"), pd.Timestamp("2026-11-23 23:59:59.999999")
BATCH = ["add-to-cart-cta", "price-display", "results-order"]  # run-reports runs them in config order
RUNAWAY_SQL = (
    "SELECT o.userId AS user_id, o.timestamp FROM orders o, sessions s1, sessions s2 "
    "WHERE (s1.duration * 31 + s2.duration * 7 + o.amount) % 997 = 5"
)  # ~10^11 rows, no index helps
CONFIG = (
    "# fault tests: one assignment query, two metrics and a runaway one, the planted experiments of the generator"
    + SETUP
    + f"""  - name: runaway
    type: binomial
    sql: {RUNAWAY_SQL}
experiments:
"""
    + "".join(experiment_entry(key) for key in BATCH)
)


def purchase_lifts(url: str) -> dict[str, float]:
    """Per experiment of BATCH, the relative lift in the share of exposed users (one variation
    only, first exposure in START..END) who ordered between first exposure and END: pandas."""
    db = wb.connect(url)
    views = db.sql("SELECT * FROM experiment_viewed", limit=None).rename(columns=str.lower)
    orders = db.sql("SELECT * FROM orders", limit=None).rename(columns=str.lower)
    db.dispose()
    lifts = {}
    for key in BATCH:
        seen = views[(views["experimentid"] == key) & views["userid"].notna() & views["timestamp"].between(START, END)]
        units = seen.groupby("userid").agg(
            first=("timestamp", "min"), variations=("variationid", "nunique"), variation=("variationid", "first")
        )
        units = units[units["variations"] == 1]
        joined = orders.merge(units[["first"]], left_on="userid", right_index=True)
        buyers = set(joined.loc[(joined["timestamp"] >= joined["first"]) & (joined["timestamp"] <= END), "userid"])
        rate = units.assign(bought=units.index.isin(buyers)).groupby("variation")["bought"].mean()
        lifts[key] = (rate["1"] - rate["0"]) / rate["0"]
    return lifts


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> contents)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def failure_lines(stderr: str) -> dict[str, str]:
    """run-reports' summary: one ``  <key>: <reason>`` line per failed experiment."""
    return dict(m.groups() for m in re.finditer(r"^  ([\w.-]+): (.+)$", stderr, re.MULTILINE))


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test alone, which it may stop and restart."""
    from support.pg_server import start_postgres

    server = start_postgres()
    yield server
    server.cleanup()


# --- PostgreSQL stops in the middle of a run-reports batch ---------------------------------------
@pytest.mark.postgres
@pytest.mark.notebook
def test_server_stopped_mid_batch_keeps_the_last_good_reports(own_server, tmp_path, ledger):
    own_server.create_database("faults_reports")
    url = generated(own_server.url_with_password("faults_reports"))
    lifts = purchase_lifts(url)
    home = tmp_path / "home"
    home.mkdir()
    (home / "workbench.yml").write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    command = [WORKBENCH, "run-reports", *BATCH]
    first = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    reports = home / "reports"
    good = {key: folder_bytes(reports / key) for key in BATCH}
    good_status = {key: json.loads(good[key]["status.json"]) for key in BATCH}
    time.sleep(1.1)  # the second run's reports get later timestamps

    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    done = reports / BATCH[0] / "status.json"
    deadline = time.monotonic() + 300
    while (
        json.loads(done.read_text())["last_run"] == good_status[BATCH[0]]["last_run"]
        or json.loads(done.read_text())["status"] != "ok"
    ):
        assert second.poll() is None and time.monotonic() < deadline, "the first report of the batch did not finish"
        time.sleep(0.1)
    own_server.stop()  # immediate: the postmaster and every backend go at once
    stdout, stderr = second.communicate(timeout=300)

    assert second.returncode == 1 and "Traceback" not in stderr + stdout, stderr
    assert own_server.password not in stderr + stdout
    assert "error: 2 of 3 report(s) failed:" in stderr, stderr
    failures = failure_lines(stderr)
    assert sorted(failures) == sorted(BATCH[1:]), stderr
    for reason in failures.values():
        assert "Cannot reach the database" in reason or "connection to the database" in reason.lower(), reason
        assert f"@127.0.0.1:{own_server.port}/faults_reports" in reason and "the failed notebook is kept" in reason, (
            reason
        )
    # the report done before the stop is fresh: a new timestamped page, and latest.html is it
    fresh = json.loads(done.read_text())
    assert fresh["last_good_run"] > good_status[BATCH[0]]["last_good_run"]
    new_page = reports / BATCH[0] / fresh["last_good_html"]
    assert (reports / BATCH[0] / "latest.html").read_bytes() == new_page.read_bytes()
    # the failed ones keep every byte of their last good report and cache; only status.json and
    # the failed notebook kept for debugging are new, no temporary file or staging folder is left
    for key in BATCH[1:]:
        now = folder_bytes(reports / key)
        status = json.loads(now.pop("status.json"))
        assert status["status"] == "failed" and status["last_good_run"] == good_status[key]["last_good_run"]
        assert status["last_good_html"] == good_status[key]["last_good_html"]
        kept = {name: data for name, data in now.items() if name in good[key]}
        assert kept == {name: data for name, data in good[key].items() if name != "status.json"}, key
        extra = set(now) - set(good[key])
        assert extra == {f"{status['last_run']}.failed.ipynb"}, (key, extra)
        assert not list((reports / key).rglob(".*")), key
    # the index links pages that exist, shows the failures and the kept results
    index = (reports / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', index)
    assert sorted(links) == sorted(f"{key}/latest.html" for key in BATCH)
    assert all("purchased" in (reports / link).read_text() for link in links)  # full reports (~100 KB), not stubs
    for key in BATCH:
        assert f"purchased variation 1: {lifts[key]:+.1%}" in index, key
    states = dict(re.findall(r'<tr data-key="([\w.-]+)".*?data-state="(\w+)"', index))
    assert states == {BATCH[0]: "ok", BATCH[1]: "failed", BATCH[2]: "failed"}, states
    ledger(
        "Faults",
        "PostgreSQL stopped (immediate) after the 1st of 3 reports of a run-reports batch on generated data",
        f"exit 1 naming the 2 failed experiments (one line each: database unreachable); the done report is fresh; "
        f"the failed ones keep {sum(len(good[k]) - 1 for k in BATCH[1:])} files byte-identical "
        f"({sum(len(v) for k in BATCH[1:] for n, v in good[k].items()) / 1e6:.1f} MB), no temp files; "
        f"index links 3 valid pages with pandas' lifts",
    )


# --- PostgreSQL stops in the middle of an events ingestion ----------------------------------------
EVENTS_KEY = "k-faults-7f3a9c2e51"


def events_file(path: Path, events: int = 40_000, bad: int = 400, resent: int = 40, seed: int = 9) -> dict:
    """Write JSON lines: ``events`` good events (messageId ``m-<i>``, 0-2 payload keys), ``bad``
    malformed lines and ``resent`` exact copies of earlier good lines, shuffled; return what a
    correct store must hold, worked out here from the lines themselves."""
    rng = random.Random(seed)
    good = []
    for i in range(events):
        record = {
            "type": rng.choice(["page", "add_to_cart", "purchase"]),
            "messageId": f"m-{i}",
            "occurredAt": f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "data": {f"k{j}": rng.randrange(1000) for j in range(i % 3)},
        }
        record["userId" if i % 2 else "anonymousId"] = f"u-{rng.randrange(5000)}"
        good.append(json.dumps(record))
    broken = [
        '{"type": "page", "userId": "u-1"',
        '{"userId": "u-2", "messageId": "x"}',
        '{"type": "page"}',
        '{"type": "page", "userId": "u-3", "data": {"nested": {"a": 1}}}',
        "not json at all",
    ]
    lines = good + [broken[i % len(broken)] for i in range(bad)] + rng.sample(good, resent)
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {}
    for line in good:
        record = json.loads(line)
        expected[record["messageId"]] = (
            record["type"],
            record.get("userId"),
            record.get("anonymousId"),
            tuple(sorted((k, str(v)) for k, v in record["data"].items())),
        )
    bad_lines = {n for n, line in enumerate(lines, start=1) if line in broken}
    return {"lines": len(lines), "expected": expected, "bad_lines": bad_lines, "resent": resent}


def stored_events(server, database: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="workbench", password=server.password, dbname=database
    ) as conn:
        rows = conn.execute(
            "SELECT e.message_id, e.type, e.user_id, e.anonymous_id, d.key, d.value FROM grouparoo.events e "
            "LEFT JOIN grouparoo.event_data d ON d.event_id = e.id"
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM grouparoo.events), (SELECT count(*) FROM grouparoo.event_data)"
        ).fetchone()
    return rows, counts


def counts_line(stdout: str) -> dict[str, int]:
    match = re.search(r"received ([\d,]+), stored ([\d,]+), quarantined ([\d,]+).*, duplicates ([\d,]+)", stdout)
    assert match, stdout
    return dict(
        zip(("received", "stored", "quarantined", "duplicates"), (int(g.replace(",", "")) for g in match.groups()))
    )


@pytest.mark.postgres
def test_server_stopped_mid_ingestion_then_resent_loses_and_duplicates_nothing(own_server, tmp_path, ledger):
    import psycopg

    own_server.create_database("faults_events")
    url = own_server.url_with_password("faults_events")
    home = tmp_path / "home"
    home.mkdir()
    (home / "workbench.yml").write_text(f'events:\n  api_keys:\n    web: "{EVENTS_KEY}"\n', encoding="utf-8")
    source = events_file(tmp_path / "events.jsonl")
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_DATABASE_URL": url,
        "WORKBENCH_EVENTS_API_KEY": EVENTS_KEY,
    }
    command = [WORKBENCH, "ingest", "events", str(tmp_path / "events.jsonl"), "--batch-size", "1000"]

    first = subprocess.Popen(
        [*command, "--quarantine", str(tmp_path / "q1.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watcher = psycopg.connect(
        host="127.0.0.1",
        port=own_server.port,
        user="workbench",
        password=own_server.password,
        dbname="faults_events",
        autocommit=True,
    )
    deadline, seen = time.monotonic() + 120, 0
    while seen < 3000:  # three batches in: stop the server while the ingestion is streaming
        assert first.poll() is None and time.monotonic() < deadline, (
            "the ingestion ended before the server could be stopped"
        )
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            seen = watcher.execute("SELECT count(*) FROM grouparoo.events").fetchone()[0]
        time.sleep(0.02)
    own_server.stop()
    watcher.close()
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 1 and "Traceback" not in stderr + stdout and EVENTS_KEY not in stderr + stdout, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    kept = int(re.search(r"stopped after ([\d,]+) events were stored", stderr).group(1).replace(",", ""))
    assert "Send the same file again" in stderr and own_server.password not in stderr

    own_server.restart()
    rows, (events_after_fault, _) = stored_events(own_server, "faults_events")
    assert events_after_fault == kept and 3000 <= kept < len(source["expected"])
    second = subprocess.run(
        [*command, "--quarantine", str(tmp_path / "q2.jsonl")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    counts = counts_line(second.stdout)
    expected = source["expected"]
    assert counts == {
        "received": source["lines"],
        "stored": len(expected) - kept,
        "quarantined": len(source["bad_lines"]),
        "duplicates": kept + source["resent"],
    }
    # the store holds exactly the input's good events, each once, with its payload
    rows, (events, data_rows) = stored_events(own_server, "faults_events")
    assert events == len(expected) and data_rows == sum(len(v[3]) for v in expected.values())
    stored: dict[str, tuple] = {}
    for message_id, event_type, user_id, anonymous_id, key, value in rows:
        payload = stored.setdefault(message_id, (event_type, user_id, anonymous_id, []))[3]
        if key is not None:
            payload.append((key, value))
    assert {m: (*v[:3], tuple(sorted(v[3]))) for m, v in stored.items()} == expected
    # the re-sent run's quarantine file holds every malformed line once; the interrupted one a part of them
    quarantined = [json.loads(line)["line"] for line in (tmp_path / "q2.jsonl").read_text().splitlines()]
    assert sorted(quarantined) == sorted(source["bad_lines"])
    partial = [json.loads(line)["line"] for line in (tmp_path / "q1.jsonl").read_text().splitlines()]
    assert len(partial) == len(set(partial)) and set(partial) <= source["bad_lines"]
    ledger(
        "Faults",
        f"PostgreSQL stopped (immediate) mid-ingestion of {source['lines']:,} JSON lines "
        f"({len(source['bad_lines'])} malformed, {source['resent']} re-sent), batches of 1,000; restart; same file again",
        f"exit 1 with one line saying how many events were kept ({kept:,}, whole batches) and to re-send; the re-send stored "
        f"{counts['stored']:,} more: {events:,} events = the file's {len(expected):,} distinct messageIds exactly "
        f"(ids, types, {data_rows:,} payload rows), 0 duplicated, {counts['quarantined']} quarantined = planted",
    )


# --- a runaway query meets the statement timeout ----------------------------------------------------
def test_statement_timeout_stops_a_runaway_query_with_one_sentence(backend, tmp_path, ledger):
    from workbench.errors import DatabaseError

    url = generated(backend.new_url("faults_timeout"))
    db = wb.connect(url, statement_timeout_s=1)
    started = time.perf_counter()
    with pytest.raises(DatabaseError) as caught:
        db.sql(f"SELECT count(*) AS n FROM ({RUNAWAY_SQL}) runaway")
    seconds = time.perf_counter() - started
    db.dispose()
    message = str(caught.value)
    assert 1.0 <= seconds <= 2.0, seconds
    assert "statement timeout (1 s)" in message and "statement_timeout_s" in message and "\n" not in message, message

    home = tmp_path / "home"
    home.mkdir()
    runaway_config = CONFIG.replace("goal_metrics: [purchased]", "goal_metrics: [runaway]", 1)  # BATCH[0]'s
    (home / "workbench.yml").write_text(
        runaway_config + "database:\n  statement_timeout_seconds: 1\n", encoding="utf-8"
    )
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    started = time.perf_counter()
    run = subprocess.run(
        [WORKBENCH, "analyze", BATCH[0], "--overall-only"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    cli_seconds = time.perf_counter() - started
    assert run.returncode == 1 and run.stdout == "", run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The query ran longer than the statement timeout (1 s)"), (
        run.stderr
    )
    assert f"database.statement_timeout_seconds in {home / 'workbench.yml'}" in lines[0], lines[0]
    ledger(
        "Faults",
        f"runaway cross join (~10^11 rows) on {backend.name} with a 1 s statement timeout: connect(statement_timeout_s=1) "
        "and `workbench analyze` with database.statement_timeout_seconds: 1",
        f"stopped after {seconds:.2f} s with one sentence naming the 1 s timeout and how to raise it; "
        f"the CLI exits 1 with that one line in {cli_seconds:.1f} s (start-up included)",
    )


# --- the disk fills up while reports are written ------------------------------------------------------
def fill(folder: Path, leave_bytes: int) -> int:
    """Write filler files into ``folder`` until at most ``leave_bytes`` are free; bytes written."""
    written, chunk = 0, b"\0" * (1 << 20)
    with (folder / "filler").open("wb", buffering=0) as handle:
        while (free := shutil.disk_usage(folder).free) > leave_bytes:
            try:
                written += handle.write(chunk[: min(len(chunk), free - leave_bytes)])
            except OSError:
                break
    return written


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs mounted on ``<home>/reports`` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    home = tmp_path / "home"
    (home / "reports").mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(home / "reports")],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield home
    subprocess.run(["umount", "-l", str(home / "reports")], check=True)


@pytest.mark.notebook
def test_full_disk_leaves_the_good_report_in_place(small_disk, tmp_path, ledger):
    home, key = small_disk, BATCH[0]
    url = generated(f"duckdb:///{tmp_path / 'gen.duckdb'}")
    lifts = purchase_lifts(url)
    (home / "workbench.yml").write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    reports, folder = home / "reports", home / "reports" / key
    first = subprocess.run(
        [WORKBENCH, "report", key], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    assert first.returncode == 0, first.stderr
    good, index = folder_bytes(folder), (reports / "index.html").read_bytes()
    report_mb = sum(len(v) for v in good.values()) / 1e6
    shared = sorted(p.name for p in reports.iterdir() if p.suffix in (".js", ".css"))  # plotly.js, the stylesheet
    assert len(shared) == 2, shared
    # a run writes its claim, its staging cache and notebook, then its page: leave room for all but
    # most of the page (tmpfs allocates whole 4 KiB pages)
    stem = json.loads(good["status.json"])["last_good_run"]
    pages = sum(-(-len(data) // 4096) * 4096 for name, data in good.items() if name.startswith("cache/"))
    room = 4096 + pages + -(-len(good[f"{stem}.ipynb"]) // 4096) * 4096 + len(good[f"{stem}.html"]) // 4

    trials = []
    for leave, command, what in (
        (room, "report", "room for the executed notebook but not its HTML"),
        (0, "run-reports", "no byte free"),
    ):
        time.sleep(1.1)  # a new timestamp
        filler = fill(reports, leave)
        run = subprocess.run(
            [WORKBENCH, command, key], check=False, capture_output=True, text=True, env=env, timeout=300
        )
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        if command == "report":
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
            reason = lines[0]
        else:
            assert "error: 1 of 1 report(s) failed:" in run.stderr and list(failure_lines(run.stderr)) == [key], (
                run.stderr
            )
            reason = failure_lines(run.stderr)[key]
        assert "no space left on device" in reason.lower() and str(folder) in reason and "free" in reason, reason
        now = folder_bytes(folder)
        assert {name: data for name, data in now.items() if name != "status.json"} == {
            n: d for n, d in good.items() if n != "status.json"
        }, what
        assert set(now) == set(good), what
        page = (reports / "index.html").read_text()
        assert page.endswith("</html>") and re.findall(r'href="([^"]+)"', page) == [f"{key}/latest.html"], what
        assert sorted(p.name for p in reports.iterdir()) == sorted([key, "index.html", "filler", *shared]), (
            what
        )  # no temporary file left
        trials.append(f"{what} ({filler / 1e6:.1f} MB of filler)")
        (reports / "filler").unlink()
    assert f"purchased variation 1: {lifts[key]:+.1%}" in index.decode()
    ledger(
        "Faults",
        f"full disk while writing a report: a 24 MB tmpfs holding a good {report_mb:.1f} MB report, filled to "
        + " and to ".join(trials)
        + ", then `workbench report` and `workbench run-reports` again",
        f"exit 1 with one 'no space left on device' sentence naming the folder each time; the good report's {len(good)} files "
        "byte-identical, index.html whole and linking it; no temporary or half-written file left",
    )
