"""Post-stratified treatment effect from per-stratum sums: GrowthBook's CUPEDps estimator.

Units fall into strata (pre-exposure attributes such as country or platform) and each stratum ``k``
with ``n_k`` units gives its own estimate ``α_k`` of the control's mean(s) and of the effect(s); the
estimate of the experiment is the average ``ᾱ = Σ ν_k α_k`` over the observed shares
``ν_k = n_k / N`` (Miratrix, Sekhon & Yu 2013, "Adjusting treatment effect estimates by
post-stratification in randomized experiments", JRSS B 75(2)). The shares are random too: with
``Σ_k`` the covariance of ``α_k`` scaled by ``n_k`` (so ``Var α_k = Σ_k / n_k``), the covariance of
``ᾱ`` is ``(Σ ν_k (α_k - ᾱ)(α_k - ᾱ)ᵀ + Σ ν_k Σ_k) / N``, between-strata spread of a multinomial
draw of shares plus the within-strata variances. The effect is a smooth function of ``ᾱ`` (a
difference, a lift over ``|control|``, a difference or lift of ratios) and its variance the delta
method's ``∇ᵀ Cov ∇`` (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics").

Within a stratum (GrowthBook's "Algorithm 1"):

* without CUPED, the control's mean(s) ``c`` and the effect(s) ``e = t - c`` from the arms' means,
  with per-unit covariance matrices ``Λ_c, Λ_t`` (one outcome, or numerator and denominator of a
  ratio): ``Cov(c) = nΛ_c/n_c``, ``Cov(c, e) = -nΛ_c/n_c``, ``Cov(e) = nΛ_c/n_c + nΛ_t/n_t``;
* with CUPED, a least-squares fit of the outcome(s) on ``(1, treated, pre-exposure covariates)``
  over the stratum's units (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity of Online
  Controlled Experiments by Utilizing Pre-Experiment Data"), ratio numerator and denominator each
  on both of their pre-exposure values: the effect is the treatment coefficient and the control
  mean the fit at the stratum's pooled covariate mean ``x̄``, whose own sampling covariance ``S/n``
  adds ``(tr((XᵀX)⁻¹ₓₓ S)·σ² + γₓᵀ S γₓ)/n`` to its variance.

This is GrowthBook's engine (PR #4202; gbstats ``EffectMomentsPostStratification`` and the
``CreateStrataResult*`` / ``PostStratificationSummary*`` classes of ``models/tests.py``; method at
https://docs.growthbook.io/statistics/post-stratification), and so are its fallbacks, kept here
for equal numbers: CUPED is dropped for every stratum when the pre-exposure variance of either arm
summed over strata is 0, and in one stratum when it is 0 there; a stratum with a zero-variance arm
(or, for ratio CUPED, 6 units or fewer) is merged into the largest stratum; the residual variance
is divided by ``n - 3`` (one outcome) or ``n - 6`` (ratio), as GrowthBook does. A Bernoulli arm
keeps the variance ``p(1-p)`` only while it is one stratum: merged, or as the CUPED fallback of a
stratum, it is a sample mean with the unbiased variance, as gbstats' sums are.

Degrees of freedom: GrowthBook's t-tests of a post-stratified effect keep the Welch–Satterthwaite
dof of the two arms summed over all strata (CUPED-adjusted with θ pooled over all strata, as
unstratified), i.e. :func:`workbench.stats.frequentist.welch_dof` of the unstratified moments;
there is no stratified dof, so none is returned here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.stats.moments import PRODUCTS, cell, covariance, ratio_variance

STATISTICS = ("proportion", "sample_mean", "ratio")
# The variables summed in a row, by column prefix (``{prefix}_sum``, ``{prefix}_sum_squares``):
# the outcome(s) first, then their pre-exposure covariate(s) under CUPED.
OUTCOMES = {"proportion": ("main",), "sample_mean": ("main",), "ratio": ("main", "denominator")}
COVARIATES = {"proportion": ("covariate",), "sample_mean": ("covariate",), "ratio": ("covariate", "denominator_pre")}
# Divisor of a stratum's residual sums of squares: n minus this (GrowthBook's choice).
RESIDUAL_DOF = {1: 3, 2: 6}  # by the number of outcomes
RATIO_CUPED_MIN_UNITS = 7  # a ratio CUPED stratum needs more units than the 6 lost to its residuals

ZERO_VARIANCE = "zero variance in a variation (every unit has the same value): no post-stratified test is possible"
ZERO_CONTROL = "the control mean is 0: no post-stratified effect"
ONE_STRATUM = "fewer than 2 strata can be analysed on their own: use the unstratified estimate"
ONE_STRATUM_WITHOUT_CUPED = f"{ONE_STRATUM} without CUPED (a variation's covariate does not vary)"


@dataclass(frozen=True)
class PostStratifiedEffect:
    """The post-stratified effect of treatment vs control: ``point_estimate`` (absolute, or relative
    over ``|control_mean|``) with its ``standard_error``; ``control_mean`` is the post-stratified
    control mean (a ratio's ``Σν·numerator / Σν·denominator``; under CUPED the strata's fits at their
    pooled covariate means), ``units`` the units of both arms and ``strata`` the strata analysed
    after merging the small ones."""

    point_estimate: float
    standard_error: float
    control_mean: float
    units: int
    strata: int


@dataclass(frozen=True, eq=False)
class _Arm:
    """One arm of one stratum (or of several merged): ``n`` units, the sums ``s`` of the variables
    and the sums of their products ``q`` (``q[i, i]`` the sum of squares; a Bernoulli variable's is
    its sum). ``bernoulli``: the variances are ``p(1-p)``, true only for one stratum of a proportion."""

    n: int
    s: np.ndarray
    q: np.ndarray
    bernoulli: bool

    def __add__(self, other: _Arm) -> _Arm:
        return _Arm(self.n + other.n, self.s + other.s, self.q + other.q, bernoulli=False)

    def first(self, k: int, bernoulli: bool) -> _Arm:
        """The arm restricted to its first ``k`` variables (the outcomes, without covariates)."""
        return _Arm(self.n, self.s[:k], self.q[:k, :k], bernoulli)

    def mean(self, i: int) -> float:
        """Mean of variable ``i``, 0 without units."""
        return float(self.s[i] / self.n) if self.n > 0 else 0.0

    def covariance(self, i: int, j: int) -> float:
        """Per-unit (co)variance of variables ``i`` and ``j``: ``p(1-p)`` for a Bernoulli variance,
        else ``(Σxy - ΣxΣy/n)/(n-1)``, 0 when n ≤ 1."""
        if self.bernoulli and i == j:
            p = self.mean(i)
            return p * (1.0 - p)
        return float(covariance(self.n, self.s[i], self.s[j], self.q[i, j]))

    def covariance_matrix(self, k: int) -> np.ndarray:
        """Per-unit covariance matrix of the first ``k`` variables."""
        return np.array([[self.covariance(i, j) for j in range(k)] for i in range(k)])


def _arm_from_row(row: Mapping, statistic: str, cuped: bool) -> _Arm:
    """The :class:`_Arm` of one stratum's row (docs/sufficient-statistics.md columns): units from
    ``count``, or from ``users`` for ratio and CUPED rows, as :mod:`workbench.stats.moments` reads them."""
    names = OUTCOMES[statistic] + (COVARIATES[statistic] if cuped else ())
    bernoulli = statistic == "proportion"
    s = np.array([cell(row, f"{name}_sum") for name in names])
    q = np.empty((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i == j:
                q[i, j] = s[i] if bernoulli else cell(row, f"{a}_sum_squares")
            else:
                q[i, j] = cell(row, PRODUCTS[frozenset({a, b})])
    n = cell(row, "users" if cuped or statistic == "ratio" else "count")
    return _Arm(int(n), s, q, bernoulli)


def _arm_mean(arm: _Arm, ratio: bool, cuped: bool) -> float:
    """The arm's (unadjusted) mean: ``Σm/Σd`` for a ratio, 0 when a denominator sum (after or,
    under CUPED, before exposure) is 0."""
    if not ratio:
        return arm.mean(0)
    if arm.s[1] == 0 or (cuped and arm.s[3] == 0):
        return 0.0
    return float(arm.s[0] / arm.s[1])


def _arm_variance(arm: _Arm, ratio: bool, cuped: bool) -> float:
    """The arm's per-unit variance: the outcome's, or for a ratio the delta method's
    (:func:`workbench.stats.moments.ratio_variance`; 0 with a zero mean denominator, after or, under
    CUPED, before exposure)."""
    if not ratio:
        return arm.covariance(0, 0)
    if arm.n <= 1 or (cuped and arm.mean(3) == 0):
        return 0.0
    return ratio_variance(arm.mean(0), arm.covariance(0, 0), arm.mean(1), arm.covariance(1, 1), arm.covariance(0, 1))


@dataclass(frozen=True, eq=False)
class _Stratum:
    """One stratum's estimate ``alpha`` = (control mean(s), effect(s)) over ``n`` units with its
    ``covariance`` scaled by ``n``."""

    n: int
    alpha: np.ndarray
    covariance: np.ndarray


def _inverse(matrix: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric positive-definite matrix through its Cholesky factor; None otherwise."""
    try:
        lower_inverse = np.linalg.inv(np.linalg.cholesky(matrix))
    except np.linalg.LinAlgError:
        return None
    return lower_inverse.T @ lower_inverse


