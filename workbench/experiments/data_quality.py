"""Data-quality checks behind ``notebooks/data_quality.ipynb``: every experiment's health, events
per day and type, days without data and tables that stopped early (late data), and NULL rates of
the columns each metric reads. Counting happens in the database; NULL-rate queries are built here
from the validated config (metric SQL as a subquery, column names from the config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.experiments.config import Config, load_config

if TYPE_CHECKING:
    import pandas as pd


def experiment_health(db, config: Config | None = None) -> pd.DataFrame:
    """One row per configured experiment: units, units per variation, SRM p-value and flag,
    multiple-exposure share and the health warnings (``"; "``-joined)."""
    import pandas as pd

    from workbench.experiments.engine import experiments, health_facts
    from workbench.progress import progress
    from workbench.stats.health import health_checks

    rows = []
    for exp in progress(experiments(config or load_config()), desc="Health checks", unit="experiment"):
        units, _days = health_facts(exp, None, db)
        variations = list(exp.variations) or sorted(set(units["variation"]) - {"__multiple__"})
        checks = health_checks(
            units, variations, list(exp.weights) if exp.variations else [1 / len(variations)] * len(variations)
        )
        overall = units[units["dimension"] == "overall"]
        split = (
            overall[overall["variation"].isin(variations)]
            .set_index("variation")["users"]
            .reindex(variations, fill_value=0)
        )
        rows.append(
            {
                "experiment": exp.key,
                "units": int(split.sum()),
                "units_per_variation": ", ".join(f"{v}: {int(n):,}" for v, n in split.items()),
                "srm_p_value": checks.srm_p_value,
                "srm_flagged": checks.srm_flagged,
                "multiple_exposure_share": checks.multiple_exposure_share,
                "warnings": "; ".join(checks.warnings),
            }
        )
    return pd.DataFrame(rows)


def events_per_day(db) -> pd.DataFrame:
    """Rows of ``events`` per day (UTC) and event type: ``day, event, n``."""
    import pandas as pd

    from workbench.db.sql_files import read_sql

    frame = db.sql(read_sql("reports/events_per_day.sql"), limit=None)
    frame["day"] = pd.to_datetime(frame["day"])
    frame["n"] = frame["n"].astype("int64")
    frame.attrs["sql"] = read_sql("reports/events_per_day.sql")
    return frame


def missing_days(traffic: pd.DataFrame) -> pd.DataFrame:
    """Per series of ``traffic`` (``day, series, n``, e.g. :func:`workbench.reports.overview.traffic_per_day`):
    first and last day with rows, days without rows in between, and how many days the series ends
    before the newest day of any series (late data)."""
    import pandas as pd

    newest = traffic["day"].max()
    rows = []
    for series, part in traffic[traffic["n"] > 0].groupby("series", sort=True):
        days = pd.DatetimeIndex(part["day"].unique()).sort_values()
        expected = pd.date_range(days.min(), days.max(), freq="D")
        gaps = expected.difference(days)
        rows.append({"series": series, "first_day": days.min().date(), "last_day": days.max().date(),
                     "days_without_rows": len(gaps), "missing": ", ".join(str(d.date()) for d in gaps[:10]) + (" …" if len(gaps) > 10 else ""),
                     "days_behind_newest": (newest - days.max()).days})  # fmt: skip
    return pd.DataFrame(rows)


def null_rates_query(config: Config, metric_name: str) -> tuple[str, list[str]]:
    """SQL counting rows and non-NULL values of each column ``metric_name`` reads, and those columns."""
    metric = config.metric(metric_name)
    columns = metric.kind.required_columns(metric.identifier_types)
    counts = ", ".join(f"COUNT(s.{c}) AS {c}" for c in columns)
    return f"SELECT COUNT(*) AS wb_rows, {counts} FROM ({metric.sql}) s", columns


def null_rates(db, config: Config | None = None) -> pd.DataFrame:
    """Per metric with its own SQL and per column it reads: rows and the share of NULLs; a metric
    whose SQL fails gets one row with the error sentence instead of stopping the report."""
    import pandas as pd

    from workbench.errors import WorkbenchError

    config = config or load_config()
    rows, sql = [], []
    for name, metric in config.metrics.items():
        if metric.sql is None:  # a ratio: its parts are checked as metrics of their own
            continue
        query, columns = null_rates_query(config, name)
        sql.append(query)
        try:
            counts = db.sql(query, limit=None).iloc[0]
        except WorkbenchError as exc:
            rows.append(
                {"metric": name, "column": "(all)", "rows": 0, "nulls": 0, "null_rate": float("nan"), "error": str(exc)}
            )
            continue
        total = int(counts["wb_rows"])
        for column in columns:
            nulls = total - int(counts[column])
            rows.append(
                {
                    "metric": name,
                    "column": column,
                    "rows": total,
                    "nulls": nulls,
                    "null_rate": nulls / total if total else 0.0,
                    "error": "",
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["sql"] = sql
    return frame
