"""Mid-experiment power: how likely a running experiment is to detect the target effect, and how
many more units it needs — GrowthBook's "power" for goal metrics that are not yet significant.

The method (GrowthBook's mid-experiment power, re-derived here): the current comparison gives the
relative effect's standard error ``σ̂`` from ``n`` units (both arms). Running on until
``n(1 + s)`` units (``s`` the *scaling factor*) shrinks its variance to ``V = σ̂²/(1 + s)``. The
power against a true relative effect ``δ`` (the target MDE) is the chance that the reported
interval excludes 0 when ``θ̂ ~ N(δ, V)``:

* frequentist: ``1 - Φ((h - δ)/√V) + Φ(-(h + δ)/√V)`` with ``h = z·√V``, ``z = z₁₋α/(2m)``;
* sequential: ``h`` the always-valid half-width at ``n(1 + s)`` units with ``s² = n·σ̂²`` and level
  ``α/m`` (Waudby-Smith et al. 2023, eq. 9 and 161; :func:`workbench.stats.sequential.sequential_halfwidth`);
* Bayesian with a proper prior ``N(μ₀, τ²)`` on the relative effect: the posterior interval
  ``(θ̂/V + μ₀/τ²)/P ± z/√P`` (``P = 1/V + 1/τ²``) excludes 0 when ``θ̂ > V(z√P - μ₀/τ²)`` or
  ``θ̂ < -V(z√P + μ₀/τ²)``, so power ``1 - Φ((Vz√P - Vμ₀/τ² - δ)/√V) + Φ(-(Vz√P + Vμ₀/τ² + δ)/√V)``
  (normal–normal conjugate update; a flat prior is the frequentist case).

``m`` is the number of tests when p-values are corrected, ``(variations - 1) × goal metrics``
(a Bonferroni split), else 1. Every goal metric must be detected, so each gets the target power
``target_power^(1/goal metrics)``. The scaling factor is 0 when the current sample already has that
power; otherwise it is searched exactly as GrowthBook does, so that reports agree with it to
rounding: doubling from 1 (up to 2²⁷) until the power is reached, then bisection on [0, upper]
until the power is within 1e-5 of the target (at most 100 halvings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from workbench.stats.bayesian import GaussianPrior
from workbench.stats.frequentist import difference
from workbench.stats.moments import ArmMoments, comparison_note
from workbench.stats.sequential import DEFAULT_TUNING, sequential_halfwidth

Status = Literal["successful", "unsuccessful"]
POWER_TOLERANCE = 1e-5  # GrowthBook's stopping rule for the bisection, on the power
MAX_DOUBLINGS = 27  # scaling factors up to 2**27
MAX_BISECTIONS = 100


@dataclass(frozen=True)
class MidExperimentPower:
    """GrowthBook's mid-experiment power of one comparison (a goal metric, a variation vs control).

    ``power``: the chance, at the current ``units`` (both arms), of detecting a true relative effect
    of ``target_mde``; ``target_power`` as asked and ``metric_target_power`` the per-metric target
    ``target_power^(1/goal metrics)``; ``scaling_factor`` the extra sample as a multiple of
    ``units`` (0 when already powered), ``additional_units = scaling_factor × units``;
    ``status`` "successful" or "unsuccessful" (then ``error`` says why and the sample fields are
    None); ``upper_bound_achieved`` is True when not even 2²⁷ times the sample is enough;
    ``standard_error`` is the relative effect's current standard error (GrowthBook's
    ``sqrt(sigmahat2Delta)``)."""

    power: float | None
    target_power: float
    metric_target_power: float
    target_mde: float
    units: int
    standard_error: float
    scaling_factor: float | None
    additional_units: float | None
    status: Status
    error: str | None = None
    upper_bound_achieved: bool = False

    @property
    def already_powered(self) -> bool:
        """True when the current sample already reaches the per-metric target power."""
        return self.scaling_factor == 0

    def additional_days(self, days_so_far: float) -> float | None:
        """Days still needed if traffic keeps its rate so far: ``scaling_factor × days_so_far``."""
        if not days_so_far > 0:
            raise ValueError(f"days_so_far must be positive, got {days_so_far!r}.")
        return None if self.scaling_factor is None else self.scaling_factor * days_so_far


def relative_standard_error(control: ArmMoments, treatment: ArmMoments) -> float:
    """Standard error of the relative effect ``(μ₂ - μ₁)/|μ₁|`` by the delta method
    (:func:`workbench.stats.frequentist.difference`; gbstats ``frequentist_variance``). For CUPED
    results pass the analysis' own standard error instead."""
    return difference(control, treatment, relative=True).standard_error


