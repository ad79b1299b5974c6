"""The synthetic data generator on DuckDB and PostgreSQL: reproducible, shaped like GrowthBook's
sample, and with planted effects that a plain pandas computation on the raw tables recovers."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

import workbench as wb
from support.seed000 import ASSIGNMENT_SQL as SEED_ASSIGNMENT_SQL
from workbench import generator
from workbench.errors import WorkbenchError
from workbench.generator import PLANTED_EXPERIMENTS, generate, users_for_rows
from workbench.generator.simulation import (
    BROWSERS,
    COOKIE_CLEAR_SHARE,
    NULL_AMOUNT_SHARE,
    highest_probabilities,
)

USERS, SEED = 20_000, 7
TABLES = ("experiment_viewed", "orders", "pages", "sessions", "events", "generator_truth")
PLANTED = {e.key: e for e in PLANTED_EXPERIMENTS}


@pytest.fixture(scope="module")
def generated(backend):
    """20,000 users generated once per backend: (url, the counts generate returned)."""
    url = backend.new_url("generated")
    db = wb.connect(url, read_only=False)
    counts = generate(db, users=USERS, seed=SEED)
    db.dispose()
    return url, counts


def read_frame(url: str, query: str) -> pd.DataFrame:
    """All rows of ``query`` through the DBAPI cursor (several times faster than ``db.sql`` for
    hundreds of thousands of rows)."""
    db = wb.connect(url)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        cursor.execute(query)
        return pd.DataFrame(cursor.fetchall(), columns=[d[0].lower() for d in cursor.description])
    finally:
        raw.close()
        db.dispose()


@pytest.fixture(scope="module")
def raw(generated):
    """The raw tables the checks below need, as pandas frames."""
    url = generated[0]
    return {
        "exposures": read_frame(
            url,
            "SELECT userId AS user_id, timestamp, experimentId AS experiment, variationId AS variation, browser FROM experiment_viewed",
        ),
        "orders": read_frame(url, "SELECT userId AS user_id, timestamp, amount FROM orders"),
        "pages": read_frame(url, "SELECT userId AS user_id, timestamp, path FROM pages"),
        "events": read_frame(url, "SELECT userId AS user_id, timestamp, event FROM events"),
        "sessions": read_frame(
            url,
            "SELECT userId AS user_id, anonymousId AS anonymous_id, sessionId AS session_id, browser, country, sessionStart AS start FROM sessions",
        ),
    }


def table_contents(url: str) -> dict[str, pd.DataFrame]:
    contents = {}
    for table in TABLES:
        frame = read_frame(url, f"SELECT * FROM {table}")  # column names lower-cased: PostgreSQL folds them
        contents[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return contents


def test_returned_counts_are_the_table_counts(generated):
    url, counts = generated
    db = wb.connect(url)
    assert counts == {t: int(db.sql(f"SELECT COUNT(*) AS n FROM {t}")["n"].iloc[0]) for t in TABLES}
    assert counts["generator_truth"] == sum(len(e.weights) for e in PLANTED_EXPERIMENTS)
    assert int(db.sql("SELECT COUNT(DISTINCT userId) AS n FROM sessions")["n"].iloc[0]) == USERS
    db.dispose()


def test_same_seed_same_data_across_chunks(backend, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK_USERS", 1_000)  # three chunks, the last of one user
    urls = {label: backend.new_url(f"determinism_{label}") for label in ("a", "b", "other_seed")}
    for label, url in urls.items():
        db = wb.connect(url, read_only=False)
        generate(db, users=2_001, seed=11 if label != "other_seed" else 12, days=30)
        db.dispose()
    first, second, other = (table_contents(url) for url in urls.values())
    for table in TABLES:
        pd.testing.assert_frame_equal(first[table], second[table])
    assert not first["sessions"].equals(other["sessions"])
    sessions = first["sessions"]
    assert sessions["sessionid"].nunique() == len(sessions)  # ids stay unique across chunks
    assert set(sessions["userid"].astype(int)) == set(range(1, 2_002))


def test_seed_assignment_sql_runs_unchanged(generated):
    url, counts = generated
    db = wb.connect(url)
    sample = db.sql(f"SELECT * FROM ({SEED_ASSIGNMENT_SQL}) AS assignment ORDER BY timestamp LIMIT 1000")
    summary = db.sql(f"""SELECT experiment_id, variation_id, COUNT(*) AS n, MIN(timestamp) AS first, MAX(timestamp) AS last
                         FROM ({SEED_ASSIGNMENT_SQL}) AS assignment GROUP BY experiment_id, variation_id""")
    dimensions = db.sql(f"SELECT DISTINCT browser, country FROM ({SEED_ASSIGNMENT_SQL}) AS assignment")
    db.dispose()
    assert list(sample.columns) == ["user_id", "timestamp", "experiment_id", "variation_id", "browser", "country"]
    assert pd.api.types.is_datetime64_any_dtype(sample["timestamp"])
    assert summary["n"].sum() == counts["experiment_viewed"]
    assert summary["first"].min() >= pd.Timestamp("2026-09-25") and summary["last"].max() < pd.Timestamp("2026-11-25")
    assert set(summary["experiment_id"]) == set(PLANTED)
    for key, variations in summary.groupby("experiment_id")["variation_id"]:
        assert set(variations) == {str(v) for v in range(len(PLANTED[key].weights))}
    assert set(dimensions["browser"]) == set(BROWSERS) and set(dimensions["country"]) == {"US", "UK", "CA", "AU"}


def test_null_amounts_are_fifteen_percent(raw):
    orders = raw["orders"]
    share = orders["amount"].isna().mean()
    standard_error = np.sqrt(NULL_AMOUNT_SHARE * (1 - NULL_AMOUNT_SHARE) / len(orders))
    assert abs(share - NULL_AMOUNT_SHARE) < 4 * standard_error
    assert orders["amount"].dropna().between(1, 40).all()


def test_identities_sessions_and_funnel(raw):
    sessions = raw["sessions"].sort_values(["user_id", "start"])
    assert (sessions.groupby("user_id")["country"].nunique() == 1).all()  # country stable per user
    assert sessions.groupby("user_id")["browser"].nunique().max() > 1  # browser drawn per session
    pattern = sessions["browser"] + sessions["user_id"] + "__0."
    assert all(a.startswith(p) for a, p in zip(sessions["anonymous_id"], pattern))
    assert sessions.groupby("user_id")["anonymous_id"].nunique().max() > 1
    # A cookie lives in one browser: among a user's consecutive sessions in the same browser, the
    # anonymous id changes only when cookies were cleared, in COOKIE_CLEAR_SHARE of sessions.
    same_browser = sessions.groupby(["user_id", "browser"])["anonymous_id"]
    changed = (same_browser.shift() != sessions["anonymous_id"])[same_browser.cumcount() > 0]
    assert abs(changed.mean() - COOKIE_CLEAR_SHARE) < 4 * np.sqrt(
        COOKIE_CLEAR_SHARE * (1 - COOKIE_CLEAR_SHARE) / len(changed)
    )
    paths = raw["pages"]["path"].str.replace(r"/item/\d+", "/item/<n>", regex=True).value_counts()
    assert set(paths.index) == {"/", "/search", "/item/<n>", "/cart", "/checkout", "/success"}
    assert paths["/"] == len(sessions) and paths["/success"] == len(raw["orders"])
    assert paths["/"] > paths["/cart"] > paths["/checkout"] > paths["/success"]
    events = raw["events"]["event"].value_counts()
    assert set(events.index) == {"Open Nav", "Search", "Sort Results", "Add to Cart", "Cart Loaded"}
    assert events["Search"] == paths["/search"] and events["Cart Loaded"] == paths["/cart"]
    per_user = sessions.groupby("user_id").size()
    assert 2 < per_user.mean() < 3.5 and per_user.max() > 5


def assigned_users(exposures: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per exposed user: variation (``__multiple__`` when they saw several) and first exposure time."""
    seen = (
        exposures[exposures["experiment"] == key]
        .groupby("user_id")
        .agg(variation=("variation", "first"), variations=("variation", "nunique"), first_exposure=("timestamp", "min"))
    )
    seen.loc[seen["variations"] > 1, "variation"] = "__multiple__"
    return seen


