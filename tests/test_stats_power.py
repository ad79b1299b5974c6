"""Power: GrowthBook's mid-experiment power against its engine (the ``oracle`` fixture, 1e-6
relative) over frequentist, sequential, corrected and Bayesian cases; planning with CUPED,
sequential testing and ratio metrics against statsmodels' ``NormalIndPower``, closed forms,
the oracle's sequential half-width and simulation; the planning baselines with CUPED pre-periods,
windows, capping and ratios from the database (DuckDB and PostgreSQL) against pandas; and the
``workbench power`` command on a DuckDB file made here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower

import workbench as wb
from workbench.errors import ConfigError
from workbench.stats.bayesian import GaussianPrior
from workbench.stats.midexperiment_power import mid_experiment_power, relative_standard_error
from workbench.stats.moments import ArmMoments, proportion_moments, ratio_moments, sample_mean_moments
from workbench.stats.power import (
    binomial_mde,
    binomial_sample_size,
    cuped_unit_variance,
    mean_mde,
    mean_sample_size,
    plan_mde,
    plan_sample_size,
    ratio_unit_variance,
    rejection_probability,
)
from workbench.stats.sequential import sequential_halfwidth

REL = 1e-6
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def close(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-12)


# ---- mid-experiment power against GrowthBook's engine ---------------------------------------------


def arms(kind: str, rng: np.random.Generator, n: int, lift: float) -> tuple[ArmMoments, ArmMoments, tuple]:
    """Our two arms and the oracle's statistics from the same simulated sums."""
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    if kind == "binomial":
        a, b = rng.random(n) < 0.10, rng.random(n + 37) < 0.10 * (1 + lift)
        ours = proportion_moments(len(a), a.sum()), proportion_moments(len(b), b.sum())
        theirs = ProportionStatistic(n=len(a), sum=float(a.sum())), ProportionStatistic(n=len(b), sum=float(b.sum()))
        return *ours, theirs
    a, b = rng.gamma(2.0, 5.0, n), rng.gamma(2.0, 5.0 * (1 + lift), n - 11)
    ours = (
        sample_mean_moments(len(a), a.sum(), (a**2).sum()),
        sample_mean_moments(len(b), b.sum(), (b**2).sum()),
    )
    theirs = tuple(SampleMeanStatistic(n=len(x), sum=float(x.sum()), sum_squares=float((x**2).sum())) for x in (a, b))
    return *ours, theirs


