"""Sequential confidence sequences and the Bayesian engine against closed forms, numerical
integration and closed forms; GrowthBook's engine is compared in test_stats_oracle.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from support.stats_oracle import sums_row
from workbench.stats.bayesian import GaussianPrior, chance_to_win, posterior, risk
from workbench.stats.frequentist import t_test
from workbench.stats.moments import ArmMoments
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