def _difference_stratum(control: _Arm, treatment: _Arm, k: int) -> _Stratum:
    """Control means ``c`` and effects ``t - c`` of the first ``k`` variables with
    ``Cov(c) = nΛ_c/n_c``, ``Cov(c, e) = -nΛ_c/n_c`` and ``Cov(e) = nΛ_c/n_c + nΛ_t/n_t``."""
    n = control.n + treatment.n
    c = np.array([control.mean(i) for i in range(k)])
    t = np.array([treatment.mean(i) for i in range(k)])
    a = control.covariance_matrix(k) * n / control.n
    b = treatment.covariance_matrix(k) * n / treatment.n
    return _Stratum(n, np.concatenate([c, t - c]), np.block([[a, -a], [-a, a + b]]))


def _regression_stratum(control: _Arm, treatment: _Arm, k: int) -> _Stratum | str:
    """CUPED within a stratum: least squares of the ``k`` outcomes on ``X = (1, treated, covariates)``,
    coefficients ``Γ = (XᵀX)⁻¹XᵀY``, residual covariance ``σ = (YᵀY - YᵀX(XᵀX)⁻¹XᵀY)/(n - dof)`` and
    ``Cov(vec Γ) = σ ⊗ (XᵀX)⁻¹``. The control mean is ``Γᵀc`` at ``c = (1, 0, x̄)``, the effect ``Γᵀe``
    at ``e = (0, 1, 0)``; the control mean's covariance adds ``(tr((XᵀX)⁻¹ₓₓ S)·σ + ΓₓᵀSΓₓ)/n`` for
    the pooled covariate mean ``x̄`` of covariance ``S/n``. A reason when ``XᵀX`` is singular."""
    n = control.n + treatment.n
    pooled = control + treatment
    r = len(pooled.s) - k  # covariates
    xtx = np.empty((2 + r, 2 + r))
    xtx[0, 0], xtx[1, 1] = n, treatment.n
    xtx[0, 1] = xtx[1, 0] = treatment.n
    xtx[0, 2:] = xtx[2:, 0] = pooled.s[k:]
    xtx[1, 2:] = xtx[2:, 1] = treatment.s[k:]
    xtx[2:, 2:] = pooled.q[k:, k:]
    xty = np.vstack([pooled.s[:k], treatment.s[:k], pooled.q[k:, :k]])
    inverse = _inverse(xtx)
    if inverse is None:
        return "the CUPED regression of a stratum is singular (its covariates do not vary): no post-stratified test"
    gamma = inverse @ xty
    sigma = (pooled.q[:k, :k] - xty.T @ gamma) / (n - RESIDUAL_DOF[k])
    x_bar = pooled.s[k:] / n
    spread = (pooled.q[k:, k:] - np.outer(pooled.s[k:], pooled.s[k:]) / n) / (n - 1)
    c = np.concatenate([[1.0, 0.0], x_bar])
    e = np.zeros(2 + r)
    e[1] = 1.0
    covariance_cc = n * sigma * (c @ inverse @ c) + sigma * np.trace(inverse[2:, 2:] @ spread)
    covariance_cc += gamma[2:].T @ spread @ gamma[2:]
    covariance_ce = n * sigma * (c @ inverse @ e)
    covariance_ee = n * sigma * (e @ inverse @ e)
    covariance = np.block([[covariance_cc, covariance_ce], [covariance_ce.T, covariance_ee]])
    return _Stratum(n, np.concatenate([gamma.T @ c, gamma[1]]), covariance)


