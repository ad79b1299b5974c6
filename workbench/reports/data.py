"""Everything an experiment report or the dashboard shows, computed once: results, the
abautomator interval view, units per day, the cumulative effect of goal metrics, the SQL that ran
and the run's provenance; saved under ``reports/<key>/cache/`` (Parquet + JSON) so the dashboard
answers without touching the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import pandas as pd

    from workbench.stats import ExperimentResults


PROVENANCE_PACKAGES = ("workbench", "duckdb", "pandas", "numpy", "scipy", "plotly", "sqlalchemy", "psycopg")
# Parquet files of a cache: a name and how to read it from / put it back into a ReportData
CACHE_FRAMES = ("results", "sufficient_statistics", "srm", "units_per_day", "intervals", "cumulative")
# older versions are refused with a sentence: 1 cached no objects, 3 at most one dimension, 4 no labels
CACHE_VERSION = 5


@dataclass
class ReportData:
    """One experiment's report content: ``results`` (the :class:`~workbench.stats.ExperimentResults`
    of :func:`workbench.experiments.analysis.analyze`: table, health with new units per day,
    settings, sufficient statistics), ``intervals`` (the 68%/95% view), ``cumulative``
    (:mod:`workbench.experiments.cumulative`), the ``sql`` that ran and the run's ``provenance``."""

    key: str
    results: ExperimentResults
    intervals: pd.DataFrame
    cumulative: pd.DataFrame
    sql: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> str:
        return self.results.settings.control

    @property
    def units_per_day(self) -> pd.DataFrame:
        return self.results.health.units_per_day


