"""abautomator's view of a comparison: absolute and relative differences with 68% and 95% intervals,
for the interval charts of the reports (68% bar, 95% whiskers).

Fixes abautomator's two defects (docs: ../shared/reference/abautomator.md): the standard error of a
difference uses ``s₁²/n₁ + s₂²/n₂`` (for rates ``p(1-p)`` over each arm's own n, never
``1/(n₁+n₂)``), and p-values are two-sided. Rates use the two-proportion z-test (Wald, unpooled),
other metrics Welch's t-test (Welch 1947); the relative difference's interval uses the
delta-method standard error (as in :mod:`workbench.stats.frequentist`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.stats.frequentist import difference
from workbench.stats.moments import ArmMoments

SMALL_SAMPLE_UNITS = 30


@dataclass(frozen=True)
class DifferenceIntervals:
    """Absolute and relative difference (treatment - control, and over control) with their 68% and
    95% intervals, the two-sided p-value, and a ``note`` when an arm has fewer than 30 units."""

    absolute: float
    absolute_68: tuple[float, float]
    absolute_95: tuple[float, float]
    relative: float
    relative_68: tuple[float, float]
    relative_95: tuple[float, float]
    p_value: float
    note: str | None = None


def difference_intervals(control: ArmMoments, treatment: ArmMoments, *, proportion: bool) -> DifferenceIntervals:
    """The intervals of one comparison: normal quantiles and a z-test when ``proportion`` (the
    two-proportion Wald test), Welch t quantiles and test otherwise. The arms must pass
    ``comparison_note``; the relative parts are NaN when the control mean is 0."""
    from scipy.stats import norm, t

    absolute = difference(control, treatment, relative=False)
    distribution = norm() if proportion else t(absolute.dof)

    def interval(estimate: float, se: float, level: float) -> tuple[float, float]:
        width = float(distribution.ppf(0.5 + level / 2)) * se
        return estimate - width, estimate + width

    p_value = 2 * float(distribution.sf(abs(absolute.estimate) / absolute.standard_error))
    if control.unadjusted_mean != 0:
        rel = difference(control, treatment, relative=True)
        relative, relative_68, relative_95 = (
            rel.estimate,
            interval(rel.estimate, rel.standard_error, 0.68),
            interval(rel.estimate, rel.standard_error, 0.95),
        )
    else:
        relative, relative_68, relative_95 = math.nan, (math.nan, math.nan), (math.nan, math.nan)
    note = None
    if min(control.n, treatment.n) < SMALL_SAMPLE_UNITS:
        note = f"fewer than {SMALL_SAMPLE_UNITS} units in an arm: the normal approximation is rough"
    return DifferenceIntervals(
        absolute.estimate,
        interval(absolute.estimate, absolute.standard_error, 0.68),
        interval(absolute.estimate, absolute.standard_error, 0.95),
        relative,
        relative_68,
        relative_95,
        p_value,
        note,
    )