def _covariates_vary(control: _Arm, treatment: _Arm, k: int) -> bool:
    """True when every covariate (the variables after the ``k`` outcomes) has a positive variance in both arms."""
    return all(arm.covariance(i, i) > 0 for arm in (control, treatment) for i in range(k, len(arm.s)))


def _stratum_estimate(control: _Arm, treatment: _Arm, k: int, cuped: bool) -> _Stratum | str:
    """One stratum's :class:`_Stratum`: CUPED when asked and both arms' covariates vary (else the
    difference of the arms' sample means), or a reason when an arm has zero variance."""
    if cuped and not _covariates_vary(control, treatment, k):
        control, treatment, cuped = control.first(k, bernoulli=False), treatment.first(k, bernoulli=False), False
    ratio = k == 2
    if _arm_variance(control, ratio, cuped) <= 0 or _arm_variance(treatment, ratio, cuped) <= 0:
        return ZERO_VARIANCE
    return _regression_stratum(control, treatment, k) if cuped else _difference_stratum(control, treatment, k)


def _merge_small_strata(arms: list[tuple[_Arm, _Arm]], ratio: bool, cuped: bool) -> list[tuple[_Arm, _Arm]]:
    """The strata analysed: from the largest down, a stratum with a zero-variance arm (or, for
    ratio CUPED, fewer than 7 units) is added to the largest one (gbstats ``combine_cells_for_analysis``)."""
    ordered = sorted(arms, key=lambda pair: pair[0].n + pair[1].n, reverse=True)
    kept = [ordered[0]]
    for control, treatment in ordered[1:]:
        viable = _arm_variance(control, ratio, cuped) > 0 and _arm_variance(treatment, ratio, cuped) > 0
        if viable and not (ratio and cuped and control.n + treatment.n < RATIO_CUPED_MIN_UNITS):
            kept.append((control, treatment))
        else:
            kept[0] = (kept[0][0] + control, kept[0][1] + treatment)
    return kept


