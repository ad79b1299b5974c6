"""The results object end to end: agreement with gbstats' own runner on the same table, edge cases
explained in ``note``, CUPED with the unadjusted result beside it, guardrails, corrections, the
JSON shape, and health shown before any lift."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from support.stats_oracle import sums_row
from workbench.display import BACKGROUNDS
from workbench.errors import ConfigError
from workbench.stats import AnalysisSettings, GaussianPrior, experiment_results

REL = 1e-6
FREQUENTIST_FIELDS = ["metric", "dimension", "dimension_value", "variation", "baseline", "units", "baseline_units", "mean", "baseline_mean",
                      "absolute_effect", "relative_effect", "ci_lower", "ci_upper", "p_value", "chance_to_win", "note"]  # fmt: skip


@pytest.fixture(scope="module")
def experiment_table():
    """Three arms, two browsers, four metric types; variation 1 lifts revenue and conversion."""
    rng = np.random.default_rng(2026)
    rows = []
    for browser, size in (("Chrome", 1500), ("Safari", 700)):
        for variation, lift in (("0", 1.0), ("1", 1.08), ("2", 1.0)):
            n = size + int(rng.integers(-40, 40))
            pre = rng.gamma(2.0, 5.0, n)
            revenue = 0.7 * pre + rng.gamma(2.0, 4.0 * lift, n)
            sessions = rng.poisson(3, n) + 1
            converted = rng.binomial(1, 0.2 * lift, n)
            where = {"dimension": "browser", "dimension_value": browser}
            rows += [
                sums_row("converted", "binomial", variation, converted, **where),
                sums_row("revenue", "mean", variation, revenue, covariate=pre, **where),
                sums_row(
                    "orders_per_session",
                    "ratio",
                    variation,
                    rng.binomial(sessions, 0.2 * lift),
                    denominator=sessions,
                    **where,
                ),
                sums_row("latency", "duration", variation, rng.gamma(3.0, 100.0 * lift, n), **where),
            ]
    frame = pd.DataFrame(rows)
    sum_columns = [
        c for c in frame.columns if c not in ("metric", "metric_type", "dimension", "dimension_value", "variation")
    ]
    overall = frame.groupby(["metric", "metric_type", "variation"], as_index=False, sort=False)[sum_columns].sum(
        min_count=1
    )
    overall["dimension"], overall["dimension_value"] = "overall", "all"
    return pd.concat([overall, frame], ignore_index=True)


def _gbstats_dimensions(table: pd.DataFrame, metric: str, statistic_type: str, main_type: str, **analysis):
    """GrowthBook's own runner (gbstats.process_single_metric) on the same sums, keyed by dimension value."""
    from gbstats.gbstats import process_single_metric
    from gbstats.models.settings import AnalysisSettingsForStatsEngine, MetricSettingsForStatsEngine

    part = table[table["metric"] == metric]
    rows = [{**r, "dimension": r["dimension_value"]} for r in part.drop(columns=["dimension"]).to_dict("records")]
    settings = MetricSettingsForStatsEngine(id=metric, name=metric, statistic_type=statistic_type, main_metric_type=main_type,
                                            denominator_metric_type=main_type, covariate_metric_type=main_type)  # fmt: skip
    ids = ["0", "1", "2"]
    result = process_single_metric(
        rows, settings, [AnalysisSettingsForStatsEngine(var_names=ids, var_ids=ids, weights=[1 / 3] * 3, **analysis)]
    )
    return {d.dimension: d for d in result.analyses[0].dimensions}


@pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore:Setting a value on a Series via .at"
)
@pytest.mark.parametrize(
    "metric, statistic_type, main_type",
    [
        ("converted", "mean", "binomial"),
        ("revenue", "mean_ra", "count"),
        ("orders_per_session", "ratio", "count"),
        ("latency", "mean", "count"),
    ],
)
@pytest.mark.parametrize("mode", ["frequentist", "sequential", "bayesian"])
def test_results_agree_with_gbstats_runner(oracle, experiment_table, metric, statistic_type, main_type, mode):
    settings = {
        "frequentist": AnalysisSettings(),
        "sequential": AnalysisSettings(sequential=True),
        "bayesian": AnalysisSettings(engine="bayesian"),
    }[mode]
    gb_analysis = {"frequentist": {"stats_engine": "frequentist"}, "sequential": {"stats_engine": "frequentist", "sequential_testing_enabled": True},
                   "bayesian": {"stats_engine": "bayesian"}}[mode]  # fmt: skip
    results = experiment_results(experiment_table, settings).to_pandas()
    reference = _gbstats_dimensions(experiment_table, metric, statistic_type, main_type, **gb_analysis)
    ours = results[results["metric"] == metric]
    assert len(ours) == 6  # 3 slices × 2 treatments
    for row in ours.itertuples():
        dimension = reference[row.dimension_value]
        ref = dimension.variations[int(row.variation)]
        assert row.relative_effect == pytest.approx(ref.expected, rel=REL)
        assert (row.ci_lower, row.ci_upper) == pytest.approx(ref.ci, rel=REL)
        assert row.mean == pytest.approx(ref.stats.mean, rel=1e-9)
        if mode == "bayesian":
            assert row.chance_to_win == pytest.approx(ref.chanceToWin, rel=REL)
            assert (row.risk_control, row.risk_treatment) == pytest.approx(ref.risk, rel=REL)
        else:
            assert row.p_value == pytest.approx(ref.pValue, rel=REL)
        assert row.cuped == (statistic_type == "mean_ra")
    overall_srm = experiment_results(experiment_table, settings).health.srm.set_index("dimension_value")["srm_p_value"]
    for value, dimension in reference.items():
        assert overall_srm[value] == pytest.approx(dimension.srm, rel=REL)


def test_cuped_keeps_the_unadjusted_result_and_matches_ols(experiment_table):
    table = experiment_table[(experiment_table["dimension"] == "overall") & (experiment_table["metric"] == "revenue")]
    results = experiment_results(table, AnalysisSettings(difference_type="absolute")).to_pandas().set_index("variation")
    off = (
        experiment_results(table, AnalysisSettings(difference_type="absolute", cuped=False))
        .to_pandas()
        .set_index("variation")
    )
    assert results.loc["1", "cuped"] and not off.loc["1", "cuped"]
    for column in ("absolute_effect", "ci_lower", "ci_upper", "p_value"):
        assert results.loc["1", f"unadjusted_{column}"] == pytest.approx(off.loc["1", column], rel=1e-12)
    # independent check of the adjusted effect from the same sums: OLS on a unit-level reconstruction
    rng = np.random.default_rng(4)
    pre_a, pre_b = rng.normal(10, 3, 800), rng.normal(10, 3, 900)
    y_a, y_b = pre_a + rng.normal(0, 2, 800), pre_b + rng.normal(0.5, 2, 900)
    small = pd.DataFrame(
        [sums_row("r", "mean", "0", y_a, covariate=pre_a), sums_row("r", "mean", "1", y_b, covariate=pre_b)]
    )
    row = experiment_results(small, AnalysisSettings(difference_type="absolute")).to_pandas().iloc[0]
    y, x = np.r_[y_a, y_b], np.r_[pre_a, pre_b]
    theta = sm.OLS(y, sm.add_constant(x)).fit().params[1]
    arm = np.r_[np.zeros(800), np.ones(900)]
    assert row["theta"] == pytest.approx(theta, rel=1e-9)
    assert row["absolute_effect"] == pytest.approx(
        sm.OLS(y - theta * x, sm.add_constant(arm)).fit().params[1], rel=1e-9
    )
    assert row["unadjusted_absolute_effect"] == pytest.approx(y_b.mean() - y_a.mean(), rel=1e-9)


def test_guardrails_are_one_sided_against_harm():
    rng = np.random.default_rng(6)
    y_a, y_b = rng.normal(100, 20, 500), rng.normal(98, 20, 500)
    table = pd.DataFrame([sums_row("latency", "mean", "0", y_a), sums_row("latency", "mean", "1", y_b),
                          sums_row("speed", "mean", "0", y_a), sums_row("speed", "mean", "1", y_b)])  # fmt: skip
    settings = AnalysisSettings(
        difference_type="absolute", guardrail_metrics=("latency", "speed"), inverse_metrics=frozenset({"latency"})
    )
    results = experiment_results(table, settings).to_pandas().set_index("metric")
    # speed: higher is better, harm is a decrease; latency: lower is better, harm is an increase
    assert results.loc["speed", "p_value"] == pytest.approx(
        scipy.stats.ttest_ind(y_b, y_a, equal_var=False, alternative="less").pvalue, rel=1e-7
    )
    assert results.loc["latency", "p_value"] == pytest.approx(
        scipy.stats.ttest_ind(y_b, y_a, equal_var=False, alternative="greater").pvalue, rel=1e-7
    )
    assert math.isinf(results.loc["speed", "ci_lower"]) and math.isinf(results.loc["latency", "ci_upper"])


