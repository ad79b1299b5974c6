"""Post-stratification against GrowthBook's engine (gbstats ``EffectMomentsPostStratification``,
the oracle at ../shared/oracles/gbstats) on random strata summed from simulated units, its
fallbacks, and a closed form."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.stats.post_stratification import (
    ONE_STRATUM,
    ONE_STRATUM_WITHOUT_CUPED,
    PostStratifiedEffect,
    post_stratified_effect,
)

REL = 1e-6
CASES = 40  # random strata sets per configuration


def sums(y, *, d=None, x=None, xd=None) -> dict:
    """One arm of one stratum: the sufficient-statistics columns summed from per-unit values
    (outcome ``y``, denominator ``d``, pre-exposure ``x`` of y and ``xd`` of d)."""
    y = np.asarray(y, dtype=float)
    row = {"users": len(y), "count": len(y), "main_sum": y.sum(), "main_sum_squares": (y * y).sum()}
    named = {"main": y, "denominator": d, "covariate": x, "denominator_pre": xd}
    present = {k: np.asarray(v, dtype=float) for k, v in named.items() if v is not None}
    for name, v in present.items():
        row[f"{name}_sum"], row[f"{name}_sum_squares"] = v.sum(), (v * v).sum()
    products = {
        ("main", "denominator"): "main_denominator_sum_product",
        ("main", "covariate"): "main_covariate_sum_product",
        ("main", "denominator_pre"): "main_post_denominator_pre_sum_product",
        ("covariate", "denominator"): "main_pre_denominator_post_sum_product",
        ("covariate", "denominator_pre"): "main_pre_denominator_pre_sum_product",
        ("denominator", "denominator_pre"): "denominator_post_denominator_pre_sum_product",
    }
    for (a, b), column in products.items():
        if a in present and b in present:
            row[column] = (present[a] * present[b]).sum()
    return {k: float(v) for k, v in row.items()}


def simulate_arm(rng, statistic: str, cuped: bool, n: int, level: float, lift: float) -> dict:
    """``n`` units of one arm in a stratum whose outcome sits around ``level`` (negative levels too)."""
    if statistic == "proportion":
        p = 1 / (1 + np.exp(-level))
        x = rng.random(n) < p
        y = rng.random(n) < np.clip(0.5 * p + 0.4 * x + lift, 0.01, 0.99)
        return sums(y, x=x if cuped else None)
    if statistic == "sample_mean":
        x = level + rng.gamma(1.5, 3.0, n) - 4
        y = 0.7 * x + rng.normal(lift, 2.0 + abs(level), n) + rng.exponential(2.0, n)
        return sums(y, x=x if cuped else None)
    xd = rng.poisson(2 + abs(level), n).astype(float)
    d = rng.poisson(1 + 0.5 * xd) + (rng.random(n) < 0.8)
    xm = xd * (level + rng.normal(0, 2, n))
    m = 0.4 * xm + d * (level + lift + rng.normal(0, 3, n))
    return sums(m, d=d, x=xm if cuped else None, xd=xd if cuped else None)


def simulate_strata(rng, statistic: str, cuped: bool) -> list[tuple[dict, dict]]:
    """2–8 strata of skewed sizes, some with only a few units (or none) in an arm."""
    strata = []
    for _ in range(rng.integers(2, 9)):
        if rng.random() < 0.2:
            n_control, n_treatment = rng.integers(0, 5, 2)
        else:
            size = int(rng.lognormal(5, 1.2)) + 8
            n_control = int(rng.binomial(size, rng.uniform(0.3, 0.7)))
            n_treatment = size - n_control
        level, lift = rng.normal(-1, 3), rng.normal(0, 0.3)
        strata.append(
            (
                simulate_arm(rng, statistic, cuped, int(n_control), level, 0.0),
                simulate_arm(rng, statistic, cuped, int(n_treatment), level, lift),
            )
        )
    return strata


def gb_statistic(row: dict, statistic: str, cuped: bool):
    """The gbstats statistic of one arm's row, as gbstats' ``variation_statistic_from_metric_row``
    builds it (ratio components are count metrics)."""
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedRatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )

    def base(prefix: str):
        if statistic == "proportion":
            return ProportionStatistic(n=int(row["count"]), sum=row[f"{prefix}_sum"])
        return SampleMeanStatistic(
            n=int(row["count"]), sum=row[f"{prefix}_sum"], sum_squares=row[f"{prefix}_sum_squares"]
        )

    n = int(row["users"])
    if statistic == "ratio" and cuped:
        return RegressionAdjustedRatioStatistic(
            n=n,
            m_statistic_post=base("main"),
            d_statistic_post=base("denominator"),
            m_statistic_pre=base("covariate"),
            d_statistic_pre=base("denominator_pre"),
            m_post_m_pre_sum_of_products=row["main_covariate_sum_product"],
            d_post_d_pre_sum_of_products=row["denominator_post_denominator_pre_sum_product"],
            m_pre_d_pre_sum_of_products=row["main_pre_denominator_pre_sum_product"],
            m_post_d_post_sum_of_products=row["main_denominator_sum_product"],
            m_post_d_pre_sum_of_products=row["main_post_denominator_pre_sum_product"],
            m_pre_d_post_sum_of_products=row["main_pre_denominator_post_sum_product"],
            theta=None,
        )
    if statistic == "ratio":
        return RatioStatistic(
            n=n,
            m_statistic=base("main"),
            d_statistic=base("denominator"),
            m_d_sum_of_products=row["main_denominator_sum_product"],
        )
    if cuped:
        return RegressionAdjustedStatistic(
            n=n,
            post_statistic=base("main"),
            pre_statistic=base("covariate"),
            post_pre_sum_of_products=row["main_covariate_sum_product"],
            theta=None,
        )
    return base("main")


def gb_effect(strata, statistic: str, cuped: bool, relative: bool):
    from gbstats.models.tests import EffectMomentsConfig, EffectMomentsPostStratification

    pairs = [(gb_statistic(c, statistic, cuped), gb_statistic(t, statistic, cuped)) for c, t in strata]
    config = EffectMomentsConfig(difference_type="relative" if relative else "absolute")
    return EffectMomentsPostStratification(pairs, config).compute_result()


def relative_difference(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / max(abs(theirs), 1e-300)


def assert_matches(strata, statistic: str, cuped: bool, relative: bool) -> PostStratifiedEffect | str:
    """Ours equals gbstats' post-stratified moments, or gives a reason where gbstats falls back
    (an error, or the unstratified answer with one stratum left)."""
    ours = post_stratified_effect(strata, statistic, cuped=cuped, relative=relative)
    ref = gb_effect(strata, statistic, cuped, relative)
    applied = ref.error_message is None and ref.post_stratification_applied
    if isinstance(ours, str):
        assert not applied, f"we refused ({ours}) where gbstats gives {ref}"
        return ours
    assert applied, f"gbstats refused ({ref.error_message}) where we give {ours}"
    assert relative_difference(ours.point_estimate, ref.point_estimate) < REL
    assert relative_difference(ours.standard_error, ref.standard_error) < REL
    assert ours.units == ref.pairwise_sample_size
    return ours


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize("cuped", [False, True], ids=["plain", "cuped"])
@pytest.mark.parametrize("statistic", ["proportion", "sample_mean", "ratio"])
def test_matches_gbstats_on_random_strata(oracle, statistic, cuped, relative):
    rng = np.random.default_rng([20261124, len(statistic), cuped, relative])
    results = [assert_matches(simulate_strata(rng, statistic, cuped), statistic, cuped, relative) for _ in range(CASES)]
    applied = [r for r in results if isinstance(r, PostStratifiedEffect)]
    assert len(applied) >= CASES * 0.6  # the estimator itself, not only its fallbacks, is compared
    assert any(r.strata < 3 for r in applied) and any(r.strata >= 4 for r in applied)


def _strata_from_units(rng, statistic: str, cuped: bool, sizes: list[tuple[int, int]]) -> list[tuple[dict, dict]]:
    return [
        (simulate_arm(rng, statistic, cuped, a, k - 1.0, 0.0), simulate_arm(rng, statistic, cuped, b, k - 1.0, 0.2))
        for k, (a, b) in enumerate(sizes)
    ]


@pytest.mark.parametrize("statistic", ["proportion", "sample_mean", "ratio"])
def test_small_strata_are_merged_into_the_largest(oracle, statistic):
    rng = np.random.default_rng(7)
    for cuped in (False, True):
        strata = _strata_from_units(rng, statistic, cuped, [(400, 380), (1, 0), (250, 260), (2, 1), (1, 5), (0, 5)])
        result = assert_matches(strata, statistic, cuped, relative=True)
        assert isinstance(result, PostStratifiedEffect) and result.strata == 2


def test_one_stratum_left_falls_back_to_the_unstratified_estimate(oracle):
    rng = np.random.default_rng(8)
    strata = _strata_from_units(rng, "sample_mean", False, [(300, 310), (1, 2), (0, 4)])
    assert assert_matches(strata, "sample_mean", False, relative=True) == ONE_STRATUM
    single = _strata_from_units(rng, "ratio", True, [(300, 310)])
    assert assert_matches(single, "ratio", True, relative=False) == ONE_STRATUM


def test_one_stratum_left_without_cuped_when_a_covariate_is_constant(oracle):
    """GrowthBook then answers with the unstratified estimate without CUPED, which an unstratified
    analysis would keep (the pooled covariate varies): we say so."""
    from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest

    rng = np.random.default_rng(12)
    x = rng.normal(size=310)
    strata = [
        (sums(rng.normal(size=300), x=np.ones(300)), sums(x + rng.normal(size=310), x=x)),
        (sums([1.0], x=[1.0]), sums([2.0, 3.0], x=[0.5, 0.7])),
    ]
    assert assert_matches(strata, "sample_mean", True, relative=False) == ONE_STRATUM_WITHOUT_CUPED

    def moments(cuped: bool, post_stratify: bool):
        pairs = [(gb_statistic(c, "sample_mean", cuped), gb_statistic(t, "sample_mean", cuped)) for c, t in strata]
        config = FrequentistConfig(difference_type="absolute", post_stratify=post_stratify)
        return TwoSidedTTest(pairs, config).moments_result

    assert moments(True, post_stratify=True) == moments(False, post_stratify=False)
    assert moments(True, post_stratify=True) != moments(True, post_stratify=False)


def test_ratio_cuped_needs_seven_units_per_stratum(oracle):
    rng = np.random.default_rng(9)
    strata = _strata_from_units(rng, "ratio", True, [(300, 310), (200, 190), (3, 3), (4, 3)])
    result = assert_matches(strata, "ratio", True, relative=True)
    assert isinstance(result, PostStratifiedEffect) and result.strata == 3


def test_zero_variance_and_zero_control_mean_are_refused(oracle):
    constant = [(sums(np.full(50, 2.0)), sums(np.full(60, 2.0))), (sums(np.full(40, 2.0)), sums(np.full(30, 2.0)))]
    assert "zero variance" in assert_matches(constant, "sample_mean", False, relative=False)
    rng = np.random.default_rng(10)
    centred = [(sums(np.tile([-s, s], 40)), sums(rng.normal(1, 1, 80))) for s in (1.0, 3.0)]
    for relative in (False, True):
        assert "control mean is 0" in assert_matches(centred, "sample_mean", False, relative)
    no_conversions = [(sums(np.zeros(100)), sums(rng.random(100) < 0.1)) for _ in range(3)]
    assert isinstance(assert_matches(no_conversions, "proportion", False, relative=False), str)


@pytest.mark.parametrize("statistic", ["proportion", "sample_mean", "ratio"])
def test_cuped_without_pre_exposure_variance_is_dropped(oracle, statistic):
    """A covariate constant over all strata in an arm turns CUPED off everywhere (gbstats
    ``simplify_stats_if_baseline_variance_zero``); constant in one stratum's arm, off there only."""
    rng = np.random.default_rng(11)
    plain = _strata_from_units(rng, statistic, False, [(400, 420), (300, 280), (150, 160)])
    covariates = {"covariate_sum": 0.0, "covariate_sum_squares": 0.0, "main_covariate_sum_product": 0.0}
    if statistic == "ratio":
        covariates |= {
            "denominator_pre_sum": 0.0,
            "denominator_pre_sum_squares": 0.0,
            "main_post_denominator_pre_sum_product": 0.0,
            "main_pre_denominator_post_sum_product": 0.0,
            "main_pre_denominator_pre_sum_product": 0.0,
            "denominator_post_denominator_pre_sum_product": 0.0,
        }
    for relative in (False, True):
        dropped = [(c | covariates, t | covariates) for c, t in plain]
        result = assert_matches(dropped, statistic, True, relative)
        unadjusted = post_stratified_effect(plain, statistic, cuped=False, relative=relative)
        assert isinstance(result, PostStratifiedEffect) and isinstance(unadjusted, PostStratifiedEffect)
        assert result.point_estimate == pytest.approx(unadjusted.point_estimate, rel=1e-12)
        assert result.standard_error == pytest.approx(unadjusted.standard_error, rel=1e-12)
        adjusted = _strata_from_units(rng, statistic, True, [(400, 420), (300, 280), (150, 160)])
        adjusted[1] = (adjusted[1][0] | covariates, adjusted[1][1])
        assert isinstance(assert_matches(adjusted, statistic, True, relative), PostStratifiedEffect)


