"""Treatment vs control in the intervention phase, per participant, with phase 0 as CUPED covariate.

The database computes the sufficient statistics (``sql/ytdpnl/arm_comparison.sql``); the
statistics engine (:func:`workbench.stats.experiment_results`, frequentist, absolute differences,
CUPED where a covariate is present) compares the arms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.studies.ytdpnl.tables import codes_parameter, study_query, time_window

CONTROL, TREATMENT = "control", "treatment"


def arm_sufficient_statistics(
    db: SqlDatabase,
    *,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """One row per metric and arm in the shape of docs/sufficient-statistics.md (overall rows only)."""
    frame = study_query(db, "arm_comparison", schema, **time_window(start, end), **codes_parameter(codes))
    frame.insert(2, "dimension", "overall")
    frame.insert(3, "dimension_value", "all")
    for column in ("users", "count"):
        frame[column] = frame[column].astype("int64")
    numeric = [c for c in frame.columns if c.endswith(("_sum", "_squares", "_product"))]
    frame[numeric] = frame[numeric].astype("float64")
    return frame


def arm_comparison(
    db: SqlDatabase,
    *,
    schema: str | None = None,
    codes: Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per metric (clicks by kind, home injected tile clicks, watch time, pages viewed, share of
    non-personalized clicks): control and treatment means, the absolute effect with its
    (1 - alpha) interval and p-value, CUPED-adjusted where phase-0 values exist (``cuped``,
    ``theta`` and the ``unadjusted_*`` columns). ``attrs`` holds the sql and the sufficient statistics."""
    from workbench.stats import AnalysisSettings, experiment_results

    table = arm_sufficient_statistics(db, schema=schema, codes=codes, start=start, end=end)
    settings = AnalysisSettings(
        control=CONTROL, variations=(CONTROL, TREATMENT), difference_type="absolute", alpha=alpha
    )
    results = experiment_results(table, settings, experiment="ytdpnl intervention phase").to_pandas()
    results.attrs.update(sql=table.attrs["sql"], sufficient_statistics=table)
    return results