def oracle_power(stats, *, engine, sequential, tuning, corrected, goal, variations, mde, prior, alpha):
    """GrowthBook's runner (``run_mid_experiment_power``) on its own test of ``stats``, and the
    power at the current sample from its ``MidExperimentPower``."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.bayesian.tests import GaussianPrior as GbPrior
    from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
    from gbstats.gbstats import run_mid_experiment_power
    from gbstats.models.settings import AnalysisSettingsForStatsEngine, MetricSettingsForStatsEngine
    from gbstats.models.tests import BaseConfig
    from gbstats.power.midexperimentpower import MidExperimentPower, MidExperimentPowerConfig

    mean, sd, proper = prior if prior else (0.0, 0.1, False)
    if engine == "bayesian":
        gb_prior = GbPrior(mean=mean, variance=sd**2, proper=proper)
        test = EffectBayesianABTest([stats], EffectBayesianConfig(alpha=alpha, prior_effect=gb_prior))
    elif sequential:
        test = SequentialTwoSidedTTest([stats], SequentialConfig(alpha=alpha, sequential_tuning_parameter=tuning))
    else:
        test = TwoSidedTTest([stats], FrequentistConfig(alpha=alpha))
    result = test.compute_result()
    ids = [str(i) for i in range(variations)]
    analysis = AnalysisSettingsForStatsEngine(
        var_names=ids, var_ids=ids, weights=[1 / variations] * variations, stats_engine=engine,
        p_value_corrected=corrected, sequential_testing_enabled=sequential, sequential_tuning_parameter=tuning,
        alpha=alpha, num_goal_metrics=goal,
    )  # fmt: skip
    metric = MetricSettingsForStatsEngine(
        id="m", name="m", statistic_type="mean", main_metric_type="count", prior_proper=proper, prior_mean=mean,
        prior_stddev=sd, business_metric_type=["goal"], target_mde=mde,
    )  # fmt: skip
    response = run_mid_experiment_power(test.n, variations, test.moments_result, result, metric, analysis)
    power_config = MidExperimentPowerConfig(
        target_mde=mde, num_goal_metrics=goal, num_variations=variations,
        prior_effect=GbPrior(mean=mean, variance=sd**2, proper=proper) if engine == "bayesian" else None,
        p_value_corrected=corrected and engine != "bayesian", sequential=sequential, sequential_tuning_parameter=tuning,
    )  # fmt: skip
    gb = MidExperimentPower(test.moments_result, result, BaseConfig(alpha=alpha), power_config)
    return response, gb.power(0) if result.errorMessage is None else None


CASES = [
    # kind, n, lift, engine, sequential, tuning, corrected, goal metrics, variations, target mde, prior, alpha
    ("binomial", 3000, 0.05, "frequentist", False, 5000, False, 1, 2, 0.01, None, 0.05),
    ("binomial", 3000, 0.05, "frequentist", False, 5000, False, 1, 2, 0.10, None, 0.05),
    ("binomial", 20000, 0.02, "frequentist", False, 5000, True, 3, 3, 0.05, None, 0.05),
    ("binomial", 20000, 0.02, "frequentist", False, 5000, True, 2, 4, -0.04, None, 0.10),
    ("mean", 5000, 0.03, "frequentist", False, 5000, False, 1, 2, 0.05, None, 0.05),
    ("mean", 5000, 0.03, "frequentist", False, 5000, False, 4, 2, 0.01, None, 0.01),
    ("mean", 40000, 0.0, "frequentist", False, 5000, False, 1, 2, 0.05, None, 0.05),  # already powered
    ("mean", 5000, 0.03, "frequentist", True, 5000, False, 1, 2, 0.05, None, 0.05),
    ("mean", 5000, 0.03, "frequentist", True, 1000, True, 2, 3, 0.02, None, 0.05),
    ("binomial", 8000, 0.03, "frequentist", True, 20000, False, 3, 2, 0.08, None, 0.05),
    ("mean", 60000, 0.0, "frequentist", True, 5000, True, 1, 2, 0.05, None, 0.05),  # sequential, already powered
    ("mean", 5000, 0.03, "bayesian", False, 5000, False, 1, 2, 0.05, (0.0, 0.1, True), 0.05),
    ("mean", 5000, 0.03, "bayesian", False, 5000, False, 3, 3, 0.02, (0.02, 0.05, True), 0.05),
    ("binomial", 3000, 0.05, "bayesian", False, 5000, False, 2, 2, 0.10, (-0.01, 0.3, True), 0.10),
    ("binomial", 3000, 0.05, "bayesian", False, 5000, False, 1, 2, 0.10, (0.0, 0.1, False), 0.05),  # flat prior
    ("binomial", 3000, 0.05, "bayesian", True, 5000, False, 1, 2, 0.10, (0.0, 0.1, False), 0.05),  # flat, sequential
    ("mean", 200, 0.0, "frequentist", False, 5000, False, 1, 2, 1e-6, None, 0.05),  # 2**27 times is not enough
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_mid_experiment_power_matches_growthbook(oracle, case):
    kind, n, lift, engine, sequential, tuning, corrected, goal, variations, mde, prior, alpha = case
    control, treatment, stats = arms(kind, np.random.default_rng(n + len(CASES)), n, lift)
    response, power_now = oracle_power(
        stats, engine=engine, sequential=sequential, tuning=tuning, corrected=corrected, goal=goal,
        variations=variations, mde=mde, prior=prior, alpha=alpha,
    )  # fmt: skip
    ours = mid_experiment_power(
        control, treatment, target_mde=mde, alpha=alpha, goal_metrics=goal, variations=variations,
        corrected=corrected and engine != "bayesian", sequential=sequential, sequential_tuning=tuning,
        prior=GaussianPrior(prior[0], prior[1], prior[2]) if prior else None,
    )  # fmt: skip
    assert ours.status == response.status and ours.upper_bound_achieved == response.upperBoundAchieved
    assert close(ours.scaling_factor, response.scalingFactor), (ours.scaling_factor, response.scalingFactor)
    assert close(ours.power, power_now) and close(ours.standard_error**2, response.sigmahat2Delta)
    assert ours.units == response.firstPeriodPairwiseSampleSize == control.n + treatment.n
    if ours.scaling_factor is None:
        assert ours.error == response.errorMessage == "could not find upper bound for scaling factor"
        assert ours.additional_units is None
    else:
        assert ours.error is None and response.errorMessage is None
        assert close(ours.additional_units, response.scalingFactor * response.firstPeriodPairwiseSampleSize)
        assert ours.already_powered == (response.scalingFactor == 0)
        assert ours.metric_target_power == pytest.approx(0.8 ** (1 / goal), rel=1e-15)
        if ours.scaling_factor > 0:  # GrowthBook's stopping rule: within 1e-5 of the per-metric target
            again = mid_experiment_power(
                standard_error=ours.standard_error * math.sqrt(1 / (1 + ours.scaling_factor)),
                units=ours.units, target_mde=mde, alpha=alpha, goal_metrics=goal, variations=variations,
                corrected=corrected and engine != "bayesian",
                prior=GaussianPrior(prior[0], prior[1], prior[2]) if prior else None,
            )  # fmt: skip
            if not sequential:  # the sequential interval depends on the units, not just the variance
                assert again.power == pytest.approx(ours.metric_target_power, abs=1e-5)


def test_mid_experiment_power_from_an_estimate_matches_growthbook(oracle):
    """The standard-error entry point (e.g. a CUPED result) against ``MidExperimentPower`` directly."""
    from gbstats.bayesian.tests import GaussianPrior as GbPrior
    from gbstats.models.results import EffectMomentsResult, TestResult, Uplift
    from gbstats.models.tests import BaseConfig
    from gbstats.power.midexperimentpower import MidExperimentPower, MidExperimentPowerConfig

    fine = TestResult(expected=0.0, ci=(0, 0), uplift=Uplift(dist="normal", mean=0, stddev=0), errorMessage=None)
    for se, units, mde, sequential, corrected, goal, variations, prior in [
        (0.02, 4000, 0.01, False, False, 1, 2, None),
        (0.01, 20000, 0.01, True, True, 3, 3, None),
        (0.03, 1000, 0.02, False, False, 2, 2, (0.0, 0.1)),
        (0.03, 1000, 0.02, False, True, 2, 5, (0.05, 0.02)),  # the class applies the correction to priors too
        (0.5, 10, 0.001, False, False, 1, 2, None),
        (0.004, 900000, 0.01, True, False, 1, 2, None),
    ]:
        moments = EffectMomentsResult(point_estimate=0.0, standard_error=se, pairwise_sample_size=units,
                                      error_message=None, post_stratification_applied=False)  # fmt: skip
        config = MidExperimentPowerConfig(
            target_mde=mde, num_goal_metrics=goal, num_variations=variations, p_value_corrected=corrected,
            sequential=sequential, prior_effect=GbPrior(prior[0], prior[1] ** 2, True) if prior else None,
        )  # fmt: skip
        gb = MidExperimentPower(moments, fine, BaseConfig(), config)
        theirs = gb.calculate_sample_size()
        ours = mid_experiment_power(
            standard_error=se, units=units, target_mde=mde, goal_metrics=goal, variations=variations,
            corrected=corrected, sequential=sequential, prior=GaussianPrior(prior[0], prior[1], True) if prior else None,
        )  # fmt: skip
        assert close(ours.power, gb.power(0)) and close(ours.scaling_factor, theirs.scaling_factor)
        assert ours.status == theirs.update_message and ours.upper_bound_achieved == theirs.upper_bound_achieved
        assert close(ours.additional_units, theirs.additional_users if ours.scaling_factor else 0.0)


def test_mid_experiment_power_reports_what_cannot_be_computed(oracle):
    from gbstats.models.statistics import SampleMeanStatistic

    flat = ArmMoments(100, 5.0, 0.0, 5.0)
    ours = mid_experiment_power(flat, ArmMoments(100, 5.5, 4.0, 5.5))
    same = SampleMeanStatistic(n=100, sum=500.0, sum_squares=2500.0)
    other = SampleMeanStatistic(n=100, sum=550.0, sum_squares=550.0**2 / 100 + 4.0 * 99)
    response, _ = oracle_power((same, other), engine="frequentist", sequential=False, tuning=5000, corrected=False,
                               goal=1, variations=2, mde=0.01, prior=None, alpha=0.05)  # fmt: skip
    assert ours.status == response.status == "unsuccessful" and response.errorMessage
    assert ours.scaling_factor is None is response.scalingFactor and ours.power is None and "variance" in ours.error
    zero = mid_experiment_power(ArmMoments(100, 0.0, 1.0, 0.0), ArmMoments(100, 0.5, 1.0, 0.5))
    assert zero.status == "unsuccessful" and "control mean is 0" in zero.error
    assert ours.additional_days(10) is None
    good = mid_experiment_power(ArmMoments(5000, 10, 16, 10), ArmMoments(5000, 10.1, 16, 10.1), target_mde=0.02)
    assert good.additional_days(14) == pytest.approx(good.scaling_factor * 14)
    assert relative_standard_error(ArmMoments(5000, 10, 16, 10), ArmMoments(5000, 10.1, 16, 10.1)) == pytest.approx(
        math.sqrt(16 / (100 * 5000) + 10.1**2 * 16 / (10**4 * 5000)), rel=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_mde": 0}, "target_mde must be a non-zero"),
        ({"target_power": 1.0}, "target_power must be between 0 and 1"),
        ({"alpha": 0}, "alpha must be between 0 and 1"),
        ({"goal_metrics": 0}, "goal_metrics must be a positive integer"),
        ({"variations": 1}, "variations must be an integer of at least 2"),
        ({"sequential_tuning": -5}, "sequential_tuning must be a positive"),
        ({"units": 2.5}, "units must be the integer number"),
        ({"standard_error": -1.0}, "standard_error must be a positive number"),
    ],
)
def test_mid_experiment_power_refuses_bad_settings_in_one_sentence(kwargs, message):
    inputs = {"standard_error": 0.02, "units": 1000} | kwargs
    with pytest.raises(ValueError, match=message) as info:
        mid_experiment_power(**inputs)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
    with pytest.raises(ValueError, match="either control and treatment"):
        mid_experiment_power(ArmMoments(10, 1, 1, 1), standard_error=0.1, units=10)


# ---- planning: CUPED, sequential, ratio ----------------------------------------------------------


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.7, -0.5])
def test_cuped_plan_is_statsmodels_with_the_reduced_variance(rho):
    # mean 10, sd 4, +5%: standardized effect 0.5/(4·sqrt(1-ρ²))
    effect = 0.5 / (4 * math.sqrt(1 - rho**2))
    ref = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8)
    assert mean_sample_size(10, 4, 0.05, cuped_correlation=rho) == math.ceil(ref)
    ref3 = NormalIndPower().solve_power(effect_size=effect, alpha=0.025, power=0.9)
    assert mean_sample_size(10, 4, 0.05, arms=3, power=0.9, cuped_correlation=rho) == math.ceil(ref3)
    p0, p1 = 0.10, 0.11
    b_effect = (p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) * (1 - rho**2) / 2)
    ref_b = NormalIndPower().solve_power(effect_size=b_effect, alpha=0.05, power=0.8)
    assert binomial_sample_size(0.10, 0.10, cuped_correlation=rho) == math.ceil(ref_b)
    mde = mean_mde(10, 4, 2000, cuped_correlation=rho)
    assert NormalIndPower().power(effect_size=mde * 10 / (4 * math.sqrt(1 - rho**2)), nobs1=2000, alpha=0.05) == (
        pytest.approx(0.8, abs=1e-9)
    )
    plan = plan_sample_size(10, 16, 0.05, cuped_correlation=rho)
    assert plan.variance_reduction == pytest.approx(rho**2) and plan.unit_variance == pytest.approx(16 * (1 - rho**2))


def test_cuped_reduction_matches_simulation():
    """The variance of CUPED's adjusted difference (θ from the pooled OLS slope) over 2,000
    simulated experiments is (1 - ρ²) of the unadjusted one's."""
    rng = np.random.default_rng(7)
    rho, n, sims = 0.6, 500, 2000
    x = rng.normal(0, 1, (sims, 2, n))
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(0, 1, (sims, 2, n))
    xc, yc = x - x.mean(axis=(1, 2), keepdims=True), y - y.mean(axis=(1, 2), keepdims=True)
    theta = (xc * yc).sum(axis=(1, 2)) / (xc**2).sum(axis=(1, 2))
    adjusted = y - theta[:, None, None] * x
    raw_diff = y[:, 1].mean(axis=1) - y[:, 0].mean(axis=1)
    adj_diff = adjusted[:, 1].mean(axis=1) - adjusted[:, 0].mean(axis=1)
    ratio = adj_diff.var() / raw_diff.var()
    se_ratio = math.sqrt(2 / sims) * math.sqrt(2)  # two sample variances of 2,000 draws each
    assert ratio == pytest.approx(cuped_unit_variance(1.0, rho), abs=3 * se_ratio * (1 - rho**2))
    with pytest.raises(ValueError, match="strictly between -1 and 1"):
        cuped_unit_variance(1.0, 1.0)


