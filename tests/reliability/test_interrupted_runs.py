"""Runs that end badly or start wrong (issue 17, item 11): a report killed with SIGTERM or SIGKILL,
two runs in the same second, a dimension that does not exist, and a client that dies while its
PostgreSQL query runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.generated_project import SETUP, experiment_entry, generated

pytestmark = pytest.mark.reliability

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
KEY = "price-display"
CONFIG = SETUP + "experiments:\n" + experiment_entry(KEY)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A project home with generated data in DuckDB and the environment that runs commands in it."""
    home = tmp_path_factory.mktemp("interrupted-home")
    (home / "workbench.yml").write_text(CONFIG, encoding="utf-8")
    url = generated(f"duckdb:///{home / 'data.duckdb'}", users=2000)
    return home, {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout`` seconds."""
    started = time.perf_counter()
    while not condition():
        assert time.perf_counter() - started < timeout, "timed out"
        time.sleep(0.1)
    return time.perf_counter() - started


def start_report(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """``workbench report`` started, once its kernel runs: the process and the kernel's pid."""
    proc = subprocess.Popen(
        [WORKBENCH, "report", KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    wait_for(lambda: children(proc.pid) or proc.poll() is not None, 60)
    assert proc.poll() is None, proc.communicate()
    kernel = children(proc.pid)[0]
    time.sleep(2)  # the kernel is executing the report's cells
    return proc, kernel


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_report_stopped_with_sigterm_shuts_its_kernel_and_leaves_nothing(project, ledger):
    home, env = project
    folder = home / "reports" / KEY
    proc, kernel = start_report(env)
    left_while_running = hidden(folder)
    stopped = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    wait_for(lambda: not alive(kernel), 30)
    kernel_gone = time.perf_counter() - stopped
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr, stderr
    assert any(name.endswith(".running") for name in left_while_running), left_while_running
    assert hidden(folder) == [], hidden(folder)
    assert not list(folder.glob("*.ipynb")), list(folder.iterdir())
    ledger(
        "Faults",
        f"`workbench report` stopped with SIGTERM while its kernel ran the report (hidden files then: {len(left_while_running)})",
        f"exit {proc.returncode}, no traceback; the kernel gone {kernel_gone:.1f} s after the signal; no hidden or partial file left "
        "(before: a hidden 0-byte notebook stayed)",
    )


def test_what_a_report_killed_outright_left_is_removed_by_the_next_run(project, ledger):
    home, env = project
    folder = home / "reports" / KEY
    proc, kernel = start_report(env)
    killed = time.perf_counter()
    proc.kill()
    proc.communicate(timeout=60)
    left = hidden(folder)
    assert any(name.endswith(".running") for name in left) and any(name.endswith(".ipynb") for name in left), left
    wait_for(lambda: not alive(kernel), 30)  # ipykernel polls its parent
    kernel_gone = time.perf_counter() - killed
    time.sleep(1.1)  # a new timestamp
    again = subprocess.run([WORKBENCH, "report", KEY], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert hidden(folder) == [], hidden(folder)
    notebooks = sorted(p.name for p in folder.glob("*.ipynb"))
    assert len(notebooks) == 1 and not notebooks[0].endswith(".failed.ipynb"), notebooks
    ledger(
        "Faults",
        "`workbench report` killed with SIGKILL while its kernel ran (nothing of it can clean up), then run again",
        f"the orphaned kernel exited by itself {kernel_gone:.1f} s after the kill; the killed run left {len(left)} hidden files "
        f"({', '.join(left)}), all removed by the next run, which wrote its report",
    )


def test_two_runs_in_the_same_second_keep_both_reports(project, monkeypatch, ledger):
    from workbench.reports import runs

    _, env = project
    for name in ("WORKBENCH_HOME", "WORKBENCH_DATABASE_URL"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setattr(runs, "timestamp_stem", lambda: "20261203-120000")
    first, second = runs.run_report(KEY), runs.run_report(KEY)
    assert first.status == second.status == "ok", (first.error, second.error)
    assert (first.notebook.name, second.notebook.name) == ("20261203-120000.ipynb", "20261203-120000-2.ipynb")
    assert first.html.read_bytes() != second.html.read_bytes()  # each its own report (the footer's stamp differs)
    assert first.notebook.is_file() and second.notebook.is_file()
    ledger(
        "Faults",
        "two `run_report` calls for the same experiment within one second (the clock frozen to one timestamp)",
        "both reports kept: 20261203-120000.ipynb/.html and 20261203-120000-2.ipynb/.html (before: the second "
        "overwrote the first's files)",
    )


def test_a_dimension_that_does_not_exist_is_refused_before_any_kernel_starts(project, ledger):
    home, env = project
    trials = []
    for command in (["report", KEY], ["run-reports"]):
        started = time.perf_counter()
        run = subprocess.run(
            [WORKBENCH, *command, "--dimension", "nope"], capture_output=True, text=True, env=env, timeout=120
        )
        seconds = time.perf_counter() - started
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1, run.stderr
        assert "'nope' is not a column" in lines[0] and "['browser']" in lines[0], lines[0]
        trials.append(f"`{command[0]}` {seconds:.1f} s")
    assert not list((home / "reports").glob("*/*nope*"))
    assert not list((home / "reports").glob(f"{KEY}/*.failed.ipynb"))
    ledger(
        "Faults",
        "`workbench report KEY --dimension nope` and `run-reports --dimension nope` (no such assignment-query column)",
        f"exit 1 with one line naming the column and the choices, before any kernel starts ({', '.join(trials)}, "
        "start-up included; before: a kernel ran the notebook to fail in a cell)",
    )


DEAD_CLIENT = """
import sys, workbench as wb
db = wb.connect(sys.argv[1])
print("started", flush=True)
db.sql("SELECT count(*) FROM generate_series(1, 100000000000) a")
"""


@pytest.mark.postgres
def test_a_client_that_dies_mid_query_leaves_no_query_running_on_postgresql(pg_server, ledger):
    from workbench.db.connection import CLIENT_CHECK_INTERVAL_MS

    pg_server.create_database("dead_client")
    url = pg_server.url_with_password("dead_client")
    proc = subprocess.Popen(
        [sys.executable, "-c", DEAD_CLIENT, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def running() -> int:
        with pg_server.admin() as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'dead_client' AND state = 'active'"
            ).fetchone()[0]

    wait_for(lambda: running() == 1, 60)
    killed = time.perf_counter()
    proc.kill()
    proc.communicate(timeout=30)
    wait_for(lambda: running() == 0, 30)
    seconds = time.perf_counter() - killed
    assert seconds < 3 * CLIENT_CHECK_INTERVAL_MS / 1000, seconds
    ledger(
        "Faults",
        "a Python client killed with SIGKILL while its PostgreSQL query (a 10^11-row count) ran",
        f"the server cancelled the query {seconds:.1f} s after the kill (client_connection_check_interval "
        f"{CLIENT_CHECK_INTERVAL_MS / 1000:.0f} s; before: it ran on until the statement timeout)",
    )
