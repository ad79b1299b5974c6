"""Sequential confidence sequences and the Bayesian engine against closed forms, numerical
integration and GrowthBook's gbstats 0.8.0 on the same sufficient statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from support.stats_oracle import gb_statistic, sums_row
from workbench.stats.bayesian import GaussianPrior, bayesian_test, chance_to_win, posterior, risk
from workbench.stats.frequentist import t_test
from workbench.stats.moments import ArmMoments, cuped_moments, cuped_sums, pooled_theta, row_moments
from workbench.stats.sequential import sequential_rho, sequential_test

REL = 1e-6


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(42)
    y_a, y_b = rng.lognormal(1.0, 0.8, 4000), rng.lognormal(1.03, 0.8, 4200)
    return sums_row("m", "mean", "0", y_a), sums_row("m", "mean", "1", y_b)


def test_sequential_hand_worked():
    a, b = ArmMoments(1000, 1.0, 4.0, 1.0), ArmMoments(1000, 1.2, 4.0, 1.2)
    result = sequential_test(a, b, relative=False, alpha=0.05, tuning=5000)
    rho2 = (-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / 5000
    assert sequential_rho(0.05, 5000) ** 2 == pytest.approx(rho2, rel=1e-12)
    n, var = 2000, 4 / 1000 + 4 / 1000  # N and the estimate's variance
    half = math.sqrt(var * n) * math.sqrt(2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / 0.05) / (n**2 * rho2))
    assert (result.ci_lower, result.ci_upper) == pytest.approx((0.2 - half, 0.2 + half), rel=1e-12)
    e_value = math.exp(rho2 * 0.2**2 * n / var / (2 * (n * rho2 + 1))) / math.sqrt(n * rho2 + 1)
    assert result.p_value == pytest.approx(min(1.0, 1 / e_value), rel=1e-12)
    # always-valid intervals are wider than the fixed-horizon ones
    fixed = t_test(a, b, relative=False)
    assert result.ci_upper - result.ci_lower > fixed.ci_upper - fixed.ci_lower


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("tuning", [5000, 800])
def test_sequential_agrees_with_gbstats(rows, relative, tuning):
    from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest

    row_a, row_b = rows
    ours = sequential_test(row_moments(row_a), row_moments(row_b), relative=relative, tuning=tuning)
    config = SequentialConfig(
        difference_type="relative" if relative else "absolute", sequential_tuning_parameter=tuning
    )
    ref = SequentialTwoSidedTTest(gb_statistic(row_a), gb_statistic(row_b), config).compute_result()
    assert (ours.estimate, ours.ci_lower, ours.ci_upper, ours.p_value) == pytest.approx(
        (ref.expected, *ref.ci, ref.p_value), rel=REL
    )


def test_sequential_with_cuped_agrees_with_gbstats():
    from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest

    rng = np.random.default_rng(8)
    x_a, x_b = rng.normal(5, 2, 3000), rng.normal(5, 2, 3000)
    row_a = sums_row("m", "mean", "0", x_a + rng.normal(0.0, 1, 3000), covariate=x_a)
    row_b = sums_row("m", "mean", "1", x_b + rng.normal(0.1, 1, 3000), covariate=x_b)
    theta = pooled_theta(cuped_sums(row_a), cuped_sums(row_b))
    ours = sequential_test(cuped_moments(cuped_sums(row_a), theta), cuped_moments(cuped_sums(row_b), theta))
    ref = SequentialTwoSidedTTest(
        gb_statistic(row_a, cuped=True), gb_statistic(row_b, cuped=True), SequentialConfig()
    ).compute_result()
    assert (ours.estimate, ours.ci_lower, ours.ci_upper, ours.p_value) == pytest.approx(
        (ref.expected, *ref.ci, ref.p_value), rel=REL
    )


def test_posterior_conjugate_closed_form():
    # data N(0.1, 0.05²), prior N(0, 0.1²): precision 400 + 100 = 500, mean 0.1·400/500 = 0.08
    mean, sd = posterior(0.1, 0.05**2, GaussianPrior(0.0, 0.1, proper=True))
    assert (mean, sd) == pytest.approx((0.08, math.sqrt(1 / 500)), rel=1e-12)
    assert posterior(0.1, 0.05**2, GaussianPrior(0.0, 0.1, proper=False)) == pytest.approx((0.1, 0.05), rel=1e-12)


@pytest.mark.parametrize("mu, sigma", [(0.02, 0.01), (-0.03, 0.02), (0.0, 0.05)])
def test_chance_to_win_and_risk_match_integration(mu, sigma):
    assert chance_to_win(mu, sigma) == pytest.approx(stats.norm.cdf(mu / sigma), rel=1e-12)
    density = stats.norm(mu, sigma).pdf
    loss_control = integrate.quad(lambda x: x * density(x), 0, np.inf)[0]  # E[max(X, 0)]
    loss_treatment = integrate.quad(lambda x: -x * density(x), -np.inf, 0)[0]  # E[max(-X, 0)]
    assert risk(mu, sigma) == pytest.approx((loss_control, loss_treatment), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(
    "relative, prior, inverse",
    [
        (True, GaussianPrior(), False),
        (True, GaussianPrior(0.01, 0.05, proper=True), False),
        (False, GaussianPrior(0.02, 0.1, proper=True), False),
        (True, GaussianPrior(), True),
    ],
)
def test_bayesian_agrees_with_gbstats(rows, relative, prior, inverse):
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.bayesian.tests import GaussianPrior as GbPrior

    row_a, row_b = rows
    ours = bayesian_test(row_moments(row_a), row_moments(row_b), prior=prior, relative=relative, inverse=inverse)
    config = EffectBayesianConfig(
        difference_type="relative" if relative else "absolute", inverse=inverse, prior_type="relative",
        prior_effect=GbPrior(mean=prior.mean, variance=prior.sd**2, proper=prior.proper),
    )  # fmt: skip
    ref = EffectBayesianABTest(gb_statistic(row_a), gb_statistic(row_b), config).compute_result()
    assert ours.estimate == pytest.approx(ref.expected, rel=REL)
    assert (ours.ci_lower, ours.ci_upper) == pytest.approx(ref.ci, rel=REL)
    assert ours.chance_to_win == pytest.approx(ref.chance_to_win, rel=REL)
    assert (ours.risk_control, ours.risk_treatment) == pytest.approx(ref.risk, rel=REL)


def test_bayesian_cuped_binomial_agrees_with_gbstats():
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig

    rng = np.random.default_rng(12)
    x_a, x_b = rng.binomial(1, 0.3, 5000), rng.binomial(1, 0.3, 5000)
    row_a = sums_row(
        "m", "binomial", "0", np.where(rng.random(5000) < 0.6, x_a, rng.binomial(1, 0.3, 5000)), covariate=x_a
    )
    row_b = sums_row(
        "m", "binomial", "1", np.where(rng.random(5000) < 0.6, x_b, rng.binomial(1, 0.32, 5000)), covariate=x_b
    )
    theta = pooled_theta(cuped_sums(row_a), cuped_sums(row_b))
    ours = bayesian_test(cuped_moments(cuped_sums(row_a), theta), cuped_moments(cuped_sums(row_b), theta))
    ref = EffectBayesianABTest(
        gb_statistic(row_a, cuped=True), gb_statistic(row_b, cuped=True), EffectBayesianConfig()
    ).compute_result()
    assert (ours.estimate, ours.chance_to_win, ours.risk_control, ours.risk_treatment) == pytest.approx(
        (ref.expected, ref.chance_to_win, *ref.risk), rel=REL
    )
