"""Test-only helpers for the statistics tests: simulated per-unit data, the sufficient-statistics
rows summed from it with numpy (independently of workbench)."""

from __future__ import annotations

import numpy as np


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
