"""The config given with ``--config`` governs every process a command starts (issue 17, item 4 of
the review): report kernels, ``run-reports`` workers and their kernels, the overview's and the
study report's kernels, and the dashboard's Voila. A project whose own ``workbench.yml`` names one
database, and a config elsewhere naming another with its own statement timeout: every session any
of those processes opens is on the config's database with the config's timeout, and the results
are that database's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from connect_audit import audit_entries, audit_env

import workbench as wb
from support.generated_project import SETUP, experiment_entry, generated
from workbench.reports.data import load_report_cache

pytestmark = [pytest.mark.reliability, pytest.mark.notebook]

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
KEYS = ("price-display", "add-to-cart-cta")
TIMEOUT = 123  # seconds: the config's own statement timeout, unlike the default 600


def config_text(url: str, timeout: float | None = None) -> str:
    database = f"database:\n  url: {url}\n" + (f"  statement_timeout_seconds: {timeout}\n" if timeout else "")
    return database + SETUP + "experiments:\n" + "".join(experiment_entry(k) for k in KEYS)


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    """A project home whose workbench.yml names database A, and a config elsewhere naming B."""
    tmp = tmp_path_factory.mktemp("config-scope")
    home, elsewhere = tmp / "home", tmp / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    url_a = generated(f"duckdb:///{tmp / 'a.duckdb'}", users=800, seed=11)
    url_b = generated(f"duckdb:///{tmp / 'b.duckdb'}", users=2400, seed=12)
    (home / "workbench.yml").write_text(config_text(url_a), encoding="utf-8")
    config = elsewhere / "other.yml"
    config.write_text(config_text(url_b, TIMEOUT), encoding="utf-8")
    return {"home": home, "config": config, "url_a": url_a, "url_b": url_b, "tmp": tmp}


def units(url: str, key: str) -> dict[str, int]:
    """Units per variation of ``key`` in the database at ``url``, counted by pandas on its rows."""
    db = wb.connect(url)
    views = db.sql("SELECT userId, variationId FROM experiment_viewed WHERE experimentId = :key", limit=None, key=key)
    db.dispose()
    per_user = views.groupby("userId")["variationId"].agg(["nunique", "first"])
    return {str(v): int(n) for v, n in per_user[per_user["nunique"] == 1]["first"].value_counts().items()}


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [WORKBENCH, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False
    )
    assert proc.returncode == 0, (args, proc.stderr[-2000:])
    return proc


def test_config_governs_every_process_a_command_starts(two_projects, ledger):
    home, config, tmp = two_projects["home"], two_projects["config"], two_projects["tmp"]
    log = tmp / "audit.jsonl"
    env = {**os.environ, "WORKBENCH_HOME": str(home), **audit_env(log)}
    env.pop("WORKBENCH_CONFIG", None)
    env.pop("WORKBENCH_DATABASE_URL", None)
    a_units, b_units = ({k: units(two_projects[u], k) for k in KEYS} for u in ("url_a", "url_b"))
    assert a_units != b_units  # the two databases tell different stories
    commands = [
        ["report", KEYS[0], "--config", str(config)],
        ["run-reports", "--config", str(config), "--jobs", "2"],
        ["overview", "--config", str(config)],
    ]
    for args in commands:
        run(args, env, cwd=tmp)  # the config is given by a path outside the project
    entries = audit_entries(log)
    kernels = {e["pid"] for e in entries if "ipykernel_launcher" in " ".join(e["argv"])}
    database_b = wb.connect(two_projects["url_b"]).settings.display_url
    assert len(kernels) == 4 and entries, entries  # report, two run-reports kernels, overview
    assert all(e["database"] == database_b and e["statement_timeout_s"] == TIMEOUT for e in entries), [
        (e["argv"], e["database"], e["statement_timeout_s"]) for e in entries if e["database"] != database_b
    ]
    for key in KEYS:  # the numbers are database B's
        data = load_report_cache(home / "reports" / key / "cache")
        overall = data.results.health.srm.set_index("dimension").loc["overall"]
        assert {c.removeprefix("users_"): int(n) for c, n in overall.items() if c.startswith("users_")} == b_units[
            key
        ], key
        assert data.provenance["database"] == database_b and data.provenance["config_file"] == str(config.resolve())
    # the dashboard: Voila and every kernel it starts get the config
    from workbench.cli.app import app
    from workbench.reports import dashboard

    captured = {}

    def fake_exec(file, args, environment):
        captured.update(args=args, env=environment)
        raise SystemExit(0)

    from typer.testing import CliRunner

    original = os.execvpe
    os.execvpe = fake_exec
    try:
        CliRunner().invoke(app, ["dashboard", "--config", str(config)], env={"WORKBENCH_HOME": str(home)})
    finally:
        os.execvpe = original
        os.environ.pop("WORKBENCH_CONFIG", None)
    assert captured["env"]["WORKBENCH_CONFIG"] == str(config.resolve()), captured
    assert captured["args"][:3] == dashboard.voila_command()[:3]
    ledger(
        "Config scope",
        f"a project whose workbench.yml names database A ({sum(sum(u.values()) for u in a_units.values()):,} units in 2 "
        f"experiments) and a config elsewhere naming database B ({sum(sum(u.values()) for u in b_units.values()):,} units) "
        f"with a {TIMEOUT} s statement timeout: `report --config`, `run-reports --config --jobs 2`, `overview --config`, "
        "each session audited inside every process (sitecustomize), and `dashboard --config`'s Voila environment",
        f"{len(entries)} sessions in {len({e['pid'] for e in entries})} processes ({len(kernels)} kernels): all on B with "
        f"the {TIMEOUT} s timeout; the cached units per variation are B's for both experiments; Voila gets WORKBENCH_CONFIG "
        "(before: the report kernels analysed A, 629 vs 8,226 units in the review, with the default 600 s timeout)",
    )
