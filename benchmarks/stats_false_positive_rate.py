"""False positive rate of every statistics-engine method over simulated A/A tests.

Each simulation draws per-unit data for two identical arms, sums it into sufficient statistics
(as the database would) and runs the method at alpha 0.05. A sound fixed-horizon method rejects in
~5% of A/A tests (we require [4%, 6%]); the sequential method, looked at every day, must stay under
5% (the fixed-horizon t-test peeked at daily is shown for contrast: it inflates).

    .venv/bin/python benchmarks/stats_false_positive_rate.py [--simulations 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from workbench.stats.bayesian import bayesian_test
from workbench.stats.corrections import holm_bonferroni
from workbench.stats.frequentist import t_test
from workbench.stats.intervals import difference_intervals
from workbench.stats.moments import (
    CupedSums,
    cuped_moments,
    pooled_theta,
    proportion_moments,
    ratio_moments,
    sample_mean_moments,
)  # fmt: skip
from workbench.stats.sequential import sequential_test

ALPHA = 0.05
UNITS_PER_ARM = 1000
DAYS, UNITS_PER_DAY = 14, 150


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (Wilson 1927)."""
    z, p = 1.959963984540054, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_sums(y: np.ndarray):
    return [sample_mean_moments(y.shape[1], s, q) for s, q in zip(y.sum(1), (y**2).sum(1))]


def simulate(simulations: int, seed: int) -> list[tuple[str, int, str]]:
    """(method, false positives, criterion) per method."""
    rng = np.random.default_rng(seed)
    shape = (simulations, UNITS_PER_ARM)
    out = []

    # mean metric, skewed (revenue-like), Welch t-test
    a, b = mean_sums(rng.gamma(0.5, 20.0, shape)), mean_sums(rng.gamma(0.5, 20.0, shape))
    out.append(
        ("Welch t-test, mean (relative)", sum(t_test(x, y).p_value < ALPHA for x, y in zip(a, b)), "in [4%, 6%]")
    )
    out.append(
        (
            "Welch t-test, mean (absolute)",
            sum(t_test(x, y, relative=False).p_value < ALPHA for x, y in zip(a, b)),
            "in [4%, 6%]",
        )
    )
    out.append(("Bayesian, mean (chance to win <2.5% or >97.5%)",
                sum(not ALPHA / 2 < bayesian_test(x, y).chance_to_win < 1 - ALPHA / 2 for x, y in zip(a, b)), "in [4%, 6%]"))  # fmt: skip
    out.append(
        (
            "Guardrail one-sided t-test (harm)",
            sum(t_test(x, y, alternative="less").p_value < ALPHA for x, y in zip(a, b)),
            "in [4%, 6%]",
        )
    )

    # binomial metric
    ka, kb = rng.binomial(UNITS_PER_ARM, 0.1, simulations), rng.binomial(UNITS_PER_ARM, 0.1, simulations)
    pa, pb = [proportion_moments(UNITS_PER_ARM, k) for k in ka], [proportion_moments(UNITS_PER_ARM, k) for k in kb]
    out.append(
        ("Welch t-test, binomial (relative)", sum(t_test(x, y).p_value < ALPHA for x, y in zip(pa, pb)), "in [4%, 6%]")
    )
    out.append(
        (
            "abautomator view, rates (z-test)",
            sum(difference_intervals(x, y, proportion=True).p_value < ALPHA for x, y in zip(pa, pb)),
            "in [4%, 6%]",
        )
    )

    # ratio metric: orders per session, delta method
    def ratio_arm():
        sessions = rng.poisson(2.0, shape) + 1
        orders = rng.binomial(sessions, 0.15)
        return [
            ratio_moments(UNITS_PER_ARM, m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())
            for m, d in zip(orders, sessions)
        ]

    ra, rb = ratio_arm(), ratio_arm()
    out.append(
        ("Delta method, ratio (relative)", sum(t_test(x, y).p_value < ALPHA for x, y in zip(ra, rb)), "in [4%, 6%]")
    )

    # CUPED: outcome correlated with a pre-exposure covariate
    def cuped_arm():
        x = rng.gamma(2.0, 5.0, shape)
        y = 0.8 * x + rng.gamma(2.0, 4.0, shape)
        return [
            CupedSums(UNITS_PER_ARM, yy.sum(), (yy**2).sum(), xx.sum(), (xx**2).sum(), (yy * xx).sum())
            for yy, xx in zip(y, x)
        ]

    fp = 0
    for sa, sb in zip(cuped_arm(), cuped_arm()):
        theta = pooled_theta(sa, sb)
        fp += t_test(cuped_moments(sa, theta), cuped_moments(sb, theta)).p_value < ALPHA
    out.append(("CUPED t-test, mean (relative)", fp, "in [4%, 6%]"))

    # Holm across 4 independent metrics: family-wise error rate
    p = np.array(
        [
            [
                t_test(x, y).p_value
                for x, y in zip(mean_sums(rng.normal(10, 3, shape)), mean_sums(rng.normal(10, 3, shape)))
            ]
            for _ in range(4)
        ]
    ).T
    out.append(
        ("Holm over 4 metrics (family-wise)", int(sum((holm_bonferroni(row) < ALPHA).any() for row in p)), "≤ 5%")
    )

    # daily peeking: cumulative sums day by day, significant on any day counts
    daily_a = rng.gamma(0.5, 20.0, (simulations, DAYS, UNITS_PER_DAY))
    daily_b = rng.gamma(0.5, 20.0, (simulations, DAYS, UNITS_PER_DAY))

    def cumulative(daily: np.ndarray, day: int, i: int):
        y = daily[i, : day + 1].ravel()
        return sample_mean_moments(len(y), y.sum(), (y**2).sum())

    sequential_fp = fixed_fp = 0
    for i in range(simulations):
        days = [(cumulative(daily_a, d, i), cumulative(daily_b, d, i)) for d in range(DAYS)]
        sequential_fp += any(sequential_test(x, y).p_value < ALPHA for x, y in days)
        fixed_fp += any(t_test(x, y).p_value < ALPHA for x, y in days)
    out.append((f"Sequential (tuning 5000), peeking daily for {DAYS} days", sequential_fp, "< 5%"))
    out.append((f"Fixed-horizon t-test, peeking daily for {DAYS} days (contrast)", fixed_fp, "(inflates)"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000, help="A/A tests per method (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = simulate(args.simulations, args.seed)
    n = args.simulations
    print(f"{n:,} simulated A/A tests per method, alpha {ALPHA}, {UNITS_PER_ARM:,} units per arm "
          f"({DAYS} days × {UNITS_PER_DAY} units per arm for peeking)\n")  # fmt: skip
    print(f"{'method':<62} {'false positives':>15} {'rate':>7} {'95% CI (Wilson)':>17}  {'criterion':<11} ok")
    failures = 0
    for method, k, criterion in rows:
        rate = k / n
        low, high = wilson(k, n)
        ok = {"in [4%, 6%]": 0.04 <= rate <= 0.06, "< 5%": rate < 0.05, "≤ 5%": rate <= 0.05}.get(criterion, True)
        failures += not ok
        print(
            f"{method:<62} {k:>15,} {rate:>7.2%} {f'[{low:.1%}, {high:.1%}]':>17}  {criterion:<11} {'yes' if ok else 'NO'}"
        )
    print(
        f"\n{time.perf_counter() - start:.1f} s; {'all criteria met' if not failures else f'{failures} criteria missed'}"
    )


if __name__ == "__main__":
    main()
