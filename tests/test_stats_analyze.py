"""``analyze(experiment)`` and ``workbench analyze`` on GrowthBook's real sample data, on DuckDB and
PostgreSQL: the results agree with scipy/statsmodels on the experiment's per-unit values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats import proportion as sm_proportion
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.experiments.analysis import analyze
from workbench.experiments.config import load_config
from workbench.experiments.engine import experiment, unit_metrics

CONFIG = Path(__file__).resolve().parents[1] / "workbench.yml"


@pytest.fixture(scope="module")
def checkout(growthbook_url):
    db = wb.connect(growthbook_url)
    exp = experiment("checkout-layout", load_config(CONFIG))
    yield exp, db, unit_metrics(exp, db)
    db.dispose()


def test_analyze_agrees_with_per_unit_data(checkout):
    exp, db, units = checkout
    results = analyze(exp, db, dimensions=("browser",), difference_type="absolute")
    table = results.to_pandas()
    overall = table[table["dimension"] == "overall"].set_index(["metric", "variation"])
    control = units[units["variation"] == "0"]
    for variation in ("1", "2"):
        treated = units[units["variation"] == variation]
        # revenue per user: Welch's t-test on the per-unit values
        ref = scipy.stats.ttest_ind(treated["n_revenue_per_user"], control["n_revenue_per_user"], equal_var=False)
        row = overall.loc[("revenue_per_user", variation)]
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
        assert (row["ci_lower"], row["ci_upper"]) == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-6)
        # purchased: the two-proportion Wald statistic
        counts = (treated["pct_purchased"].sum(), len(treated), control["pct_purchased"].sum(), len(control))
        z = sm_proportion.test_proportions_2indep(*counts, method="wald", correction=False).statistic
        row = overall.loc[("purchased", variation)]
        assert row["absolute_effect"] / row["standard_error"] == pytest.approx(z, rel=1e-9)
    # SRM against the configured equal split, from the per-unit assignment
    users = units.groupby("variation").size().reindex(["0", "1", "2"]).to_numpy()
    assert results.health.srm_p_value == pytest.approx(scipy.stats.chisquare(users).pvalue, rel=1e-9)
    assert results.health.srm_p_value < 0.001 and any("Sample ratio mismatch" in w for w in results.health.warnings)
    assert set(table["dimension"]) == {"overall", "browser"}
    assert results.health.multiple_exposure_units > 0


def test_cli_prints_health_then_effects(growthbook_url, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONFIG", str(CONFIG))
    runner = CliRunner()
    table = runner.invoke(
        app, ["analyze", "checkout-layout", "--format", "table", "--overall-only", "--database", growthbook_url]
    )
    assert table.exit_code == 0, table.output
    assert table.output.index("Sample ratio mismatch") < table.output.index("purchased")
    out = runner.invoke(
        app,
        [
            "analyze",
            "checkout-layout",
            "--format",
            "json",
            "--overall-only",
            "--correction",
            "holm",
            "--database",
            growthbook_url,
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    purchased = [r for r in data["sufficient_statistics"] if r["metric"] == "purchased"]
    assert data["srm_p_value"] == pytest.approx(scipy.stats.chisquare([r["users"] for r in purchased]).pvalue, rel=1e-9)
    first = data["results"][0]
    assert {"p_value", "p_value_adjusted", "ci_lower", "note"} <= set(first)
    p_values = np.array([r["p_value"] for r in data["results"]], dtype=float)
    assert data["settings"]["correction"] == "holm" and all(
        r["p_value_adjusted"] >= r["p_value"] for r in data["results"] if r["p_value_adjusted"] is not None
    )
    goal = [r for r in data["results"] if r["metric"] in ("purchased",)]  # the goal metric: in the family
    assert goal and all(r["p_value_adjusted"] is not None for r in goal)
    assert np.isfinite(p_values).all()


def test_cli_errors_are_one_sentence(growthbook_url, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONFIG", str(CONFIG))
    result = CliRunner().invoke(app, ["analyze", "checkout-layout", "--engine", "bayes", "--database", growthbook_url])
    assert result.exit_code == 1
    assert "engine 'bayes' is not one of frequentist, bayesian" in result.output and "Traceback" not in result.output


def test_analyze_and_report_data_close_the_session_they_open(tmp_path, monkeypatch):
    """Without ``db``, they open the project's database and close it again: a writer in the same
    process can then open the DuckDB file, which DuckDB refuses while a read-only handle is open."""
    from workbench.generator import generate
    from workbench.reports.data import report_data

    url = f"duckdb:///{tmp_path / 'own.duckdb'}"
    writer = wb.connect(url, read_only=False)
    generate(writer, users=500, seed=3)
    writer.dispose()
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
    results = analyze(experiment("add-to-cart-cta", load_config(CONFIG)))
    data = report_data("price-display", config_path=CONFIG)
    assert len(results.to_pandas()) and len(data.results.table)
    writer = wb.connect(url, read_only=False)
    with writer.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE written_after (x INTEGER)")
    assert "written_after" in set(writer.sql("SELECT table_name FROM information_schema.tables")["table_name"])
    writer.dispose()