def config_hash(path: Path) -> str:
    """First 12 hex digits of the SHA-256 of the config file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a report's numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PROVENANCE_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def report_data(
    key: str,
    db=None,
    *,
    config_path: str | Path | None = None,
    dimension: str | None = None,
    cumulative_points: int = 14,
    incremental: bool | None = None,
    full_refresh: bool = False,
    **setting_overrides: Any,
) -> ReportData:
    """Compute the report of experiment ``key`` of ``config_path`` (default: the project's
    ``workbench.yml``) on ``db``: overall results plus per value of each dimension ``dimension``
    names (None or "": every configured dimension; "none": overall only; else columns separated by
    commas: :meth:`~workbench.experiments.config.Config.report_dimensions`), the cumulative
    effect of goal metrics at up to ``cumulative_points`` days.
    ``setting_overrides`` are ``AnalysisSettings`` fields (engine, alpha, …); ``incremental`` and
    ``full_refresh`` as for :func:`~workbench.experiments.analysis.analyze`."""
    import time

    from workbench.db.connection import SqlDatabase
    from workbench.experiments.analysis import analyze
    from workbench.experiments.config import load_config
    from workbench.experiments.cumulative import cumulative_effects, end_days
    from workbench.experiments.engine import experiment

    started = time.perf_counter()
    config = load_config(Path(config_path) if config_path else None)
    exp = experiment(key, config)
    dimensions = config.report_dimensions(key, dimension)
    if db is None:  # a session of its own, closed afterwards so it holds no DuckDB file open
        from workbench.db.connection import connect

        db = connect(config_path=config.path)  # the config's database and statement timeout
        try:
            return report_data(
                key,
                db,
                config_path=config_path,
                dimension=",".join(dimensions) or "none",
                cumulative_points=cumulative_points,
                incremental=incremental,
                full_refresh=full_refresh,
                **setting_overrides,
            )
        finally:
            db.dispose()
    results = analyze(
        exp, db, dimensions=dimensions, incremental=incremental, full_refresh=full_refresh, **setting_overrides
    )
    days = results.health.units_per_day
    points = end_days(days["day"].min().date(), days["day"].max().date(), cumulative_points) if len(days) else []
    cumulative = cumulative_effects(exp, db, results.settings, points)
    provenance = {
        "experiment": key,
        "config_file": str(config.path),
        "config_sha256": config_hash(config.path),
        "database": db.settings.display_url if isinstance(db, SqlDatabase) else db.dialect.title,
        "data_window": _data_window(exp, days),
        "dimensions": list(dimensions),
        "computed_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "seconds": round(time.perf_counter() - started, 2),
        "packages": package_versions(),
    }
    sql = [s for s in dict.fromkeys(results.sufficient_statistics.attrs.get("sql", [])) if s]
    return ReportData(key, results, results.intervals(), cumulative, sql, provenance)


def _data_window(exp, days: pd.DataFrame) -> dict[str, str | None]:
    def text(value) -> str | None:
        return None if value is None else str(value)

    return {
        "configured_start": text(exp.settings.start),
        "configured_end": text(exp.settings.end),
        "first_exposure_day": str(days["day"].min().date()) if len(days) else None,
        "last_exposure_day": str(days["day"].max().date()) if len(days) else None,
    }


def cache_dir(key: str, reports_dir: Path | None = None) -> Path:
    """``reports/<key>/cache``."""
    from workbench import paths

    return Path(reports_dir or paths.reports_dir()) / key / "cache"


def save_report_cache(data: ReportData, directory: Path) -> Path:
    """Write ``data`` into ``directory`` (one Parquet file per frame and ``results.json``); the
    folder is replaced in one rename, so readers never see half a cache."""
    from workbench.files import replace_directory

    results, health = data.results, data.results.health
    frames = {
        "results": results.table,
        "sufficient_statistics": results.sufficient_statistics,
        "srm": health.srm,
        "units_per_day": health.units_per_day,
        "intervals": data.intervals,
        "cumulative": data.cumulative,
    }
    payload = {
        "version": CACHE_VERSION,
        "key": data.key,
        "experiment": results.experiment,
        "labels": results.labels.to_dict(),
        "settings": results.settings.to_dict(),
        "health": {
            "srm_p_value": health.srm_p_value,
            "multiple_exposure_units": health.multiple_exposure_units,
            "multiple_exposure_share": health.multiple_exposure_share,
            "unknown_variations": list(health.unknown_variations),
            "warnings": list(health.warnings),
        },
        "sql": data.sql,
        "provenance": data.provenance,
    }

    def write(staging: Path) -> None:
        for name, frame in frames.items():
            frame = frame.copy()
            frame.attrs = {}  # the SQL and its parameters go to results.json, not Parquet metadata
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        (staging / "results.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")

    return replace_directory(Path(directory), write)


def load_report_cache(directory: Path) -> ReportData:
    """The :class:`ReportData` saved by :func:`save_report_cache` in ``directory``."""
    import pandas as pd

    from workbench.display import Labels
    from workbench.stats import AnalysisSettings, ExperimentResults
    from workbench.stats.health import HealthChecks

    directory = Path(directory)
    if not (directory / "results.json").is_file():
        raise WorkbenchError(
            f"No cached results in {directory}: run `workbench report <key>` or `workbench run-reports` first."
        )
    payload = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    if payload.get("version") != CACHE_VERSION:
        raise WorkbenchError(
            f"The cached results in {directory} were written by an older workbench: run `workbench report {payload.get('key', '<key>')}` again."
        )
    frames = {name: pd.read_parquet(directory / f"{name}.parquet") for name in CACHE_FRAMES}
    health = HealthChecks(
        frames["srm"],
        srm_p_value=payload["health"]["srm_p_value"],
        multiple_exposure_units=payload["health"]["multiple_exposure_units"],
        multiple_exposure_share=payload["health"]["multiple_exposure_share"],
        unknown_variations=payload["health"]["unknown_variations"],
        warnings=payload["health"]["warnings"],
        units_per_day=frames["units_per_day"],
    )
    results = ExperimentResults(
        frames["results"],
        health,
        AnalysisSettings.from_dict(payload["settings"]),
        frames["sufficient_statistics"],
        payload["experiment"],
        Labels.from_dict(payload["labels"]),
    )
    return ReportData(
        payload["key"], results, frames["intervals"], frames["cumulative"], payload["sql"], payload["provenance"]
    )