def test_equal_stratum_means_give_the_pooled_difference():
    """With the same control mean and the same treatment mean in every stratum, any weights give
    the pooled difference 3.5 - 2 (and the lift 0.75); the control mean is 2."""
    strata = []
    for n_control, n_treatment, spread in [(100, 300, 1.0), (500, 150, 4.0), (40, 45, 0.5)]:
        control = np.tile([2.0 - spread, 2.0 + spread], n_control // 2)
        treatment = np.concatenate([np.full(n_treatment - 1, 3.5 - spread), [3.5 + (n_treatment - 1) * spread]])
        strata.append((sums(control), sums(treatment)))
    absolute = post_stratified_effect(strata, "sample_mean", cuped=False, relative=False)
    relative = post_stratified_effect(strata, "sample_mean", cuped=False, relative=True)
    assert isinstance(absolute, PostStratifiedEffect) and isinstance(relative, PostStratifiedEffect)
    assert absolute.point_estimate == pytest.approx(1.5, rel=1e-12)
    assert relative.point_estimate == pytest.approx(0.75, rel=1e-12)
    assert absolute.control_mean == pytest.approx(2.0, rel=1e-12)
    assert (absolute.units, absolute.strata) == (1135, 3)


def test_unknown_statistic_and_no_strata_raise():
    with pytest.raises(ValueError, match="not one of"):
        post_stratified_effect([({}, {})], "quantile", cuped=False, relative=True)
    with pytest.raises(ValueError, match="at least one stratum"):
        post_stratified_effect([], "ratio", cuped=False, relative=True)