def test_sequential_plan_uses_growthbooks_interval(oracle):
    """At the planned sample the always-valid interval (GrowthBook's half-width) excludes 0 with
    the requested power, one unit fewer it does not, and the MDE at that sample gives it back."""
    from gbstats.frequentist.tests import sequential_interval_halfwidth
    from scipy.stats import norm

    for mean, sd, mde, arms_, tuning, power in [(10, 4, 0.05, 2, 5000, 0.8), (3, 6, 0.02, 3, 1000, 0.9),
                                                 (1, 1, 0.1, 2, 100000, 0.8)]:  # fmt: skip
        plan = plan_sample_size(mean, sd**2, mde, arms=arms_, power=power, sequential=True, sequential_tuning=tuning)
        alpha = 0.05 / (arms_ - 1)

        def power_at(n, mean=mean, sd=sd, mde=mde, tuning=tuning, alpha=alpha):
            se = math.sqrt(2 * sd**2 / n)
            half = sequential_interval_halfwidth(2 * n * se**2, 2 * n, tuning, alpha)
            return norm.cdf((mean * mde - half) / se) + norm.cdf((-mean * mde - half) / se)

        assert power_at(plan.units_per_arm) >= power > power_at(plan.units_per_arm - 1)
        assert plan.units_per_arm > plan.fixed_horizon_units_per_arm == mean_sample_size(mean, sd, mde, arms=arms_,
                                                                                            power=power)  # fmt: skip
        back = plan_mde(mean, sd**2, plan.units_per_arm, arms=arms_, power=power, sequential=True,
                        sequential_tuning=tuning)  # fmt: skip
        assert mde * 0.999 < back <= mde
        se = math.sqrt(2 * sd**2 / 1000)
        assert sequential_halfwidth(se, 2000, alpha, tuning) == pytest.approx(
            sequential_interval_halfwidth(2000 * se**2, 2000, tuning, alpha), rel=1e-12
        )


