"""Moments and the frequentist tests against scipy/statsmodels on raw per-unit data, closed forms,
and GrowthBook's GrowthBook's gbstats at its main branch (the oracle fixture) on the same sufficient statistics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm
from statsmodels.stats import proportion as sm_proportion

from support.stats_oracle import sums_row
from workbench.stats.frequentist import difference, t_test, welch_dof
from workbench.stats.moments import (
    comparison_note,
    cuped_moments,
    cuped_sums,
    pooled_theta,
    proportion_moments,
    row_moments,
    sample_mean_moments,
)

REL = 1e-6


@pytest.fixture(scope="module")
def revenue():
    """Skewed per-unit revenue with a pre-exposure covariate, two unequal arms."""
    rng = np.random.default_rng(20261123)
    pre_a, pre_b = rng.gamma(2.0, 5.0, 3000), rng.gamma(2.0, 5.0, 2600)
    y_a = 0.8 * pre_a + rng.gamma(2.0, 4.0, 3000)
    y_b = 0.8 * pre_b + rng.gamma(2.0, 4.4, 2600)
    return (y_a, pre_a), (y_b, pre_b)


def test_sample_mean_moments_equal_numpy(revenue):
    (y, _), _ = revenue
    m = sample_mean_moments(len(y), y.sum(), (y**2).sum())
    assert m.n == len(y)
    assert m.mean == pytest.approx(y.mean(), rel=1e-12)
    assert m.variance == pytest.approx(y.var(ddof=1), rel=1e-9)


def test_proportion_moments_closed_form():
    m = proportion_moments(40, 10)
    assert (m.mean, m.variance) == (0.25, 0.25 * 0.75)


def test_welch_absolute_matches_scipy_on_raw_data(revenue):
    (y_a, _), (y_b, _) = revenue
    a = row_moments(sums_row("rev", "mean", "0", y_a))
    b = row_moments(sums_row("rev", "mean", "1", y_b))
    ours = t_test(a, b, relative=False, alpha=0.05)
    ref = scipy.stats.ttest_ind(y_b, y_a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert ours.estimate == pytest.approx(y_b.mean() - y_a.mean(), rel=1e-9)
    assert ours.dof == pytest.approx(ref.df, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert (ours.ci_lower, ours.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-8)


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_one_sided_welch_matches_scipy(revenue, alternative):
    (y_a, _), (y_b, _) = revenue
    a = row_moments(sums_row("rev", "mean", "0", y_a))
    b = row_moments(sums_row("rev", "mean", "1", y_b - 0.9))  # shift so both sides give a non-trivial p
    ours = t_test(a, b, relative=False, alternative=alternative)
    ref = scipy.stats.ttest_ind(y_b - 0.9, y_a, equal_var=False, alternative=alternative)
    ci = ref.confidence_interval(0.95)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert (ours.ci_lower, ours.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-8)


def test_relative_delta_method_hand_worked():
    # control 1,2,3,4: mean 5/2, variance 5/3; treatment 2,4,6,8: mean 5, variance 20/3
    a = sample_mean_moments(4, 10, 30)
    b = sample_mean_moments(4, 20, 120)
    diff = difference(a, b, relative=True)
    assert diff.estimate == pytest.approx(1.0, rel=1e-12)
    # (20/3)/(25/4·4) + (5/3)·25/((5/2)^4·4) = 4/15 + 4/15
    assert diff.variance == pytest.approx(8 / 15, rel=1e-12)
    # Welch df: ((5/3)/4 + (20/3)/4)^2 / (((5/3)/4)^2/3 + ((20/3)/4)^2/3) = 3·(25/12)^2/((5/12)^2+(20/12)^2) = 1875/425
    assert welch_dof(a, b) == pytest.approx(1875 / 425, rel=1e-12)


def test_proportions_match_statsmodels_wald_z_test():
    rng = np.random.default_rng(7)
    x_a, x_b = rng.binomial(1, 0.10, 40000), rng.binomial(1, 0.108, 41000)
    a = row_moments(sums_row("conv", "binomial", "0", x_a))
    b = row_moments(sums_row("conv", "binomial", "1", x_b))
    ours = t_test(a, b, relative=False)
    ref = sm_proportion.test_proportions_2indep(
        x_b.sum(), len(x_b), x_a.sum(), len(x_a), method="wald", compare="diff", correction=False
    )
    assert ours.estimate / ours.standard_error == pytest.approx(ref.statistic, rel=1e-9)
    # Welch t with ~80k df against the normal: p-values agree to the t/normal gap
    assert ours.p_value == pytest.approx(ref.pvalue, rel=2e-3)


def test_ratio_delta_method_matches_linearisation():
    rng = np.random.default_rng(3)
    sessions_a = rng.poisson(3, 5000) + 1
    orders_a = rng.binomial(sessions_a, 0.2)
    row_a = sums_row("cr", "ratio", "0", orders_a, denominator=sessions_a)
    a = row_moments(row_a)
    ratio = orders_a.sum() / sessions_a.sum()
    linearised = (orders_a - ratio * sessions_a) / sessions_a.mean()  # first-order Taylor term per unit
    assert a.mean == pytest.approx(ratio, rel=1e-12)
    assert a.variance == pytest.approx(linearised.var(ddof=1), rel=1e-8)


def test_cuped_matches_ols_and_welch_on_adjusted_values(revenue):
    (y_a, x_a), (y_b, x_b) = revenue
    row_a = sums_row("rev", "mean", "0", y_a, covariate=x_a)
    row_b = sums_row("rev", "mean", "1", y_b, covariate=x_b)
    theta = pooled_theta(cuped_sums(row_a), cuped_sums(row_b))
    # θ is the OLS slope of y on x over both arms pooled (Deng et al. 2013)
    y, x = np.concatenate([y_a, y_b]), np.concatenate([x_a, x_b])
    assert theta == pytest.approx(sm.OLS(y, sm.add_constant(x)).fit().params[1], rel=1e-9)
    a, b = cuped_moments(cuped_sums(row_a), theta), cuped_moments(cuped_sums(row_b), theta)
    # the adjusted effect is the treatment coefficient of OLS of y - θx on the arm dummy
    adjusted = y - theta * x
    arm = np.r_[np.zeros(len(y_a)), np.ones(len(y_b))]
    ours = t_test(a, b, relative=False)
    assert ours.estimate == pytest.approx(sm.OLS(adjusted, sm.add_constant(arm)).fit().params[1], rel=1e-9)
    ref = scipy.stats.ttest_ind(adjusted[len(y_a) :], adjusted[: len(y_a)], equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert (ours.ci_lower, ours.ci_upper) == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-8)
    # CUPED narrows the interval against the unadjusted test
    raw = t_test(row_moments(row_a), row_moments(row_b), relative=False)
    assert ours.standard_error < 0.8 * raw.standard_error


def test_comparison_notes_explain_refusals():
    ok = sample_mean_moments(10, 10, 20)
    assert comparison_note(ok, ok, relative=True) is None
    assert "no units" in comparison_note(ok, sample_mean_moments(0, 0, 0), relative=True)
    assert "zero variance" in comparison_note(ok, sample_mean_moments(10, 30, 90), relative=True)
    assert "control mean is 0" in comparison_note(sample_mean_moments(10, 0, 20), ok, relative=True)
    assert comparison_note(sample_mean_moments(10, 0, 20), ok, relative=False) is None
