"""Power analysis before an experiment: units needed per arm, minimum detectable effect, and power
achieved so far — planned the way the experiment will be analysed.

Normal approximation of the two-sample test of a difference in means with unequal (unpooled)
variances, two-sided: power ``P(|θ̂| > h)`` for ``θ̂ ~ N(δ, se²)``, i.e.
``Φ((δ - h)/se) + Φ((-δ - h)/se)``, where ``h`` is the half-width of the interval the analysis
will report (Cohen 1988, "Statistical Power Analysis for the Behavioral Sciences", ch. 2 and 6;
statsmodels' ``NormalIndPower``):

* fixed horizon: ``h = z₁₋α/₂·se``;
* sequential testing: ``h`` is the always-valid confidence sequence's half-width at the planned
  sample (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2023, arXiv:2103.06476, eq. 9, with ρ from
  eq. 161 and GrowthBook's tuning parameter N*, default 5000). The plan is the smallest sample
  whose interval, at that sample, excludes 0 with the requested probability; peeking earlier only
  adds chances to stop, so the power is at least that;
* CUPED: the per-unit variance is ``σ²(1 - ρ²)``, ρ the correlation between a unit's metric in the
  pre-period and in the analysis period (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity
  of Online Controlled Experiments by Utilizing Pre-Experiment Data", §3.2);
* ratio metrics: the per-unit variance of ``Σm/Σd`` by the delta method (Deng, Knoblich & Lu 2018,
  "Applying the Delta Method in Metric Analytics"), see :func:`ratio_unit_variance`.

With k arms (one control, k-1 treatments, equal split) each treatment is compared with the control
at ``alpha/(k-1)`` by default (Bonferroni), so the plan holds for every comparison. Effects are
relative to the baseline: 0.05 means +5%. Sample sizes are found by root finding on the power
(exact for this approximation), then rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from workbench.stats.moments import ArmMoments, ratio_variance
from workbench.stats.sequential import DEFAULT_TUNING, sequential_halfwidth


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low < value < high:
        raise ValueError(f"{name} must be between {low} and {high} (exclusive), got {value!r}.")


def comparison_alpha(alpha: float, arms: int, bonferroni: bool = True) -> float:
    """Per-comparison significance level: ``alpha/(arms-1)`` with the Bonferroni split, else alpha."""
    if isinstance(arms, bool) or not isinstance(arms, int) or arms < 2:
        raise ValueError(f"arms must be an integer of at least 2 (a control and a treatment), got {arms!r}.")
    _check("alpha", alpha, 0, 1)
    return alpha / (arms - 1) if bonferroni else alpha


def rejection_probability(effect: float, standard_error: float, halfwidth: float) -> float:
    """``P(|θ̂| > halfwidth)`` for ``θ̂ ~ N(effect, standard_error²)``: the chance that an interval
    ``θ̂ ± halfwidth`` excludes 0, ``Φ((|δ| - h)/se) + Φ((-|δ| - h)/se)``."""
    from scipy.stats import norm

    shift = abs(effect)
    return float(norm.cdf((shift - halfwidth) / standard_error) + norm.cdf((-shift - halfwidth) / standard_error))


def power_at(effect: float, standard_error: float, alpha: float = 0.05, two_sided: bool = True) -> float:
    """Probability of a significant result when the true difference is ``effect`` and the estimate's
    standard error is ``standard_error``: ``Φ(|δ|/se - z) + Φ(-|δ|/se - z)`` with ``z = z₁₋α/₂``
    (two-sided), or ``Φ(|δ|/se - z₁₋α)`` (Cohen 1988)."""
    from scipy.stats import norm

    if two_sided:
        return rejection_probability(effect, standard_error, norm.ppf(1 - alpha / 2) * standard_error)
    return float(norm.cdf(abs(effect) / standard_error - norm.ppf(1 - alpha)))


def cuped_unit_variance(variance: float, correlation: float) -> float:
    """Per-unit variance left after CUPED with a pre-period covariate of correlation ``correlation``
    with the metric: ``σ²(1 - ρ²)`` (Deng et al. 2013, §3.2, θ = cov/var(x) at its optimum)."""
    if not -1 < correlation < 1:
        raise ValueError(
            f"the CUPED correlation must be strictly between -1 and 1, got {correlation!r}; use 0 to plan without CUPED."
        )
    return variance * (1 - correlation**2)


def ratio_unit_variance(
    numerator_mean: float,
    numerator_variance: float,
    denominator_mean: float,
    denominator_variance: float,
    covariance: float,
) -> float:
    """Per-unit variance of the ratio of sums ``Σm/Σd`` by the delta method:
    ``σm²/μd² - 2·cov(m,d)·μm/μd³ + μm²·σd²/μd⁴``, so that ``var(Σm/Σd) ≈ this / n``
    (Deng, Knoblich & Lu 2018, eq. 3; the variance gbstats' ``RatioStatistic`` uses)."""
    if denominator_mean == 0:
        raise ValueError("the denominator's mean is 0, so the ratio and its variance are undefined.")
    return ratio_variance(numerator_mean, numerator_variance, denominator_mean, denominator_variance, covariance)


@dataclass(frozen=True)
class PowerPlan:
    """A planned sample: ``units_per_arm`` (``total_units`` over ``arms`` arms) to detect
    ``relative_mde`` with probability ``power`` at the per-comparison ``alpha``;
    ``unit_variance`` is the per-unit variance planned with (CUPED's reduction applied, the
    control's for binomial metrics), ``variance_reduction`` the share CUPED removes (ρ²) and
    ``fixed_horizon_units_per_arm`` the sample the same test needs without sequential testing."""

    units_per_arm: int
    arms: int
    relative_mde: float
    alpha: float
    power: float
    unit_variance: float
    variance_reduction: float
    sequential: bool
    fixed_horizon_units_per_arm: int

    @property
    def total_units(self) -> int:
        """Units over every arm (equal split)."""
        return self.units_per_arm * self.arms


def _variance_sum(mean: float, variance: float | None, relative_effect: float, binomial: bool, shrink: float) -> float:
    """``σ₀² + σ₁²`` of one unit in each arm, times ``1 - ρ²``: Bernoulli variances at the control
    and treated rates for binomial metrics, else twice the baseline variance."""
    if binomial:
        treated = mean * (1 + relative_effect)
        if not 0 < treated < 1:
            raise ValueError(
                f"a relative effect of {relative_effect!r} moves the rate {mean!r} outside (0, 1); choose a smaller effect."
            )
        return (mean * (1 - mean) + treated * (1 - treated)) * shrink
    return 2 * variance * shrink  # type: ignore[operator]


def _power_function(
    mean: float,
    variance: float | None,
    binomial: bool,
    alpha: float,
    shrink: float,
    sequential: bool,
    tuning: float,
) -> Callable[[float, float], float]:
    """``power(n, relative_effect)`` with ``n`` units per arm."""
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2)

    def power(n: float, relative_effect: float) -> float:
        se = math.sqrt(_variance_sum(mean, variance, relative_effect, binomial, shrink) / n)
        halfwidth = sequential_halfwidth(se, 2 * n, alpha, tuning) if sequential else z * se
        return rejection_probability(mean * relative_effect, se, halfwidth)

    return power


