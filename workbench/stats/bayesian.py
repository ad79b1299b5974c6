"""Bayesian comparison: a Gaussian posterior on the effect, its credible interval, chance to win
and risk (expected loss).

GrowthBook's Bayesian engine (``gbstats/bayesian/tests.py`` ``EffectBayesianABTest`` at its main branch; GrowthBook docs
"Statistics: Bayesian"): the data's effect estimate is treated as normal with the frequentist
(delta-method) variance; a Gaussian prior on the *relative* effect (flat by default) is combined
with it by the normal–normal conjugate update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.stats.frequentist import Difference, difference
from workbench.stats.moments import ArmMoments


@dataclass(frozen=True)
class GaussianPrior:
    """Prior on the relative effect: normal(``mean``, ``sd``) when ``proper``, else flat (ignored).
    GrowthBook's defaults: flat, with mean 0 and sd 0.3 used once made proper."""

    mean: float = 0.0
    sd: float = 0.3
    proper: bool = False

    def __post_init__(self) -> None:
        if self.proper and not self.sd > 0:
            raise ValueError(f"prior sd must be positive for a proper prior, got {self.sd!r}.")


@dataclass(frozen=True)
class BayesianResult:
    """Posterior ``estimate`` (mean) and ``sd`` of the effect, the ``ci_lower``/``ci_upper`` credible
    bounds, ``chance_to_win`` and the risks of choosing the control or the treatment."""

    estimate: float
    sd: float
    ci_lower: float
    ci_upper: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float


def posterior(data_mean: float, data_variance: float, prior: GaussianPrior) -> tuple[float, float]:
    """Posterior (mean, sd) of a normal likelihood and Gaussian prior: precision ``1/v + 1/τ²``,
    mean ``(m/v + μ₀/τ²)/precision``; the data alone under a flat prior (conjugate update)."""
    if not prior.proper:
        return data_mean, math.sqrt(data_variance)
    prior_variance = prior.sd**2
    precision = 1 / data_variance + 1 / prior_variance
    return (data_mean / data_variance + prior.mean / prior_variance) / precision, math.sqrt(1 / precision)


def chance_to_win(mean: float, sd: float, inverse: bool = False) -> float:
    """P(effect > 0) = ``Φ(μ/σ)`` under the normal posterior; P(effect < 0) for metrics where lower is
    better (gbstats ``chance_to_win``)."""
    from scipy.stats import norm

    win = float(norm.sf(0, mean, sd))
    return 1 - win if inverse else win


def risk(mean: float, sd: float) -> tuple[float, float]:
    """Expected loss of choosing control ``E[max(X,0)] = μΦ(μ/σ) + σφ(μ/σ)`` and of choosing the
    treatment ``E[max(-X,0)] = σφ(μ/σ) - μΦ(-μ/σ)`` for X ~ N(μ, σ²), the treatment-minus-control
    effect (closed form of gbstats ``get_risk``; Stucchio 2015, "Bayesian A/B Testing at VWO")."""
    from scipy.stats import norm

    z = mean / sd
    density = float(norm.pdf(z))
    return mean * float(norm.cdf(z)) + sd * density, sd * density - mean * float(norm.cdf(-z))


def bayesian_test(
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    prior: GaussianPrior = GaussianPrior(),
    relative: bool = True,
    alpha: float = 0.05,
    inverse: bool = False,
    diff: Difference | None = None,
) -> BayesianResult:
    """Posterior of the relative (or absolute) effect, its (1-alpha) equal-tailed credible interval,
    chance to win and risks; for absolute effects the relative prior is rescaled by the control
    mean (mean·|μ₁|, sd·|μ₁|). For inverse metrics the chance to win is P(effect < 0) and the two
    risks swap (gbstats ``EffectBayesianABTest``). ``diff`` replaces the arms' own difference (a
    post-stratified estimate). The arms must pass ``comparison_note``."""
    from scipy.stats import norm

    diff = diff or difference(control, treatment, relative)
    if prior.proper and not relative:
        scale = abs(control.unadjusted_mean)
        prior = GaussianPrior(prior.mean * scale, prior.sd * scale, True)
    mean, sd = posterior(diff.estimate, diff.variance, prior)
    lower, upper = (float(v) for v in norm.ppf([alpha / 2, 1 - alpha / 2], mean, sd))
    risk_control, risk_treatment = risk(mean, sd)
    if inverse:
        risk_control, risk_treatment = risk_treatment, risk_control
    return BayesianResult(mean, sd, lower, upper, chance_to_win(mean, sd, inverse), risk_control, risk_treatment)
