"""The study report notebook under papermill and the ``workbench study`` commands, on DuckDB."""

from __future__ import annotations

import nbformat
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
