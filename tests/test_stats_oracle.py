"""Every statistic of the engine against GrowthBook's engine at its main branch (the ``oracle``
fixture: ../shared/oracles/gbstats), end to end through ``experiment_results``: relative and
absolute effects, intervals, p-values, chance to win and risk, for every statistic (proportion,
sample mean, ratio, CUPED, binomial CUPED, ratio CUPED, unit and clustered event quantiles), with
negative means and large negative lifts, two-sided, one-sided and sequential, flat and proper
priors. Tolerance: 1e-6 relative."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.stats import AnalysisSettings, GaussianPrior, experiment_results
from workbench.stats.moments import Z_95

REL = 1e-6


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-12) or (math.isinf(ours) and math.isinf(theirs))


# ---- data: per-unit arrays → our sufficient-statistics row and the oracle's statistic -----------


def unit_data(rng: np.random.Generator, n: int, mean: float, sd: float, lift: float, binomial: bool = False):
    """Per-unit (post, pre) values with a pre-period correlated with the post one."""
    pre = rng.normal(mean, sd, n)
    post = pre * 0.7 + rng.normal(mean * 0.3, sd * 0.6, n)
    post = post + lift * abs(mean)
    if binomial:
        pre = (rng.random(n) < 0.3).astype(float)
        post = ((rng.random(n) < 0.3 + lift * 0.3) | (pre.astype(bool) & (rng.random(n) < 0.5))).astype(float)
    return post, pre


def mean_row(post: np.ndarray, pre: np.ndarray | None, metric_type: str) -> dict:
    row = {"users": len(post), "count": len(post), "main_sum": post.sum(), "main_sum_squares": (post**2).sum()}
    if pre is not None:
        row.update(
            covariate_sum=pre.sum(), covariate_sum_squares=(pre**2).sum(), main_covariate_sum_product=(post * pre).sum()
        )
    return {**row, "metric_type": metric_type}


def ratio_row(m: np.ndarray, d: np.ndarray, m0: np.ndarray | None = None, d0: np.ndarray | None = None) -> dict:
    row = {"metric_type": "ratio", "users": len(m), "count": len(m), "main_sum": m.sum(), "main_sum_squares": (m**2).sum(),
           "denominator_sum": d.sum(), "denominator_sum_squares": (d**2).sum(), "main_denominator_sum_product": (m * d).sum()}  # fmt: skip
    if m0 is not None:
        row.update(
            covariate_sum=m0.sum(),
            covariate_sum_squares=(m0**2).sum(),
            main_covariate_sum_product=(m * m0).sum(),
            denominator_pre_sum=d0.sum(),
            denominator_pre_sum_squares=(d0**2).sum(),
            main_post_denominator_pre_sum_product=(m * d0).sum(),
            main_pre_denominator_post_sum_product=(m0 * d).sum(),
            main_pre_denominator_pre_sum_product=(m0 * d0).sum(),
            denominator_post_denominator_pre_sum_product=(d * d0).sum(),
        )
    return row


def oracle_statistic(gb, row: dict):
    from gbstats.models import statistics as s

    n = int(row["users"])
    if row["metric_type"] == "ratio":
        m = s.SampleMeanStatistic(n=n, sum=row["main_sum"], sum_squares=row["main_sum_squares"])
        d = s.SampleMeanStatistic(n=n, sum=row["denominator_sum"], sum_squares=row["denominator_sum_squares"])
        if "covariate_sum" not in row:
            return s.RatioStatistic(
                n=n, m_statistic=m, d_statistic=d, m_d_sum_of_products=row["main_denominator_sum_product"]
            )
        m0 = s.SampleMeanStatistic(n=n, sum=row["covariate_sum"], sum_squares=row["covariate_sum_squares"])
        d0 = s.SampleMeanStatistic(n=n, sum=row["denominator_pre_sum"], sum_squares=row["denominator_pre_sum_squares"])
        return s.RegressionAdjustedRatioStatistic(
            n=n, m_statistic_post=m, d_statistic_post=d, m_statistic_pre=m0, d_statistic_pre=d0,
            m_post_m_pre_sum_of_products=row["main_covariate_sum_product"],
            d_post_d_pre_sum_of_products=row["denominator_post_denominator_pre_sum_product"],
            m_pre_d_pre_sum_of_products=row["main_pre_denominator_pre_sum_product"],
            m_post_d_post_sum_of_products=row["main_denominator_sum_product"],
            m_post_d_pre_sum_of_products=row["main_post_denominator_pre_sum_product"],
            m_pre_d_post_sum_of_products=row["main_pre_denominator_post_sum_product"],
            theta=None,
        )  # fmt: skip
    if row["metric_type"] in ("quantile", "quantile_unit"):
        common = {
            "n": int(row["quantile_n"]), "n_star": int(row["quantile_nstar"]), "nu": row["quantile_level"],
            "quantile_hat": row["quantile"], "quantile_lower": row["quantile_lower"], "quantile_upper": row["quantile_upper"],
        }  # fmt: skip
        if row["metric_type"] == "quantile_unit":
            return s.QuantileStatistic(**common)
        return s.QuantileClusteredStatistic(
            **common, main_sum=row["main_sum"], main_sum_squares=row["main_sum_squares"],
            denominator_sum=row["denominator_sum"], denominator_sum_squares=row["denominator_sum_squares"],
            main_denominator_sum_product=row["main_denominator_sum_product"], n_clusters=n,
        )  # fmt: skip
    if row["metric_type"] == "binomial":
        post = s.ProportionStatistic(n=n, sum=row["main_sum"])
        pre = s.ProportionStatistic(n=n, sum=row.get("covariate_sum", 0.0))
    else:
        post = s.SampleMeanStatistic(n=n, sum=row["main_sum"], sum_squares=row["main_sum_squares"])
        pre = s.SampleMeanStatistic(
            n=n, sum=row.get("covariate_sum", 0.0), sum_squares=row.get("covariate_sum_squares", 0.0)
        )
    if "covariate_sum" not in row:
        return post
    return s.RegressionAdjustedStatistic(
        n=n,
        post_statistic=post,
        pre_statistic=pre,
        post_pre_sum_of_products=row["main_covariate_sum_product"],
        theta=None,
    )


def quantile_row(rng: np.random.Generator, units: int, shift: float, level: float, event: bool) -> dict:
    """A quantile row from simulated units with ~6 correlated events each (event level) or one value
    per unit (unit level), with the order-statistic interval at ranks n·q ∓ 1.96·sqrt(n·q·(1−q))."""
    effect = rng.normal(0, 1, units)
    counts = rng.poisson(6, units) + 1 if event else np.ones(units, dtype=int)
    values = np.concatenate([effect[i] + rng.normal(shift, 0.5, c) for i, c in enumerate(counts)])
    ordered = np.sort(values)
    n = len(values)
    rank = max(1, math.ceil(n * level))
    half = Z_95 * math.sqrt(n * level * (1 - level))
    lower = ordered[max(1, math.floor(n * level - half)) - 1]
    upper = ordered[min(n, math.ceil(n * level + half)) - 1]
    q = ordered[rank - 1]
    row = {"metric_type": "quantile" if event else "quantile_unit", "users": units, "count": units,
           "quantile_n": n, "quantile_nstar": n, "quantile_level": level, "quantile": q,
           "quantile_lower": lower, "quantile_upper": upper, "main_sum": np.nan, "main_sum_squares": np.nan}  # fmt: skip
    if event:
        owner = np.repeat(np.arange(units), counts)
        below = np.bincount(owner, weights=(values <= q).astype(float), minlength=units)
        row.update(main_sum=below.sum(), main_sum_squares=(below**2).sum(), denominator_sum=counts.sum(),
                   denominator_sum_squares=(counts**2).sum(), main_denominator_sum_product=(below * counts).sum())  # fmt: skip
    return row


# ---- running both engines ------------------------------------------------------------------------


def ours(control: dict, treatment: dict, metric_group: str = "goal", inverse: bool = False, **settings) -> dict:
    rows = []
    for variation, row in (("0", control), ("1", treatment)):
        rows.append({"metric": "m", "dimension": "overall", "dimension_value": "all", "variation": variation, **row})
    groups = {"guardrail": {"guardrail_metrics": ("m",)}, "goal": {}}[metric_group]
    result = experiment_results(
        pd.DataFrame(rows), AnalysisSettings(**groups, inverse_metrics=frozenset({"m"} if inverse else ()), **settings)
    )
    return result.to_pandas().iloc[0].to_dict()


def theirs(gb, control: dict, treatment: dict, test: str, relative: bool = True, alpha: float = 0.05, **kwargs):
    stats = [(oracle_statistic(gb, control), oracle_statistic(gb, treatment))]
    difference_type = "relative" if relative else "absolute"
    if test.startswith("bayesian"):
        from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
        from gbstats.bayesian.tests import GaussianPrior as GbPrior

        prior = kwargs.pop("prior", None)
        config = EffectBayesianConfig(difference_type=difference_type, alpha=alpha, **kwargs,
                                      prior_effect=GbPrior(mean=prior.mean, variance=prior.sd**2, proper=True) if prior else GbPrior())  # fmt: skip
        return EffectBayesianABTest(stats, config).compute_result()
    from gbstats.frequentist import tests as freq

    if test.startswith("sequential"):
        config = freq.SequentialConfig(difference_type=difference_type, alpha=alpha, **kwargs)
    else:
        config = freq.FrequentistConfig(difference_type=difference_type, alpha=alpha, **kwargs)
    cls = {
        "two-sided": freq.TwoSidedTTest,
        "less": freq.OneSidedTreatmentLesserTTest,
        "greater": freq.OneSidedTreatmentGreaterTTest,
        "sequential": freq.SequentialTwoSidedTTest,
        "sequential-less": freq.SequentialOneSidedTreatmentLesserTTest,
        "sequential-greater": freq.SequentialOneSidedTreatmentGreaterTTest,
    }[test]
    return cls(stats, config).compute_result()


def assert_frequentist(mine: dict, gb_result, relative: bool) -> None:
    assert gb_result.errorMessage is None, gb_result.errorMessage
    estimate = mine["relative_effect" if relative else "absolute_effect"]
    assert close(estimate, gb_result.expected), (estimate, gb_result.expected)
    assert close(mine["ci_lower"], gb_result.ci[0]), (mine["ci_lower"], gb_result.ci)
    assert close(mine["ci_upper"], gb_result.ci[1]), (mine["ci_upper"], gb_result.ci)
    assert close(mine["p_value"], gb_result.pValue), (mine["p_value"], gb_result.pValue)


def cases(seed: int):
    """(name, control row, treatment row) for every statistic, with negative means and large lifts."""
    rng = np.random.default_rng(seed)
    out = []
    for mean, lift in ((10.0, 0.02), (-2.0, 0.25), (5.0, -0.5), (-3.0, -0.4)):
        (ya, xa), (yb, xb) = unit_data(rng, 1500, mean, 4.0, 0.0), unit_data(rng, 1700, mean, 4.0, lift)
        out.append((f"mean {mean:+} lift {lift:+}", mean_row(ya, None, "mean"), mean_row(yb, None, "mean")))
        out.append((f"cuped {mean:+} lift {lift:+}", mean_row(ya, xa, "mean"), mean_row(yb, xb, "mean")))
        da, db = rng.poisson(3, 1500) + 1.0, rng.poisson(3, 1700) + 1.0
        d0a, d0b = da + rng.poisson(1, 1500), db + rng.poisson(1, 1700)
        out.append((f"ratio {mean:+}", ratio_row(ya * da, da), ratio_row(yb * db, db)))
        out.append(
            (
                f"ratio cuped {mean:+} lift {lift:+}",
                ratio_row(ya * da, da, xa * d0a, d0a),
                ratio_row(yb * db, db, xb * d0b, d0b),
            )
        )
    for lift in (0.0, 0.1, -0.3):
        (ya, xa), (yb, xb) = unit_data(rng, 3000, 1.0, 1.0, 0.0, True), unit_data(rng, 3000, 1.0, 1.0, lift, True)
        out.append((f"binomial {lift:+}", mean_row(ya, None, "binomial"), mean_row(yb, None, "binomial")))
        out.append((f"binomial cuped {lift:+}", mean_row(ya, xa, "binomial"), mean_row(yb, xb, "binomial")))
    for level in (0.5, 0.9):
        for event in (True, False):
            out.append(
                (
                    f"quantile {level} event={event}",
                    quantile_row(rng, 800, 0.0, level, event),
                    quantile_row(rng, 900, 0.3, level, event),
                )
            )
    return out


CASES = cases(7)


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
@pytest.mark.parametrize(
    "test", ["two-sided", "less", "greater", "sequential", "sequential-less", "sequential-greater"]
)
@pytest.mark.parametrize("name,control,treatment", CASES, ids=[c[0] for c in CASES])
def test_frequentist_tests_equal_the_oracle(oracle, name, control, treatment, test, relative):
    sequential = test.startswith("sequential")
    side = test.removeprefix("sequential").strip("-") or "two-sided"
    group = "goal" if side == "two-sided" else "guardrail"
    inverse = side == "greater"  # a guardrail is tested against harm: "less" unless lower is better
    mine = ours(
        control,
        treatment,
        group,
        inverse,
        difference_type="relative" if relative else "absolute",
        sequential=sequential,
    )
    gb_result = theirs(oracle, control, treatment, test, relative)
    if side != "two-sided" and sequential:
        # GrowthBook finds the one-sided sequential p-value by bisection and clamps it to
        # [1e-5, 0.4999]; ours is exact: the oracle's own interval at alpha = our p touches 0.
        assert gb_result.errorMessage is None
        estimate = mine["relative_effect" if relative else "absolute_effect"]
        assert close(estimate, gb_result.expected)
        assert close(mine["ci_lower"], gb_result.ci[0]) and close(mine["ci_upper"], gb_result.ci[1])
        p = mine["p_value"]
        if 1e-5 < p < 0.4999:
            from gbstats.frequentist.tests import sequential_rho

            rho = sequential_rho(0.05, 5000, two_sided=False)
            at_p = theirs(oracle, control, treatment, test, relative, alpha=p, rho=rho).ci
            touching = at_p[1] if side == "less" else at_p[0]
            assert abs(touching) < 1e-9 * max(1.0, abs(estimate)), (touching, p)
            assert gb_result.pValue == pytest.approx(p, abs=1e-4)
        else:
            assert gb_result.pValue == pytest.approx(1e-5 if p <= 1e-5 else 0.4999)
        return
    assert_frequentist(mine, gb_result, relative)


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
@pytest.mark.parametrize("prior", [None, GaussianPrior(0.05, 0.2, True)], ids=["flat", "proper"])
@pytest.mark.parametrize("inverse", [False, True], ids=["higher-better", "lower-better"])
@pytest.mark.parametrize("name,control,treatment", CASES, ids=[c[0] for c in CASES])
def test_bayesian_equals_the_oracle(oracle, name, control, treatment, relative, prior, inverse):
    settings = {"engine": "bayesian", "difference_type": "relative" if relative else "absolute"}
    if prior is not None:
        settings["metric_priors"] = {"m": prior}
    mine = ours(control, treatment, "goal", inverse, **settings)
    gb_result = theirs(oracle, control, treatment, "bayesian", relative, inverse=inverse, prior=prior)
    assert gb_result.errorMessage is None, gb_result.errorMessage
    estimate = mine["relative_effect" if relative else "absolute_effect"]
    assert close(estimate, gb_result.expected)
    assert close(mine["ci_lower"], gb_result.ci[0]) and close(mine["ci_upper"], gb_result.ci[1])
    assert close(mine["chance_to_win"], gb_result.chanceToWin)
    assert math.isclose(mine["risk_control"], gb_result.risk[0], rel_tol=REL, abs_tol=1e-10)
    assert math.isclose(mine["risk_treatment"], gb_result.risk[1], rel_tol=REL, abs_tol=1e-10)


def test_a_rising_negative_mean_is_an_improvement(oracle):
    """The issue's case: control −2.0, treatment −1.5, 20,000 units per arm: +25%, better."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(-2.0, 2.5, 20_000), rng.normal(-1.5, 2.5, 20_000)
    a, b = a - a.mean() - 2.0, b - b.mean() - 1.5
    control, treatment = mean_row(a, None, "mean"), mean_row(b, None, "mean")
    mine = ours(control, treatment)
    assert mine["relative_effect"] == pytest.approx(0.25, rel=1e-12)
    assert mine["significance"] == "better"
    assert_frequentist(mine, theirs(oracle, control, treatment, "two-sided"), True)
    bayes = ours(control, treatment, engine="bayesian")
    assert bayes["chance_to_win"] > 0.999


