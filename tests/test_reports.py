"""Reports, scheduled runs and the dashboard (issue 5), on generated data with planted effects:
numbers against pandas on the raw tables and closed forms, real papermill runs through the CLI,
the HTML in headless Chromium with no network, the dashboard served by Voila and driven in the
same browser, run-reports with one broken experiment on PostgreSQL, and no password anywhere."""

from __future__ import annotations

import html
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import norm

import workbench as wb
from support.generated_project import generated
from support.offline_browser import CHROMIUM, offline_page, wait_for_port
from support.pg_server import free_port
from support.screenshots import save_screenshot
from workbench.experiments.config import load_config, parse_config

WORKBENCH = str(Path(sys.executable).with_name("workbench"))
START, END = pd.Timestamp("2026-09-25"), pd.Timestamp("2026-11-23 23:59:59.999999")
CONFIG = """
# test config: one assignment query, three metrics
identifier_types: [user_id]
assignment_queries:
  - name: users
    identifier_type: user_id
    sql: SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id, browser, country FROM experiment_viewed
    dimensions: [browser, country]
metrics:
  - name: purchased
    type: binomial
    sql: SELECT userId AS user_id, timestamp FROM orders
  - name: revenue
    type: mean
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
    format: currency
    currency: {symbol: "€", symbol_after: true}
  - name: sessions
    type: count
    sql: SELECT userId AS user_id, sessionStart AS timestamp, 1 AS value FROM sessions
  - name: broken
    type: binomial
    sql: SELECT userId AS user_id, timestamp FROM no_such_table
experiments:
  - key: price-display
    name: Price display
    description: Prices with tax and shipping included
    hypothesis: All-in prices avoid a surprise at checkout, so more visitors buy.
    start: 2026-09-25
    end: 2026-11-23
    variations: [{id: "0", name: Control}, {id: "1", name: All-in prices}]
    dimensions: [browser, country]
    goal_metrics: [purchased]
    secondary_metrics: [revenue]
    guardrail_metrics: [sessions]
  - key: add-to-cart-cta
    start: 2026-09-25
    end: 2026-11-23
    variations: ["0", "1"]
    goal_metrics: [GOAL]
    secondary_metrics: [revenue]
"""


