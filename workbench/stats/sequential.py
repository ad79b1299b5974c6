"""Always-valid confidence sequences: results that stay valid however often you peek.

GrowthBook's sequential testing (gbstats 0.8.0 ``SequentialTwoSidedTTest``): the asymptotic
confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023), "Time-uniform central
limit theory and asymptotic confidence sequences" (arXiv:2103.06476, eq. 9 for the interval, eq. 155
for the p-value, eq. 161 for ρ), tuned by the number of units N* at which it is tightest
(GrowthBook's "tuning parameter", default 5000).
"""

from __future__ import annotations

import math

from workbench.stats.frequentist import FrequentistResult, difference
from workbench.stats.moments import ArmMoments

DEFAULT_TUNING = 5000.0


def sequential_rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """Mixture width ``ρ = sqrt((-2 ln α + ln(1 - 2 ln α)) / N*)`` (Waudby-Smith et al. 2023, eq. 161)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def sequential_test(
    control: ArmMoments,
    treatment: ArmMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
) -> FrequentistResult:
    """Two-sided always-valid interval ``θ̂ ± s·sqrt(2(Nρ²+1)·ln(sqrt(Nρ²+1)/α) / (Nρ)²)`` with
    ``s² = N·var(θ̂)`` and ``N = n₁ + n₂``, and p-value ``min(1, 1/e)`` for the e-value
    ``e = exp(ρ²·N·θ̂²/(2·var(θ̂)·(Nρ²+1))) / sqrt(Nρ²+1)`` (Waudby-Smith et al. 2023, eqs. 9 and 155;
    gbstats ``SequentialTwoSidedTTest``). The arms must pass ``comparison_note``."""
    diff = difference(control, treatment, relative)
    n_total = control.n + treatment.n
    rho = sequential_rho(alpha, tuning)
    s2 = diff.variance * n_total
    tr2p1 = n_total * rho**2 + 1
    width = math.sqrt(s2) * math.sqrt(2 * tr2p1 * math.log(math.sqrt(tr2p1) / alpha) / (n_total * rho) ** 2)
    st2 = diff.estimate**2 * n_total / diff.variance
    log_evalue = rho**2 * st2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    p_value = min(1.0, math.exp(-log_evalue))
    return FrequentistResult(
        diff.estimate, diff.standard_error, diff.dof, diff.estimate - width, diff.estimate + width, p_value
    )
