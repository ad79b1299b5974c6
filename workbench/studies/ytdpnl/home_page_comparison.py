"""Treatment vs control on the home page, overall and within each phase, with the experiments'
statistics engine (:func:`workbench.stats.experiment_results`, frequentist, absolute differences).

The database sums the units (:func:`~workbench.studies.ytdpnl.home_page.home_page_sums`); this
module only reshapes those sums into the sufficient-statistics table of
docs/sufficient-statistics.md: phase ``"all"`` gives the overall rows, each phase a row of the
dimension ``phase``. A participant active in several phases is a unit of each of them.
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import pandas as pd

from workbench.db.connection import SqlDatabase
from workbench.studies.ytdpnl.arm_comparison import CONTROL, TREATMENT
from workbench.studies.ytdpnl.home_page import home_page_sums
from workbench.studies.ytdpnl.tables import StudyScope

# metric -> (type, numerator sums prefix, denominator sums prefix or None, numerator × denominator column)
HOME_METRICS = {
    "home_shown": ("count", "home_shown", None, None),
    "replacement_tile_share": ("ratio", "replacement_tiles", "shown_tiles", "replacement_shown_tiles_product"),
    "injected_tile_click_through": ("ratio", "injected_clicks", "home_shown", "injected_clicks_home_shown_product"),
}


def home_page_sufficient_statistics(db: SqlDatabase, **scope: Unpack[StudyScope]) -> pd.DataFrame:
    """One row per metric of :data:`HOME_METRICS`, dimension (``overall`` / ``phase``) and arm, in
    the shape of docs/sufficient-statistics.md (home_shown a count per participant; the shares
    ratios of per-participant sums), for the filters of :func:`home_page_sums`."""
    sums = home_page_sums(db, **scope)
    overall = sums["phase"] == "all"
    blocks = []
    for metric, (metric_type, main, denominator, product) in HOME_METRICS.items():
        block = pd.DataFrame(
            {
                "metric": metric,
                "metric_type": metric_type,
                "dimension": np.where(overall, "overall", "phase"),
                "dimension_value": sums["phase"].where(~overall, "all"),
                "variation": sums["arm"],
                "users": sums["participants"],
                "count": sums["participants"],
                "main_sum": sums[main],
                "main_sum_squares": sums[f"{main}_squares"],
                "denominator_sum": sums[denominator] if denominator else np.nan,
                "denominator_sum_squares": sums[f"{denominator}_squares"] if denominator else np.nan,
                "main_denominator_sum_product": sums[product] if product else np.nan,
            }
        )
        blocks.append(block.sort_values(["dimension", "dimension_value"], key=_overall_first, kind="stable"))
    table = pd.concat(blocks, ignore_index=True)
    table.attrs["sql"] = sums.attrs["sql"]
    return table


def _overall_first(column: pd.Series) -> pd.Series:
    """Sort key: ``overall`` rows before the phase rows, phases in order."""
    return column.map(lambda value: (value not in ("overall", "all"), value))


def home_page_comparison(db: SqlDatabase, alpha: float = 0.05, **scope: Unpack[StudyScope]) -> pd.DataFrame:
    """Per home-page metric, overall (``dimension`` overall) and per phase (``dimension`` phase):
    control and treatment means, the absolute effect with its (1 - alpha) interval and p-value.
    ``scope`` as for :func:`home_page_sums`; ``attrs`` holds the sql and the sufficient statistics."""
    from workbench.stats import AnalysisSettings, experiment_results

    table = home_page_sufficient_statistics(db, **scope)
    settings = AnalysisSettings(
        control=CONTROL, variations=(CONTROL, TREATMENT), difference_type="absolute", alpha=alpha, cuped=False
    )
    results = experiment_results(table, settings, experiment="ytdpnl home page").to_pandas()
    results.attrs.update(sql=table.attrs["sql"], sufficient_statistics=table)
    return results