def per_variation_after_exposure(rows: pd.DataFrame, users: pd.DataFrame) -> pd.Series:
    """Count of ``rows`` at or after each user's first exposure, per variation."""
    joined = rows.merge(users, left_on="user_id", right_index=True)
    return joined[joined["timestamp"] >= joined["first_exposure"]].groupby("variation").size()


def ratio_to_control(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    rate = numerator / denominator
    return rate / rate["0"]


def test_planted_effects_are_exact_multipliers():
    assert all(p <= 1 for p in highest_probabilities().values())  # no probability is ever capped


def test_winner_loser_and_multi_arm_are_recoverable(raw):
    exposures, pages, events = raw["exposures"], raw["pages"], raw["events"]
    item_views = pages[pages["path"].str.startswith("/item/")]
    adds = events[events["event"] == "Add to Cart"]
    checkouts = pages[pages["path"] == "/checkout"]

    # Winner: add-to-cart per item view after first exposure is 1.30 times the control's ...
    cta = assigned_users(exposures, "add-to-cart-cta")
    add_ratio = ratio_to_control(per_variation_after_exposure(adds, cta), per_variation_after_exposure(item_views, cta))
    assert add_ratio["1"] == pytest.approx(1 + PLANTED["add-to-cart-cta"].effects[1], abs=0.06)
    # ... and more exposed users purchase afterwards (two-proportion z-test).
    buyers = per_variation_after_exposure(raw["orders"].drop_duplicates("user_id"), cta)
    z = two_proportion_z(buyers["1"], (cta["variation"] == "1").sum(), buyers["0"], (cta["variation"] == "0").sum())
    assert z > 3

    # Loser: purchases per checkout after first exposure are 0.75 times the control's.
    price = assigned_users(exposures, "price-display")
    buy_ratio = ratio_to_control(
        per_variation_after_exposure(raw["orders"], price), per_variation_after_exposure(checkouts, price)
    )
    assert buy_ratio["1"] == pytest.approx(1 + PLANTED["price-display"].effects[1], abs=0.06)

    # Multi-arm: a 1/3 split; per checkout after first exposure, variation 1 buys 0.9 times and
    # variation 2 1.1 times as often as the control (units that saw several variations left out).
    layout = assigned_users(exposures, "checkout-layout")
    layout = layout[layout["variation"] != "__multiple__"]
    buy_ratio = ratio_to_control(
        per_variation_after_exposure(raw["orders"], layout), per_variation_after_exposure(checkouts, layout)
    )
    for v, effect in enumerate(PLANTED["checkout-layout"].effects[1:], start=1):
        assert buy_ratio[str(v)] == pytest.approx(1 + effect, abs=0.06)

    # A short test: exposures only from 2026-09-27 to 2026-10-15; variation 1 adds more searched items.
    order = assigned_users(exposures, "results-order")
    order_ratio = ratio_to_control(
        per_variation_after_exposure(adds, order), per_variation_after_exposure(item_views, order)
    )
    assert order_ratio["1"] == pytest.approx(1 + PLANTED["results-order"].effects[1], abs=0.08)
    times = exposures.loc[exposures["experiment"] == "results-order", "timestamp"]
    assert times.min() >= pd.Timestamp("2026-09-27") and times.max() < pd.Timestamp("2026-10-15 12:00")


def test_aa_test_and_return_visits(raw):
    exposures, sessions = raw["exposures"], raw["sessions"]
    # A/A with a 50/25/25 split, shown on Safari only: the same purchase rate after exposure, within noise.
    nav = assigned_users(exposures, "homepage-nav-ios")
    assert set(exposures.loc[exposures["experiment"] == "homepage-nav-ios", "browser"]) == {"Safari"}
    assert (nav["variation"] != "__multiple__").all()
    sizes = nav["variation"].value_counts().reindex(["0", "1", "2"])
    assert stats.chisquare(sizes, np.array(PLANTED["homepage-nav-ios"].weights) * sizes.sum()).pvalue > 0.001
    buyers = per_variation_after_exposure(raw["orders"].drop_duplicates("user_id"), nav)
    for v in ("1", "2"):
        assert abs(two_proportion_z(buyers[v], sizes[v], buyers["0"], sizes["0"])) < 4
    # Confirmation email, sent at the end of first sessions between 2026-11-05 and 2026-11-17: the
    # chance of coming back is 1.20 times the control's (within 4 standard errors of the ratio).
    email = assigned_users(exposures, "confirmation-email")
    assert email["first_exposure"].min() >= pd.Timestamp("2026-11-05") and email["first_exposure"].max() < pd.Timestamp(
        "2026-11-17"
    )
    returned = sessions.groupby("user_id").size().gt(1).rename("returned")
    by_arm = email.join(returned).groupby("variation")["returned"].agg(["mean", "size"])
    ratio = by_arm.loc["1", "mean"] / by_arm.loc["0", "mean"]
    se = ratio * np.sqrt(
        sum((1 - by_arm.loc[v, "mean"]) / (by_arm.loc[v, "size"] * by_arm.loc[v, "mean"]) for v in ("0", "1"))
    )
    assert abs(ratio - (1 + PLANTED["confirmation-email"].effects[1])) < 4 * se


def test_multiple_exposures_cause_a_sample_ratio_mismatch(raw):
    layout = assigned_users(raw["exposures"], "checkout-layout")
    planted = PLANTED["checkout-layout"]
    share = planted.extra_exposure_share
    multiple = (layout["variation"] == "__multiple__").mean()
    assert abs(multiple - share) < 4 * np.sqrt(share * (1 - share) / len(layout))
    kept = layout[layout["variation"] != "__multiple__"]["variation"].value_counts().reindex(["0", "1", "2"])
    assert stats.chisquare(kept, np.array(planted.weights) * kept.sum()).pvalue < 0.001
    everyone = raw["exposures"][raw["exposures"]["experiment"] == "checkout-layout"]
    first_variation = everyone.sort_values("timestamp").groupby("user_id")["variation"].first().value_counts()
    assert stats.chisquare(first_variation.reindex(["0", "1", "2"])).pvalue > 0.001  # the assignment itself is fair


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """z statistic of p_a − p_b with the pooled standard error."""
    pooled = (successes_a + successes_b) / (n_a + n_b)
    return (successes_a / n_a - successes_b / n_b) / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))