def _effect(control: np.ndarray, effect: np.ndarray, relative: bool) -> tuple[float, np.ndarray] | str:
    """Estimate and gradient in (control, effect) of the difference ``e`` or lift ``e/|c|`` of one
    outcome, or of the ratio ``t_m/t_d`` vs ``c_m/c_d`` of two (``t = c + e``): difference
    ``t_m/t_d - c_m/c_d``, lift ``(t_m/t_d)/(c_m/c_d) - 1`` signed by the control's ratio."""
    if len(control) == 1:
        c, e = control[0], effect[0]
        if not relative:
            return float(e), np.array([0.0, 1.0])
        return float(e / abs(c)), np.array([-e * math.copysign(1.0, c) / c**2, 1 / abs(c)])
    (cm, cd), (tm, td) = control, control + effect
    if td == 0:
        return "the treatment's mean denominator is 0: no post-stratified effect"
    if not relative:
        grad = [1 / td - 1 / cd, cm / cd**2 - tm / td**2, 1 / td, -tm / td**2]
        return float(tm / td - cm / cd), np.array(grad)
    grad = [-cd * effect[0] / (cm**2 * td), tm * effect[1] / (cm * td**2), cd / (cm * td), -tm * cd / (cm * td**2)]
    return float((tm * cd / (cm * td) - 1) * math.copysign(1.0, cm / cd)), np.array(grad)


