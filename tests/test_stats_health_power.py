"""Health checks, multiple-testing corrections, power and abautomator's interval view against
scipy/statsmodels and GrowthBook's gbstats at its main branch (the oracle fixture)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from support.stats_oracle import sums_row
from workbench.stats.corrections import adjusted_p_values, benjamini_hochberg, holm_bonferroni
from workbench.stats.health import health_checks, srm_flagged, srm_p_value
from workbench.stats.intervals import difference_intervals
from workbench.stats.moments import ArmMoments, row_moments
from workbench.stats.power import (
    achieved_power,
    binomial_mde,
    binomial_sample_size,
    mean_mde,
    mean_sample_size,
)


@pytest.mark.parametrize(
    "users, weights", [([5050, 4950], [0.5, 0.5]), ([3300, 3400, 3150], [1 / 3] * 3), ([2100, 7700], [0.2, 0.8])]
)
def test_srm_matches_chisquare_and_gbstats(oracle, users, weights):
    from gbstats.utils import check_srm

    expected = np.asarray(weights) / sum(weights) * sum(users)
    ref = scipy.stats.chisquare(users, expected).pvalue
    assert srm_p_value(users, weights) == pytest.approx(ref, rel=1e-9)
    assert srm_p_value(users, weights) == pytest.approx(check_srm(users, weights), rel=1e-6)


def test_srm_flag_needs_eight_units_per_variation():
    assert srm_flagged(1e-4, [100, 200])
    assert not srm_flagged(1e-4, [7, 200])
    assert not srm_flagged(0.002, [100, 200])


def test_health_checks_warn_on_srm_multiple_exposures_and_unknown_variations():
    counts = pd.DataFrame(
        [("overall", "all", "0", 5000), ("overall", "all", "1", 5400), ("overall", "all", "__multiple__", 220), ("overall", "all", "7", 3),
         ("browser", "Chrome", "0", 3000), ("browser", "Chrome", "1", 3000), ("browser", "Safari", "0", 2000), ("browser", "Safari", "1", 2400)],
        columns=["dimension", "dimension_value", "variation", "users"],
    )  # fmt: skip
    health = health_checks(counts, ["0", "1"], [0.5, 0.5])
    assert health.srm_p_value == pytest.approx(scipy.stats.chisquare([5000, 5400]).pvalue, rel=1e-9)
    assert health.multiple_exposure_units == 220
    assert health.multiple_exposure_share == pytest.approx(220 / (5000 + 5400 + 220 + 3))
    assert health.unknown_variations == ["7"]
    srm = health.srm.set_index(["dimension", "dimension_value"])
    assert srm.loc[("browser", "Safari"), "srm_p_value"] == pytest.approx(
        scipy.stats.chisquare([2000, 2400]).pvalue, rel=1e-9
    )
    assert bool(srm.loc[("browser", "Safari"), "srm_flagged"]) and not bool(
        srm.loc[("browser", "Chrome"), "srm_flagged"]
    )
    text = " ".join(health.warnings)
    assert "Sample ratio mismatch" in text and "browser = Safari" in text and "220 units" in text and "7" in text


def test_no_multiple_exposure_warning_below_one_percent():
    counts = pd.DataFrame(
        {
            "dimension": "overall",
            "dimension_value": "all",
            "variation": ["0", "1", "__multiple__"],
            "users": [5000, 5000, 99],
        }
    )
    assert health_checks(counts, ["0", "1"], [0.5, 0.5]).warnings == []


def test_corrections_match_statsmodels():
    p = np.array([0.001, 0.04, 0.03, 0.2, np.nan, 0.011, 0.8])
    valid = ~np.isnan(p)
    for ours, method in ((holm_bonferroni(p), "holm"), (benjamini_hochberg(p), "fdr_bh")):
        assert np.isnan(ours[4])
        np.testing.assert_allclose(ours[valid], multipletests(p[valid], method=method)[1], rtol=1e-12)
    np.testing.assert_array_equal(adjusted_p_values(p, "none"), p)


def test_mean_sample_size_matches_statsmodels():
    # mean 10, sd 4, +5%: standardized effect 0.5/4
    ref = NormalIndPower().solve_power(effect_size=0.5 / 4, alpha=0.05, power=0.8)
    assert mean_sample_size(10, 4, 0.05) == int(np.ceil(ref))
    ref3 = NormalIndPower().solve_power(effect_size=0.5 / 4, alpha=0.05 / 2, power=0.9)
    assert mean_sample_size(10, 4, 0.05, arms=3, power=0.9) == int(np.ceil(ref3))


def test_binomial_sample_size_matches_statsmodels():
    p0, p1 = 0.10, 0.11
    effect = (p1 - p0) / np.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / 2)  # unpooled standardized difference
    assert binomial_sample_size(0.10, 0.10) == int(
        np.ceil(NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8))
    )
    ref4 = NormalIndPower().solve_power(effect_size=effect, alpha=0.05 / 3, power=0.8)
    assert binomial_sample_size(0.10, 0.10, arms=4) == int(np.ceil(ref4))
    assert binomial_sample_size(0.10, 0.10, arms=4, bonferroni=False) == binomial_sample_size(0.10, 0.10)


def test_mde_reaches_the_requested_power():
    rel = mean_mde(10, 4, 2000)
    assert NormalIndPower().power(effect_size=rel * 10 / 4, nobs1=2000, alpha=0.05) == pytest.approx(0.8, abs=1e-9)
    rel_b = binomial_mde(0.2, 5000, arms=3)
    p1 = 0.2 * (1 + rel_b)
    effect = (p1 - 0.2) / np.sqrt((0.2 * 0.8 + p1 * (1 - p1)) / 2)
    assert NormalIndPower().power(effect_size=effect, nobs1=5000, alpha=0.025) == pytest.approx(0.8, abs=1e-9)


def test_achieved_power_matches_statsmodels():
    control, treatment = ArmMoments(3000, 20.0, 36.0, 20.0), ArmMoments(4500, 20.4, 36.0, 20.4)
    ref = NormalIndPower().power(effect_size=0.03 * 20 / 6, nobs1=3000, alpha=0.05, ratio=1.5)
    assert achieved_power(control, treatment, 0.03) == pytest.approx(ref, rel=1e-9)


def test_intervals_for_rates_fix_abautomators_defects():
    rng = np.random.default_rng(1)
    x_a, x_b = rng.binomial(1, 0.2, 3000), rng.binomial(1, 0.22, 2500)
    a, b = row_moments(sums_row("c", "binomial", "0", x_a)), row_moments(sums_row("c", "binomial", "1", x_b))
    view = difference_intervals(a, b, proportion=True)
    counts = (x_b.sum(), len(x_b), x_a.sum(), len(x_a))
    for level, interval in ((0.95, view.absolute_95), (0.68, view.absolute_68)):
        ref = sm_proportion.confint_proportions_2indep(*counts, method="wald", compare="diff", alpha=1 - level)
        assert interval == pytest.approx(ref, rel=1e-9)
    # two-sided Wald test with the 1/n1 + 1/n2 standard error
    z = (x_b.mean() - x_a.mean()) / np.sqrt(
        x_a.mean() * (1 - x_a.mean()) / len(x_a) + x_b.mean() * (1 - x_b.mean()) / len(x_b)
    )
    assert view.p_value == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)
    assert view.p_value == pytest.approx(
        sm_proportion.test_proportions_2indep(*counts, method="wald", correction=False).pvalue, rel=1e-9
    )
    assert view.relative == pytest.approx(x_b.mean() / x_a.mean() - 1, rel=1e-12)


def test_intervals_for_means_match_welch():
    rng = np.random.default_rng(2)
    y_a, y_b = rng.poisson(3.0, 25), rng.poisson(3.6, 40)
    view = difference_intervals(
        row_moments(sums_row("n", "count", "0", y_a)), row_moments(sums_row("n", "count", "1", y_b)), proportion=False
    )
    ref = scipy.stats.ttest_ind(y_b, y_a, equal_var=False)
    assert view.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert view.absolute_95 == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-9)
    assert view.absolute_68 == pytest.approx(tuple(ref.confidence_interval(0.68)), rel=1e-9)
    assert "fewer than 30 units" in view.note