def test_correction_family_is_goal_metrics_pooled_over_a_dimensions_slices(experiment_table):
    """GrowthBook's family (``setAdjustedPValuesOnResults``): goal metrics × variations, every slice
    of one dimension together; overall on its own. Wider scopes add metric groups or pool all."""
    results = experiment_results(experiment_table, AnalysisSettings(correction="holm")).to_pandas()
    for _, group in results.groupby("dimension"):
        np.testing.assert_allclose(
            group["p_value_adjusted"], multipletests(group["p_value"], method="holm")[1], rtol=1e-12
        )
    metrics = sorted(set(experiment_table["metric"]))
    goal_only = AnalysisSettings(correction="holm", secondary_metrics=tuple(metrics[1:]))
    narrowed = experiment_results(experiment_table, goal_only).to_pandas()
    assert narrowed.loc[narrowed["metric"] != metrics[0], "p_value_adjusted"].isna().all()
    for _, group in narrowed[narrowed["metric"] == metrics[0]].groupby("dimension"):
        np.testing.assert_allclose(group["p_value_adjusted"], multipletests(group["p_value"], method="holm")[1])
    widened = experiment_results(experiment_table, goal_only.with_overrides(correction_scope="everything")).to_pandas()
    np.testing.assert_allclose(widened["p_value_adjusted"], multipletests(widened["p_value"], method="holm")[1])
    plain = experiment_results(experiment_table, AnalysisSettings()).to_pandas()
    np.testing.assert_array_equal(results["p_value"], plain["p_value"])  # p_value stays the unadjusted one
    bh = experiment_results(experiment_table, AnalysisSettings(correction="bh")).to_dict()
    assert list(bh["results"][0]) == [*FREQUENTIST_FIELDS[:-2], "p_value_adjusted", "chance_to_win", "note"]


def test_to_dict_is_json_with_exactly_the_documented_fields(experiment_table):
    counts = pd.DataFrame(
        {
            "dimension": "overall",
            "dimension_value": "all",
            "variation": ["0", "1", "2", "__multiple__"],
            "users": [2200, 2200, 2200, 30],
        }
    )
    frequentist = experiment_results(
        experiment_table, AnalysisSettings(), unit_counts=counts, experiment="demo"
    ).to_dict()
    json.dumps(frequentist, allow_nan=False)
    assert list(frequentist["results"][0]) == FREQUENTIST_FIELDS
    assert frequentist["multiple_exposure_units"] == 30
    assert frequentist["srm_p_value"] == pytest.approx(1.0)
    assert len(frequentist["sufficient_statistics"]) == len(experiment_table)
    bayesian = experiment_results(experiment_table, AnalysisSettings(engine="bayesian")).to_dict()
    json.dumps(bayesian, allow_nan=False)
    assert list(bayesian["results"][0]) == [*FREQUENTIST_FIELDS[:-1], "risk", "note"]
    assert set(bayesian["results"][0]["risk"]) == {"control", "treatment"}


@pytest.mark.parametrize("relative", [True, False])
def test_frequentist_chance_to_win_is_the_flat_prior_posterior(relative):
    """Under the frequentist engine chance to win is P(effect > 0) for a normal posterior centred on
    the estimate with the test's standard error: Φ(effect / se) on the analysed scale, recomputed
    here from the raw samples (Welch's standard error, the delta method for the relative scale)."""
    rng = np.random.default_rng(21)
    y_a, y_b = rng.normal(10, 2, 500), rng.normal(10.2, 2, 500)
    table = pd.DataFrame([sums_row("m", "mean", "0", y_a), sums_row("m", "mean", "1", y_b)])
    scale = "relative" if relative else "absolute"
    settings = AnalysisSettings(difference_type=scale)
    row = experiment_results(table, settings).to_pandas().iloc[0]
    a_mean, b_mean, a_var, b_var = y_a.mean(), y_b.mean(), y_a.var(ddof=1), y_b.var(ddof=1)
    if relative:
        estimate = b_mean / a_mean - 1
        se = math.sqrt(b_var / (a_mean**2 * 500) + a_var * b_mean**2 / (a_mean**4 * 500))
    else:
        estimate, se = b_mean - a_mean, math.sqrt(a_var / 500 + b_var / 500)
    assert row[f"{scale}_effect"] == pytest.approx(estimate, rel=1e-9)
    assert row["chance_to_win"] == pytest.approx(scipy.stats.norm.cdf(estimate / se), rel=1e-9)
    assert 0.5 < row["chance_to_win"] < 1  # a positive effect, not certain
    inverse = experiment_results(table, settings.with_overrides(inverse_metrics=frozenset({"m"}))).to_pandas().iloc[0]
    assert inverse["chance_to_win"] == pytest.approx(scipy.stats.norm.sf(estimate / se), rel=1e-9)
    bayes = experiment_results(table, settings.with_overrides(engine="bayesian")).to_pandas().iloc[0]
    # the Bayesian engine's flat prior gives the same chance, and its p-value is the Welch test's
    assert bayes["chance_to_win"] == pytest.approx(row["chance_to_win"], rel=1e-9)
    assert bayes["p_value"] == pytest.approx(row["p_value"], rel=1e-12)


