"""Welch's t-test of treatment against control, on the absolute or relative difference of means.

Welch (1947) "The generalization of Student's problem when several different population variances
are involved", with Satterthwaite's (1946) degrees of freedom; the relative effect's variance by
the delta method. This is GrowthBook's frequentist engine at its main branch
(``gbstats/frequentist/tests.py``, ``models/tests.py``): relative effects are over the control's
*absolute* mean (#6658), so a rise of a negative mean is an improvement; the relative CUPED variance
is the delta method's over the adjusted means (#3610). Proportions go through the same machinery
with Bernoulli variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from workbench.stats.moments import ArmMoments, CupedArm, RatioCupedArm

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
    ``(μ₂ - μ₁)/|m₁|`` (``m`` the unadjusted means) with the delta-method variance
    ``s₂²/(m₁²n₂) + m₂²s₁²/(m₁⁴n₁)``; for CUPED arms the relative variance is the delta method's
    over the adjusted means (:func:`relative_cuped_variance`, :func:`relative_ratio_cuped_variance`).
    As gbstats ``frequentist_diff``/``frequentist_variance_all_cases``."""
    delta = treatment.mean - control.mean
    if not relative:
        variance = treatment.variance / treatment.n + control.variance / control.n
        return Difference(delta, variance, welch_dof(control, treatment))
    m1, m2 = control.unadjusted_mean, treatment.unadjusted_mean
    if isinstance(control, CupedArm) and isinstance(treatment, CupedArm):
        variance = relative_cuped_variance(control, treatment)
    elif isinstance(control, RatioCupedArm) and isinstance(treatment, RatioCupedArm):
        variance = relative_ratio_cuped_variance(control, treatment)
    else:
        variance = treatment.variance / (m1**2 * treatment.n) + control.variance * m2**2 / (m1**4 * control.n)
    return Difference(delta / abs(m1), variance, welch_dof(control, treatment))


def relative_cuped_variance(control: CupedArm, treatment: CupedArm) -> float:
    """Variance of ``(ȳ₂ - θx̄₂ - ȳ₁ + θx̄₁)/|ȳ₁|`` by the delta method in the control's (ȳ₁, x̄₁),
    with the gradient's numerator taken at ȳ₂: ``v₂/(n₂ȳ₁²) + (σy₁²ȳ₂²/ȳ₁² - 2θ·cov₁·ȳ₂/ȳ₁ +
    θ²σx₁²)/(n₁ȳ₁²)`` (GrowthBook's ``frequentist_variance_relative_cuped``, #3610); 0 when ȳ₁ = 0."""
    m1, m2 = control.unadjusted_mean, treatment.unadjusted_mean
    if m1 == 0 or control.n == 0 or treatment.n == 0:
        return 0.0
    theta = control.theta
    treatment_part = treatment.variance / (treatment.n * m1**2)
    control_part = (
        control.post_variance * m2**2 / m1**2
        - 2 * theta * control.covariance * m2 / m1
        + theta**2 * control.pre_variance
    ) / (control.n * m1**2)
    return treatment_part + control_part


def relative_ratio_cuped_variance(control: RatioCupedArm, treatment: RatioCupedArm) -> float:
    """Variance of ``(R₂ - R₁)/|r₁|`` for CUPED-adjusted ratios ``R = m/d - θ·m₀/d₀`` (``r₁ = m₁/d₁``
    the control's unadjusted ratio) by the delta method over both arms' four means
    (GrowthBook's ``frequentist_variance_relative_cuped_ratio``); 0 when r₁ or d₁ is 0."""
    r1 = control.unadjusted_mean
    m, d, _, _ = control.means
    if r1 == 0 or d == 0:
        return 0.0
    scale = abs(r1)
    gap = (treatment.mean - control.mean) * np.sign(r1)  # numerator's sign folded in for negative r₁
    own = control.gradient()
    control_gradient = np.array(
        [
            -(scale + gap) / d / scale**2,
            m * (scale + gap) / d**2 / scale**2,
            -own[2] / scale,
            -own[3] / scale,
        ]
    )
    treatment_gradient = treatment.gradient() / scale
    return float(
        control_gradient @ np.array(control.cov) @ control_gradient / control.n
        + treatment_gradient @ np.array(treatment.cov) @ treatment_gradient / treatment.n
    )


def t_test(
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    diff: Difference | None = None,
) -> FrequentistResult:
    """Welch t-test of H0: no difference. ``alternative`` "greater"/"less" tests treatment above /
    below control one-sided (used for guardrails, judged against harm); CI at level 1-alpha
    (Welch 1947; gbstats ``TwoSidedTTest``). ``diff`` replaces the arms' own difference (a
    post-stratified estimate). The arms must pass ``comparison_note``."""
    from scipy.stats import t

    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r} is not one of {', '.join(ALTERNATIVES)}.")
    diff = diff or difference(control, treatment, relative)
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