def test_sequential_plan_matches_simulation():
    """2,000 simulated experiments at the planned sample: the share whose always-valid interval
    (sample variances, Welch standard error) excludes 0 is the planned power."""
    rng = np.random.default_rng(11)
    mean, sd, mde = 10.0, 4.0, 0.04
    n = plan_sample_size(mean, sd**2, mde, sequential=True).units_per_arm
    sims = 2000
    hits = 0
    for _ in range(sims // 100):
        a = rng.normal(mean, sd, (100, n))
        b = rng.normal(mean * (1 + mde), sd, (100, n))
        se = np.sqrt(a.var(axis=1, ddof=1) / n + b.var(axis=1, ddof=1) / n)
        half = np.array([sequential_halfwidth(s, 2 * n, 0.05) for s in se])
        hits += int((np.abs(b.mean(axis=1) - a.mean(axis=1)) > half).sum())
    assert hits / sims == pytest.approx(0.8, abs=3 * math.sqrt(0.8 * 0.2 / sims))


def test_ratio_variance_is_growthbooks_delta_method_and_matches_simulation(oracle):
    from gbstats.models.statistics import RatioStatistic, SampleMeanStatistic

    rng = np.random.default_rng(3)
    n = 4000
    d = rng.poisson(3.0, n) + 1.0
    m = d * rng.gamma(2.0, 10.0, n) * (1 + 0.2 * rng.random(n))
    cov = np.cov(m, d, ddof=1)[0, 1]
    ours = ratio_unit_variance(m.mean(), m.var(ddof=1), d.mean(), d.var(ddof=1), cov)
    stat = RatioStatistic(
        n=n, m_statistic=SampleMeanStatistic(n=n, sum=m.sum(), sum_squares=(m**2).sum()),
        d_statistic=SampleMeanStatistic(n=n, sum=d.sum(), sum_squares=(d**2).sum()), m_d_sum_of_products=(m * d).sum(),
    )  # fmt: skip
    assert ours == pytest.approx(stat.variance, rel=1e-9)
    assert ours == pytest.approx(
        ratio_moments(n, m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum()).variance, rel=1e-9
    )
    # simulation: n·var(Σm/Σd) over 2,000 samples of 1,000 units
    ratios = []
    for _ in range(2000):
        dd = rng.poisson(3.0, 1000) + 1.0
        mm = dd * rng.gamma(2.0, 10.0, 1000) * (1 + 0.2 * rng.random(1000))
        ratios.append(mm.sum() / dd.sum())
    assert 1000 * np.var(ratios, ddof=1) == pytest.approx(ours, rel=4 * math.sqrt(2 / 2000))
    # a ratio plans as a mean with that variance
    plan = plan_sample_size(m.sum() / d.sum(), ours, 0.03)
    effect = 0.03 * m.sum() / d.sum() / math.sqrt(ours)
    assert plan.units_per_arm == math.ceil(NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8))
    with pytest.raises(ValueError, match="denominator's mean is 0"):
        ratio_unit_variance(1.0, 1.0, 0.0, 1.0, 0.0)


