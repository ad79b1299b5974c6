"""Welch's t-test of treatment against control, on the absolute or relative difference of means.

Welch (1947) "The generalization of Student's problem when several different population variances
are involved", with Satterthwaite's (1946) degrees of freedom; the relative effect's variance by
the delta method. This is GrowthBook's frequentist engine (gbstats 0.8.0
``frequentist/tests.py``); proportions go through the same machinery with Bernoulli variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from workbench.stats.moments import ArmMoments

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class Difference:
    """A point estimate of treatment vs control with its sampling ``variance`` and Welch ``dof``."""

    estimate: float
    variance: float
    dof: float

    @property
    def standard_error(self) -> float:
        """``sqrt(variance)``: the estimate's standard error."""
        return math.sqrt(self.variance)


@dataclass(frozen=True)
class FrequentistResult:
    """Effect ``estimate`` with its ``standard_error``, ``dof``, confidence bounds (±inf on the open
    side of a one-sided test) and ``p_value``."""

    estimate: float
    standard_error: float
    dof: float
    ci_lower: float
    ci_upper: float
    p_value: float


def welch_dof(control: ArmMoments, treatment: ArmMoments) -> float:
    """Welch–Satterthwaite degrees of freedom
    ``(s₁²/n₁ + s₂²/n₂)² / (s₁⁴/(n₁²(n₁-1)) + s₂⁴/(n₂²(n₂-1)))`` (Satterthwaite 1946, Welch 1947)."""
    a = control.variance / control.n
    b = treatment.variance / treatment.n
    return (a + b) ** 2 / (a**2 / (control.n - 1) + b**2 / (treatment.n - 1))


def difference(control: ArmMoments, treatment: ArmMoments, relative: bool) -> Difference:
    """Absolute difference ``μ₂ - μ₁`` with variance ``s₁²/n₁ + s₂²/n₂``, or relative
    ``(μ₂ - μ₁)/μ₁`` with the delta-method variance ``s₂²/(μ₁²n₂) + μ₂²s₁²/(μ₁⁴n₁)`` (gbstats
    ``frequentist_diff``/``frequentist_variance``; CUPED means in the numerator, unadjusted means in
    the denominator and the variance)."""
    delta = treatment.mean - control.mean
    if relative:
        m1, m2 = control.unadjusted_mean, treatment.unadjusted_mean
        estimate = delta / m1
        variance = treatment.variance / (m1**2 * treatment.n) + control.variance * m2**2 / (m1**4 * control.n)
    else:
        estimate = delta
        variance = treatment.variance / treatment.n + control.variance / control.n
    return Difference(estimate, variance, welch_dof(control, treatment))


def t_test(
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> FrequentistResult:
    """Welch t-test of H0: no difference. ``alternative`` "greater"/"less" tests treatment above /
    below control one-sided (used for guardrails, judged against harm); CI at level 1-alpha
    (Welch 1947; gbstats ``TwoSidedTTest``). The arms must pass ``comparison_note``."""
    from scipy.stats import t

    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} is not one of {', '.join(ALTERNATIVES)}.")
    diff = difference(control, treatment, relative)
    se, dof = diff.standard_error, diff.dof
    statistic = diff.estimate / se
    if alternative == "two-sided":
        p_value = 2 * float(t.sf(abs(statistic), dof))
        width = float(t.ppf(1 - alpha / 2, dof)) * se
        lower, upper = diff.estimate - width, diff.estimate + width
    elif alternative == "greater":
        p_value = float(t.sf(statistic, dof))
        lower, upper = diff.estimate - float(t.ppf(1 - alpha, dof)) * se, math.inf
    else:
        p_value = float(t.cdf(statistic, dof))
        lower, upper = -math.inf, diff.estimate + float(t.ppf(1 - alpha, dof)) * se
    return FrequentistResult(diff.estimate, se, dof, lower, upper, p_value)