def _validated(
    mean: float,
    variance: float | None,
    binomial: bool,
    power: float,
    cuped_correlation: float,
    sequential_tuning: float,
) -> float:
    """Check the inputs shared by sample size and MDE; returns ``1 - ρ²``."""
    _check("power", power, 0, 1)
    if binomial:
        _check("the baseline rate", mean, 0, 1)
    elif variance is None or not variance > 0 or not math.isfinite(variance) or mean == 0 or not math.isfinite(mean):
        raise ValueError(
            "the baseline variance must be positive and the baseline mean non-zero to plan on a relative effect."
        )
    if not sequential_tuning > 0:
        raise ValueError(
            f"the sequential tuning parameter must be a positive number of units, got {sequential_tuning!r}."
        )
    return cuped_unit_variance(1.0, cuped_correlation)


def _smallest_n(power_of_n: Callable[[float], float], target: float, guess: float) -> int:
    """Smallest integer n ≥ 2 with ``power_of_n(n) ≥ target`` (power increasing in n)."""
    from scipy.optimize import brentq

    low, high = max(guess / 4, 1.0), max(guess, 2.0)
    for _ in range(80):
        if power_of_n(high) >= target:
            break
        low, high = high, high * 2
    else:
        raise ValueError("no sample size reaches the requested power; check the baseline and the effect.")
    while low > 1 and power_of_n(low) >= target:
        low /= 4
    if power_of_n(low) >= target:
        return 2
    n = brentq(lambda x: power_of_n(x) - target, low, high, xtol=1e-9 * high, rtol=1e-14)
    return max(2, math.ceil(n - 1e-9))