def test_too_few_events_for_a_quantile_is_a_note_not_an_interval(oracle):
    rng = np.random.default_rng(5)
    control, treatment = quantile_row(rng, 3, 0.0, 0.99, True), quantile_row(rng, 3, 0.0, 0.99, True)
    mine = ours(control, treatment)
    assert "too few values" in mine["note"]
    assert math.isnan(mine["ci_lower"]) and math.isnan(mine["p_value"])
    assert theirs(oracle, control, treatment, "two-sided").errorMessage == "ZERO_NEGATIVE_VARIANCE"


def strata_table(rng: np.random.Generator, kind: str, lift: float) -> tuple[pd.DataFrame, list]:
    """Overall and ``__strata__`` rows of one metric over 4 strata of unequal size and mean."""
    frames, pairs = [], []
    totals = {"0": [], "1": []}
    for stratum, (size, mean) in enumerate(((900, 4.0), (400, -1.0), (250, 9.0), (120, 2.0))):
        pair = []
        for variation, shift in (("0", 0.0), ("1", lift)):
            n = size + int(rng.integers(-30, 30))
            y, x = unit_data(rng, n, mean, 3.0, shift, binomial=kind.startswith("binomial"))
            if kind.startswith("ratio"):
                d, d0 = rng.poisson(2, n) + 1.0, rng.poisson(2, n) + 1.0
                row = ratio_row(y * d, d, *((x * d0, d0) if "cuped" in kind else (None, None)))
            else:
                row = mean_row(y, x if "cuped" in kind else None, "binomial" if kind.startswith("binomial") else "mean")
            pair.append(row)
            totals[variation].append(row)
            frames.append(
                {
                    "metric": "m",
                    "dimension": "__strata__",
                    "dimension_value": f"s{stratum}",
                    "variation": variation,
                    **row,
                }
            )
        pairs.append(tuple(pair))
    for variation, rows in totals.items():
        summed = {k: sum(r[k] for r in rows) for k in rows[0] if k != "metric_type"}
        frames.append({"metric": "m", "dimension": "overall", "dimension_value": "all", "variation": variation,
                       "metric_type": rows[0]["metric_type"], **summed})  # fmt: skip
    return pd.DataFrame(frames), pairs


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
@pytest.mark.parametrize("kind", ["mean", "mean cuped", "binomial", "binomial cuped", "ratio", "ratio cuped"])
def test_post_stratification_end_to_end_equals_the_oracle(oracle, kind, relative, engine):
    """``analysis: {post_stratification: [...]}``: the overall result from the strata rows equals
    GrowthBook's test with ``post_stratify=True`` over the same strata."""
    table, pairs = strata_table(np.random.default_rng(11), kind, 0.1)
    settings = AnalysisSettings(
        post_stratification=("country",), engine=engine, difference_type="relative" if relative else "absolute"
    )
    mine = experiment_results(table, settings).to_pandas()
    assert list(mine["dimension"].unique()) == ["overall"]  # strata rows are input, not a slice
    mine = mine.iloc[0].to_dict()
    assert mine["post_stratified"], mine["note"]
    stats = [(oracle_statistic(oracle, c), oracle_statistic(oracle, t)) for c, t in pairs]
    difference_type = "relative" if relative else "absolute"
    if engine == "bayesian":
        from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig

        gb_result = EffectBayesianABTest(
            stats, EffectBayesianConfig(difference_type=difference_type, post_stratify=True)
        ).compute_result()
        assert close(mine["chance_to_win"], gb_result.chanceToWin)
    else:
        from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest

        gb_result = TwoSidedTTest(
            stats, FrequentistConfig(difference_type=difference_type, post_stratify=True)
        ).compute_result()
        assert close(mine["p_value"], gb_result.pValue)
    assert gb_result.errorMessage is None
    assert close(mine["relative_effect" if relative else "absolute_effect"], gb_result.expected)
    assert close(mine["ci_lower"], gb_result.ci[0]) and close(mine["ci_upper"], gb_result.ci[1])
    unstratified = experiment_results(table, settings.with_overrides(post_stratification=())).to_pandas().iloc[0]
    assert not unstratified["post_stratified"] and unstratified["ci_upper"] != mine["ci_upper"]


