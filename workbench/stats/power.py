"""Power analysis: units needed per arm, minimum detectable effect, and power achieved so far.

Normal approximation of the two-sample test of a difference in means with unequal (unpooled)
variances, two-sided unless said otherwise: power ``Φ(δ/se - z₁₋α/₂) + Φ(-δ/se - z₁₋α/₂)``
(Cohen 1988, "Statistical Power Analysis for the Behavioral Sciences", ch. 2 and 6; the formula of
statsmodels' ``NormalIndPower``). With k arms (one control, k-1 treatments, equal split) each
treatment is compared with the control at ``alpha/(k-1)`` by default (Bonferroni), so the plan
holds for every comparison. Effects are relative to the baseline: 0.05 means +5%.
"""

from __future__ import annotations

import math

from workbench.stats.moments import ArmMoments


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low < value < high:
        raise ValueError(f"{name} must be between {low} and {high} (exclusive), got {value!r}.")


def comparison_alpha(alpha: float, arms: int, bonferroni: bool = True) -> float:
    """Per-comparison significance level: ``alpha/(arms-1)`` with the Bonferroni split, else alpha."""
    if arms < 2:
        raise ValueError(f"arms must be at least 2 (a control and a treatment), got {arms!r}.")
    _check("alpha", alpha, 0, 1)
    return alpha / (arms - 1) if bonferroni else alpha


def power_at(effect: float, standard_error: float, alpha: float = 0.05, two_sided: bool = True) -> float:
    """Probability of a significant result when the true difference is ``effect`` and the estimate's
    standard error is ``standard_error``: ``Φ(|δ|/se - z) + Φ(-|δ|/se - z)`` with ``z = z₁₋α/₂``
    (two-sided), or ``Φ(|δ|/se - z₁₋α)`` (Cohen 1988)."""
    from scipy.stats import norm

    shift = abs(effect) / standard_error
    if two_sided:
        z = norm.ppf(1 - alpha / 2)
        return float(norm.cdf(shift - z) + norm.cdf(-shift - z))
    return float(norm.cdf(shift - norm.ppf(1 - alpha)))


def _binomial_variances(baseline_rate: float, relative_effect: float) -> float:
    treated = baseline_rate * (1 + relative_effect)
    if not 0 < treated < 1:
        raise ValueError(
            f"a relative effect of {relative_effect!r} moves the rate {baseline_rate!r} outside (0, 1); choose a smaller effect."
        )
    return baseline_rate * (1 - baseline_rate) + treated * (1 - treated)


def _units_for(power: float, alpha: float, variance_sum: float, effect: float) -> int:
    """Smallest n per arm with power_at(effect, sqrt(variance_sum/n), alpha) ≥ power."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    guess = variance_sum * ((norm.ppf(1 - alpha / 2) + norm.ppf(power)) / effect) ** 2
    n = brentq(lambda n: power_at(effect, math.sqrt(variance_sum / n), alpha) - power, guess / 2, guess * 2 + 2)
    return math.ceil(n - 1e-9)


def binomial_sample_size(
    baseline_rate: float,
    relative_mde: float,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
) -> int:
    """Units per arm to detect a relative change ``relative_mde`` of a conversion rate
    ``baseline_rate``, with variance ``p₀(1-p₀) + p₁(1-p₁)`` per unit (unpooled, Cohen 1988)."""
    _check("baseline_rate", baseline_rate, 0, 1)
    _check("power", power, 0, 1)
    a = comparison_alpha(alpha, arms, bonferroni)
    return _units_for(power, a, _binomial_variances(baseline_rate, relative_mde), baseline_rate * relative_mde)


def mean_sample_size(
    baseline_mean: float,
    baseline_sd: float,
    relative_mde: float,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
) -> int:
    """Units per arm to detect a relative change ``relative_mde`` of a mean ``baseline_mean`` with
    per-unit standard deviation ``baseline_sd`` in both arms (Cohen 1988)."""
    _check("power", power, 0, 1)
    if not baseline_sd > 0 or baseline_mean == 0:
        raise ValueError("baseline_sd must be positive and baseline_mean non-zero to plan on a relative effect.")
    a = comparison_alpha(alpha, arms, bonferroni)
    return _units_for(power, a, 2 * baseline_sd**2, baseline_mean * relative_mde)


def binomial_mde(
    baseline_rate: float,
    units_per_arm: int,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
) -> float:
    """Smallest relative increase of ``baseline_rate`` detected with probability ``power`` given
    ``units_per_arm`` (solves :func:`binomial_sample_size` for the effect)."""
    from scipy.optimize import brentq

    _check("baseline_rate", baseline_rate, 0, 1)
    _check("power", power, 0, 1)
    a = comparison_alpha(alpha, arms, bonferroni)
    upper = (1 - baseline_rate) / baseline_rate * (1 - 1e-9)

    def shortfall(rel: float) -> float:
        se = math.sqrt(_binomial_variances(baseline_rate, rel) / units_per_arm)
        return power_at(baseline_rate * rel, se, a) - power

    if shortfall(upper) < 0:
        raise ValueError(
            f"{units_per_arm} units per arm cannot reach power {power} for any increase of a rate of {baseline_rate}."
        )
    return float(brentq(shortfall, 1e-12, upper, xtol=1e-12))


def mean_mde(
    baseline_mean: float,
    baseline_sd: float,
    units_per_arm: int,
    *,
    arms: int = 2,
    alpha: float = 0.05,
    power: float = 0.8,
    bonferroni: bool = True,
) -> float:
    """Smallest relative change of ``baseline_mean`` detected with probability ``power`` given
    ``units_per_arm`` and per-unit sd ``baseline_sd`` (solves :func:`mean_sample_size`)."""
    from scipy.optimize import brentq

    _check("power", power, 0, 1)
    a = comparison_alpha(alpha, arms, bonferroni)
    se = math.sqrt(2 * baseline_sd**2 / units_per_arm)
    effect = brentq(lambda d: power_at(d, se, a) - power, 1e-12 * se, 20 * se, xtol=1e-14 * se)
    return float(effect / abs(baseline_mean))


def achieved_power(control: ArmMoments, treatment: ArmMoments, relative_effect: float, *, alpha: float = 0.05) -> float:
    """Power of the running test, with its current units and observed variances, to detect a true
    relative effect ``relative_effect`` (a planned MDE, not the observed effect): se from
    ``s₁²/n₁ + s₂²/n₂`` (Cohen 1988)."""
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    return power_at(control.unadjusted_mean * relative_effect, se, alpha)