def test_rejection_probability_is_the_two_sided_normal_power():
    from scipy.stats import norm

    # with nobs1 = 2 statsmodels' standardized difference has standard error 1: effect 0.5/0.2
    ref = NormalIndPower().power(effect_size=0.5 / 0.2, nobs1=2, alpha=2 * norm.sf(1.96))
    assert rejection_probability(0.5, 0.2, 1.96 * 0.2) == pytest.approx(ref, rel=1e-12)
    assert rejection_probability(-0.5, 0.2, 1.96 * 0.2) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: plan_sample_size(10, -1, 0.05), "baseline variance must be positive"),
        (lambda: plan_sample_size(10, 4, 0.0), "relative_mde must be a non-zero"),
        (lambda: plan_sample_size(10, 4, 0.05, power=1.2), "power must be between 0 and 1"),
        (lambda: plan_sample_size(10, 4, 0.05, arms=1), "arms must be an integer of at least 2"),
        (lambda: plan_sample_size(10, 4, 0.05, sequential=True, sequential_tuning=0), "tuning parameter must be"),
        (lambda: plan_sample_size(0.5, None, 1.5, binomial=True), "outside \\(0, 1\\)"),
        (lambda: binomial_sample_size(1.2, 0.1), "baseline rate must be between 0 and 1"),
        (lambda: plan_sample_size(10, 4, 0.05, cuped_correlation=1.0), "strictly between -1 and 1"),
        (lambda: binomial_mde(0.5, 10, power=0.99), "cannot reach power"),
        (lambda: plan_mde(10, 4, 1), "units_per_arm must be at least 2"),
    ],
)
def test_planning_refuses_bad_input_in_one_sentence(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


# ---- baselines from the database ----------------------------------------------------------------

CONFIG = """
identifier_types: [user_id]
assignment_queries:
  - name: users
    identifier_type: user_id
    sql: SELECT user_id, ts AS timestamp, experiment_id, variation_id FROM views
metrics:
  - name: purchased
    type: binomial
    sql: SELECT user_id, ts AS timestamp FROM orders
    cuped: {lookback_days: 7}
  - name: revenue
    type: mean
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
    cuped: {lookback_days: 14}
  - name: revenue_capped
    type: mean
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
    capping: {type: absolute, value: 40}
    cuped: {lookback_days: 14}
  - name: revenue_p90
    type: mean
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
    capping: {type: percentile, value: 0.9}
  - name: orders
    type: count
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
  - name: quick_orders
    type: count
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
    window: {delay_hours: 2, hours: 72}
  - name: average_order_value
    type: ratio
    numerator: revenue
    denominator: orders
  - name: amount_p90
    type: quantile
    quantile: 0.9
    sql: SELECT user_id, ts AS timestamp, amount AS value FROM orders
"""
START, END = pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-14 23:59:59.999999")


def tables(seed: int = 5) -> dict[str, pd.DataFrame]:
    """Views from 2026-09-20 to 10-20 and orders from 09-01 to 10-20, with a propensity per user so
    that a unit's pre-period and analysis period correlate."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(600)]
    propensity = rng.gamma(1.5, 1.0, len(users))
    span = (pd.Timestamp("2026-10-20") - pd.Timestamp("2026-09-20")).total_seconds()
    views = []
    for u in users:
        for _ in range(rng.integers(1, 4)):
            views.append((u, pd.Timestamp("2026-09-20") + pd.Timedelta(seconds=int(rng.random() * span)), "e", "0"))
    orders = []
    order_span = (pd.Timestamp("2026-10-20") - pd.Timestamp("2026-09-01")).total_seconds()
    for u, p in zip(users, propensity):
        for _ in range(rng.poisson(4 * p)):
            amount = None if rng.random() < 0.1 else float(np.round(rng.gamma(2.0, 10.0 * p), 2))
            orders.append(
                (u, pd.Timestamp("2026-09-01") + pd.Timedelta(seconds=int(rng.random() * order_span)), amount)
            )
    return {
        "views": pd.DataFrame(views, columns=["user_id", "ts", "experiment_id", "variation_id"]),
        "orders": pd.DataFrame(orders, columns=["user_id", "ts", "amount"]),
    }


def unit_values(data, first, *, value=None, low_hours=0.0, high_hours=None, pre_days=None, kind="sum"):
    """Per-unit values in pandas: rows from first seen + low_hours (to + high_hours) up to END, or
    the pre-period [first - pre_days, first) when given."""
    rows = data["orders"].merge(first, left_on="user_id", right_index=True)
    if pre_days is not None:
        keep = (rows["ts"] >= rows["first"] - pd.Timedelta(days=pre_days)) & (rows["ts"] < rows["first"])
    else:
        keep = (rows["ts"] >= rows["first"] + pd.Timedelta(hours=low_hours)) & (rows["ts"] <= END)
        if high_hours is not None:
            keep &= rows["ts"] <= rows["first"] + pd.Timedelta(hours=low_hours + high_hours)
    rows = rows[keep]
    if kind == "binary":
        return pd.Series(first.index.isin(set(rows["user_id"])).astype(float), index=first.index)
    if kind == "rows":
        return rows.groupby("user_id").size().reindex(first.index).fillna(0).astype(float)
    return rows.groupby("user_id")[value].sum().reindex(first.index).fillna(0.0)


@pytest.fixture(scope="module")
def planning_db(backend, tmp_path_factory):
    """The two tables on ``backend``, the config file, and the pandas reference data."""
    from workbench.experiments.config import load_config

    data = tables()
    url = backend.new_url(f"planning_{backend.name}")
    import sqlalchemy as sa

    columns = {"views": "user_id VARCHAR(20), ts TIMESTAMP, experiment_id VARCHAR(20), variation_id VARCHAR(20)",
               "orders": "user_id VARCHAR(20), ts TIMESTAMP, amount DOUBLE PRECISION"}  # fmt: skip
    db = wb.connect(url, read_only=False)
    with db.transaction() as conn:
        for name, frame in data.items():
            conn.execute(sa.text(f"CREATE TABLE {name} ({columns[name]})"))
            records = [
                {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else None if v is None or v != v else v)
                 for k, v in row.items()}
                for row in frame.astype(object).to_dict("records")
            ]  # fmt: skip
            conn.execute(sa.text(f"INSERT INTO {name} VALUES ({', '.join(':' + c for c in frame.columns)})"), records)
    db.dispose()
    path = tmp_path_factory.mktemp("planning") / "workbench.yml"
    path.write_text(CONFIG, encoding="utf-8")
    views = data["views"]
    window = views[(views["ts"] >= START) & (views["ts"] <= END)]
    first = window.groupby("user_id")["ts"].min().rename("first")
    return url, path, load_config(path), data, first


def test_baselines_with_pre_period_window_capping_and_ratio_match_pandas(planning_db):
    from workbench.experiments.baselines import metric_baseline

    url, _, config, data, first = planning_db
    db = wb.connect(url)
    try:
        purchased = unit_values(data, first, kind="binary")
        purchased_pre = unit_values(data, first, pre_days=7, kind="binary")
        revenue = unit_values(data, first, value="amount")
        revenue_pre = unit_values(data, first, value="amount", pre_days=14)
        orders = unit_values(data, first, kind="rows")
        cap90 = revenue.sort_values().iloc[math.ceil(len(revenue) * 0.9) - 1]
        expected = {
            "purchased": (purchased, purchased_pre),
            "revenue": (revenue, revenue_pre),
            "revenue_capped": (revenue.clip(upper=40), revenue_pre.clip(upper=40)),
            "revenue_p90": (revenue.clip(upper=cap90), None),
            "orders": (orders, None),
            "quick_orders": (unit_values(data, first, low_hours=2, high_hours=72, kind="rows"), None),
        }
        for name, (y, x) in expected.items():
            b = metric_baseline(name, db, "2026-10-01", "2026-10-14", config=config)
            assert b.units == len(first) and b.mean == pytest.approx(y.mean(), rel=1e-12), name
            assert b.variance == pytest.approx(y.var(ddof=1), rel=1e-9), name
            if x is None:
                assert b.cuped_correlation is None and b.pre_period_days is None
            else:
                assert b.covariate_mean == pytest.approx(x.mean(), rel=1e-12)
                assert b.cuped_correlation == pytest.approx(np.corrcoef(y, x)[0, 1], rel=1e-9), name
        assert metric_baseline("revenue", db, "2026-10-01", "2026-10-14", config=config).cuped_correlation > 0.2
        # an explicit pre-period, and 0 for none
        b = metric_baseline("orders", db, "2026-10-01", "2026-10-14", config=config, pre_period_days=3.5)
        x = unit_values(data, first, pre_days=3.5, kind="rows")
        assert b.pre_period_days == 3.5 and b.cuped_correlation == pytest.approx(np.corrcoef(orders, x)[0, 1], rel=1e-9)
        assert (
            metric_baseline("revenue", db, "2026-10-01", "2026-10-14", config=config, pre_period_days=0).covariance
            is None
        )
        # the ratio: Σm/Σd and the delta-method variance of the per-unit parts
        aov = metric_baseline("average_order_value", db, "2026-10-01", "2026-10-14", config=config)
        assert aov.mean == pytest.approx(revenue.sum() / orders.sum(), rel=1e-12)
        assert aov.numerator_variance == pytest.approx(revenue.var(ddof=1), rel=1e-9)
        assert aov.denominator_mean == pytest.approx(orders.mean(), rel=1e-12)
        assert aov.numerator_denominator_covariance == pytest.approx(np.cov(revenue, orders)[0, 1], rel=1e-9)
        reference = ratio_moments(len(first), revenue.sum(), (revenue**2).sum(), orders.sum(), (orders**2).sum(),
                                  (revenue * orders).sum())  # fmt: skip
        assert aov.variance == pytest.approx(reference.variance, rel=1e-9)
        with pytest.raises(ConfigError, match="quantile metric; a baseline needs one of"):
            metric_baseline("amount_p90", db, "2026-10-01", "2026-10-14", config=config)
        with pytest.raises(ConfigError, match="is a ratio; a pre-period correlation"):
            metric_baseline("average_order_value", db, "2026-10-01", "2026-10-14", config=config, pre_period_days=7)
        with pytest.raises(ValueError, match="pre_period_days must be a non-negative"):
            metric_baseline("orders", db, "2026-10-01", "2026-10-14", config=config, pre_period_days=-1)
    finally:
        db.dispose()


# ---- the command ----------------------------------------------------------------------------------


def test_power_command_help():
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["power", "--help"], env={"COLUMNS": "240", "TERMINAL_WIDTH": "240"})
    assert result.exit_code == 0 and "Usage" in result.output
    for option in ("--mde", "--cuped-correlation", "--pre-period-days", "--sequential", "--sequential-tuning"):
        assert option in result.output


@pytest.mark.parametrize("backend", ["duckdb"], indirect=True)
def test_power_command_plans_from_a_duckdb_file(planning_db):
    url, path, _, data, first = planning_db
    env = {**os.environ, "WORKBENCH_DATABASE_URL": url, "WORKBENCH_CONFIG": str(path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([WORKBENCH, "power", *args], capture_output=True, text=True, env=env, timeout=120)

    window = ["--start", "2026-10-01", "--end", "2026-10-14"]
    revenue = unit_values(data, first, value="amount")
    revenue_pre = unit_values(data, first, value="amount", pre_days=14)
    rho = np.corrcoef(revenue, revenue_pre)[0, 1]
    proc = run("revenue", *window, "--mde", "0.1", "--sequential", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    plan = plan_sample_size(revenue.mean(), revenue.var(ddof=1), 0.1, cuped_correlation=rho, sequential=True)
    assert out["cuped_correlation"] == pytest.approx(rho, rel=1e-9) and out["pre_period_days"] == 14
    assert (out["units_per_arm"], out["fixed_horizon_units_per_arm"]) == (
        plan.units_per_arm,
        plan.fixed_horizon_units_per_arm,
    )
    assert out["days"] == pytest.approx(plan.total_units / (len(first) / 14), rel=1e-9)
    # the table, with a given correlation on a ratio metric
    # in-process from here on (each console-script start costs seconds)
    from typer.testing import CliRunner

    from workbench.cli import app

    def invoke(*args: str):
        return CliRunner().invoke(app, ["power", *args], env=env)

    # the table, with a given correlation on a ratio metric
    result = invoke("average_order_value", *window, "--cuped-correlation", "0.5", "--arms", "3")
    assert result.exit_code == 0, result.output
    assert "correlation 0.500 (given) removes 25.0% of the variance" in result.stdout
    assert "units per variation" in result.stdout and "alpha 0.025 per comparison" in result.stdout
    result = invoke("purchased", *window, "--no-cuped")
    expected = binomial_sample_size(unit_values(data, first, kind="binary").mean(), 0.05)
    assert result.exit_code == 0 and f"{expected:,} units per variation" in result.stdout
    assert "CUPED" not in result.stdout
    for args, message in (
        (("nothing", *window), "no metric"),
        (("revenue", "--start", "2026-10-14", "--end", "2026-10-01"), "before start"),
        (("revenue", *window, "--cuped-correlation", "1.5"), "strictly between -1 and 1"),
        (("revenue", *window, "--power", "2"), "power must be between 0 and 1"),
        (("revenue", *window, "--traffic-share", "0"), "--traffic-share must be in (0, 1]"),
    ):
        result = invoke(*args)
        assert result.exit_code == 1 and result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and isinstance(result.exception, SystemExit)