@pytest.mark.parametrize("engine", ["frequentist", "bayesian"])
@pytest.mark.parametrize(
    "name,control,treatment",
    [c for c in CASES if c[0].startswith(("mean", "cuped", "binomial"))][:6],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_results_carry_growthbooks_mid_experiment_power(oracle, name, control, treatment, engine):
    """Overall goal-metric rows carry the power to detect ``target_mde`` at the current sample and
    the units still needed, equal to GrowthBook's ``MidExperimentPower`` on its own test."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
    from gbstats.models.tests import BaseConfig
    from gbstats.power.midexperimentpower import MidExperimentPower, MidExperimentPowerConfig

    mine = ours(control, treatment, engine=engine, target_mde=0.05)
    stats = [(oracle_statistic(oracle, control), oracle_statistic(oracle, treatment))]
    if engine == "bayesian":
        test = EffectBayesianABTest(stats, EffectBayesianConfig())
    else:
        test = TwoSidedTTest(stats, FrequentistConfig())
    result = test.compute_result()
    config = MidExperimentPowerConfig(
        target_mde=0.05, num_goal_metrics=1, num_variations=2, prior_effect=None, p_value_corrected=False
    )
    gb = MidExperimentPower(test.moments_result, result, BaseConfig(), config)
    assert close(mine["power"], gb.power(0))
    needed = gb.calculate_sample_size()
    assert close(mine["power_additional_units"], needed.additional_users if needed.scaling_factor else 0.0)
