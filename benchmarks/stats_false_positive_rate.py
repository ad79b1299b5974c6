"""False positive rate and interval coverage of every statistics-engine method, over simulated tests.

For each method two sets of experiments are simulated: A/A tests (both arms drawn from the same
distribution) and tests with a planted non-zero effect. Each simulation draws per-unit data (and,
for event-level quantiles, ~6 correlated events per unit: a per-unit random effect plus event
noise), sums it into the sufficient-statistics table exactly as the database would
(docs/sufficient-statistics.md: per-unit sums, order-statistic quantile ranks, per-unit cluster
sums, ``__strata__`` rows) and runs the public :func:`workbench.stats.experiment_results` on it at
alpha 0.05, so the whole engine path is measured. Many simulations go through one call (one metric
per simulation), which changes nothing in how each comparison is computed.

Reported per method:

* the false-positive rate in A/A tests: a sound fixed-horizon method rejects ~5% (we require
  [4%, 6%]); sequential methods, looked at every day, must stay under 5% (the fixed-horizon t-test
  peeked at daily is shown for contrast: it inflates); Holm's family-wise rate must be ≤ 5%;
* the coverage of the 95% interval of the planted effect: the true relative effect for relative
  results, the true difference of the generating distribution's quantiles (closed form) for
  quantiles; we require [94%, 96%]. One-sided (guardrail) intervals cover when the true effect is
  below their upper bound; sequential intervals must cover at every daily look at once (≥ 95%).

Each rate comes with its 95% Wilson interval. The naive iid variance of an event-level quantile
(the order-statistic variance without the cluster inflation: what the engine did before) is
computed inline from the same rows, for contrast: with correlated events it over-rejects.

    .venv/bin/python benchmarks/stats_false_positive_rate.py [--simulations 2000] [--seed 1]
        [--methods mean,quantile-event,...] [--jobs 2] [--markdown]
"""

from __future__ import annotations

import argparse
import math
import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from workbench.stats import AnalysisSettings, experiment_results

ALPHA = 0.05
UNITS_PER_ARM = 1000
DAYS, UNITS_PER_DAY = 14, 150
EVENTS_PER_UNIT = 6  # event-level quantiles: 1 + Poisson(5) events per unit
LOG_UNIT_SD, LOG_EVENT_SD = 0.5, 0.5  # event value exp(3 + unit effect + event noise)
LIFT = 1.05  # the planted effect: +5% unless a method says otherwise
QUANTILE_Z = 1.96  # the SQL's literal in the order-statistic ranks (workbench/experiments/sql.py)
Z_95 = 1.959963984540054
CHUNK = 250  # simulations per vectorised batch of event-level data

IN_RANGE, BELOW, AT_MOST, CONTRAST = "in [4%, 6%]", "< 5%", "≤ 5%", "(contrast)"
COVERS, COVERS_ALWAYS = "in [94%, 96%]", "≥ 95%"


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (Wilson 1927)."""
    z, p = Z_95, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def meets(criterion: str, rate: float) -> bool | None:
    return {
        IN_RANGE: 0.04 <= rate <= 0.06,
        BELOW: rate < 0.05,
        AT_MOST: rate <= 0.05,
        COVERS: 0.94 <= rate <= 0.96,
        COVERS_ALWAYS: rate >= 0.95,
    }.get(criterion)


# ---- sufficient-statistics rows, as the database sums them ---------------------------------------


def sums(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σy and Σy² per simulation (rows of ``y``)."""
    return y.sum(-1), (y * y).sum(-1)


def mean_columns(y: np.ndarray, x: np.ndarray | None = None, binomial: bool = False) -> dict:
    """Columns of a mean (or binomial) row per simulation; with ``x`` the CUPED covariate sums."""
    n = y.shape[-1]
    s, q = sums(y)
    out = {
        "metric_type": "binomial" if binomial else "mean",
        "users": n,
        "count": n,
        "main_sum": s,
        "main_sum_squares": q,
    }
    if x is not None:
        sx, qx = sums(x)
        out.update(covariate_sum=sx, covariate_sum_squares=qx, main_covariate_sum_product=(y * x).sum(-1))
    return out