def write_config(path: Path, broken: bool = False) -> Path:
    path.write_text(CONFIG.replace("GOAL", "broken" if broken else "purchased"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def duck(tmp_path_factory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("reports-duckdb")
    return generated(f"duckdb:///{tmp / 'gen.duckdb'}"), write_config(tmp / "workbench.yml")


@pytest.fixture(scope="module")
def raw(duck) -> dict[str, pd.DataFrame]:
    db = wb.connect(duck[0])
    tables = {t: db.sql(f"SELECT * FROM {t}", limit=None) for t in ("experiment_viewed", "orders", "sessions")}
    db.dispose()
    return tables


def pandas_units(raw: dict, key: str, end: pd.Timestamp = END) -> pd.DataFrame:
    """Per unit of ``key`` (exposed START..end, one variation only): variation, first exposure,
    purchased (any order from first exposure to end), revenue (sum of amounts)."""
    views = raw["experiment_viewed"].rename(columns=str.lower)
    views = views[
        (views["experimentid"] == key)
        & views["userid"].notna()
        & (views["timestamp"] >= START)
        & (views["timestamp"] <= end)
    ]
    units = views.groupby("userid").agg(
        first=("timestamp", "min"), variations=("variationid", "nunique"), variation=("variationid", "first")
    )
    units = units[units["variations"] == 1]
    orders = raw["orders"].rename(columns=str.lower)
    joined = orders.merge(units[["first"]], left_on="userid", right_index=True)
    joined = joined[(joined["timestamp"] >= joined["first"]) & (joined["timestamp"] <= end)]
    units["purchased"] = units.index.isin(set(joined["userid"])).astype(float)
    units["revenue"] = joined.groupby("userid")["amount"].sum(min_count=1).reindex(units.index).fillna(0.0)
    return units


def pandas_relative(units: pd.DataFrame, metric: str) -> tuple[float, float, float, int, int]:
    """Relative effect of variation 1 vs 0, the two means, and the two arm sizes."""
    arms = units.groupby("variation")[metric].agg(["mean", "size"])
    m0, m1 = arms.loc["0", "mean"], arms.loc["1", "mean"]
    return (m1 - m0) / m0, m0, m1, int(arms.loc["0", "size"]), int(arms.loc["1", "size"])


# --- the report's numbers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(duck):
    from workbench.reports.data import report_data

    db = wb.connect(duck[0])
    result = report_data("price-display", db, config_path=duck[1], dimension="browser", cumulative_points=4)
    db.dispose()
    return result


def test_results_and_intervals_match_pandas(data, raw):
    units = pandas_units(raw, "price-display")
    table = data.results.table
    overall = table[(table["dimension"] == "overall")].set_index("metric")
    for metric in ("purchased", "revenue"):
        rel, m0, m1, n0, n1 = pandas_relative(units, metric)
        row = overall.loc[metric]
        assert (row["baseline_units"], row["units"]) == (n0, n1)
        assert row["baseline_mean"] == pytest.approx(m0, rel=1e-12) and row["mean"] == pytest.approx(m1, rel=1e-12)
        assert row["relative_effect"] == pytest.approx(rel, rel=1e-10)
    # the 68%/95% view of a rate: delta-method standard error of the relative difference (closed form)
    rel, p0, p1, n0, n1 = pandas_relative(units, "purchased")
    se = math.sqrt(p1 * (1 - p1) / n1 / p0**2 + p1**2 * p0 * (1 - p0) / n0 / p0**4)
    view = data.intervals[(data.intervals["metric"] == "purchased") & (data.intervals["dimension"] == "overall")].iloc[
        0
    ]
    assert view["relative"] == pytest.approx(rel, rel=1e-10)
    assert (view["relative_95_upper"] - view["relative_95_lower"]) / 2 == pytest.approx(norm.ppf(0.975) * se, rel=2e-3)
    assert (view["relative_68_upper"] - view["relative_68_lower"]) / 2 == pytest.approx(norm.ppf(0.84) * se, rel=2e-3)
    # per browser: units per value from pandas (first exposure's browser)
    views = raw["experiment_viewed"].rename(columns=str.lower)
    views = views[(views["experimentid"] == "price-display") & views["userid"].notna()].sort_values(
        ["timestamp", "variationid", "browser"]
    )
    browser = views.groupby("userid")["browser"].first().reindex(units.index)
    expected = units.assign(browser=browser).groupby(["browser", "variation"]).size()
    got = table[(table["dimension"] == "browser") & (table["metric"] == "purchased")]
    for r in got.itertuples():
        assert r.units == expected[(r.dimension_value, r.variation)]
    # an explicit dimension is the only breakdown, though the entry configures two
    assert data.provenance["dimensions"] == ["browser"] and set(table["dimension"]) == {"overall", "browser"}


def test_cumulative_effect_is_the_result_as_of_each_day(data, raw):
    from workbench.experiments.cumulative import end_days

    days = sorted(data.cumulative["day"].unique())
    assert len(days) == 4 and [pd.Timestamp(d) for d in end_days(days[0].date(), days[-1].date(), 4)] == days
    for day in days[1:]:
        units = pandas_units(raw, "price-display", pd.Timestamp(day) + pd.Timedelta(days=1, microseconds=-1))
        rel, _m0, _m1, n0, n1 = pandas_relative(units, "purchased")
        row = data.cumulative[data.cumulative["day"] == day].iloc[0]
        assert (row["baseline_units"], row["units"]) == (n0, n1)
        assert row["relative_effect"] == pytest.approx(rel, rel=1e-10)


def test_end_days_spacing():
    from datetime import date

    from workbench.experiments.cumulative import end_days

    assert end_days(date(2026, 1, 1), date(2026, 1, 3), 14) == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
    spaced = end_days(date(2026, 1, 1), date(2026, 3, 1), 5)
    assert spaced[0] == date(2026, 1, 1) and spaced[-1] == date(2026, 3, 1) and len(spaced) == 5
    assert end_days(date(2026, 1, 2), date(2026, 1, 1)) == []


def test_tables_charts_and_verdict_follow_the_results(data, tmp_path):
    from workbench.reports import charts as report_charts
    from workbench.reports import tables as report_tables
    from workbench.reports.data import load_report_cache, save_report_cache

    overall = data.results.table[data.results.table["dimension"] == "overall"]
    html = report_tables.group_table_html(data.results, "goal")
    purchased = overall[overall["metric"] == "purchased"].iloc[0]
    assert html.count('class="wb-row') == 1 and f"wb-{purchased['significance'] or 'neutral'}" in html
    verdict, decision = report_tables.verdict(data), data.results.decision
    # the generator plants a drop in purchases and revenue for price-display (seed 5)
    assert purchased["significance"] == "worse" and "**All\\-in prices is worse on purchased**" in verdict
    assert (decision.action, decision.variations) == ("roll back", ("1",)) and not data.results.health.warnings
    assert decision.reasons[0].startswith(
        f"All-in prices is significantly worse on purchased ({purchased['relative_effect']:+.1%}, p = {purchased['p_value']:.2g}), revenue ("
    )
    assert "won" not in verdict
    rows = report_charts.interval_rows(data.results, data.intervals, "secondary")
    assert list(rows["metric"]) == ["revenue"]
    plain = report_charts.interval_chart(rows)
    muted = report_charts.interval_chart(rows, highlight_significant=True)
    significant = overall.set_index("metric").loc["revenue", "significance"]
    assert (muted.data[0].marker.color[0] == report_charts.MUTED) == (not significant)
    assert plain.data[0].marker.color[0] != report_charts.MUTED
    assert plain.data[0].base[0] == pytest.approx(rows["relative_68_lower"].iloc[0])
    assert plain.layout.shapes[0].line.dash == "dash" and plain.layout.shapes[0].x0 == 0
    save_report_cache(data, tmp_path / "cache")
    again = load_report_cache(tmp_path / "cache")
    pd.testing.assert_frame_equal(again.results.table, data.results.table.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(
        again.results.sufficient_statistics,
        data.results.sufficient_statistics.reset_index(drop=True),
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(again.units_per_day, data.units_per_day.reset_index(drop=True), check_dtype=False)
    assert again.results.settings == data.results.settings and again.results.experiment == data.results.experiment
    assert again.results.to_dict() == json.loads(json.dumps(data.results.to_dict(), default=str))
    assert (
        str(again.results) == str(data.results) and again.results.health.srm_flagged == data.results.health.srm_flagged
    )


@pytest.mark.browser
def test_the_index_says_decision_health_and_a_failed_or_stale_state_in_red(data, tmp_path, artifacts_dir):
    """Four report folders around one cached result (roll back, healthy): a fresh scheduled run, a
    scheduled run three days old (stale), a failed run with its sentence, and an old run without a
    schedule (never stale); the page turns the fresh row stale by itself when viewed two days on."""
    import datetime as dt

    from workbench.display import BACKGROUNDS
    from workbench.reports.data import save_report_cache
    from workbench.reports.runs import timestamp_stem, write_index

    now = dt.datetime.now(dt.UTC)
    days_ago = {"fresh": 0, "old": 3, "broken": 1, "manual": 3}
    for key, age in days_ago.items():
        folder = tmp_path / key
        save_report_cache(data, folder / "cache")
        good = timestamp_stem(now - dt.timedelta(days=age))
        status = {"key": key, "status": "ok", "last_run": good, "last_good_run": good, "last_good_html": f"{good}.html"}
        status.update({} if key == "manual" else {"every_hours": 24})
        if key == "broken":
            status.update(status="failed", last_run=timestamp_stem(now), error="Table no_such_table does not exist.")
        (folder / "status.json").write_text(json.dumps(status))
    (tmp_path / "overview").mkdir()
    (tmp_path / "overview" / "overview.html").write_text("<html></html>")
    index = write_index(tmp_path)
    with offline_page(index) as (page, _fetched):

        def row(key: str) -> dict:
            return page.evaluate(
                """key => { const r = document.querySelector(`tr[data-key="${key}"]`);
                  const cell = c => r.querySelector(c); const bg = e => getComputedStyle(e).backgroundColor;
                  return {link: r.querySelector("a").getAttribute("href"), name: r.querySelector("a").textContent,
                          decision: cell(".wb-decision").innerText, decisionBg: bg(cell(".wb-decision")),
                          health: cell(".wb-health").innerText, state: cell(".wb-state").innerText,
                          stateBg: bg(cell(".wb-state"))}; }""",
                key,
            )

        def rgb(colour: str) -> str:
            return f"rgb({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)})"

        red, green = rgb(BACKGROUNDS["worse"]), rgb(BACKGROUNDS["better"])
        fresh, old, broken, manual = (row(k) for k in days_ago)
        assert (fresh["link"], fresh["name"]) == ("fresh/latest.html", "fresh")
        assert fresh["decision"].startswith(
            "roll back All-in prices\nAll-in prices is significantly worse on purchased"
        )
        assert fresh["decisionBg"] == red and fresh["health"] == "healthy"
        assert (fresh["state"], fresh["stateBg"]) == ("ok", green)
        assert old["stateBg"] == red
        assert (
            old["state"]
            == f"stale: no successful run since {(now - dt.timedelta(days=3)):%Y-%m-%d %H:%M} UTC, scheduled every 24 h"
        )
        assert (broken["state"], broken["stateBg"]) == ("failed: Table no_such_table does not exist.", red)
        assert (manual["state"], manual["stateBg"]) == ("ok", green)
        assert page.locator("a", has_text="the data overview").get_attribute("href") == "overview/overview.html"
        page.screenshot(path=str(artifacts_dir / "report-index.png"), full_page=True)
        save_screenshot(page, "report-index")  # docs/reports.md
        # viewed two days later, without the index rewritten: the fresh row has turned stale
        page.clock.install(time=now + dt.timedelta(days=2))
        page.reload()
        later = row("fresh")
        assert later["state"].startswith("stale: no successful run since") and later["stateBg"] == red
        assert row("manual")["state"] == "ok" and row("broken")["state"].startswith("failed: ")


def test_baseline_from_the_database_matches_pandas(duck, raw):
    from workbench.experiments.baselines import metric_baseline

    db = wb.connect(duck[0])
    data = yaml.safe_load(duck[1].read_text())
    # a count metric counts rows, whatever `value` holds (the experiment engine's definition)
    data["metrics"].append(
        {
            "name": "orders_per_user",
            "type": "count",
            "sql": "SELECT userId AS user_id, timestamp, amount AS value FROM orders",
        }
    )
    config = parse_config(data, duck[1])
    start, end = pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-14 23:59:59.999999")
    views = raw["experiment_viewed"].rename(columns=str.lower)
    views = views[views["userid"].notna() & (views["timestamp"] >= start) & (views["timestamp"] <= end)]
    first = views.groupby("userid")["timestamp"].min().rename("first")
    orders = raw["orders"].rename(columns=str.lower).merge(first, left_on="userid", right_index=True)
    orders = orders[(orders["timestamp"] >= orders["first"]) & (orders["timestamp"] <= end)]
    purchased = pd.Series(first.index.isin(set(orders["userid"])).astype(float))
    revenue = orders.groupby("userid")["amount"].sum().reindex(first.index).fillna(0.0)
    counts = orders.groupby("userid").size().reindex(first.index).fillna(0).astype(float)
    for name, values in (("purchased", purchased), ("revenue", revenue), ("orders_per_user", counts)):
        b = metric_baseline(name, db, "2026-10-01", "2026-10-14", config=config)
        assert b.units == len(first)
        assert b.mean == pytest.approx(values.mean(), rel=1e-12)
        assert b.variance == pytest.approx(values.var(ddof=1), rel=1e-9)
    with pytest.raises(ValueError, match="before start"):
        metric_baseline("purchased", db, "2026-10-14", "2026-10-01", config=config)
    db.dispose()


def test_data_quality_checks_match_pandas(duck, raw):
    from workbench.experiments import data_quality

    db = wb.connect(duck[0])
    config = load_config(duck[1])
    nulls = data_quality.null_rates(db, config).set_index(["metric", "column"])
    orders = raw["orders"]
    assert nulls.loc[("revenue", "value"), "nulls"] == orders["amount"].isna().sum()
    assert nulls.loc[("revenue", "value"), "rows"] == len(orders)
    assert (
        nulls.loc[("sessions", "timestamp"), "nulls"]
        == raw["sessions"]["sessionStart" if "sessionStart" in raw["sessions"] else "sessionstart"].isna().sum()
    )
    assert "no_such_table" in nulls.loc[("broken", "(all)"), "error"]
    health = data_quality.experiment_health(db, config).set_index("experiment")
    units = pandas_units(raw, "price-display")
    assert health.loc["price-display", "units"] == len(units)
    traffic = pd.DataFrame(
        {
            "day": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-04", "2026-01-01", "2026-01-05"]),
            "series": ["a", "a", "a", "b", "b"],
            "n": [1, 2, 3, 4, 5],
        }
    )
    gaps = data_quality.missing_days(traffic).set_index("series")
    assert (
        gaps.loc["a", "days_without_rows"] == 1
        and gaps.loc["a", "missing"] == "2026-01-03"
        and gaps.loc["a", "days_behind_newest"] == 1
    )
    assert gaps.loc["b", "days_without_rows"] == 3
    db.dispose()


# --- notebooks run for real ---------------------------------------------------------------------
def headings(notebook: dict) -> list[str]:
    return [
        line
        for c in notebook["cells"]
        if c["cell_type"] == "markdown"
        for line in "".join(c["source"]).splitlines()
        if line.startswith("#")
    ]


def errors(notebook: dict) -> list[dict]:
    return [
        o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"
    ]


@pytest.fixture(scope="module")
def cli_report(duck, tmp_path_factory):
    """`workbench report` for real on DuckDB, in its own project home."""
    home = tmp_path_factory.mktemp("report-home")
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.run(
        [
            WORKBENCH,
            "report",
            "price-display",
            "--config",
            str(duck[1]),
            "--database",
            duck[0],
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr
    return home, proc, time.perf_counter() - started


@pytest.mark.notebook
def test_report_command_writes_notebook_html_latest_and_cache(cli_report, raw):
    home, proc, _seconds = cli_report
    folder = home / "reports" / "price-display"
    htmls = sorted(p for p in folder.glob("2*.html"))
    assert (
        len(htmls) == 1
        and f"HTML report:       {htmls[0]}" in proc.stdout
        and f"Latest report:     {folder / 'latest.html'}" in proc.stdout
    )
    assert (folder / "latest.html").read_bytes() == htmls[0].read_bytes()
    nb = json.loads(htmls[0].with_suffix(".ipynb").read_text())
    assert not errors(nb)
    assert headings(nb) == [
        "# Experiment report",
        "## Summary",
        "## Health",
        "## Results by metric group",
        "### Goal metrics",
        "### Secondary metrics",
        "### Guardrail metrics",
        "## Cumulative effect over time",
        "## Results per dimension",
        "## Appendix: the SQL that ran",
        "## Appendix: provenance",
    ]
    plotly = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(plotly) == 7  # units per day, three interval charts, one cumulative chart, one per dimension
    text = json.dumps(nb)
    assert "WITH" in text and "config SHA-256" in text
    cached = pd.read_parquet(folder / "cache" / "results.parquet")
    rel, *_ = pandas_relative(pandas_units(raw, "price-display"), "purchased")
    got = cached[(cached["metric"] == "purchased") & (cached["dimension"] == "overall")]["relative_effect"].iloc[0]
    assert got == pytest.approx(rel, rel=1e-10)
    assert json.loads((folder / "status.json").read_text())["status"] == "ok"
    assert (home / "reports" / "index.html").is_file()


@pytest.mark.notebook
@pytest.mark.browser
def test_report_html_renders_every_chart_offline(cli_report, duck, artifacts_dir, raw):
    home, _proc, _seconds = cli_report
    html = home / "reports" / "price-display" / "latest.html"
    source = html.read_text()
    assert "report_data(" not in source and "import workbench" not in source  # no code cells
    assert "<title>price-display: experiment report</title>" in source and "wb-footer" in source
    rel, *_ = pandas_relative(pandas_units(raw, "price-display"), "purchased")
    assert f"{rel:+.1%}" in source
    # light: plotly.js and the stylesheet are shared files in reports/, linked relatively
    shared = sorted(p.name for pattern in ("*.css", "*.js") for p in (home / "reports").glob(pattern))
    assert [n.split("-")[0] for n in shared] == ["jupyterlab", "plotly"], shared
    assert f'<script src="../{shared[1]}">' in source and f'href="../{shared[0]}"' in source
    assert html.stat().st_size <= 300_000 and (home / "reports" / shared[1]).stat().st_size > 4_000_000
    nb = html.with_name(json.loads(html.with_name("status.json").read_text())["last_good_run"] + ".ipynb")
    assert nb.stat().st_size <= 300_000  # figures leave their JSON only, not plotly.js
    # no folder of the machine: the project home, the database's and the config's folders
    for folder in (home, duck[1].parent):
        assert str(folder) not in source
    assert not re.search(r"(?<![\w.])/(tmp|home|root|work)/", source)
    # the SQL appendix is collapsed
    assert re.search(r"<details><summary>\d+ SQL quer(y|ies) \(click to show\)</summary><pre>WITH", source)
    with offline_page(html) as (page, fetched):
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 7", timeout=60_000
        )
        traces = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => (e.data || []).length)")
        assert len(traces) == 7 and all(n > 0 for n in traces)
        assert page.locator("text=Results by metric group").count() >= 1
        assert not page.locator("details pre").first.is_visible()  # the SQL stays folded until clicked
        # the decision comes first: above the experiment line and every section
        decision = page.locator(".wb-decision")
        assert decision.count() == 1 and "wb-decision-worse" in decision.get_attribute("class")
        assert decision.inner_text().startswith("Decision: Roll back All-in prices\n")
        assert decision.bounding_box()["y"] < page.locator("h2").first.bounding_box()["y"]
        # the first screen names the harm, under the experiment's name and hypothesis
        assert "significantly worse on purchased" in decision.inner_text() and "revenue (" in decision.inner_text()
        box = decision.bounding_box()
        assert box["y"] + box["height"] <= 800, box
        assert page.locator(".wb-title").inner_text() == "Price display"
        assert page.locator(".wb-hypothesis").inner_text() == (
            "Hypothesis: All-in prices avoid a surprise at checkout, so more visitors buy."
        )
        # GrowthBook's rows: the goal table's one row in the metric's units, interval drawn, both certainties
        goal = page.locator(".wb-results").first
        cells = goal.locator("tr.wb-row td").all_inner_texts()
        units = pandas_units(raw, "price-display")
        control, treated = (units[units["variation"] == v]["purchased"] for v in ("0", "1"))
        assert cells[1] == "All-in prices\nid 1"
        for cell, arm in ((cells[2], control), (cells[3], treated)):  # rates in %, three significant digits
            assert cell == f"{arm.mean() * 100:#.3g}".rstrip(".") + f"%\n{len(arm):,} units"
        assert cells[4].startswith(f"{rel:+.1%}") and re.fullmatch(r"\d+\.\d%|<0\.1%", cells[6]) and cells[7]
        assert goal.locator("svg.wb-interval line.wb-ci").get_attribute("stroke") == "#cf222e"  # worse: red
        revenue = page.locator(".wb-results").nth(1).locator("tr.wb-row td").all_inner_texts()
        assert revenue[2].split("\n")[0].endswith(" €") and revenue[3].split("\n")[0].endswith(" €")
        page.screenshot(path=str(artifacts_dir / "experiment-report.png"), full_page=True)
        save_screenshot(page, "report-summary")  # docs/getting-started.md
        save_screenshot(page, "report-results", heading="Results by metric group")
    assert not [u for u in fetched if "plotly" in u]


@pytest.mark.notebook
@pytest.mark.browser
def test_standalone_report_opens_alone_and_old_runs_are_pruned(duck, tmp_path):
    """`workbench report --standalone --keep 2` in a project whose folder holds four older runs
    (two failed): the page embeds plotly.js and its stylesheet, so a copy alone in an empty folder
    draws its charts offline; the newest two runs (this one and a failed one) are kept, the others
    deleted, and nothing is shared under reports/."""
    folder = tmp_path / "home" / "reports" / "price-display"
    folder.mkdir(parents=True)
    for name in ("20250101-000000.ipynb", "20250101-000000.html", "20250102-000000.failed.ipynb"):
        (folder / name).write_text("{}", encoding="utf-8")
    for name in ("20250103-000000.ipynb", "20250103-000000.html", "20250103-000000-2.failed.ipynb"):
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / "status.json").write_text(json.dumps({"last_good_run": "20250101-000000"}), encoding="utf-8")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    options = ["--standalone", "--keep", "2", "--config", str(duck[1]), "--database", duck[0], "--dimension", "none"]
    proc = subprocess.run(
        [WORKBENCH, "report", "price-display", *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr
    new = json.loads((folder / "status.json").read_text())["last_good_run"]
    assert sorted(p.name for p in folder.glob("2*")) == [
        "20250103-000000-2.failed.ipynb",  # the newest two runs: the failed one of the same second, and
        f"{new}.html",  # this one
        f"{new}.ipynb",
    ]
    assert not list((tmp_path / "home" / "reports").glob("*.js"))  # nothing shared: the page holds it all
    alone = tmp_path / "mail" / "report.html"
    alone.parent.mkdir()
    alone.write_bytes((folder / "latest.html").read_bytes())
    page_text = alone.read_text()
    assert alone.stat().st_size > 4_800_000 and 'src="../' not in page_text and 'href="../' not in page_text
    with offline_page(alone) as (page, fetched):  # the folder holds nothing else to load
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4", timeout=60_000
        )
        assert page.evaluate("getComputedStyle(document.body).getPropertyValue('--jp-ui-font-family')").strip()
    assert not [u for u in fetched if "plotly" in u]


def user_notebook(path: Path) -> Path:
    """A researcher's notebook: a typed parameters cell, a file written in its working folder, and a
    toolkit funnel chart."""
    import nbformat

    parameters = nbformat.v4.new_code_cell(
        'steps: int = 3  # funnel steps\nwithin_hours: float = 1.0  # window\nlabel: str = "x"  # a name\nsplit: bool = True  # a flag'
    )
    parameters.metadata["tags"] = ["parameters"]
    code = (
        "import workbench as wb\nfrom workbench.toolkit import Toolkit\n"
        'tk = Toolkit(wb.connect(), source="growthbook_pages")\n'
        'funnel = tk.funnel(["/", "/search", "/cart", "/checkout", "/success"][:steps], within=f"{within_hours:g}h")\n'
        'open("seen.txt", "w").write(repr((steps, within_hours, label, split)))'
    )
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# My funnel"),
            parameters,
            nbformat.v4.new_code_cell(code),
            nbformat.v4.new_code_cell("funnel.plot()"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
@pytest.mark.browser
def test_render_runs_any_notebook_with_typed_parameters(duck, tmp_path):
    """`workbench render NOTEBOOK -p NAME VALUE…`: parameters typed as the notebook declares them,
    the kernel in the notebook's folder, the executed notebook and a code-free standalone page
    whose toolkit chart draws offline; bad parameters are one sentence before any kernel starts."""
    (tmp_path / "mine").mkdir()
    source = user_notebook(tmp_path / "mine" / "funnel.ipynb")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "WORKBENCH_DATABASE_URL": duck[0]}

    def render(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [WORKBENCH, "render", str(source), *args], capture_output=True, text=True, env=env, timeout=400
        )

    proc = render("-p", "steps", "4", "-p", "within_hours", "2", "-p", "label", "7", "--parameter", "split", "no")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mine" / "seen.txt").read_text() == "(4, 2.0, '7', False)"
    out = tmp_path / "home" / "reports" / "rendered"
    assert f"HTML page:         {out / 'funnel.html'}" in proc.stdout
    nb = json.loads((out / "funnel.ipynb").read_text())
    assert not errors(nb) and "steps = 4" in "".join(nb["cells"][2]["source"])  # papermill's injected cell
    page = (out / "funnel.html").read_text()
    assert "import workbench" not in page and "<title>funnel</title>" in page
    with offline_page(out / "funnel.html") as (browser_page, fetched):
        browser_page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        steps = browser_page.eval_on_selector(".js-plotly-plot", "e => e.data[0].y.length")
        assert steps == 4
    assert not [u for u in fetched if "plotly" in u]
    for args, sentence in [
        (
            ("-p", "step", "4"),
            "funnel.ipynb has no parameter 'step': it declares steps, within_hours, label, split. Did you mean 'steps'?",
        ),
        (("-p", "steps", "four"), "-p steps 'four': funnel.ipynb declares steps as int, so give a whole number."),
        (("-p", "split", "maybe"), "declares split as bool, so give true or false."),
        (("-p", "steps"), "-p needs a name and a value: -p NAME VALUE."),
        (("steps", "4"), "Unexpected argument 'steps': set a notebook parameter with -p NAME VALUE."),
    ]:
        bad = render(*args)
        assert bad.returncode == 1 and sentence in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert render("-p", "steps", "4", "--output-dir", str(tmp_path / "mine")).returncode == 1  # never over its source


def test_pruning_keeps_the_newest_runs_and_the_last_good_one(tmp_path):
    from workbench.errors import WorkbenchError
    from workbench.reports.runs import prune_runs

    stems = [f"202601{d:02d}-000000" for d in range(1, 7)]
    for stem in stems:
        (tmp_path / f"{stem}.ipynb").write_text("{}")
        (tmp_path / f"{stem}.html").write_text("")
    (tmp_path / f"{stems[-1]}-2.failed.ipynb").write_text("{}")
    for other in ("latest.html", ".20260107-000000.running", "status.json"):
        (tmp_path / other).write_text(json.dumps({"last_good_run": stems[1]}))
    assert prune_runs(tmp_path, keep=3) == [stems[0], stems[2], stems[3]]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [".20260107-000000.running", "latest.html", "status.json", f"{stems[-1]}-2.failed.ipynb"]
        + [f"{stem}{ending}" for stem in (stems[1], stems[4], stems[5]) for ending in (".ipynb", ".html")]
    )
    with pytest.raises(WorkbenchError, match="keep at least 1"):
        prune_runs(tmp_path, keep=0)


@pytest.fixture(scope="module")
def checkout_report(growthbook_url, tmp_path_factory):
    """GrowthBook's checkout-layout reported with the project's workbench.yml (dimensions: browser,
    country) on DuckDB: the run and its reports folder."""
    from workbench.reports.runs import run_report

    if not growthbook_url.startswith("duckdb"):
        pytest.skip("one papermill run of the sample is enough: DuckDB's")
    reports = tmp_path_factory.mktemp("checkout-reports")
    config = Path(__file__).resolve().parents[1] / "workbench.yml"
    run = run_report("checkout-layout", database_url=growthbook_url, config_path=config, reports_dir=reports)
    assert run.status == "ok", run.error
    return run, reports


@pytest.mark.notebook
@pytest.mark.browser
def test_an_unhealthy_experiment_opens_with_a_red_banner_and_no_winner(checkout_report):
    """GrowthBook's checkout-layout (a sample-ratio mismatch, variation 2 ahead on purchases): the
    red health banner is the first thing on the page, the decision "don't trust yet" next."""
    run, _reports = checkout_report
    with offline_page(run.latest) as (page, _fetched):
        first = page.locator(".wb-banner, .wb-decision, h2").first  # after the title and its one sentence
        assert "wb-unhealthy" in first.get_attribute("class") and "Sample ratio mismatch" in first.inner_text()
        decision = page.locator(".wb-decision")
        assert decision.inner_text().startswith("Decision: Don't trust yet: the health checks failed\n")
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.wb-unhealthy')).backgroundColor")
            == "rgb(255, 235, 233)"
        )
        assert " won" not in page.inner_text("body")
        # named as in workbench.yml: the experiment, its hypothesis, the variations; values in their units
        assert page.locator(".wb-title").inner_text() == "Checkout layout"
        assert page.locator(".wb-hypothesis").inner_text().startswith("Hypothesis: Fewer steps")
        goal = page.locator(".wb-results").first.inner_text()
        assert "One-page checkout" in goal and "Summary beside form" in goal and "%" in goal
        guardrail = page.locator(".wb-results").nth(2).locator("tr.wb-row td").all_inner_texts()
        assert guardrail[0].startswith("session_duration") and re.fullmatch(r"\d+m \d\ds", guardrail[2].split("\n")[0])
        save_screenshot(page, "report-unhealthy")  # docs/reports.md


@pytest.mark.notebook
@pytest.mark.browser
def test_the_report_offers_every_configured_dimension_offline(checkout_report, growthbook_url, artifacts_dir):
    """checkout-layout configures dimensions [browser, country]: the page's selector offers both,
    browser's section (its chart across browsers and a table per browser) shows first, and choosing
    country from file:// with the network cut shows country's chart, whose rows are every country
    of the experiment's exposures, and hides browser's."""
    run, reports = checkout_report
    db = wb.connect(growthbook_url)
    values = {  # the segments of each dimension: every value among the experiment's exposures
        column: set(
            db.sql(f"SELECT DISTINCT {column} FROM experiment_viewed WHERE experimentId = :key", key="checkout-layout")[
                column
            ]
        )
        for column in ("browser", "country")
    }
    db.dispose()
    assert run.latest.stat().st_size <= 300_000
    shown = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.offsetParent !== null
                 && e.getBoundingClientRect().width > 300).map(e => [e.layout.title.text, e.data[1].y])"""
    sections = """() => [...document.querySelectorAll('.wb-dimension-section')].filter(e => e.offsetParent !== null)
                    .map(e => e.dataset.dimension)"""
    with offline_page(run.latest) as (page, fetched):
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 7")
        assert page.eval_on_selector_all("#wb-dimension option", "os => os.map(o => o.value)") == [
            "browser",
            "country",
        ]
        assert page.evaluate(sections) == ["browser"]  # the first dimension until another is chosen
        for chosen, other, seen, unseen in (
            ("browser", "country", "browser = Chrome", "country = US"),
            ("country", "browser", "country = US", "browser = Chrome"),
        ):
            page.select_option("#wb-dimension", chosen)
            assert page.evaluate(sections) == [chosen]
            charts = dict(page.evaluate(shown))
            assert f"Goal metrics by {other}" not in charts
            assert {label.split(" · ")[0] for label in charts[f"Goal metrics by {chosen}"]} == values[chosen]
            assert page.get_by_text(seen, exact=True).is_visible()
            assert not page.get_by_text(unseen, exact=True).is_visible()
        page.screenshot(path=str(artifacts_dir / "report-dimensions.png"), full_page=True)
        save_screenshot(page, "report-dimensions", heading="Results per dimension")  # docs/reports.md
    assert not [u for u in fetched if "plotly" in u]  # the charts drew from the shared file
    cached = pd.read_parquet(reports / "checkout-layout" / "cache" / "results.parquet")
    assert set(cached["dimension"]) == {"overall", "browser", "country"}  # the dashboard's cache too


@pytest.mark.notebook
def test_data_quality_and_power_notebooks_execute(duck, raw, tmp_path):
    from workbench.reports.notebooks import run_notebook

    run = run_notebook("data_quality.ipynb", tmp_path, {"config_path": str(duck[1])}, database_url=duck[0])
    nb = json.loads(run.notebook.read_text())
    assert not errors(nb)
    assert headings(nb) == [
        "# Data quality",
        "## Experiment health",
        "## Events per day and type",
        "## Missing and late data",
        "## Missing values in metric columns",
        "## Appendix: the SQL that ran",
    ]
    run = run_notebook(
        "power_analysis.ipynb",
        tmp_path,
        {"config_path": str(duck[1]), "start": "2026-10-01", "end": "2026-10-14"},
        database_url=duck[0],
    )
    nb = json.loads(run.notebook.read_text())
    assert not errors(nb)
    assert headings(nb) == [
        "# Power analysis",
        "## Baseline",
        "## Sample size",
        "## Detectable effect by duration",
        "## Appendix: the SQL that ran",
    ]
    views = raw["experiment_viewed"].rename(columns=str.lower)
    window = views[views["userid"].notna() & (views["timestamp"] >= "2026-10-01") & (views["timestamp"] < "2026-10-15")]
    text = json.dumps(nb)
    assert f"{window['userid'].nunique():,} units" in text


def test_every_notebook_declares_typed_commented_parameters():
    import papermill as pm

    from workbench import paths

    for name, expected in (("experiment_report", {"experiment", "config_path", "dimension", "engine", "alpha", "correction", "refresh", "cumulative_points", "cache_dir"}),
                           ("data_quality", {"config_path", "last_days"}), ("power_analysis", {"metric", "start", "end", "relative_mde", "arms", "alpha", "target_power", "traffic_share", "cuped", "pre_period_days", "cuped_correlation", "sequential", "sequential_tuning", "config_path"}),
                           ("dashboard", {"reports_dir"}), ("../templates/notebooks/analysis", {"experiment"})):  # fmt: skip
        path = paths.notebooks_dir() / f"{name}.ipynb"
        params = pm.inspect_notebook(str(path))
        assert set(params) == expected, name
        assert all(p["inferred_type_name"] in ("str", "int", "float") and p["help"] for p in params.values()), name
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        assert not [c for c in nb["cells"] if c["cell_type"] == "code" and c["outputs"]]
        code = [
            "".join(c["source"])
            for c in nb["cells"]
            if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
        ]
        unused = [p for p in params if not any(re.search(rf"\b{p}\b", cell) for cell in code)]
        assert not unused, (name, unused)  # every parameter changes something


# --- scheduled runs on PostgreSQL, one experiment broken ------------------------------------------
@pytest.fixture(scope="module")
def scheduled(pg_server, tmp_path_factory):
    """run-reports twice on PostgreSQL: add-to-cart-cta alone (good), then everything with
    add-to-cart-cta's goal metric reading a table that does not exist."""
    pg_server.create_database("reports_gen")
    url = generated(pg_server.url_with_password("reports_gen"))
    home = tmp_path_factory.mktemp("scheduled-home")
    good, bad = write_config(home / "good.yml"), write_config(home / "broken.yml", broken=True)
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    first = subprocess.run(
        [WORKBENCH, "run-reports", "add-to-cart-cta", "--config", str(good)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert first.returncode == 0, first.stderr
    kept = (home / "reports" / "add-to-cart-cta" / "latest.html").read_bytes()
    time.sleep(1)  # the next report gets another timestamp
    second = subprocess.run(
        [WORKBENCH, "run-reports", "--config", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    return home, url, password, first, second, kept


@pytest.mark.notebook
@pytest.mark.postgres
def test_run_reports_keeps_the_last_good_report_when_one_breaks(scheduled):
    home, url, _password, _first, second, kept = scheduled
    assert second.returncode == 1
    # one summary line per failed experiment: "  <key>: <reason>" (stray warnings may be indented too)
    failures = [line for line in second.stderr.splitlines() if re.match(r"^  [\w.-]+: ", line)]
    assert "1 of 2 report(s) failed" in second.stderr, second.stderr
    assert len(failures) == 1 and failures[0].startswith("  add-to-cart-cta: "), second.stderr
    assert "no_such_table" in failures[0] and "Traceback" not in second.stderr
    folder = home / "reports" / "add-to-cart-cta"
    assert (folder / "latest.html").read_bytes() == kept
    assert len(list(folder.glob("*.failed.ipynb"))) == 1 and len(list(folder.glob("2*[0-9].html"))) == 1
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and status["last_good_run"] < status["last_run"]
    assert status["every_hours"] == 24  # run-reports' default schedule, which the index judges staleness by
    assert (home / "reports" / "price-display" / "latest.html").is_file()
    assert "ok     price-display" in second.stdout
    index = (home / "reports" / "index.html").read_text()
    assert "add-to-cart-cta" in index and "price-display" in index and "failed" in index and "no_such_table" in index
    assert '<a href="price-display/latest.html">price-display</a>' in index  # named by experiment
    assert re.search(r'data-key="add-to-cart-cta".*?<b>ship 1</b>.*?data-state="failed"', index)  # last good decision
    assert re.search(r'data-key="price-display".*?<b>roll back All-in prices</b>.*?data-state="ok"', index)
    db = wb.connect(url)
    raw = {t: db.sql(f"SELECT * FROM {t}", limit=None) for t in ("experiment_viewed", "orders")}
    db.dispose()
    for key, name in (("price-display", "All-in prices"), ("add-to-cart-cta", "variation 1")):
        rel, *_ = pandas_relative(pandas_units(raw, key), "purchased")
        assert f"purchased {name}: {rel:+.1%}" in index, key  # the last good results of both, by variation name


@pytest.mark.notebook
@pytest.mark.postgres
def test_no_password_in_any_notebook_html_cache_or_output(scheduled):
    home, _url, password, first, second, _kept = scheduled
    assert len(password) >= 8
    for stream in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert password not in stream
    files = [p for p in (home / "reports").rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        assert password.encode() not in path.read_bytes(), path


# --- the dashboard ------------------------------------------------------------------------------
def drawn_bars(svg: str) -> list[tuple[str, str]]:
    """(significance, fill) of each row's 68% bar in a dashboard interval chart, top to bottom."""
    return re.findall(r'(?s)data-significance="(\w*)">.*?class="wb-bar"[^>]*fill="(#\w+)"', svg)


@pytest.mark.postgres
def test_dashboard_widgets_follow_the_selection_and_refresh(scheduled, monkeypatch):
    from workbench.reports.dashboard import Dashboard, cached_keys

    home, url, _password, *_ = scheduled
    reports = home / "reports"
    assert cached_keys(reports) == ["add-to-cart-cta", "price-display"]
    in_lab = Dashboard(reports)  # JupyterLab's server does not serve reports/: the path, not a dead link
    assert "full report: <code>reports/add-to-cart-cta/latest.html</code>" in in_lab.banner.value
    assert "href=" not in in_lab.banner.value
    monkeypatch.setenv("VOILA_BASE_URL", "/")  # a kernel Voila started
    dash = Dashboard(reports)
    assert dash.experiment.value == "add-to-cart-cta"
    goal = dash.chart_rows.copy()
    first = dash.first_screen_html()  # what the page shows before its scripts load
    assert all(part and part in first for part in (dash.status.value, dash.banner.value, dash.table.value))
    assert dash.banner.value.index("Decision: Ship variation 1") < dash.banner.value.index("Healthy")
    dash.experiment.value = "price-display"
    assert dash.banner.value.index("Decision: Roll back All-in prices") < dash.banner.value.index("Healthy")
    assert dash.segment.options[0][1] == ("overall", "all")
    assert {value[0] for _label, value in dash.segment.options[1:]} == {"browser", "country"}  # both dimensions
    assert 'href="reports/price-display/latest.html"' in dash.banner.value.split("</b>", 1)[1].split("</div>", 1)[0]
    assert not dash.chart_rows["relative"].equals(goal["relative"])
    dash.group.value = "guardrail"
    assert list(dash.chart_rows["metric"]) == ["sessions"] and "sessions" in dash.table.value
    dash.group.value = "goal"
    segment = dash.segment.options[1][1]
    dash.segment.value = segment
    assert set(zip(dash.chart_rows["dimension"], dash.chart_rows["dimension_value"])) == {segment}
    country = next(value for _label, value in dash.segment.options if value[0] == "country")
    dash.segment.value = country
    assert set(zip(dash.chart_rows["dimension"], dash.chart_rows["dimension_value"])) == {country}
    assert f">Goal metrics — country = {html.escape(country[1])}</text>" in dash.chart.value
    table = dash.data("price-display").results.table
    rows = table[(table["dimension"] == "country") & (table["dimension_value"] == country[1])]
    assert dash.table.value.count('class="wb-row') == len(rows[rows["metric_group"] == "goal"]) > 0
    bars = drawn_bars(dash.chart.value)
    assert [s for s, _fill in bars] == list(dash.chart_rows["significance"])
    assert any(not s for s, _fill in bars) and all(fill == "#57606a" for s, fill in bars if not s)
    dash.highlight.value = True
    bars = drawn_bars(dash.chart.value)
    assert all(fill == "#d0d7de" for s, fill in bars if not s) and all(fill != "#d0d7de" for s, fill in bars if s)
    before = dash.data("price-display").provenance["computed_at"]
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
    time.sleep(1)
    dash.recompute()
    assert "failed" not in dash.status.value
    assert dash.data("price-display").provenance["computed_at"] > before


@pytest.mark.postgres
def test_dashboard_says_which_cache_an_older_workbench_wrote_and_shows_the_others(scheduled, tmp_path):
    """A cache of an older version is refused with its sentence in the status line, no results and
    no chart for it; picking another experiment shows that one's results."""
    import shutil

    from workbench.reports.dashboard import Dashboard

    home, *_ = scheduled
    reports = tmp_path / "reports"
    shutil.copytree(home / "reports" / "price-display" / "cache", reports / "price-display" / "cache")
    old = reports / "aaa-old" / "cache"
    shutil.copytree(home / "reports" / "price-display" / "cache", old)
    payload = json.loads((old / "results.json").read_text())
    (old / "results.json").write_text(json.dumps({**payload, "key": "aaa-old", "version": 4}))
    dash = Dashboard(reports)
    assert dash.experiment.value == "aaa-old"  # the first, sorted
    assert "written by an older workbench: run `workbench report aaa-old` again" in dash.status.value
    assert dash.table.value == dash.banner.value == dash.chart.value == dash.cumulative.value == ""
    dash.group.value = "secondary"  # no redraw of what could not be read
    assert dash.chart.value == dash.table.value == ""
    dash.experiment.value = "price-display"
    assert (
        "Roll back" in dash.banner.value
        and "wb-interval-chart" in dash.chart.value
        and "wb-results" in dash.table.value
    )
    assert "wb-cumulative-chart" in dash.cumulative.value


@pytest.mark.browser
@pytest.mark.postgres
def test_dashboard_in_voila_answers_each_interaction(scheduled, artifacts_dir):
    from playwright.sync_api import sync_playwright

    from workbench.reports.dashboard import voila_command, voila_environment

    home = scheduled[0]
    port = free_port()
    command = voila_command(port)
    assert "--Voila.ip=127.0.0.1" in command and "--strip_sources=True" in command
    log = (home / "voila.log").open("w")  # closed after the server stops
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**voila_environment(), "WORKBENCH_HOME": str(home)}
    )
    try:
        wait_for_port(port, 60)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1300})
            # Offline, as on a machine with no internet: Voila's template links Font Awesome on a CDN
            # (its own bundle already carries it); a request that hangs would hold the load event.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith(f"http://127.0.0.1:{port}/") else route.abort()
                ),
            )
            page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
            page.wait_for_selector(".wb-interval-chart", timeout=180_000)
            assert "Dashboard(" not in page.content()  # sources stripped
            # charts drawn as SVG in the widgets: no plotly.js loaded by the page (it took ~1 s of every first draw)
            assert page.evaluate("() => window.Plotly === undefined && !document.querySelector('.js-plotly-plot')")
            assert not [
                r
                for r in page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
                if "plotly" in r
            ]
            assert page.locator(".wb-cumulative-chart .wb-series").count() > 0
            assert page.locator(".wb-first-screen").count() == 0  # the static first screen gave way to the widgets
            sent = page.request.get(f"http://127.0.0.1:{port}/").text()  # the page as sent, before any script ran
            assert sent.count("wb-first-screen-slot") == 1 and "Decision: Ship" in sent and "wb-results" in sent
            state = {
                "chart": "() => { const e = document.querySelector('.wb-interval-chart'); return JSON.stringify([e.querySelector('text').textContent, [...e.querySelectorAll('.wb-estimate')].map(l => l.getAttribute('x1')), [...e.querySelectorAll('.wb-bar')].map(b => b.getAttribute('fill'))]); }",
                "table": "() => document.querySelector('.wb-results') ? document.querySelector('.wb-results').innerText : ''",
            }

            def snapshot():
                return page.evaluate(state["chart"]), page.evaluate(state["table"])

            def changed(before, name):
                page.wait_for_function(f"(b) => ({state['chart']})() !== b", arg=before[0], timeout=30_000)
                after = snapshot()
                page.screenshot(path=str(artifacts_dir / f"dashboard-{name}.png"), full_page=True)
                return after

            first = snapshot()
            page.screenshot(path=str(artifacts_dir / "dashboard-first.png"), full_page=True)
            save_screenshot(page, "dashboard")  # docs/getting-started.md
            assert snapshot() == first  # the resize changed nothing the interactions below compare
            page.locator("select").nth(0).select_option("price-display")
            picked = changed(first, "experiment")
            assert picked[1] != first[1] and "Goal metrics" in picked[0]
            # the report's results rows: names, the interval drawn in each row, chance to win and p-value
            page.wait_for_function("() => document.querySelector('.wb-title').innerText === 'Price display'")
            assert "All-in prices" in picked[1] and "chance to win\tp-value" in picked[1]
            assert (
                page.locator(".wb-results svg.wb-interval").count() == page.locator(".wb-results tr.wb-row").count() > 0
            )
            page.get_by_role("button", name="guardrail").click()
            tab = changed(picked, "tab")
            assert "Guardrail metrics" in tab[0] and "sessions" in tab[1] and tab[1] != picked[1]
            cached = pd.read_parquet(home / "reports" / "price-display" / "cache" / "results.parquet")
            sessions = cached[(cached["metric"] == "sessions") & (cached["dimension"] == "overall")]
            page.get_by_role("button", name="Highlight significant").click()
            if (sessions["significance"] == "").any():  # something not significant to mute
                highlighted = changed(tab, "highlight")
                assert json.loads(highlighted[0])[2] == ["#d0d7de"] * len(sessions)
            else:
                page.wait_for_timeout(1000)
                highlighted = snapshot()
                assert highlighted == tab
            page.get_by_role("button", name="secondary").click()
            secondary = changed(highlighted, "secondary")
            assert "revenue" in secondary[1]
            page.locator("select").nth(1).select_option(index=1)
            segment = changed(secondary, "segment")
            assert "browser = " in segment[0] and segment[1] != secondary[1]
            assert page.locator(".wb-results tr[title]").count() > 0  # hover details, in the rows and the chart
            assert "p-value: " in page.locator(".wb-interval-chart .wb-chart-row title").first.text_content()
            country = page.locator("select").nth(1).locator("option", has_text="country = ").first.text_content()
            page.locator("select").nth(1).select_option(label=country)
            by_country = changed(segment, "country")
            assert f"— {country}".replace("\xa0", " ") in json.loads(by_country[0])[0] and by_country[1] != segment[1]
            # the full report, linked beside the decision and served behind the dashboard's login
            link = page.locator(".wb-decision a.wb-report-link")
            assert link.get_attribute("href") == "reports/price-display/latest.html"
            report = page.request.get(f"http://127.0.0.1:{port}/reports/price-display/latest.html")
            assert report.status == 200 and "<title>price-display: experiment report</title>" in report.text()
            assert page.request.get(f"http://127.0.0.1:{port}/reports/price-display/cache/results.json").status == 404
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


# --- templates ------------------------------------------------------------------------------------
def test_new_experiment_appends_a_valid_entry_and_keeps_comments(tmp_path):
    from workbench.errors import ConfigError, WorkbenchError
    from workbench.scaffold import new_analysis, new_experiment

    path = write_config(tmp_path / "workbench.yml")
    before = path.read_text()
    new_experiment("new-checkout", path)
    after = path.read_text()
    assert after.startswith(before.rstrip("\n")) and "# test config: one assignment query" in after
    assert "# new-checkout: added by `workbench new experiment`" in after
    entry = load_config(path).experiment("new-checkout")
    assert entry.variations == ("0", "1") and entry.assignment_query.name == "users"
    with pytest.raises(ConfigError, match="already exists"):
        new_experiment("new-checkout", path)
    with pytest.raises(ConfigError, match="may hold only"):
        new_experiment("bad key!", path)
    notebook = new_analysis("pricing_deep_dive", tmp_path)
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["title"] == "Pricing deep dive" and "".join(nb["cells"][0]["source"]).startswith(
        "# Pricing deep dive"
    )
    assert [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    with pytest.raises(WorkbenchError, match="must be letters, digits and _"):
        new_analysis("pricing\n", tmp_path)  # a trailing newline is not part of a name
    assert not (tmp_path / "pricing\n.ipynb").exists()


def test_cli_report_errors_are_one_sentence(tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    config = write_config(tmp_path / "workbench.yml")
    proc = subprocess.run(
        [WORKBENCH, "report", "nope", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "no experiment 'nope'" in proc.stderr
    np.testing.assert_equal(list((tmp_path).glob("reports/nope*")), [])


def test_all_discovered_adds_unconfigured_experiments_from_a_copy_of_the_config(duck, raw):
    from workbench.reports.runs import report_keys

    before = duck[1].read_text()
    keys, config_path = report_keys([], duck[1], all_discovered=True, database_url=duck[0])
    found = sorted(set(raw["experiment_viewed"]["experimentId"]))
    assert keys[:2] == ["price-display", "add-to-cart-cta"] and sorted(keys) == found
    assert duck[1].read_text() == before and config_path != duck[1]
    copy = load_config(config_path)
    assert set(copy.experiments) == set(found) and copy.experiments["homepage-nav-ios"].goal_metrics == ()
    assert report_keys(["price-display"], duck[1]) == (["price-display"], duck[1])


@pytest.mark.notebook
@pytest.mark.postgres
def test_a_mistyped_entry_fails_that_experiment_alone(scheduled):
    """`goal_metrics: [purchases]` in add-to-cart-cta's entry: analysing price-display still works,
    add-to-cart-cta fails with the config's sentence (and the closest name), run-reports reports
    price-display, exits 1, and the index shows the failure while add-to-cart-cta's last good
    report stays."""
    home, url, *_ = scheduled
    typo = home / "typo.yml"
    typo.write_text(CONFIG.replace("GOAL", "purchases"), encoding="utf-8")
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
    folder = home / "reports" / "add-to-cart-cta"
    kept = (folder / "latest.html").read_bytes()

    def workbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [WORKBENCH, *args, "--config", str(typo)], capture_output=True, text=True, env=env, timeout=400
        )

    assert workbench("analyze", "price-display").returncode == 0
    broken = workbench("analyze", "add-to-cart-cta")
    sentence = "'purchases' is not a defined metric"
    assert broken.returncode == 1 and sentence in broken.stderr and "Did you mean 'purchased'?" in broken.stderr
    run = workbench("run-reports")
    assert run.returncode == 1 and "ok     price-display" in run.stdout and "1 of 2 report(s) failed" in run.stderr
    assert (folder / "latest.html").read_bytes() == kept
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and sentence in status["error"]
    assert sentence in html.unescape((home / "reports" / "index.html").read_text())