def test_bayesian_prior_and_inverse_metric():
    rng = np.random.default_rng(10)
    y_a, y_b = rng.normal(10, 2, 400), rng.normal(10.3, 2, 400)
    table = pd.DataFrame([sums_row("m", "mean", "0", y_a), sums_row("m", "mean", "1", y_b)])
    prior = GaussianPrior(0.0, 0.01, proper=True)
    row = experiment_results(table, AnalysisSettings(engine="bayesian", prior=prior)).to_pandas().iloc[0]
    # conjugate update of the data's relative effect with the N(0, 0.01²) prior
    a_mean, b_mean, a_var, b_var = y_a.mean(), y_b.mean(), y_a.var(ddof=1), y_b.var(ddof=1)
    data_mean = b_mean / a_mean - 1
    data_var = b_var / (a_mean**2 * 400) + a_var * b_mean**2 / (a_mean**4 * 400)
    precision = 1 / data_var + 1 / 0.01**2
    assert row["relative_effect"] == pytest.approx(data_mean / data_var / precision, rel=1e-9)
    assert row["chance_to_win"] == pytest.approx(
        scipy.stats.norm.cdf(data_mean / data_var / precision * math.sqrt(precision)), rel=1e-9
    )
    inverse = (
        experiment_results(table, AnalysisSettings(engine="bayesian", prior=prior, inverse_metrics=frozenset({"m"})))
        .to_pandas()
        .iloc[0]
    )
    assert inverse["chance_to_win"] == pytest.approx(1 - row["chance_to_win"], rel=1e-9)
    assert (inverse["risk_control"], inverse["risk_treatment"]) == pytest.approx(
        (row["risk_treatment"], row["risk_control"]), rel=1e-12
    )


def test_edge_cases_are_explained_not_raised():
    ones = np.ones(50)
    rng = np.random.default_rng(0)
    table = pd.DataFrame([
        sums_row("no_units", "mean", "0", rng.normal(1, 1, 50)), sums_row("no_units", "mean", "1", np.array([])),
        sums_row("constant", "mean", "0", ones), sums_row("constant", "mean", "1", ones),
        sums_row("zero_control", "mean", "0", np.r_[-ones, ones]), sums_row("zero_control", "mean", "1", rng.normal(0.5, 1, 100)),
        sums_row("fine", "mean", "0", rng.normal(1, 1, 50), dimension="country", dimension_value="NZ"),  # NZ only in the control
    ])  # fmt: skip
    results = experiment_results(table, AnalysisSettings()).to_pandas().set_index(["metric", "dimension_value"])
    assert "no units" in results.loc[("no_units", "all"), "note"]
    assert "zero variance" in results.loc[("constant", "all"), "note"]
    zero = results.loc[("zero_control", "all")]
    assert "control mean is 0" in zero["note"] and math.isnan(zero["relative_effect"]) and math.isnan(zero["p_value"])
    assert zero["absolute_effect"] == pytest.approx(table.loc[5, "main_sum"] / 100, rel=1e-12)
    assert "NZ has units only in the control" in results.loc[("fine", "NZ"), "note"]
    # the same comparison on the absolute scale is possible and given
    absolute = (
        experiment_results(table[table["metric"] == "zero_control"], AnalysisSettings(difference_type="absolute"))
        .to_pandas()
        .iloc[0]
    )
    assert absolute["note"] is None and absolute["p_value"] < 1
    single = (
        experiment_results(table[table["variation"] == "0"].head(1), AnalysisSettings(variations=("0",)))
        .to_pandas()
        .iloc[0]
    )
    assert "only one variation" in single["note"]