def test_truth_table_is_written(generated):
    db = wb.connect(generated[0])
    truth = db.sql("SELECT * FROM generator_truth ORDER BY experiment_id, variation_id")
    db.dispose()
    expected = sorted(
        (e.key, str(v), e.weights[v], e.effects[v]) for e in PLANTED_EXPERIMENTS for v in range(len(e.weights))
    )
    got = list(
        truth[["experiment_id", "variation_id", "weight", "true_relative_effect"]].itertuples(index=False, name=None)
    )
    assert got == expected
    assert truth["metric"].notna().all() and truth["notes"].str.len().gt(20).all()


def test_users_for_rows_sizes_a_run(tmp_path):
    target = 400_000
    users = users_for_rows(target)
    db = wb.connect(f"duckdb:///{tmp_path / 'sized.duckdb'}", read_only=False)
    counts = generate(db, users=users, seed=3)
    db.dispose()
    written = sum(rows for table, rows in counts.items() if table != "generator_truth")
    assert abs(written / target - 1) < 0.03
    with pytest.raises(WorkbenchError, match="table must be one of"):
        users_for_rows(1_000, table="nope")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"users": 99}, r"users \(--users\) must be a whole number from 100"),
        ({"days": 0}, r"days \(--days\) must be a whole number of days from 1"),
        ({"seed": -1}, r"seed \(--seed\) must be a whole number of 0 or more"),
        ({"start": "2026-02-30"}, r"start \(--start\) must be a date like 2026-09-25"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, arguments, message):
    db = wb.connect(f"duckdb:///{tmp_path / 'refused.duckdb'}", read_only=False)
    with pytest.raises(WorkbenchError, match=message):
        generate(db, **arguments)
    assert db.sql("SELECT COUNT(*) AS n FROM information_schema.tables")["n"].iloc[0] == 0
    db.dispose()


def test_cli_generates_and_reports(tmp_path):
    from workbench.cli import app

    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    result = CliRunner().invoke(app, ["generate", "--users", "500", "--seed", "2", "--days", "14", "--database", url])
    assert result.exit_code == 0, result.output
    db = wb.connect(url)
    for table in TABLES:
        rows = int(db.sql(f"SELECT COUNT(*) AS n FROM {table}")["n"].iloc[0])
        assert re.search(rf"^\s*{table}: +{rows:,} rows$", result.output, re.MULTILINE)
    span = db.sql("SELECT MIN(sessionStart) AS first, MAX(sessionStart) AS last FROM sessions").iloc[0]
    db.dispose()
    assert span["first"] >= pd.Timestamp("2026-09-25") and span["last"] < pd.Timestamp("2026-10-09")
    assert "Generated 500 users over 14 days" in result.output and str(tmp_path / "cli.duckdb") in result.output

    bad = CliRunner().invoke(app, ["generate", "--users", "10", "--database", f"duckdb:///{tmp_path / 'never.duckdb'}"])
    assert bad.exit_code == 1
    assert "error: users (--users) must be a whole number from 100" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "never.duckdb").exists()
