"""Per-arm moments (units, mean, per-unit variance) from the sums of the sufficient-statistics table.

One :class:`ArmMoments` per variation and metric is all the tests need. A row's metric type (the
registry, :mod:`workbench.metric_types`) names the statistic computed from its sums; the formulas
are GrowthBook's (gbstats 0.8.0 ``models/statistics.py``), so our numbers match its engine:

* proportion (binomial): Bernoulli mean ``p = Σx/n`` and variance ``p(1-p)``;
* sample mean (count, mean, duration): sample mean and unbiased sample variance
  ``(Σx² - (Σx)²/n) / (n-1)``;
* ratio: ``Σm/Σd`` with the delta-method variance using the numerator–denominator covariance
  (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics");
* CUPED: ``ȳ - θ·x̄`` with θ pooled over the two arms compared (Deng, Xu, Kohavi & Walker 2013,
  "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data");
* quantile: the sample quantile with a variance read back from its order-statistic interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from workbench import metric_types

Z_95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), the width of the table's quantile interval


@dataclass(frozen=True)
class ArmMoments:
    """One arm of one metric: ``n`` units, the ``mean`` compared between arms (CUPED-adjusted when
    regression adjustment is on), the per-unit ``variance`` (the mean's variance is
    ``variance / n``) and the ``unadjusted_mean`` (the relative effect's denominator)."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float

    @property
    def standard_deviation(self) -> float:
        """Per-unit standard deviation (0 when the variance is not positive, as in gbstats)."""
        return math.sqrt(self.variance) if self.variance > 0 else 0.0


def proportion_moments(n: int, successes: float) -> ArmMoments:
    """Bernoulli mean ``p = successes / n`` and variance ``p(1-p)`` (gbstats ``ProportionStatistic``)."""
    mean = successes / n if n > 0 else 0.0
    return ArmMoments(int(n), mean, mean * (1.0 - mean), mean)


def sample_mean_moments(n: int, total: float, sum_squares: float) -> ArmMoments:
    """Sample mean ``Σx/n`` and unbiased variance ``(Σx² - (Σx)²/n)/(n-1)``, 0 when n ≤ 1
    (gbstats ``SampleMeanStatistic``)."""
    mean = total / n if n > 0 else 0.0
    variance = (sum_squares - total * total / n) / (n - 1) if n > 1 else 0.0
    return ArmMoments(int(n), mean, variance, mean)


def _sample_covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    return (sum_xy - sum_x * sum_y / n) / (n - 1) if n > 1 else 0.0


def ratio_moments(
    n: int,
    numerator_sum: float,
    numerator_sum_squares: float,
    denominator_sum: float,
    denominator_sum_squares: float,
    numerator_denominator_sum_product: float,
) -> ArmMoments:
    """Ratio of sums ``Σm/Σd`` over ``n`` units with the delta-method per-unit variance
    ``σm²/μd² - 2·cov(m,d)·μm/μd³ + μm²·σd²/μd⁴`` (gbstats ``RatioStatistic``; Deng et al. 2018).
    Both parts are treated as sample means (count-type components)."""
    m = sample_mean_moments(n, numerator_sum, numerator_sum_squares)
    d = sample_mean_moments(n, denominator_sum, denominator_sum_squares)
    mean = numerator_sum / denominator_sum if denominator_sum != 0 else 0.0
    if d.mean == 0 or n <= 1:
        return ArmMoments(int(n), mean, 0.0, mean)
    covariance = _sample_covariance(n, numerator_sum, denominator_sum, numerator_denominator_sum_product)
    variance = m.variance / d.mean**2 - 2 * covariance * m.mean / d.mean**3 + m.mean**2 * d.variance / d.mean**4
    return ArmMoments(int(n), mean, variance, mean)


@dataclass(frozen=True)
class CupedSums:
    """One arm's sums for regression adjustment: outcome ``y`` (``main_*``) and pre-exposure
    covariate ``x`` (``covariate_*``) over ``n`` units; ``binomial`` selects Bernoulli variances."""

    n: int
    main_sum: float
    main_sum_squares: float
    covariate_sum: float
    covariate_sum_squares: float
    main_covariate_sum_product: float
    binomial: bool = False

    def outcome(self) -> ArmMoments:
        """Moments of the unadjusted outcome y."""
        if self.binomial:
            return proportion_moments(self.n, self.main_sum)
        return sample_mean_moments(self.n, self.main_sum, self.main_sum_squares)

    def covariate(self) -> ArmMoments:
        """Moments of the pre-exposure covariate x."""
        if self.binomial:
            return proportion_moments(self.n, self.covariate_sum)
        return sample_mean_moments(self.n, self.covariate_sum, self.covariate_sum_squares)

    def covariance(self) -> float:
        """Sample covariance of y and x, ``(Σxy - ΣxΣy/n)/(n-1)``."""
        return _sample_covariance(self.n, self.main_sum, self.covariate_sum, self.main_covariate_sum_product)

    def __add__(self, other: CupedSums) -> CupedSums:
        return CupedSums(
            self.n + other.n,
            self.main_sum + other.main_sum,
            self.main_sum_squares + other.main_sum_squares,
            self.covariate_sum + other.covariate_sum,
            self.covariate_sum_squares + other.covariate_sum_squares,
            self.main_covariate_sum_product + other.main_covariate_sum_product,
            self.binomial,
        )


def pooled_theta(control: CupedSums, treatment: CupedSums) -> float:
    """CUPED's θ = cov(y, x) / var(x) over the two arms pooled (Deng et al. 2013; gbstats
    ``compute_theta``); 0 when either pooled variance is 0, which turns the adjustment off."""
    joint = control + treatment
    if joint.covariate().variance == 0 or joint.outcome().variance == 0:
        return 0.0
    return joint.covariance() / joint.covariate().variance


def cuped_moments(sums: CupedSums, theta: float) -> ArmMoments:
    """Adjusted mean ``ȳ - θx̄`` and per-unit variance ``σy² + θ²σx² - 2θ·cov(y,x)``, keeping ``ȳ``
    as the unadjusted mean (Deng et al. 2013; gbstats ``RegressionAdjustedStatistic``)."""
    y, x = sums.outcome(), sums.covariate()
    variance = 0.0 if sums.n <= 1 else y.variance + theta**2 * x.variance - 2 * theta * sums.covariance()
    return ArmMoments(sums.n, y.mean - theta * x.mean, variance, y.mean)


def quantile_moments(n: int, quantile: float, lower: float, upper: float) -> ArmMoments:
    """Sample quantile over ``n`` values with per-value variance ``(n-1)·((upper-lower)/(2·1.96))²``
    read from its 95% order-statistic interval (gbstats ``QuantileStatistic`` with n* = n), floored
    at 1e-5 from 100 values on as gbstats does."""
    variance = (n - 1) * ((upper - lower) / (2 * Z_95)) ** 2 if n > 1 else 0.0
    if n >= 100:
        variance = max(variance, 1e-5)
    return ArmMoments(int(n), quantile, variance, quantile)


def _value(row: Mapping, column: str) -> float:
    value = row.get(column)
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def has_covariate(row: Mapping) -> bool:
    """True when the row carries CUPED covariate sums (``covariate_sum`` present and not NaN)."""
    value = row.get("covariate_sum")
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def cuped_sums(row: Mapping) -> CupedSums:
    """The :class:`CupedSums` of one sufficient-statistics row."""
    return CupedSums(
        int(_value(row, "users")),
        _value(row, "main_sum"),
        _value(row, "main_sum_squares"),
        _value(row, "covariate_sum"),
        _value(row, "covariate_sum_squares"),
        _value(row, "main_covariate_sum_product"),
        binomial=metric_types.get(row["metric_type"]).statistic == "proportion",
    )


# Each statistic of workbench.metric_types.STATISTIC_COLUMNS, from one sufficient-statistics row.
STATISTICS: dict[str, Callable[[Mapping], ArmMoments]] = {
    "proportion": lambda row: proportion_moments(int(_value(row, "count")), _value(row, "main_sum")),
    "sample_mean": lambda row: sample_mean_moments(
        int(_value(row, "count")), _value(row, "main_sum"), _value(row, "main_sum_squares")
    ),
    "ratio": lambda row: ratio_moments(
        int(_value(row, "users")),
        _value(row, "main_sum"),
        _value(row, "main_sum_squares"),
        _value(row, "denominator_sum"),
        _value(row, "denominator_sum_squares"),
        _value(row, "main_denominator_sum_product"),
    ),
    "quantile": lambda row: quantile_moments(
        int(_value(row, "quantile_n")),
        _value(row, "quantile"),
        _value(row, "quantile_lower"),
        _value(row, "quantile_upper"),
    ),
}


def row_moments(row: Mapping) -> ArmMoments:
    """Unadjusted :class:`ArmMoments` of one sufficient-statistics row: the statistic its
    ``metric_type`` names (see docs/sufficient-statistics.md for the columns)."""
    try:
        kind = metric_types.get(row["metric_type"])
    except ValueError as exc:
        raise ValueError(f"{exc.args[0].rstrip('.')}; fix the sufficient-statistics row.") from None
    return STATISTICS[kind.statistic](row)


def comparison_note(control: ArmMoments, treatment: ArmMoments, relative: bool) -> str | None:
    """Why the two arms cannot be compared (a sentence for the result's ``note``), or None.

    Mirrors gbstats' refusals: a variation without units, zero variance, and — for relative
    effects — a control mean of zero."""
    if control.n == 0 and treatment.n == 0:
        return "no units in either variation"
    if control.n == 0:
        return "the control has no units here, so there is nothing to compare against"
    if treatment.n == 0:
        return "this variation has no units here"
    if control.n < 2 or treatment.n < 2:
        return "fewer than 2 units in a variation: the variance cannot be estimated"
    if relative and control.unadjusted_mean == 0:
        return "the control mean is 0, so the relative effect is undefined; use difference_type='absolute'"
    if control.variance <= 0 or treatment.variance <= 0:
        return "zero variance in a variation (every unit has the same value): no test is possible"
    return None