def test_health_is_shown_before_any_lift(experiment_table):
    counts = pd.DataFrame(
        {
            "dimension": "overall",
            "dimension_value": "all",
            "variation": ["0", "1", "2", "__multiple__"],
            "users": [2400, 2170, 2090, 700],
        }
    )
    results = experiment_results(experiment_table, AnalysisSettings(), unit_counts=counts, experiment="demo")
    text = str(results)
    assert text.index("Sample ratio mismatch") < text.index("converted") and "700 units" in text
    page = results._repr_html_()
    assert page.index("Sample ratio mismatch") < page.index("<table")
    assert (
        f"background:{BACKGROUNDS['better']}" in page or f"background:{BACKGROUNDS['worse']}" in page
    )  # significant rows highlighted


def test_settings_are_validated_with_the_setting_named():
    with pytest.raises(ConfigError, match="engine 'bayes'"):
        AnalysisSettings(engine="bayes")
    with pytest.raises(ConfigError, match="correction"):
        AnalysisSettings(correction="bonferroni")
    with pytest.raises(ConfigError, match="unknown analysis setting"):
        AnalysisSettings().with_overrides(alfa=0.1)
    assert AnalysisSettings().with_overrides(alpha=0.1, engine=None).alpha == 0.1


def test_interval_view_of_the_results_matches_statsmodels(experiment_table):
    from statsmodels.stats import proportion as sm_proportion

    view = experiment_results(experiment_table, AnalysisSettings()).intervals()
    row = view[(view["metric"] == "converted") & (view["dimension"] == "overall") & (view["variation"] == "1")].iloc[0]
    sums = experiment_table[
        (experiment_table["metric"] == "converted") & (experiment_table["dimension"] == "overall")
    ].set_index("variation")
    counts = (sums.loc["1", "main_sum"], sums.loc["1", "users"], sums.loc["0", "main_sum"], sums.loc["0", "users"])
    for level in (0.68, 0.95):
        low, high = sm_proportion.confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=1 - level)
        assert (
            row[f"absolute_{round(level * 100)}_lower"],
            row[f"absolute_{round(level * 100)}_upper"],
        ) == pytest.approx((low, high), rel=1e-9)
    assert row["p_value"] == pytest.approx(
        sm_proportion.test_proportions_2indep(*counts, method="wald", correction=False).pvalue, rel=1e-9
    )
    assert len(view) == 4 * 3 * 2  # metrics × slices × treatments


def test_uncapped_result_beside_the_capped_one_and_a_changed_verdict_is_said():
    """A capped metric's rows carry ``*_uncapped`` sums: the uncapped effect is computed from them
    (equal to a plain Welch test on the raw values) and a changed verdict is flagged and worded."""
    from workbench.reports.tables import capping_sentence

    rng = np.random.default_rng(4)
    raw_a, raw_b = rng.exponential(10, 3000), rng.exponential(10, 3000)
    raw_b[:40] += 400  # a few whales in the treatment
    cap = np.quantile(np.concatenate([raw_a, raw_b]), 0.99)
    rows = []
    for variation, raw in (("0", raw_a), ("1", raw_b)):
        row = sums_row("revenue", "mean", variation, np.minimum(raw, cap))
        row.update(main_sum_uncapped=float(raw.sum()), main_sum_squares_uncapped=float((raw**2).sum()))
        rows.append(row)
    results = experiment_results(pd.DataFrame(rows), AnalysisSettings(difference_type="absolute"))
    row = results.to_pandas().iloc[0]
    ref = scipy.stats.ttest_ind(raw_b, raw_a, equal_var=False)
    assert row["uncapped_absolute_effect"] == pytest.approx(raw_b.mean() - raw_a.mean(), rel=1e-12)
    assert row["uncapped_p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert row["significance"] == "" and row["uncapped_significance"] == "better"
    assert row["capping_changed_verdict"]
    out = results.to_dict()["results"][0]
    assert out["capping_changed_verdict"] is True
    assert out["uncapped"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    sentence = capping_sentence(row.to_dict(), results)
    assert "Capping changed the verdict on **revenue**" in sentence and "uncapped better" in sentence
