"""Experiment health, judged before any lift: sample-ratio mismatch, multiple exposures, unknown
variations.

SRM is Pearson's chi-square goodness-of-fit test of the units per variation against the configured
traffic weights (Pearson 1900; GrowthBook's ``check_srm`` in gbstats ``utils.py``), flagged at
p < 0.001 when every variation has at least 8 units (GrowthBook's thresholds). Units that saw several
variations (``__multiple__``) are excluded from the analysis; a share of 1% or more is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

SRM_P_THRESHOLD = 0.001
SRM_MIN_UNITS = 8
MULTIPLE_EXPOSURE_WARN_SHARE = 0.01
MULTIPLE = "__multiple__"


def srm_p_value(users: Sequence[float], weights: Sequence[float]) -> float:
    """Chi-square p-value of observed ``users`` per variation against expected shares ``weights``
    (normalised to sum 1; variations with weight ≤ 0 are skipped), with k-1 degrees of freedom; 1 when
    there are no units (Pearson 1900; gbstats ``check_srm``)."""
    from scipy.stats import chi2

    if len(users) != len(weights):
        raise ValueError(f"{len(users)} unit counts but {len(weights)} weights; give one weight per variation.")
    total = float(sum(users))
    if total == 0:
        return 1.0
    total_weight = float(sum(weights))
    statistic = 0.0
    for observed, weight in zip(users, weights):
        if weight <= 0:
            continue
        expected = weight / total_weight * total
        statistic += (observed - expected) ** 2 / expected
    return float(chi2.sf(statistic, len(users) - 1))


def srm_flagged(p_value: float, users: Sequence[float]) -> bool:
    """True when ``p_value < 0.001`` and every variation has at least 8 units."""
    return p_value < SRM_P_THRESHOLD and min(users, default=0) >= SRM_MIN_UNITS


UNITS_PER_DAY_COLUMNS = ["day", "variation", "users"]


@dataclass(frozen=True)
class HealthChecks:
    """Health of one experiment. ``srm`` has one row per (dimension, dimension_value): units per
    configured variation (``users_<id>``), ``srm_p_value`` and ``srm_flagged``; the rest are the
    overall facts and the ``warnings`` to show before any result. ``units_per_day`` holds new
    units per first-exposure day and variation (``day, variation, users``) when the experiment
    engine gave them."""

    srm: pd.DataFrame
    srm_p_value: float
    multiple_exposure_units: int
    multiple_exposure_share: float
    unknown_variations: list[str]
    warnings: list[str] = field(default_factory=list)
    units_per_day: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNITS_PER_DAY_COLUMNS))

    @property
    def units(self) -> int:
        """Units in the configured variations overall (those that saw several are not counted)."""
        overall = self.srm[self.srm["dimension"] == "overall"] if len(self.srm) else self.srm
        columns = [c for c in overall.columns if c.startswith("users_")]
        return int(overall[columns].to_numpy().sum()) if len(overall) else 0

    @property
    def srm_flagged(self) -> bool:
        """True when the overall sample-ratio check is flagged."""
        overall = self.srm[self.srm["dimension"] == "overall"] if len(self.srm) else self.srm
        return bool(len(overall) and overall["srm_flagged"].iloc[0])


def health_checks(
    unit_counts: pd.DataFrame,
    variations: Sequence[str],
    weights: Sequence[float],
    units_per_day: pd.DataFrame | None = None,
) -> HealthChecks:
    """Health checks from ``unit_counts`` (columns dimension, dimension_value, variation, users; the
    experiment engine's health facts, ``__multiple__`` and unknown ids included) against the
    configured ``variations`` and their traffic ``weights``; ``units_per_day`` is kept as given."""
    variations = [str(v) for v in variations]
    counts = unit_counts.assign(variation=unit_counts["variation"].astype(str))
    overall = counts[counts["dimension"] == "overall"]
    unknown = sorted(set(counts["variation"]) - set(variations) - {MULTIPLE})
    multiple = int(overall.loc[overall["variation"] == MULTIPLE, "users"].sum())
    total = float(overall["users"].sum())
    share = multiple / total if total else 0.0

    rows = []
    for (dimension, value), group in counts.groupby(["dimension", "dimension_value"], sort=False):
        users = group.groupby("variation")["users"].sum().reindex(variations, fill_value=0)
        p = srm_p_value(users.tolist(), weights)
        row = {"dimension": dimension, "dimension_value": value}
        row.update({f"users_{v}": int(users[v]) for v in variations})
        row.update(srm_p_value=p, srm_flagged=srm_flagged(p, users.tolist()))
        rows.append(row)
    srm = pd.DataFrame(
        rows,
        columns=["dimension", "dimension_value", *[f"users_{v}" for v in variations], "srm_p_value", "srm_flagged"],
    )
    overall_rows = srm[srm["dimension"] == "overall"] if len(srm) else srm
    overall_p = float(overall_rows["srm_p_value"].iloc[0]) if len(overall_rows) else 1.0

    warnings = []
    if total == 0:
        warnings.append(
            "No data yet: no unit was exposed to this experiment between its start and end; check the dates, the key and the assignment query, or wait for traffic."
        )
    empty = [v for v in variations if total and not overall.loc[overall["variation"] == v, "users"].sum()]
    if empty:
        warnings.append(
            f"Variation(s) {', '.join(empty)} have no units: their results are empty; check the assignment (weights, rollout) or the configured variation ids."
        )
    if len(overall_rows) and bool(overall_rows["srm_flagged"].iloc[0]):
        split = ", ".join(f"{v}: {int(overall_rows[f'users_{v}'].iloc[0]):,}" for v in variations)
        warnings.append(
            f"Sample ratio mismatch: units per variation ({split}) do not match the configured weights "
            f"(p = {overall_p:.2g} < {SRM_P_THRESHOLD}); find the cause before trusting any result."
        )
    flagged = srm[(srm["dimension"] != "overall") & srm["srm_flagged"]] if len(srm) else srm
    for row in flagged[
        ["dimension", "dimension_value", "srm_p_value"]
    ].itertuples():  # users_<variation> columns can be any text
        warnings.append(
            f"Sample ratio mismatch within {row.dimension} = {row.dimension_value} (p = {row.srm_p_value:.2g})."
        )
    if share >= MULTIPLE_EXPOSURE_WARN_SHARE:
        warnings.append(
            f"{multiple:,} units ({share:.1%}) saw more than one variation and were excluded; "
            "check the assignment and exposure logging."
        )
    if unknown:
        warnings.append(
            f"Units in variations not in the configuration: {', '.join(unknown)}; add them to the config or fix the logging."
        )
    if units_per_day is None:
        units_per_day = pd.DataFrame(columns=UNITS_PER_DAY_COLUMNS)
    return HealthChecks(srm, overall_p, multiple, share, unknown, warnings, units_per_day)
