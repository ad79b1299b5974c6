"""The study report notebook under papermill and the ``workbench study`` commands, on DuckDB."""

from __future__ import annotations

import re

import nbformat
import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.reports.notebooks import run_notebook


@pytest.fixture(scope="module")
def study_url(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('ytdpnl-report') / 'study.duckdb'}"
    result = CliRunner().invoke(
        app, ["study", "generate", "--size", "tiny", "--seed", "5", "--inject-faults", "--database", url]
    )
    assert result.exit_code == 0, result.output
    return url


def test_check_command_lists_the_planted_faults(study_url):
    writer_free = wb.connect(study_url)
    sessions = writer_free.sql(
        "SELECT s.id FROM ytdpnl.session s WHERE NOT EXISTS (SELECT 1 FROM ytdpnl.event e WHERE e.session_uuid = s.uuid) ORDER BY s.id"
    )
    writer_free.dispose()
    result = CliRunner().invoke(app, ["study", "check", "--database", study_url])
    assert result.exit_code == 1
    line = next(text for text in result.output.splitlines() if "sessions_without_events" in text)
    assert line.split(":")[1].split()[0] == str(len(sessions)) == "2"
    assert f"ids: {', '.join(str(i) for i in sessions['id'])}" in result.output
    bad = CliRunner().invoke(app, ["study", "check", "--schema", "a b", "--database", study_url])
    assert bad.exit_code == 1 and "not a plain SQL identifier" in bad.output and "Traceback" not in bad.output


@pytest.mark.notebook
def test_report_notebook_runs_on_a_participant_subset(study_url, tmp_path):
    db = wb.connect(study_url)
    people = db.sql("SELECT code FROM ytdpnl.participant ORDER BY id")
    db.dispose()
    codes = list(people["code"][:4])
    run = run_notebook(
        "ytdpnl_study_report.ipynb",
        tmp_path,
        parameters={"codes": codes, "start": "2023-02-06", "end": "2023-02-19", "min_pages": 0},
        database_url=study_url,
    )
    nb = nbformat.read(run.notebook, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    report_cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("report = "))
    html = report_cell.outputs[0]["data"]["text/html"]
    assert all(code in html for code in codes) and sum(code in html for code in people["code"]) == 4
    assert "application/vnd.plotly.v1+json" in str(nb.cells)
    assert run.html.stat().st_size > 0
    # the home-page section: its table agrees with a direct count of the subset's HOME_SHOWN events
    db = wb.connect(study_url)
    events = db.sql(
        "SELECT CAST(e.arm AS text) AS arm, s.participant_code, e.created_at FROM ytdpnl.event e "
        "JOIN ytdpnl.session s ON s.uuid = e.session_uuid WHERE e.type = 'HOME_SHOWN'",
        limit=None,
    )
    mine = events[events["participant_code"].isin(codes) & (events["created_at"] < pd.Timestamp("2023-02-20"))]
    counted = mine.groupby("arm").size()
    db.dispose()
    home_cell = next(c for c in nb.cells if c.cell_type == "code" and "home = ytdpnl.home_page(" in c.source)
    table = html_rows(home_cell.outputs[0]["data"]["text/html"])
    header = table[0]
    shown = {
        row[header.index("arm")]: int(row[header.index("home_shown")])
        for row in table[1:]
        if row[header.index("phase")] == "all"
    }
    assert shown and shown == {arm: int(n) for arm, n in counted.items()}
    assert "application/vnd.plotly.v1+json" in home_cell.outputs[1]["data"]
    later = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any(f in c.source for f in ("home_tiles_chart", "channel_positions(", "pool_channels("))
    ]
    assert len(later) == 3 and all(
        any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in c.outputs) for c in later
    )


def html_rows(html: str) -> list[list[str]]:
    """The rows of a pandas HTML table as text cells (the index cell included, the header's first cell blank)."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)]
        for row in rows
    ]
    return [row for row in cells if row]