def _power_function(
    standard_error: float,
    units: int,
    target_mde: float,
    alpha: float,
    tests: int,
    sequential: bool,
    tuning: float,
    prior: GaussianPrior | None,
):
    """``power(s)``: the power after ``units·s`` more units (see the module's formulas). The normal
    tails are ``scipy.special.ndtr`` (what ``norm.cdf``/``norm.sf`` compute, without their
    per-call overhead: the search calls this a hundred times)."""
    from scipy.special import ndtr
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / (2 * tests))
    variance_now = standard_error**2
    delta = abs(target_mde)

    def power(scaling: float) -> float:
        variance = variance_now / (1 + scaling)
        sd = math.sqrt(variance)
        if prior is not None and prior.proper:
            prior_variance = prior.sd**2
            precision = 1 / prior_variance + 1 / variance
            threshold = variance * z * math.sqrt(precision)
            pull = variance * prior.mean / prior_variance
            return float(ndtr(-(threshold - pull - delta) / sd) + ndtr(-(threshold + pull + delta) / sd))
        if sequential:
            # s² = n·σ̂² per pairwise unit; the interval at n(1 + s) units
            halfwidth = _sequential_halfwidth_at(standard_error, units, scaling, alpha / tests, tuning)
        else:
            halfwidth = z * sd
        return float(ndtr(-(halfwidth - delta) / sd) + ndtr(-(halfwidth + delta) / sd))

    return power


def _sequential_halfwidth_at(standard_error: float, units: int, scaling: float, alpha: float, tuning: float) -> float:
    """Always-valid half-width at ``units(1 + scaling)`` units for a per-pairwise-unit variance
    ``units·σ̂²`` (the current sample's)."""
    total = units * (1 + scaling)
    return sequential_halfwidth(standard_error * math.sqrt(units / total), total, alpha, tuning)


def _scaling_factor(power, target: float) -> tuple[float | None, str | None]:
    """GrowthBook's search for the smallest scaling factor reaching ``target``: doubling, then
    bisection to a power within 1e-5; (None, reason) when it fails."""
    if power(0) > target:
        return 0.0, None
    scaling = 1.0
    reached = power(scaling)
    for _ in range(MAX_DOUBLINGS):
        if reached >= target:
            break
        scaling *= 2
        reached = power(scaling)
    if reached < target:
        return None, "could not find upper bound for scaling factor"
    lower, upper = 0.0, scaling
    gap = reached - target
    for _ in range(MAX_BISECTIONS):
        if gap > 0:
            upper = scaling
        else:
            lower = scaling
        scaling = (lower + upper) / 2
        gap = power(scaling) - target
        if abs(gap) < POWER_TOLERANCE:
            return scaling, None
    return None, "bisection search did not converge"