def plan_sample_size(
    mean: float,
    variance: float | None,
    relative_mde: float,
    *,
    binomial: bool = False,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> PowerPlan:
    """Units per arm to detect a relative change ``relative_mde`` of a metric with per-unit
    ``mean`` (a rate when ``binomial``) and per-unit ``variance`` (ignored for binomial metrics:
    ``p₀(1-p₀) + p₁(1-p₁)``; for a ratio metric the mean is the ratio and the variance
    :func:`ratio_unit_variance`), planned with CUPED's ``σ²(1-ρ²)`` and, when ``sequential``, the
    always-valid interval tuned at ``sequential_tuning`` units. Raises ValueError naming a bad input."""
    from scipy.stats import norm

    shrink = _validated(mean, variance, binomial, power, cuped_correlation, sequential_tuning)
    if relative_mde == 0 or not math.isfinite(relative_mde):
        raise ValueError(f"relative_mde must be a non-zero number (0.05 for +5%), got {relative_mde!r}.")
    a = comparison_alpha(alpha, arms, bonferroni)
    variance_sum = _variance_sum(mean, variance, relative_mde, binomial, shrink)
    guess = variance_sum * ((norm.ppf(1 - a / 2) + norm.ppf(power)) / (mean * relative_mde)) ** 2
    fixed = _power_function(mean, variance, binomial, a, shrink, False, sequential_tuning)
    fixed_n = _smallest_n(lambda n: fixed(n, relative_mde), power, guess)
    units = fixed_n
    if sequential:
        planned = _power_function(mean, variance, binomial, a, shrink, True, sequential_tuning)
        units = _smallest_n(lambda n: planned(n, relative_mde), power, fixed_n)
    unit_variance = mean * (1 - mean) * shrink if binomial else variance * shrink  # type: ignore[operator]
    return PowerPlan(units, arms, relative_mde, a, power, unit_variance, 1 - shrink, sequential, fixed_n)


def plan_mde(
    mean: float,
    variance: float | None,
    units_per_arm: int,
    *,
    binomial: bool = False,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> float:
    """Smallest relative increase of ``mean`` detected with probability ``power`` given
    ``units_per_arm`` (solves :func:`plan_sample_size` for the effect, same inputs)."""
    from scipy.optimize import brentq

    shrink = _validated(mean, variance, binomial, power, cuped_correlation, sequential_tuning)
    if not units_per_arm >= 2:
        raise ValueError(f"units_per_arm must be at least 2, got {units_per_arm!r}.")
    a = comparison_alpha(alpha, arms, bonferroni)
    planned = _power_function(mean, variance, binomial, a, shrink, sequential, sequential_tuning)
    if binomial:
        upper = (1 - mean) / mean * (1 - 1e-9)
        if planned(units_per_arm, upper) < power:
            raise ValueError(
                f"{units_per_arm} units per arm cannot reach power {power} for any increase of a rate of {mean}."
            )
    else:
        upper = 1.0
        for _ in range(200):
            if planned(units_per_arm, upper) >= power:
                break
            upper *= 2
    return float(brentq(lambda rel: planned(units_per_arm, rel) - power, 1e-12, upper, xtol=1e-13))


def binomial_sample_size(
    baseline_rate: float,
    relative_mde: float,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> int:
    """Units per arm to detect a relative change ``relative_mde`` of a conversion rate
    ``baseline_rate``, with variance ``p₀(1-p₀) + p₁(1-p₁)`` per unit (unpooled, Cohen 1988);
    CUPED and sequential options as :func:`plan_sample_size`."""
    return plan_sample_size(
        baseline_rate, None, relative_mde, binomial=True, arms=arms, alpha=alpha, power=power, bonferroni=bonferroni,
        cuped_correlation=cuped_correlation, sequential=sequential, sequential_tuning=sequential_tuning,
    ).units_per_arm  # fmt: skip


def mean_sample_size(
    baseline_mean: float,
    baseline_sd: float,
    relative_mde: float,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> int:
    """Units per arm to detect a relative change ``relative_mde`` of a mean ``baseline_mean`` with
    per-unit standard deviation ``baseline_sd`` in both arms (Cohen 1988); CUPED and sequential
    options as :func:`plan_sample_size`."""
    if not baseline_sd > 0:
        raise ValueError("baseline_sd must be positive and baseline_mean non-zero to plan on a relative effect.")
    return plan_sample_size(
        baseline_mean, baseline_sd**2, relative_mde, arms=arms, alpha=alpha, power=power, bonferroni=bonferroni,
        cuped_correlation=cuped_correlation, sequential=sequential, sequential_tuning=sequential_tuning,
    ).units_per_arm  # fmt: skip


def binomial_mde(
    baseline_rate: float,
    units_per_arm: int,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> float:
    """Smallest relative increase of ``baseline_rate`` detected with probability ``power`` given
    ``units_per_arm`` (solves :func:`binomial_sample_size` for the effect)."""
    return plan_mde(
        baseline_rate, None, units_per_arm, binomial=True, arms=arms, alpha=alpha, power=power, bonferroni=bonferroni,
        cuped_correlation=cuped_correlation, sequential=sequential, sequential_tuning=sequential_tuning,
    )  # fmt: skip


def mean_mde(
    baseline_mean: float,
    baseline_sd: float,
    units_per_arm: int,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
    cuped_correlation: float = 0.0,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
) -> float:
    """Smallest relative change of ``baseline_mean`` detected with probability ``power`` given
    ``units_per_arm`` and per-unit sd ``baseline_sd`` (solves :func:`mean_sample_size`)."""
    if not baseline_sd > 0:
        raise ValueError("baseline_sd must be positive and baseline_mean non-zero to plan on a relative effect.")
    return abs(
        plan_mde(
            baseline_mean, baseline_sd**2, units_per_arm, arms=arms, alpha=alpha, power=power, bonferroni=bonferroni,
            cuped_correlation=cuped_correlation, sequential=sequential, sequential_tuning=sequential_tuning,
        )
    )  # fmt: skip


def achieved_power(control: ArmMoments, treatment: ArmMoments, relative_effect: float, *, alpha: float = 0.05) -> float:
    """Power of the running test, with its current units and observed variances, to detect a true
    relative effect ``relative_effect`` (a planned MDE, not the observed effect): se from
    ``s₁²/n₁ + s₂²/n₂`` (Cohen 1988). For GrowthBook's mid-experiment power (sample still needed,
    corrections, sequential, Bayesian) see :mod:`workbench.stats.midexperiment_power`."""
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    return power_at(control.unadjusted_mean * relative_effect, se, alpha)
