"""The demo's overview: its queries against pandas on the raw files, the real papermill run behind
`workbench overview`, and the HTML report rendered in headless Chromium with no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from support.offline_browser import offline_page
from workbench.reports import overview

ROOT = Path(__file__).resolve().parents[1]
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def test_traffic_per_day_matches_the_raw_files(growthbook_url, sample_dir):
    db = wb.connect(growthbook_url)
    traffic = overview.traffic_per_day(db)
    pages = pd.read_csv(sample_dir / "pageViews.csv.gz", parse_dates=["timestamp"])
    expected = pages.groupby(pages["timestamp"].dt.normalize()).size()
    got = traffic[traffic["series"] == "page views"].set_index("day")["n"]
    assert got.to_dict() == expected.to_dict()
    sessions = pd.read_csv(sample_dir / "sessions.csv.gz", parse_dates=["sessionStart"])
    got_sessions = traffic[traffic["series"] == "sessions"].set_index("day")["n"]
    assert got_sessions.to_dict() == sessions.groupby(sessions["sessionStart"].dt.normalize()).size().to_dict()
    last_week = overview.traffic_per_day(db, last_days=7)
    assert last_week["day"].nunique() == 7 and last_week["day"].max() == expected.index.max()
    with pytest.raises(ValueError, match="last_days"):
        overview.traffic_per_day(db, last_days=-1)
    db.dispose()


def test_experiments_found_matches_pandas(growthbook_url, sample_dir):
    db = wb.connect(growthbook_url)
    found = overview.experiments_found(db)
    raw = pd.read_csv(
        sample_dir / "experimentViews.csv.gz", dtype={"userId": str, "variationId": str}, parse_dates=["timestamp"]
    )
    expected = (
        raw.groupby(["experimentId", "variationId"])
        .agg(
            users=("userId", "nunique"),
            exposures=("userId", "size"),
            first_exposure=("timestamp", "min"),
            last_exposure=("timestamp", "max"),
        )
        .reset_index()
    )
    assert found["experiment_id"].tolist() == expected["experimentId"].tolist()
    assert found["users"].tolist() == expected["users"].tolist()
    assert found["exposures"].tolist() == expected["exposures"].tolist()
    assert pd.to_datetime(found["first_exposure"]).tolist() == expected["first_exposure"].tolist()
    assert "checkout-layout" in set(found["experiment_id"]) and "recommended-items" not in set(found["experiment_id"])
    counts = overview.table_row_counts(db).set_index("table")["rows"]
    assert counts["experiment_viewed"] == len(raw)
    db.dispose()


@pytest.fixture(scope="module")
def executed_overview(growthbook_url, tmp_path_factory):
    """`workbench overview` run for real (papermill, a python3 kernel, nbconvert) on the sample."""
    out = tmp_path_factory.mktemp("overview")
    env = {**os.environ, "WORKBENCH_DATABASE_URL": growthbook_url}
    proc = subprocess.run(
        [WORKBENCH, "overview", "--output-dir", str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"HTML report:       {out / 'overview.html'}" in proc.stdout
    return out


@pytest.mark.notebook
def test_overview_notebook_executes_cleanly(executed_overview, growthbook_url):
    nb = json.loads((executed_overview / "overview.ipynb").read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    plotly_outputs = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plotly_outputs) == 2
    headings = [
        line
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("#")
    ]
    assert headings == [
        "# Data overview",
        "## Tables",
        "## Traffic per day",
        "## Experiments found",
        "## Appendix: the SQL that ran",
    ]
    text = json.dumps(nb)
    password = growthbook_url.split(":")[2].split("@")[0] if growthbook_url.startswith("postgresql") else None
    assert password is None or password not in text  # the connection never travels as a parameter


@pytest.mark.notebook
@pytest.mark.browser
def test_overview_html_renders_charts_offline_in_chromium(executed_overview, artifacts_dir, request):
    html = executed_overview / "overview.html"
    assert "import workbench" not in html.read_text()  # no code cells
    with offline_page(html) as (page, refused):
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        traces = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => (e.data || []).length)")
        assert len(traces) == 2 and all(n > 0 for n in traces)
        assert page.locator("text=Traffic per day").count() >= 1
        backend = (
            request.node.callspec.params.get("backend", "duckdb") if hasattr(request.node, "callspec") else "duckdb"
        )
        page.screenshot(path=str(artifacts_dir / f"overview-{backend}.png"), full_page=True)
    assert not [u for u in refused if "plotly" in u], "plotly.js must be inlined, not fetched"


@pytest.mark.notebook
@pytest.mark.browser
def test_the_default_overview_links_the_reports_shared_plotly_js(growthbook_url, tmp_path):
    """Written where the index links it (reports/overview/), the overview loads the reports' shared
    plotly.js instead of inlining its 4.8 MB, and still draws both charts offline from file://."""
    env = {**os.environ, "WORKBENCH_DATABASE_URL": growthbook_url, "WORKBENCH_HOME": str(tmp_path)}
    proc = subprocess.run([WORKBENCH, "overview"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    html = tmp_path / "reports" / "overview" / "overview.html"
    shared = sorted(p.name for p in (tmp_path / "reports").glob("plotly-*.min.js"))
    assert len(shared) == 1 and f'src="../{shared[0]}"' in html.read_text()
    assert html.stat().st_size <= 300_000, html.stat().st_size
    with offline_page(html) as (page, refused):
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        traces = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => (e.data || []).length)")
    assert len(traces) == 2 and all(n > 0 for n in traces) and not refused


def test_cli_help_on_every_command():
    import typer.main
    from typer.testing import CliRunner

    from workbench.cli import app

    command = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    stack = [([], command)]
    while stack:
        prefix, cmd = stack.pop()
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            stack.append(([*prefix, name], sub))
    assert ["load", "growthbook-sample"] in paths and ["overview"] in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (path, result.output)
    proc = subprocess.run(
        [WORKBENCH, "--help"], capture_output=True, text=True, timeout=60
    )  # the installed console script
    assert proc.returncode == 0 and "overview" in proc.stdout


def test_cli_errors_are_one_sentence(tmp_path):
    env = {**os.environ, "WORKBENCH_DATABASE_URL": f"duckdb:///{tmp_path / 'cli.duckdb'}"}
    proc = subprocess.run(
        [WORKBENCH, "load", "growthbook-sample", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and "is not a folder" in proc.stderr