def _check_settings(
    target_mde: float, target_power: float, alpha: float, goal_metrics: int, variations: int, tuning: float
) -> None:
    if not math.isfinite(target_mde) or target_mde == 0:
        raise ValueError(f"target_mde must be a non-zero relative effect (0.01 for 1%), got {target_mde!r}.")
    if not 0 < target_power < 1:
        raise ValueError(f"target_power must be between 0 and 1 (exclusive), got {target_power!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}.")
    if isinstance(goal_metrics, bool) or not isinstance(goal_metrics, int) or goal_metrics < 1:
        raise ValueError(f"goal_metrics must be a positive integer, got {goal_metrics!r}.")
    if isinstance(variations, bool) or not isinstance(variations, int) or variations < 2:
        raise ValueError(f"variations must be an integer of at least 2 (control included), got {variations!r}.")
    if not tuning > 0:
        raise ValueError(f"sequential_tuning must be a positive number of units, got {tuning!r}.")


def mid_experiment_power(
    control: ArmMoments | None = None,
    treatment: ArmMoments | None = None,
    *,
    standard_error: float | None = None,
    units: int | None = None,
    target_mde: float = 0.01,
    target_power: float = 0.8,
    alpha: float = 0.05,
    goal_metrics: int = 1,
    variations: int = 2,
    corrected: bool = False,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_TUNING,
    prior: GaussianPrior | None = None,
) -> MidExperimentPower:
    """Mid-experiment power of one comparison, equal to GrowthBook's ``MidExperimentPower``.

    Give the two arms' :class:`ArmMoments` (the relative standard error by the delta method,
    :func:`relative_standard_error`; units ``n₁ + n₂``), or the relative effect's
    ``standard_error`` and the ``units`` of both arms (e.g. a CUPED result's). ``target_mde`` is
    relative (GrowthBook's default 0.01); ``goal_metrics`` and ``variations`` (control included)
    size the correction (``corrected``: p-values adjusted across goal metrics and variations) and
    the per-metric target power; ``sequential``/``sequential_tuning`` as the analysis; ``prior`` a
    proper :class:`~workbench.stats.bayesian.GaussianPrior` on the relative effect selects the
    Bayesian power (GrowthBook applies no correction there: pass ``corrected=False``). GrowthBook
    computes it for goal metrics with relative differences, overall (no dimension). An invalid
    comparison (no units, zero variance, control mean 0) gives status "unsuccessful" with the
    reason in ``error``; bad settings raise ValueError."""
    _check_settings(target_mde, target_power, alpha, goal_metrics, variations, sequential_tuning)
    metric_target = target_power ** (1 / goal_metrics)
    if (control is None) != (treatment is None) or (control is None) == (standard_error is None):
        raise ValueError("give either control and treatment ArmMoments, or standard_error and units.")
    if control is not None and treatment is not None:
        if units is not None:
            raise ValueError("units come from the ArmMoments; drop units or pass standard_error instead.")
        pairwise = control.n + treatment.n
        note = comparison_note(control, treatment, relative=True)
        if note is None and control.mean == 0:
            note = "the control mean is 0, so the relative effect is undefined"
        if note is not None:
            return MidExperimentPower(
                None, target_power, metric_target, target_mde, pairwise, 0.0, None, None, "unsuccessful", note
            )
        se = relative_standard_error(control, treatment)
    else:
        if isinstance(units, bool) or not isinstance(units, int) or units < 2:
            raise ValueError(f"units must be the integer number of units in both arms (at least 2), got {units!r}.")
        if not (standard_error is not None and math.isfinite(standard_error) and standard_error > 0):
            raise ValueError(f"standard_error must be a positive number, got {standard_error!r}.")
        pairwise, se = units, float(standard_error)
    tests = (variations - 1) * goal_metrics if corrected else 1
    power = _power_function(se, pairwise, target_mde, alpha, tests, sequential, sequential_tuning, prior)
    now = power(0)
    scaling, error = _scaling_factor(power, metric_target)
    if scaling is None:
        return MidExperimentPower(
            now, target_power, metric_target, target_mde, pairwise, se, None, None, "unsuccessful", error, True
        )
    return MidExperimentPower(
        now, target_power, metric_target, target_mde, pairwise, se, scaling, scaling * pairwise, "successful"
    )
