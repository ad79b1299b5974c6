"""Test-only helpers for the statistics tests: simulated per-unit data, the sufficient-statistics
rows summed from it with numpy (independently of workbench), and GrowthBook's gbstats 0.8.0
statistics built from the same sums (gbstats is a test oracle only, never imported by workbench)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sums_row(
    metric: str,
    metric_type: str,
    variation: str,
    y: np.ndarray,
    *,
    covariate: np.ndarray | None = None,
    denominator: np.ndarray | None = None,
    dimension: str = "overall",
    dimension_value: str = "all",
) -> dict:
    """One sufficient-statistics row summed from per-unit values ``y`` (docs/sufficient-statistics.md)."""
    y = np.asarray(y, dtype=float)
    row = {
        "metric": metric, "metric_type": metric_type, "dimension": dimension, "dimension_value": dimension_value,
        "variation": variation, "users": len(y), "count": len(y), "main_sum": float(y.sum()),
        "main_sum_squares": float((y**2).sum()),
        "denominator_sum": np.nan, "denominator_sum_squares": np.nan, "main_denominator_sum_product": np.nan,
        "covariate_sum": np.nan, "covariate_sum_squares": np.nan, "main_covariate_sum_product": np.nan,
    }  # fmt: skip
    if denominator is not None:
        d = np.asarray(denominator, dtype=float)
        row.update(
            denominator_sum=float(d.sum()),
            denominator_sum_squares=float((d**2).sum()),
            main_denominator_sum_product=float((y * d).sum()),
        )
    if covariate is not None:
        x = np.asarray(covariate, dtype=float)
        row.update(
            covariate_sum=float(x.sum()),
            covariate_sum_squares=float((x**2).sum()),
            main_covariate_sum_product=float((y * x).sum()),
        )
    return row


def gb_statistic(row: dict, *, cuped: bool = False):
    """The gbstats statistic for one of our rows, as gbstats' own runner would build it."""
    from gbstats.models.statistics import (
        ProportionStatistic,
        QuantileStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )  # fmt: skip

    n = int(row["users"])
    binomial = row["metric_type"] == "binomial"

    def base(prefix: str):
        if binomial:
            return ProportionStatistic(n=n, sum=float(row[f"{prefix}_sum"]))
        return SampleMeanStatistic(
            n=n, sum=float(row[f"{prefix}_sum"]), sum_squares=float(row[f"{prefix}_sum_squares"])
        )

    if row["metric_type"] == "quantile":
        return QuantileStatistic(n=int(row["quantile_n"]), n_star=int(row["quantile_n"]), nu=float(row["nu"]), quantile_hat=float(row["quantile"]),
                                 quantile_lower=float(row["quantile_lower"]), quantile_upper=float(row["quantile_upper"]))  # fmt: skip
    if row["metric_type"] == "ratio":
        return RatioStatistic(
            n=n,
            m_statistic=base("main"),
            d_statistic=base("denominator"),
            m_d_sum_of_products=float(row["main_denominator_sum_product"]),
        )
    if cuped:
        return RegressionAdjustedStatistic(n=n, post_statistic=base("main"), pre_statistic=base("covariate"),
                                           post_pre_sum_of_products=float(row["main_covariate_sum_product"]), theta=0)  # fmt: skip
    return base("main")


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