def _summarise(strata: list[_Stratum], relative: bool) -> PostStratifiedEffect | str:
    """Average the strata with weights ``ν_k = n_k/N`` and apply the delta method (GrowthBook's
    "Algorithms 3 and 4"); a reason when the control mean is 0 or the variance is not positive."""
    n = np.array([stratum.n for stratum in strata], dtype=float)
    total = n.sum()
    nu = n / total
    alphas = np.array([stratum.alpha for stratum in strata])
    mean = nu @ alphas
    spread = alphas - mean
    covariance = ((spread.T * nu) @ spread + np.tensordot(nu, [s.covariance for s in strata], axes=1)) / total
    k = len(mean) // 2
    control, effect = mean[:k], mean[k:]
    control_mean = float(control[0] if k == 1 else (control[0] / control[1] if control[1] != 0 else 0.0))
    if control_mean == 0:
        return ZERO_CONTROL
    result = _effect(control, effect, relative)
    if isinstance(result, str):
        return result
    estimate, gradient = result
    variance = float(gradient @ covariance @ gradient)
    if not variance > 0:
        return ZERO_VARIANCE
    return PostStratifiedEffect(estimate, math.sqrt(variance), control_mean, int(total), len(strata))


def post_stratified_effect(
    strata: Sequence[tuple[Mapping, Mapping]], statistic: str, *, cuped: bool, relative: bool
) -> PostStratifiedEffect | str:
    """The post-stratified effect of treatment vs control from one ``(control, treatment)`` pair of
    sufficient-statistics rows per stratum (docs/sufficient-statistics.md, plus for ratio CUPED the
    ``denominator_pre_*`` and ``main_*_denominator_*_sum_product`` columns); ``statistic`` is
    ``"proportion"``, ``"sample_mean"`` or ``"ratio"`` (whose parts are sample means, as in
    :mod:`workbench.stats.moments`); ``cuped`` adjusts on the pre-exposure
    covariate(s) (``covariate_*``; for ratios also ``denominator_pre_*``); ``relative`` gives the
    lift over ``|control mean|``.

    Returns a sentence instead when post-stratification cannot be applied — zero variance, a
    control mean of 0, a singular CUPED fit, or fewer than 2 strata left after merging the small
    ones — and the caller uses the unstratified estimate, as gbstats' ``compute_moments_result``
    does. With one stratum left GrowthBook's answer is the unstratified estimate, without CUPED
    when an arm's covariate is constant over all strata (:data:`ONE_STRATUM_WITHOUT_CUPED`; an
    unstratified analysis would keep CUPED while the pooled covariate varies).
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}.")
    if not strata:
        raise ValueError("post-stratification needs at least one stratum.")
    k = len(OUTCOMES[statistic])
    ratio = statistic == "ratio"
    arms = [(_arm_from_row(c, statistic, cuped), _arm_from_row(t, statistic, cuped)) for c, t in strata]
    control, treatment = arms[0]
    for c, t in arms[1:]:
        control, treatment = control + c, treatment + t
    one_stratum = ONE_STRATUM
    if cuped and not _covariates_vary(control, treatment, k):
        arms = [(c.first(k, c.bernoulli), t.first(k, t.bernoulli)) for c, t in arms]
        control, treatment = control.first(k, control.bernoulli), treatment.first(k, treatment.bernoulli)
        cuped, one_stratum = False, ONE_STRATUM_WITHOUT_CUPED
    if _arm_variance(control, ratio, cuped) <= 0 or _arm_variance(treatment, ratio, cuped) <= 0:
        return ZERO_VARIANCE
    if _arm_mean(control, ratio, cuped) == 0:
        return ZERO_CONTROL
    analysed = _merge_small_strata(arms, ratio, cuped)
    if len(analysed) == 1:
        return one_stratum
    estimates = []
    for c, t in analysed:
        estimate = _stratum_estimate(c, t, k, cuped)
        if isinstance(estimate, str):
            return estimate
        estimates.append(estimate)
    return _summarise(estimates, relative)
