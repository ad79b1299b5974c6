"""Per-arm moments (units, mean, per-unit variance) from the sums of the sufficient-statistics table.

One :class:`ArmMoments` per variation and metric is all the tests need. A row's metric type (the
registry, :mod:`workbench.metric_types`) names the statistic computed from its sums; the formulas
are those of GrowthBook's engine at its main branch (``gbstats/models/statistics.py``, commit
8f1db44), so our numbers match it:

* proportion (binomial): Bernoulli mean ``p = Σx/n`` and variance ``p(1-p)``;
* sample mean (count, mean, duration): sample mean and unbiased sample variance
  ``(Σx² - (Σx)²/n) / (n-1)``;
* ratio: ``Σm/Σd`` with the delta-method variance using the numerator–denominator covariance
  (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics");
* CUPED: ``ȳ - θ·x̄`` with θ pooled over the two arms compared (Deng, Xu, Kohavi & Walker 2013,
  "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data");
  for two Bernoulli variables the covariance is the population one, ``Σxy/n - ΣxΣy/n²`` (GrowthBook
  #4250);
* ratio CUPED: ``m/d - θ·m₀/d₀`` (post and pre-exposure ratios) with the variance of the delta method
  over the four per-unit means and θ minimising it over both arms (GrowthBook #3649);
* quantiles: the sample quantile with a variance read back from its order-statistic interval
  (unit level), inflated for event-level quantiles by the clustered (per-unit) variance of the
  empirical distribution function at the quantile (GrowthBook #6250).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from workbench import metric_types

Z_95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), the width of the table's quantile interval
QUANTILE_VARIANCE_FLOOR = 1e-5  # GrowthBook's floor of a quantile's variance from 100 values on
RATIO_THETA_EPSILON = 1e-8  # |θ| below this turns ratio CUPED off (GrowthBook's threshold)


@dataclass(frozen=True)
class ArmMoments:
    """One arm of one metric: ``n`` units, the ``mean`` compared between arms (CUPED-adjusted when
    regression adjustment is on), the per-unit ``variance`` (the mean's variance is
    ``variance / n``), the ``unadjusted_mean`` (the relative effect's denominator) and a ``note``
    when the arm's statistic cannot be estimated (a sentence for the result)."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float
    note: str | None = None

    @property
    def standard_deviation(self) -> float:
        """Per-unit standard deviation (0 when the variance is not positive, as in gbstats)."""
        return math.sqrt(self.variance) if self.variance > 0 else 0.0


@dataclass(frozen=True)
class CupedArm(ArmMoments):
    """A CUPED-adjusted arm, with the parts the relative effect's variance needs: the outcome's
    per-unit ``post_variance``, the covariate's ``pre_variance``, their ``covariance`` and ``theta``
    (``unadjusted_mean`` is the outcome's mean)."""

    post_variance: float = 0.0
    pre_variance: float = 0.0
    covariance: float = 0.0
    theta: float = 0.0


@dataclass(frozen=True)
class RatioCupedArm(ArmMoments):
    """A CUPED-adjusted ratio arm: ``means`` of (numerator, denominator, numerator before,
    denominator before) per unit, their per-unit covariance matrix ``cov`` (4×4) and ``theta``;
    ``mean`` is ``m/d - θ·m₀/d₀`` and ``variance`` is ``∇ᵀ·cov·∇`` (the delta method)."""

    means: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    cov: tuple[tuple[float, ...], ...] = ()
    theta: float = 0.0

    def gradient(self) -> np.ndarray:
        """∂(m/d - θ·m₀/d₀)/∂(m, d, m₀, d₀) at the arm's means (:func:`ratio_cuped_gradient`)."""
        return ratio_cuped_gradient(self.means, self.theta)


def ratio_cuped_gradient(means: tuple[float, float, float, float], theta: float) -> np.ndarray:
    """∂(m/d - θ·m₀/d₀)/∂(m, d, m₀, d₀) at ``means``, zero when a denominator mean is 0."""
    m, d, m0, d0 = means
    if d == 0 or d0 == 0:
        return np.zeros(4)
    return np.array([1 / d, -m / d**2, -theta / d0, theta * m0 / d0**2])


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


def covariance(n: int, sum_x: float, sum_y: float, sum_xy: float, bernoulli: bool = False) -> float:
    """Covariance of two per-unit variables from their sums over ``n`` units: the sample covariance
    ``(Σxy - ΣxΣy/n)/(n-1)``, or for two Bernoulli variables the population one
    ``Σxy/n - ΣxΣy/n²`` (consistent with their ``p(1-p)`` variances; GrowthBook #4250); 0 when
    n ≤ 1."""
    if n <= 1:
        return 0.0
    if bernoulli:
        return sum_xy / n - sum_x * sum_y / n**2
    return (sum_xy - sum_x * sum_y / n) / (n - 1)


def ratio_variance(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_md: float) -> float:
    """Delta-method variance of ``M/D``: ``σm²/μd² - 2·cov(m,d)·μm/μd³ + μm²·σd²/μd⁴`` (Deng et al.
    2018), 0 when ``μd`` is 0."""
    if mean_d == 0:
        return 0.0
    return var_m / mean_d**2 - 2 * cov_md * mean_m / mean_d**3 + mean_m**2 * var_d / mean_d**4


def ratio_moments(
    n: int,
    numerator_sum: float,
    numerator_sum_squares: float,
    denominator_sum: float,
    denominator_sum_squares: float,
    numerator_denominator_sum_product: float,
) -> ArmMoments:
    """Ratio of sums ``Σm/Σd`` over ``n`` units with the delta-method per-unit variance
    (:func:`ratio_variance`; gbstats ``RatioStatistic``). Both parts are treated as sample means
    (count-type components)."""
    m = sample_mean_moments(n, numerator_sum, numerator_sum_squares)
    d = sample_mean_moments(n, denominator_sum, denominator_sum_squares)
    mean = numerator_sum / denominator_sum if denominator_sum != 0 else 0.0
    if d.mean == 0 or n <= 1:
        return ArmMoments(int(n), mean, 0.0, mean)
    cov = covariance(n, numerator_sum, denominator_sum, numerator_denominator_sum_product)
    return ArmMoments(int(n), mean, ratio_variance(m.mean, m.variance, d.mean, d.variance, cov), mean)


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
        """Covariance of y and x (:func:`covariance`; the population one for Bernoulli variables)."""
        return covariance(self.n, self.main_sum, self.covariate_sum, self.main_covariate_sum_product, self.binomial)

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


def cuped_moments(sums: CupedSums, theta: float) -> CupedArm:
    """Adjusted mean ``ȳ - θx̄`` and per-unit variance ``σy² + θ²σx² - 2θ·cov(y,x)``, keeping ``ȳ``
    as the unadjusted mean (Deng et al. 2013; gbstats ``RegressionAdjustedStatistic``)."""
    y, x = sums.outcome(), sums.covariate()
    cov = sums.covariance()
    variance = 0.0 if sums.n <= 1 else y.variance + theta**2 * x.variance - 2 * theta * cov
    return CupedArm(sums.n, y.mean - theta * x.mean, variance, y.mean, None, y.variance, x.variance, cov, theta)


# The per-unit variables of a row by column prefix (``{prefix}_sum``, ``{prefix}_sum_squares``):
# outcome (numerator), denominator, and their pre-exposure values; a ratio CUPED row has all four.
RATIO_CUPED_VARIABLES = ("main", "denominator", "covariate", "denominator_pre")
# The column holding the sum of the products of two of them.
PRODUCTS = {
    frozenset({"main", "denominator"}): "main_denominator_sum_product",
    frozenset({"main", "covariate"}): "main_covariate_sum_product",
    frozenset({"main", "denominator_pre"}): "main_post_denominator_pre_sum_product",
    frozenset({"covariate", "denominator"}): "main_pre_denominator_post_sum_product",
    frozenset({"covariate", "denominator_pre"}): "main_pre_denominator_pre_sum_product",
    frozenset({"denominator", "denominator_pre"}): "denominator_post_denominator_pre_sum_product",
}


def ratio_cuped_moments(row: Mapping, theta: float) -> RatioCupedArm:
    """One arm of a ratio metric with CUPED: ``m/d - θ·m₀/d₀`` (0 when a denominator sum is 0), the
    per-unit covariance matrix of (m, d, m₀, d₀) from the row's sums (sample covariances) and the
    delta-method variance ``∇ᵀΣ∇`` (GrowthBook ``RegressionAdjustedRatioStatistic``)."""
    n = int(cell(row, "users"))
    sums = [cell(row, f"{name}_sum") for name in RATIO_CUPED_VARIABLES]
    means = tuple(total / n if n > 0 else 0.0 for total in sums)
    cov = np.zeros((4, 4))
    for i, a in enumerate(RATIO_CUPED_VARIABLES):
        cov[i, i] = sample_mean_moments(n, sums[i], cell(row, f"{a}_sum_squares")).variance
        for j in range(i):
            product = cell(row, PRODUCTS[frozenset({a, RATIO_CUPED_VARIABLES[j]})])
            cov[i, j] = cov[j, i] = covariance(n, sums[i], sums[j], product)
    post = sums[0] / sums[1] if sums[1] != 0 else 0.0
    pre = sums[2] / sums[3] if sums[3] != 0 else 0.0
    gradient = ratio_cuped_gradient(means, theta)
    mean = post - theta * pre if sums[1] != 0 and sums[3] != 0 else 0.0
    return RatioCupedArm(n, mean, float(gradient @ cov @ gradient), post, None, means, tuple(map(tuple, cov)), theta)


def ratio_cuped_theta(control: RatioCupedArm, treatment: RatioCupedArm) -> float:
    """θ minimising the variance of the adjusted difference: ``Σ cov(R, R₀) / Σ var(R₀)`` over the two
    arms, with R = m/d and R₀ = m₀/d₀ linearised by the delta method (GrowthBook
    ``compute_theta_regression_adjusted_ratio``); 0 when the pre-exposure ratio has no variance."""
    covariance_sum, variance_sum = 0.0, 0.0
    for arm in (control, treatment):
        gradient = ratio_cuped_gradient(arm.means, 1.0)  # ∇R₀ = -(the pre-exposure part at θ = 1)
        post, pre, cov = gradient[0:2], -gradient[2:4], np.array(arm.cov)
        covariance_sum += float(pre @ cov[2:4, 0:2] @ post)
        variance_sum += float(pre @ cov[2:4, 2:4] @ pre)
    return covariance_sum / variance_sum if variance_sum != 0 else 0.0


def quantile_moments(n: int, n_star: int, level: float, quantile: float, lower: float, upper: float) -> ArmMoments:
    """Sample quantile at ``level`` over ``n`` values with per-value variance
    ``(n*/n)·(n-1)·((upper-lower)/(2·1.96))²`` read from its 95% order-statistic interval evaluated
    at ``n*`` values, floored at 1e-5 from 100 values on (gbstats ``QuantileStatistic``). A ``note``
    says why it cannot be used: too few values for the quantile's interval to stay inside the
    data (``n ≤ 1.96²·q/(1-q)`` or ``n ≤ 1.96²·(1-q)/q``) or an interval of zero width."""
    return _quantile_arm(n, level, quantile, _order_statistic_variance(n, n_star, lower, upper))


def _order_statistic_variance(n: int, n_star: int, lower: float, upper: float) -> float:
    return (n_star / n) * (n - 1) * ((upper - lower) / (2 * Z_95)) ** 2 if n > 1 else 0.0


def _quantile_arm(n: int, level: float, quantile: float, variance: float) -> ArmMoments:
    note = None
    if not 0 < level < 1 or n <= Z_95**2 * level / (1 - level) or n <= Z_95**2 * (1 - level) / level:
        note = f"too few values ({n}) for the {level:g} quantile's interval: no test is possible"
    elif variance <= 0:
        note = "the quantile's interval has zero width (too few distinct values): no test is possible"
    if n >= 100:
        variance = max(variance, QUANTILE_VARIANCE_FLOOR)
    return ArmMoments(int(n), quantile, variance, quantile, note)


def clustered_quantile_moments(row: Mapping) -> ArmMoments:
    """Event-level quantile whose events are clustered in units: the order-statistic variance of
    :func:`quantile_moments` times ``v_cluster / (q(1-q)/n)``, where ``v_cluster`` is the
    delta-method variance over units of the share of events at or below the quantile,
    ``Σsᵢ/Σnᵢ`` (sᵢ events at or below it and nᵢ events of unit i; the ratio variance of
    :func:`ratio_variance` with population moments over the units) — GrowthBook's
    ``QuantileClusteredStatistic`` (#6250). Without clusters or events the variance is 0."""
    n, level = int(cell(row, "quantile_n")), cell(row, "quantile_level")
    units, below, events = int(cell(row, "users")), cell(row, "main_sum"), cell(row, "denominator_sum")
    variance = 0.0
    if n > 1 and level != 0 and units > 1 and events > 0:
        scale = units / (units - 1)  # population moments over units, made unbiased
        mu_s, mu_n = below / units, events / units
        var_s = (cell(row, "main_sum_squares") / units - mu_s**2) * scale
        var_n = (cell(row, "denominator_sum_squares") / units - mu_n**2) * scale
        cov_sn = (cell(row, "main_denominator_sum_product") / units - mu_s * mu_n) * scale
        cluster = ratio_variance(mu_s, var_s, mu_n, var_n, cov_sn) / units
        iid = _order_statistic_variance(
            n, int(cell(row, "quantile_nstar")), cell(row, "quantile_lower"), cell(row, "quantile_upper")
        )
        variance = iid * cluster / (level * (1 - level) / n)
    return _quantile_arm(n, level, cell(row, "quantile"), variance)


def cell(row: Mapping, column: str) -> float:
    """A sufficient-statistics row's number in ``column``: 0 when absent, None or NaN."""
    value = row.get(column)
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def present(row: Mapping, column: str) -> bool:
    """True when the row has a number in ``column`` (present, not None, not NaN)."""
    value = row.get(column)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def has_covariate(row: Mapping) -> bool:
    """True when the row carries CUPED covariate sums (``covariate_sum`` present)."""
    return present(row, "covariate_sum")


def cuped_sums(row: Mapping) -> CupedSums:
    """The :class:`CupedSums` of one sufficient-statistics row."""
    return CupedSums(
        int(cell(row, "users")),
        cell(row, "main_sum"),
        cell(row, "main_sum_squares"),
        cell(row, "covariate_sum"),
        cell(row, "covariate_sum_squares"),
        cell(row, "main_covariate_sum_product"),
        binomial=metric_types.get(row["metric_type"]).statistic == "proportion",
    )


# Each statistic of workbench.metric_types.STATISTIC_COLUMNS, from one sufficient-statistics row.
STATISTICS: dict[str, Callable[[Mapping], ArmMoments]] = {
    "proportion": lambda row: proportion_moments(int(cell(row, "count")), cell(row, "main_sum")),
    "sample_mean": lambda row: sample_mean_moments(
        int(cell(row, "count")), cell(row, "main_sum"), cell(row, "main_sum_squares")
    ),
    "ratio": lambda row: ratio_moments(
        int(cell(row, "users")),
        cell(row, "main_sum"),
        cell(row, "main_sum_squares"),
        cell(row, "denominator_sum"),
        cell(row, "denominator_sum_squares"),
        cell(row, "main_denominator_sum_product"),
    ),
    "quantile_event": clustered_quantile_moments,
    "quantile_unit": lambda row: quantile_moments(
        int(cell(row, "quantile_n")),
        int(cell(row, "quantile_nstar")),
        cell(row, "quantile_level"),
        cell(row, "quantile"),
        cell(row, "quantile_lower"),
        cell(row, "quantile_upper"),
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


def adjusted_pair(control_row: Mapping, treatment_row: Mapping) -> tuple[ArmMoments, ArmMoments, float]:
    """The two arms with CUPED applied (both rows must carry covariate sums): ``(control,
    treatment, θ)``, or the unadjusted arms and θ = 0 when the covariate has no variance (GrowthBook
    turns the adjustment off then, as we do)."""
    if metric_types.get(control_row["metric_type"]).statistic == "ratio":
        control, treatment = ratio_cuped_moments(control_row, 0.0), ratio_cuped_moments(treatment_row, 0.0)
        theta = ratio_cuped_theta(control, treatment)
        if abs(theta) < RATIO_THETA_EPSILON:
            return row_moments(control_row), row_moments(treatment_row), 0.0
        return ratio_cuped_moments(control_row, theta), ratio_cuped_moments(treatment_row, theta), theta
    theta = pooled_theta(cuped_sums(control_row), cuped_sums(treatment_row))
    if theta == 0:
        return row_moments(control_row), row_moments(treatment_row), 0.0
    return cuped_moments(cuped_sums(control_row), theta), cuped_moments(cuped_sums(treatment_row), theta), theta


def comparison_note(control: ArmMoments, treatment: ArmMoments, relative: bool) -> str | None:
    """Why the two arms cannot be compared (a sentence for the result's ``note``), or None.

    Mirrors gbstats' refusals: a variation without units, an arm whose statistic cannot be
    estimated (its ``note``), zero variance, and — for relative effects — a control mean of zero."""
    if control.n == 0 and treatment.n == 0:
        return "no units in either variation"
    if control.n == 0:
        return "the control has no units here, so there is nothing to compare against"
    if treatment.n == 0:
        return "this variation has no units here"
    if control.note or treatment.note:
        return control.note or treatment.note
    if control.n < 2 or treatment.n < 2:
        return "fewer than 2 units in a variation: the variance cannot be estimated"
    if relative and control.unadjusted_mean == 0:
        return "the control mean is 0, so the relative effect is undefined; use difference_type='absolute'"
    if control.variance <= 0 or treatment.variance <= 0:
        return "zero variance in a variation (every unit has the same value): no test is possible"
    return None