def ratio_columns(m, d, m0=None, d0=None) -> dict:
    """Columns of a ratio row per simulation; with ``m0``, ``d0`` the ratio CUPED sums."""
    n = m.shape[-1]
    out = {"metric_type": "ratio", "users": n, "count": n, "main_sum": m.sum(-1), "main_sum_squares": (m * m).sum(-1),
           "denominator_sum": d.sum(-1), "denominator_sum_squares": (d * d).sum(-1),
           "main_denominator_sum_product": (m * d).sum(-1)}  # fmt: skip
    if m0 is not None:
        out.update(
            covariate_sum=m0.sum(-1), covariate_sum_squares=(m0 * m0).sum(-1), main_covariate_sum_product=(m * m0).sum(-1),
            denominator_pre_sum=d0.sum(-1), denominator_pre_sum_squares=(d0 * d0).sum(-1),
            main_post_denominator_pre_sum_product=(m * d0).sum(-1), main_pre_denominator_post_sum_product=(m0 * d).sum(-1),
            main_pre_denominator_pre_sum_product=(m0 * d0).sum(-1), denominator_post_denominator_pre_sum_product=(d * d0).sum(-1),
        )  # fmt: skip
    return out


def order_statistics(ordered: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """Per simulation (rows of ``ordered``, the first ``n`` values sorted): the nearest-rank
    quantile (rank ceil(n·q)) and the values at ranks max(floor(n·q − 1.96·sqrt(n·q·(1−q))), 1)
    and min(ceil(n·q + 1.96·sqrt(…)), n), as the SQL's ``_order_statistics``."""
    nq = n * level
    half = QUANTILE_Z * np.sqrt(nq * (1 - level))
    ranks = [np.ceil(nq), np.maximum(np.floor(nq - half), 1), np.minimum(np.ceil(nq + half), n)]
    return tuple(np.take_along_axis(ordered, (r.astype(int) - 1)[:, None], 1)[:, 0] for r in ranks)


def unit_quantile_columns(y: np.ndarray, level: float) -> dict:
    n = np.full(len(y), y.shape[1])
    q, lower, upper = order_statistics(np.sort(y, axis=1), n, level)
    return {"metric_type": "quantile_unit", "users": n, "count": n, "quantile_n": n, "quantile_nstar": n,
            "quantile_level": level, "quantile": q, "quantile_lower": lower, "quantile_upper": upper,
            "main_sum": np.nan, "main_sum_squares": np.nan}  # fmt: skip


def event_quantile_columns(rng: np.random.Generator, sims: int, units: int, lift: float, levels) -> dict:
    """Event-level quantile rows per level: ``units`` units with 1 + Poisson(5) events each, event
    value ``lift·exp(3 + u + e)`` with a per-unit ``u`` ~ N(0, 0.5²) and per-event ``e`` ~ N(0, 0.5²);
    the row holds the order statistics over the events and the per-unit cluster sums (sᵢ events at
    or below the quantile, nᵢ events)."""
    out = {level: {k: [] for k in ("q", "lower", "upper", "n", "s", "s2", "c", "c2", "sc")} for level in levels}
    for start in range(0, sims, CHUNK):
        c = min(CHUNK, sims - start)
        counts = rng.poisson(EVENTS_PER_UNIT - 1, (c, units)) + 1
        width = int(counts.max())
        present = np.arange(width) < counts[..., None]
        log_values = 3 + rng.normal(0, LOG_UNIT_SD, (c, units, 1)) + rng.normal(0, LOG_EVENT_SD, (c, units, width))
        values = np.where(present, lift * np.exp(log_values), np.inf)
        ordered = np.sort(values.reshape(c, -1), axis=1)
        n = counts.sum(1)
        for level in levels:
            q, lower, upper = order_statistics(ordered, n, level)
            below = ((values <= q[:, None, None]) & present).sum(2).astype(float)
            acc = out[level]
            for key, value in (("q", q), ("lower", lower), ("upper", upper), ("n", n), ("s", below.sum(1)),
                               ("s2", (below**2).sum(1)), ("c", counts.sum(1)), ("c2", (counts**2).sum(1)),
                               ("sc", (below * counts).sum(1))):  # fmt: skip
                acc[key].append(value)
    rows = {}
    for level, acc in out.items():
        a = {k: np.concatenate(v).astype(float) for k, v in acc.items()}
        rows[level] = {"metric_type": "quantile", "users": units, "count": a["n"], "quantile_n": a["n"], "quantile_nstar": a["n"],
                       "quantile_level": level, "quantile": a["q"], "quantile_lower": a["lower"], "quantile_upper": a["upper"],
                       "main_sum": a["s"], "main_sum_squares": a["s2"], "denominator_sum": a["c"],
                       "denominator_sum_squares": a["c2"], "main_denominator_sum_product": a["sc"]}  # fmt: skip
    return rows


def frame(arms: list[dict], prefix: str, sims: int, dimension: str = "overall", value: str = "all") -> pd.DataFrame:
    """The table rows of one metric per simulation (``{prefix}{i}``), one arm per entry of ``arms``
    (variations "0", "1", …)."""
    parts = []
    for variation, columns in enumerate(arms):
        part = pd.DataFrame({k: np.broadcast_to(v, sims) if np.ndim(v) == 0 else v for k, v in columns.items()})
        part.insert(0, "variation", str(variation))
        part.insert(0, "dimension_value", value)
        part.insert(0, "dimension", dimension)
        part.insert(0, "metric", [f"{prefix}{i}" for i in range(sims)])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


AS_GOAL_METRICS = False  # --as-goal-metrics


def settings_for(table: pd.DataFrame, **settings) -> AnalysisSettings:
    """The analysis settings, with the simulated metrics that are not guardrails declared secondary
    metrics: a secondary metric is tested exactly as a goal metric (two-sided, same estimate,
    interval and p-value), but the engine skips its mid-experiment power estimate, a display figure
    that costs ~10 times the test itself and enters no p-value or interval (``--as-goal-metrics``
    keeps them goal metrics, power included)."""
    if not AS_GOAL_METRICS:
        guardrails = set(settings.get("guardrail_metrics", ()))
        settings["secondary_metrics"] = tuple(m for m in table["metric"].unique() if m not in guardrails)
    return AnalysisSettings(**settings)


def analyse(table: pd.DataFrame, **settings) -> pd.DataFrame:
    """``experiment_results`` of the table, indexed by metric."""
    return experiment_results(table, settings_for(table, **settings)).to_pandas().set_index("metric")


def names(prefix: str, sims: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(sims)]


# ---- the measurements: each returns {row label: (hits, usable simulations)} ----------------------
# A/A (planted=False): hits are rejections; planted: hits are intervals covering the true effect.


def outcome(
    result: pd.DataFrame, keys: list[str], planted: bool, truth: float = math.nan, kind: str = "p"
) -> tuple[int, int]:
    r = result.loc[keys]
    if kind == "ctw":  # Bayesian: reject when the chance to win is outside (α/2, 1 − α/2)
        usable = r["chance_to_win"].notna()
        reject = (r["chance_to_win"] <= ALPHA / 2) | (r["chance_to_win"] >= 1 - ALPHA / 2)
    else:
        usable = r["p_value"].notna()
        reject = r["p_value"] < ALPHA
    if not planted:
        return int((reject & usable).sum()), int(usable.sum())
    covered = (r["ci_lower"] <= truth) & (truth <= r["ci_upper"])
    return int((covered & usable).sum()), int(usable.sum())


def gamma_arm(rng, shape, lift=1.0):
    return rng.gamma(0.5, 20.0 * lift, shape)  # revenue-like, mean 10·lift


def m_mean(rng, sims, planted):
    lift = LIFT if planted else 1.0
    shape = (sims, UNITS_PER_ARM)
    table = frame([mean_columns(gamma_arm(rng, shape)), mean_columns(gamma_arm(rng, shape, lift))], "m", sims)
    keys = names("m", sims)
    out = {
        "Welch t-test, mean (relative)": outcome(analyse(table), keys, planted, lift - 1),
        "Welch t-test, mean (absolute)": outcome(
            analyse(table, difference_type="absolute"), keys, planted, 10 * (lift - 1)
        ),
        "Bayesian, mean (chance to win outside 2.5–97.5%)": outcome(
            analyse(table, engine="bayesian"), keys, planted, lift - 1, kind="ctw"
        ),
        "Guardrail one-sided t-test (harm)": outcome(
            analyse(table, guardrail_metrics=tuple(keys)), keys, planted, lift - 1
        ),
    }
    return out


def m_negative_mean(rng, sims, planted):
    """Profit-like metric with a negative mean (−2, skewed); planted +0.2, a +10% relative effect
    over |control mean|."""
    shape = (sims, UNITS_PER_ARM)
    control = rng.gamma(2.0, 2.0, shape) - 6.0
    treatment = rng.gamma(2.0, 2.0, shape) - 6.0 + (0.2 if planted else 0.0)
    table = frame([mean_columns(control), mean_columns(treatment)], "m", sims)
    return {"Welch t-test, negative control mean (relative)": outcome(analyse(table), names("m", sims), planted, 0.1)}


def m_binomial(rng, sims, planted):
    lift = LIFT if planted else 1.0
    k0 = rng.binomial(UNITS_PER_ARM, 0.1, sims).astype(float)
    k1 = rng.binomial(UNITS_PER_ARM, 0.1 * lift, sims).astype(float)
    arms = [{"metric_type": "binomial", "users": UNITS_PER_ARM, "count": UNITS_PER_ARM, "main_sum": k, "main_sum_squares": k}
            for k in (k0, k1)]  # fmt: skip
    table = frame(arms, "m", sims)
    result = experiment_results(table, settings_for(table))
    keys = names("m", sims)
    view = result.intervals().set_index("metric").loc[keys]
    usable = view["p_value"].notna()
    if planted:
        hits = (view["relative_95_lower"] <= lift - 1) & (lift - 1 <= view["relative_95_upper"])
    else:
        hits = view["p_value"] < ALPHA
    return {
        "Welch t-test, binomial (relative)": outcome(result.to_pandas().set_index("metric"), keys, planted, lift - 1),
        "abautomator view, rates (z-test, relative 95%)": (int((hits & usable).sum()), int(usable.sum())),
    }


def m_ratio(rng, sims, planted):
    """Orders per session (delta method): sessions 1 + Poisson(2), orders Binomial(sessions, 0.15·lift)."""
    lift = LIFT if planted else 1.0
    shape = (sims, UNITS_PER_ARM)
    arms = []
    for p in (0.15, 0.15 * lift):
        sessions = (rng.poisson(2.0, shape) + 1).astype(float)
        arms.append(ratio_columns(rng.binomial(sessions.astype(int), p).astype(float), sessions))
    return {
        "Delta method, ratio (relative)": outcome(analyse(frame(arms, "m", sims)), names("m", sims), planted, lift - 1)
    }


def m_cuped(rng, sims, planted):
    """Outcome y = 0.8x + Gamma(2, 4) (mean 16) on a pre-exposure covariate x ~ Gamma(2, 5); planted +0.8 (+5%)."""
    shape = (sims, UNITS_PER_ARM)
    arms = []
    for shift in (0.0, 0.8 if planted else 0.0):
        x = rng.gamma(2.0, 5.0, shape)
        arms.append(mean_columns(0.8 * x + rng.gamma(2.0, 4.0, shape) + shift, x))
    return {"CUPED t-test, mean (relative)": outcome(analyse(frame(arms, "m", sims)), names("m", sims), planted, 0.05)}


def m_binomial_cuped(rng, sims, planted):
    """Converted before (x ~ Bernoulli(0.3)) and after (y ~ Bernoulli((0.2 + 0.4x)·lift))."""
    lift = LIFT if planted else 1.0
    shape = (sims, UNITS_PER_ARM)
    arms = []
    for arm_lift in (1.0, lift):
        x = (rng.random(shape) < 0.3).astype(float)
        y = (rng.random(shape) < (0.2 + 0.4 * x) * arm_lift).astype(float)
        arms.append(mean_columns(y, x, binomial=True))
    return {
        "CUPED t-test, binomial (relative)": outcome(
            analyse(frame(arms, "m", sims)), names("m", sims), planted, lift - 1
        )
    }


def m_ratio_cuped(rng, sims, planted):
    """Ratio with CUPED: unit activity a ~ Gamma(2, 1), sessions 1 + Poisson(a) before and after,
    unit order rate r ~ Gamma(4, 0.05), orders Poisson(sessions·r) (·lift after exposure)."""
    lift = LIFT if planted else 1.0
    shape = (sims, UNITS_PER_ARM)
    arms = []
    for arm_lift in (1.0, lift):
        activity, rate = rng.gamma(2.0, 1.0, shape), rng.gamma(4.0, 0.05, shape)
        d, d0 = rng.poisson(activity) + 1.0, rng.poisson(activity) + 1.0
        m, m0 = rng.poisson(d * rate * arm_lift).astype(float), rng.poisson(d0 * rate).astype(float)
        arms.append(ratio_columns(m, d, m0, d0))
    return {"Ratio CUPED (relative)": outcome(analyse(frame(arms, "m", sims)), names("m", sims), planted, lift - 1)}


STRATA = (
    (0.55, 4.0, 3.0, 0.10),
    (0.25, -1.0, 2.0, 0.40),
    (0.13, 9.0, 5.0, 0.30),
    (0.07, 2.0, 3.0, 0.60),
)  # share, mean, sd, planted effect


def m_post_stratification(rng, sims, planted):
    """4 strata of unequal size and mean (shares 55/25/13/7%, means 4, −1, 9, 2), each unit's
    stratum drawn at random; covariate x = μ + σ·z₁, outcome y = μ + σ·(0.7z₁ + 0.7z₂) plus a
    planted effect that differs by stratum. Rows: ``__strata__`` per stratum plus overall sums."""
    shares, mu, sd, effect = (np.array([s[i] for s in STRATA]) for i in range(4))
    truth = float(shares @ effect) / abs(float(shares @ mu))
    shape = (sims, UNITS_PER_ARM)
    tables = []
    for cuped, prefix in ((False, "p"), (True, "c")):
        strata_rows = {k: [] for k in range(len(STRATA))}
        overall = []
        for treated in (False, True):
            stratum = rng.choice(len(STRATA), size=shape, p=shares)
            z1, z2 = rng.normal(size=shape), rng.normal(size=shape)
            x = mu[stratum] + sd[stratum] * z1
            y = mu[stratum] + sd[stratum] * (0.7 * z1 + 0.7 * z2) + (effect[stratum] if planted and treated else 0.0)
            for k in range(len(STRATA)):
                inside = stratum == k
                cols = mean_columns(np.where(inside, y, 0.0), np.where(inside, x, 0.0) if cuped else None)
                cols["users"] = cols["count"] = inside.sum(1)
                strata_rows[k].append(cols)
            overall.append(mean_columns(y, x if cuped else None))
        tables.append(frame(overall, prefix, sims))
        tables += [frame(arms, prefix, sims, "__strata__", f"s{k}") for k, arms in strata_rows.items()]
    result = analyse(pd.concat(tables, ignore_index=True), post_stratification=("stratum",))
    assert result["post_stratified"].all(), result.loc[~result["post_stratified"], "note"].iloc[0]
    return {
        "Post-stratified (4 unequal strata), mean (relative)": outcome(result, names("p", sims), planted, truth),
        "Post-stratified with CUPED, mean (relative)": outcome(result, names("c", sims), planted, truth),
    }


def m_holm(rng, sims, planted):
    """4 independent A/A metrics per experiment, Holm-corrected (one experiment per dimension, the
    correction's family); family-wise error rate only."""
    if planted:
        return {}
    shape = (sims, UNITS_PER_ARM)
    tables = []
    for j in range(4):
        arms = [mean_columns(rng.normal(10, 3, shape)) for _ in range(2)]
        for variation, cols in enumerate(arms):
            part = pd.DataFrame(cols)
            part.insert(0, "variation", str(variation))
            part.insert(0, "dimension_value", "all")
            part.insert(0, "dimension", [f"sim{i}" for i in range(sims)])
            part.insert(0, "metric", f"m{j}")
            tables.append(part)
    result = experiment_results(pd.concat(tables, ignore_index=True), AnalysisSettings(correction="holm")).to_pandas()
    rejected = result.groupby("dimension")["p_value_adjusted"].apply(lambda p: bool((p < ALPHA).any()))
    return {"Holm over 4 metrics (family-wise)": (int(rejected.sum()), len(rejected))}


def daily_cumulative(rng, sims, lift):
    daily = gamma_arm(rng, (sims, DAYS, UNITS_PER_DAY), lift)
    return np.cumsum(daily.sum(2), 1), np.cumsum((daily**2).sum(2), 1)


def day_columns(cumulative, day):
    s, q = cumulative
    n = (day + 1) * UNITS_PER_DAY
    return {"metric_type": "mean", "users": n, "count": n, "main_sum": s[:, day], "main_sum_squares": q[:, day]}


def m_sequential(rng, sims, planted):
    """Daily looks at cumulative sums (14 days × 150 units per arm), the same data as a goal metric
    (two-sided) and a guardrail (one-sided against harm): a hit is a rejection on any day (A/A) or
    an interval holding the planted +5% on every day."""
    lift = LIFT if planted else 1.0
    arms = daily_cumulative(rng, sims, 1.0), daily_cumulative(rng, sims, lift)
    goal, guard = names("g", sims), names("h", sims)
    two_sided = np.zeros(sims, bool) if not planted else np.ones(sims, bool)
    one_sided = two_sided.copy()
    usable = np.ones(sims, bool)
    for day in range(DAYS):
        cols = [day_columns(a, day) for a in arms]
        table = pd.concat([frame(cols, "g", sims), frame(cols, "h", sims)], ignore_index=True)
        r = analyse(table, sequential=True, guardrail_metrics=tuple(guard))
        g, h = r.loc[goal], r.loc[guard]
        usable &= g["p_value"].notna().to_numpy() & h["p_value"].notna().to_numpy()
        if planted:
            two_sided &= ((g["ci_lower"] <= lift - 1) & (lift - 1 <= g["ci_upper"])).to_numpy()
            one_sided &= (lift - 1 <= h["ci_upper"]).to_numpy()
        else:
            two_sided |= (g["p_value"] < ALPHA).to_numpy()
            one_sided |= (h["p_value"] < ALPHA).to_numpy()
    return {
        f"Sequential (tuning 5000), peeking daily for {DAYS} days": (
            int((two_sided & usable).sum()),
            int(usable.sum()),
        ),
        "Sequential one-sided guardrail, peeking daily": (int((one_sided & usable).sum()), int(usable.sum())),
    }


def m_peeking(rng, sims, planted):
    """The fixed-horizon t-test looked at daily (contrast): rejection on any day."""
    if planted:
        return {}
    arms = daily_cumulative(rng, sims, 1.0), daily_cumulative(rng, sims, 1.0)
    rejected, usable = np.zeros(sims, bool), np.ones(sims, bool)
    for day in range(DAYS):
        r = analyse(frame([day_columns(a, day) for a in arms], "g", sims)).loc[names("g", sims)]
        rejected |= (r["p_value"] < ALPHA).to_numpy()
        usable &= r["p_value"].notna().to_numpy()
    return {f"Fixed-horizon t-test, peeking daily for {DAYS} days": (int((rejected & usable).sum()), int(usable.sum()))}


def true_event_quantile(level: float, lift: float) -> float:
    """Quantile of the events' distribution: the event count does not depend on the values, so an
    event is lognormal, log-mean 3 and log-sd sqrt(0.5² + 0.5²)."""
    return lift * math.exp(3 + stats.norm.ppf(level) * math.hypot(LOG_UNIT_SD, LOG_EVENT_SD))


def naive_outcome(control: dict, treatment: dict, planted: bool, truth: float) -> tuple[int, int]:
    """The old engine on an event-level quantile row: per-value variance ``(n−1)·((upper−lower)/(2·1.96))²``
    over the n events, as if they were independent (floored at 1e-5 from 100 values), Welch t-test
    of the absolute difference."""
    parts = []
    for row in (control, treatment):
        n = row["quantile_n"]
        variance = np.maximum((n - 1) * ((row["quantile_upper"] - row["quantile_lower"]) / (2 * Z_95)) ** 2, 1e-5)
        parts.append((n, variance / n))
    (n0, v0), (n1, v1) = parts
    se = np.sqrt(v0 + v1)
    dof = (v0 + v1) ** 2 / (v0**2 / (n0 - 1) + v1**2 / (n1 - 1))
    estimate = treatment["quantile"] - control["quantile"]
    if not planted:
        return int((2 * stats.t.sf(np.abs(estimate / se), dof) < ALPHA).sum()), len(se)
    width = stats.t.ppf(1 - ALPHA / 2, dof) * se
    return int(((estimate - width <= truth) & (truth <= estimate + width)).sum()), len(se)


def quantile_measure(kind: str, units: int, label: str):
    """Event-level (``kind`` "event") or unit-level quantiles P50 and P90 with ``units`` units per
    arm, tested on the absolute difference; planted: treatment values ×1.05, so the true difference
    is 0.05 × the control's quantile."""

    def measure(rng, sims, planted):
        lift = LIFT if planted else 1.0
        levels = (0.5, 0.9)
        if kind == "event":
            arms = [event_quantile_columns(rng, sims, units, arm_lift, levels) for arm_lift in (1.0, lift)]
            truth = {level: true_event_quantile(level, lift) - true_event_quantile(level, 1.0) for level in levels}
        else:
            y = [rng.lognormal(3.0, 0.7, (sims, units)) * arm_lift for arm_lift in (1.0, lift)]
            arms = [{level: unit_quantile_columns(v, level) for level in levels} for v in y]
            truth = {level: (lift - 1) * math.exp(3 + stats.norm.ppf(level) * 0.7) for level in levels}
        tables = [frame([arm[level] for arm in arms], f"p{round(level * 100)}_", sims) for level in levels]
        result = analyse(pd.concat(tables, ignore_index=True), difference_type="absolute")
        out = {}
        for level in levels:
            name = f"P{round(level * 100)}"
            out[f"{label} {name}"] = outcome(result, names(f"{name.lower()}_", sims), planted, truth[level])
        if kind == "event":
            for level in levels:
                name = f"P{round(level * 100)}"
                out[f"{label} {name}, naive iid variance (old engine)"] = naive_outcome(
                    arms[0][level], arms[1][level], planted, truth[level]
                )
        return out

    return measure


@dataclass(frozen=True)
class Row:
    label: str
    fpr_criterion: str
    coverage_criterion: str | None  # None: not measured


ROWS = {
    "mean": [Row("Welch t-test, mean (relative)", IN_RANGE, COVERS),
             Row("Welch t-test, mean (absolute)", IN_RANGE, COVERS),
             Row("Bayesian, mean (chance to win outside 2.5–97.5%)", IN_RANGE, COVERS),
             Row("Guardrail one-sided t-test (harm)", IN_RANGE, COVERS)],
    "negative-mean": [Row("Welch t-test, negative control mean (relative)", IN_RANGE, COVERS)],
    "binomial": [Row("Welch t-test, binomial (relative)", IN_RANGE, COVERS),
                 Row("abautomator view, rates (z-test, relative 95%)", IN_RANGE, COVERS)],
    "ratio": [Row("Delta method, ratio (relative)", IN_RANGE, COVERS)],
    "cuped": [Row("CUPED t-test, mean (relative)", IN_RANGE, COVERS)],
    "binomial-cuped": [Row("CUPED t-test, binomial (relative)", IN_RANGE, COVERS)],
    "ratio-cuped": [Row("Ratio CUPED (relative)", IN_RANGE, COVERS)],
    "post-stratification": [Row("Post-stratified (4 unequal strata), mean (relative)", IN_RANGE, COVERS),
                            Row("Post-stratified with CUPED, mean (relative)", IN_RANGE, COVERS)],
    "quantile-event": [Row("Event quantile, clustered (abs.) P50", IN_RANGE, COVERS),
                       Row("Event quantile, clustered (abs.) P90", IN_RANGE, COVERS),
                       Row("Event quantile, clustered (abs.) P50, naive iid variance (old engine)", CONTRAST, CONTRAST),
                       Row("Event quantile, clustered (abs.) P90, naive iid variance (old engine)", CONTRAST, CONTRAST)],
    "quantile-unit": [Row("Unit quantile (abs.) P50", IN_RANGE, COVERS),
                      Row("Unit quantile (abs.) P90", IN_RANGE, COVERS)],
    "quantile-small": [Row("Event quantile, 100 units/arm (abs.) P50", IN_RANGE, COVERS),
                       Row("Event quantile, 100 units/arm (abs.) P90", IN_RANGE, COVERS),
                       Row("Unit quantile, 100 units/arm (abs.) P50", IN_RANGE, COVERS),
                       Row("Unit quantile, 100 units/arm (abs.) P90", IN_RANGE, COVERS)],
    "holm": [Row("Holm over 4 metrics (family-wise)", AT_MOST, None)],
    "sequential": [Row(f"Sequential (tuning 5000), peeking daily for {DAYS} days", BELOW, COVERS_ALWAYS),
                   Row("Sequential one-sided guardrail, peeking daily", BELOW, COVERS_ALWAYS)],
    "peeking": [Row(f"Fixed-horizon t-test, peeking daily for {DAYS} days", "(inflates)", None)],
}  # fmt: skip


def m_quantile_small(rng, sims, planted):
    out = {}
    for kind, label in (
        ("event", "Event quantile, 100 units/arm (abs.)"),
        ("unit", "Unit quantile, 100 units/arm (abs.)"),
    ):
        out.update(
            {k: v for k, v in quantile_measure(kind, 100, label)(rng, sims, planted).items() if "naive" not in k}
        )
    return out


MEASURES: dict[str, Callable] = {
    "mean": m_mean,
    "negative-mean": m_negative_mean,
    "binomial": m_binomial,
    "ratio": m_ratio,
    "cuped": m_cuped,
    "binomial-cuped": m_binomial_cuped,
    "ratio-cuped": m_ratio_cuped,
    "post-stratification": m_post_stratification,
    "quantile-event": quantile_measure("event", UNITS_PER_ARM, "Event quantile, clustered (abs.)"),
    "quantile-unit": quantile_measure("unit", UNITS_PER_ARM, "Unit quantile (abs.)"),
    "quantile-small": m_quantile_small,
    "holm": m_holm,
    "sequential": m_sequential,
    "peeking": m_peeking,
}
# Rough cost per simulation (for scheduling the slowest first).
COST = {"sequential": 10, "peeking": 5, "quantile-event": 4, "post-stratification": 3, "mean": 3, "holm": 3}


def run_task(task: tuple[str, bool, int, int, bool]) -> tuple[str, bool, dict, float]:
    global AS_GOAL_METRICS
    method, planted, sims, seed, AS_GOAL_METRICS = task
    rng = np.random.default_rng([seed, zlib.crc32(method.encode()), int(planted)])
    start = time.perf_counter()
    return method, planted, MEASURES[method](rng, sims, planted), time.perf_counter() - start


def fmt_rate(k: int, n: int) -> tuple[str, str]:
    low, high = wilson(k, n)
    return f"{k / n:.2%}", f"[{low:.1%}, {high:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000, help="experiments per method and set (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", default="", help=f"comma-separated subset of: {', '.join(MEASURES)}")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table too")
    parser.add_argument("--as-goal-metrics", action="store_true",
                        help="analyse the simulated metrics as goal metrics, with the engine's power estimate (slower)")  # fmt: skip
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or list(MEASURES)
    unknown = [m for m in methods if m not in MEASURES]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(MEASURES)}")
    start = time.perf_counter()
    tasks = sorted(
        ((m, planted, args.simulations, args.seed, args.as_goal_metrics) for m in methods for planted in (False, True)),
        key=lambda t: -COST.get(t[0], 1),
    )
    counts: dict[tuple[str, bool], dict] = {}
    seconds: dict[str, float] = {}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_task, tasks))
    else:
        results = [run_task(t) for t in tasks]
    for method, planted, out, took in results:
        counts[(method, planted)] = out
        seconds[method] = seconds.get(method, 0.0) + took

    n = args.simulations
    print(f"{n:,} simulated A/A tests and {n:,} with a planted effect per method, seed {args.seed}, alpha {ALPHA}, "
          f"{UNITS_PER_ARM:,} units per arm ({DAYS} days × {UNITS_PER_DAY} units per arm for peeking; "
          f"event quantiles ~{EVENTS_PER_UNIT} correlated events per unit)\n")  # fmt: skip
    header = f"{'method':<68} {'FP rate':>7} {'95% CI (Wilson)':>16} {'criterion':<11} ok   {'coverage':>8} {'95% CI (Wilson)':>16} {'criterion':<13} ok"
    print(header)
    missed, markdown = [], []
    for method in methods:
        for row in ROWS[method]:
            k, used = counts[(method, False)][row.label]
            fpr, fpr_ci = fmt_rate(k, used)
            ok = meets(row.fpr_criterion, k / used)
            cells = [
                f"{row.label:<68} {fpr:>7} {fpr_ci:>16} {row.fpr_criterion:<11} {'' if ok is None else 'yes' if ok else 'NO':<4}"
            ]
            md = [row.label, fpr, fpr_ci, row.fpr_criterion]
            if ok is False:
                missed.append(f"{row.label}: false-positive rate {fpr}")
            if row.coverage_criterion is not None:
                c, cused = counts[(method, True)][row.label]
                cov, cov_ci = fmt_rate(c, cused)
                cok = meets(row.coverage_criterion, c / cused)
                cells.append(
                    f"{cov:>8} {cov_ci:>16} {row.coverage_criterion:<13} {'' if cok is None else 'yes' if cok else 'NO'}"
                )
                md += [cov, cov_ci, row.coverage_criterion]
                if cok is False:
                    missed.append(f"{row.label}: coverage {cov}")
                used = min(used, cused)
            else:
                cells.append(f"{'—':>8}")
                md += ["—", "", ""]
            if used < n:
                cells.append(f"  ({n - used} simulations without a result)")
            print(" ".join(cells))
            markdown.append("| " + " | ".join(md) + " |")
    if args.markdown:
        print("\n| method | false-positive rate | Wilson 95% | criterion | coverage | Wilson 95% | criterion |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(markdown))
    print(f"\n{time.perf_counter() - start:.1f} s wall ({args.jobs} processes; "
          + ", ".join(f"{m} {seconds[m]:.0f} s" for m in methods) + ")")  # fmt: skip
    print("all criteria met" if not missed else f"{len(missed)} criteria missed: " + "; ".join(missed))


if __name__ == "__main__":
    main()
