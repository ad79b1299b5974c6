"""Always-valid confidence sequences: results that stay valid however often you peek.

GrowthBook's sequential testing (``gbstats/frequentist/tests.py`` at its main branch): the
asymptotic confidence sequences of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023),
"Time-uniform central limit theory and asymptotic confidence sequences" (arXiv:2103.06476; eq. 9
for the two-sided interval, eq. 134 for the one-sided one, eq. 155 for the p-value, eq. 161 for ρ),
tuned by the number of units N* at which they are tightest (GrowthBook's "tuning parameter",
default 5000). One-sided sequences serve guardrails (GrowthBook #3556).
"""

from __future__ import annotations

import math

from workbench.stats.frequentist import Alternative, Difference, FrequentistResult, difference
from workbench.stats.moments import ArmMoments

DEFAULT_TUNING = 5000.0


def sequential_rho(alpha: float, tuning: float = DEFAULT_TUNING, two_sided: bool = True) -> float:
    """Mixture width ``ρ = sqrt((-2 ln a + ln(1 - 2 ln a)) / N*)`` with ``a = α`` two-sided and
    ``a = 2α`` one-sided (Waudby-Smith et al. 2023, eq. 161)."""
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)


def sequential_halfwidth(
    standard_error: float, total_units: float, alpha: float, tuning: float = DEFAULT_TUNING
) -> float:
    """Half-width of the two-sided always-valid interval of an estimate with ``standard_error`` from
    ``total_units`` units (both arms): ``s·sqrt(2k·ln(sqrt(k)/α)/(Nρ)²)`` with ``s² = N·se²`` and
    ``k = Nρ² + 1`` (Waudby-Smith et al. 2023, eq. 9). Raises ValueError for a bad argument."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}.")
    if not tuning > 0:
        raise ValueError(f"the sequential tuning parameter must be a positive number of units, got {tuning!r}.")
    if not total_units > 0:
        raise ValueError(f"total_units must be positive, got {total_units!r}.")
    rho = sequential_rho(alpha, tuning)
    n = float(total_units)
    k = n * rho**2 + 1
    return math.sqrt(n) * standard_error * math.sqrt(2 * k * math.log(math.sqrt(k) / alpha) / (n * rho) ** 2)


def sequential_test(
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    alternative: Alternative = "two-sided",
    diff: Difference | None = None,
) -> FrequentistResult:
    """Always-valid interval and p-value, with ``s² = N·var(θ̂)``, ``N = n₁ + n₂`` and ``k = Nρ² + 1``.

    Two-sided: ``θ̂ ± s·sqrt(2k·ln(sqrt(k)/α) / (Nρ)²)`` and p = ``min(1, 1/e)`` for the e-value
    ``e = exp(ρ²·N·θ̂²/(2·var(θ̂)·k)) / sqrt(k)`` (eqs. 9, 155). One-sided ("less": treatment below
    control, the interval ``(-inf, θ̂ + h]``; "greater": ``[θ̂ - h, inf)``):
    ``h = s·sqrt(2k/(Nρ)² · ln(1 + sqrt(k)/(2α)))`` (eq. 134) with ρ from 2α, and p the α at which
    the bound touches 0, in closed form ``sqrt(k) / (2·(exp(θ̂²/(s²·2k/(Nρ)²)) - 1))`` (1 when θ̂
    is on the other side). GrowthBook finds that α by bisection and reports it within
    [1e-5, 0.4999]; we report it exactly. ``diff`` replaces the arms' own difference (a
    post-stratified estimate). The arms must pass ``comparison_note``; one-sided sequences need
    α < 0.5."""
    diff = diff or difference(control, treatment, relative)
    n_total = control.n + treatment.n
    s2 = diff.variance * n_total
    if alternative == "two-sided":
        rho = sequential_rho(alpha, tuning)
        k = n_total * rho**2 + 1
        width = sequential_halfwidth(diff.standard_error, n_total, alpha, tuning)
        st2 = diff.estimate**2 * n_total / diff.variance
        log_evalue = rho**2 * st2 / (2 * k) - 0.5 * math.log(k)
        p_value = min(1.0, math.exp(-log_evalue))
        return FrequentistResult(
            diff.estimate, diff.standard_error, diff.dof, diff.estimate - width, diff.estimate + width, p_value
        )
    if not alpha < 0.5:
        raise ValueError(f"one-sided sequential tests need alpha < 0.5, got {alpha!r}.")
    rho = sequential_rho(alpha, tuning, two_sided=False)
    k = n_total * rho**2 + 1
    factor = s2 * 2 * k / (n_total * rho) ** 2
    width = math.sqrt(factor * math.log(1 + math.sqrt(k) / (2 * alpha)))
    toward = diff.estimate < 0 if alternative == "less" else diff.estimate > 0
    p_value = min(1.0, math.sqrt(k) / (2 * math.expm1(diff.estimate**2 / factor))) if toward else 1.0
    if alternative == "less":
        lower, upper = -math.inf, diff.estimate + width
    else:
        lower, upper = diff.estimate - width, math.inf
    return FrequentistResult(diff.estimate, diff.standard_error, diff.dof, lower, upper, p_value)
