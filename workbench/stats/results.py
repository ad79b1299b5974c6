"""The results of one experiment: every metric × variation × dimension value compared with the
control, with the experiment's health beside them.

:func:`experiment_results` turns the sufficient-statistics table (docs/sufficient-statistics.md)
and :class:`~workbench.stats.analysis_settings.AnalysisSettings` into an :class:`ExperimentResults`
with ``to_pandas()`` and ``to_dict()`` (JSON-able); how it looks in a notebook (``_repr_html_()``)
and as text (``str()``) is :mod:`workbench.display`'s. Comparisons that cannot be made carry a
sentence in ``note`` instead of raising.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench import metric_types
from workbench.errors import WorkbenchError
from workbench.stats.analysis_settings import AnalysisSettings
from workbench.stats.bayesian import bayesian_test
from workbench.stats.corrections import adjusted_p_values
from workbench.stats.frequentist import t_test
from workbench.stats.health import HealthChecks, health_checks
from workbench.stats.intervals import difference_intervals
from workbench.stats.moments import (
    ArmMoments,
    comparison_note,
    cuped_moments,
    cuped_sums,
    has_covariate,
    pooled_theta,
    row_moments,
)
from workbench.stats.sequential import sequential_test

REQUIRED_COLUMNS = (
    "metric",
    "metric_type",
    "dimension",
    "dimension_value",
    "variation",
    "users",
    "count",
    "main_sum",
    "main_sum_squares",
)
ROW_FIELDS = (
    "metric", "dimension", "dimension_value", "variation", "baseline", "units", "baseline_units",
    "mean", "baseline_mean", "absolute_effect", "relative_effect", "ci_lower", "ci_upper",
)  # fmt: skip


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _zero_row(template: Mapping, variation: str) -> dict:
    row = dict(template)
    row.update(variation=variation, users=0, count=0, main_sum=0.0, main_sum_squares=0.0, quantile_n=0)
    for column in metric_types.STAT_COLUMNS:
        if column in row and not pd.isna(row[column]):
            row[column] = 0.0
    row["quantile_n"] = 0
    return row


@dataclass(frozen=True)
class ExperimentResults:
    """Results of one experiment. ``table`` holds one row per metric × dimension value × variation
    (see :meth:`to_pandas`), ``health`` the checks to read first, ``sufficient_statistics`` the rows
    the results came from."""

    table: pd.DataFrame
    health: HealthChecks
    settings: AnalysisSettings
    sufficient_statistics: pd.DataFrame
    experiment: str | None = None

    def to_pandas(self) -> pd.DataFrame:
        """All result columns: the JSON fields plus ``metric_type``, ``metric_group``, ``inverse``,
        ``standard_error``, ``significance`` ("better"/"worse"/""), ``cuped``, ``theta`` and the
        ``unadjusted_*`` result kept beside a CUPED-adjusted one."""
        return self.table.copy()

    def to_dict(self) -> dict:
        """JSON-able results: ``experiment``, ``settings``, ``srm_p_value``,
        ``multiple_exposure_units``, ``health`` (warnings, unknown variations, SRM per dimension
        value), ``results`` (one dict per comparison with exactly the documented fields and
        ``note``) and ``sufficient_statistics``. NaN and infinite values become null."""
        fields = list(ROW_FIELDS)
        if self.settings.engine == "frequentist":
            fields.append("p_value")
            if self.settings.correction != "none":
                fields.append("p_value_adjusted")
        else:
            fields.append("chance_to_win")
        results = []
        for record in self.table.to_dict("records"):
            out = {name: _json_value(record[name]) for name in fields}
            if self.settings.engine == "bayesian":
                out["risk"] = {
                    "control": _json_value(record["risk_control"]),
                    "treatment": _json_value(record["risk_treatment"]),
                }
            out["note"] = _json_value(record["note"])
            results.append(out)
        return {
            "experiment": self.experiment,
            "settings": self.settings.to_dict(),
            "srm_p_value": _json_value(self.health.srm_p_value),
            "multiple_exposure_units": int(self.health.multiple_exposure_units),
            "health": {
                "warnings": list(self.health.warnings),
                "unknown_variations": list(self.health.unknown_variations),
                "multiple_exposure_share": _json_value(self.health.multiple_exposure_share),
                "srm": [{k: _json_value(v) for k, v in r.items()} for r in self.health.srm.to_dict("records")],
            },
            "results": results,
            "sufficient_statistics": [
                {k: _json_value(v) for k, v in r.items()} for r in self.sufficient_statistics.to_dict("records")
            ],
        }

    def intervals(self) -> pd.DataFrame:
        """abautomator's view per metric × dimension value × variation: absolute and relative
        differences with 68% and 95% intervals and two-sided p-values (unadjusted means), for
        interval charts; see :mod:`workbench.stats.intervals`."""
        rows = []
        for (metric, dimension, value), arms in _slices(self.sufficient_statistics, self.settings):
            control_row = arms[self.settings.control]
            control = row_moments(control_row)
            for variation, row in arms.items():
                if variation == self.settings.control:
                    continue
                treatment = row_moments(row)
                record = {"metric": metric, "dimension": dimension, "dimension_value": value, "variation": variation}
                note = comparison_note(control, treatment, relative=False)
                if note is None:
                    view = difference_intervals(control, treatment, proportion=control_row["metric_type"] == "binomial")
                    record.update(
                        absolute=view.absolute,
                        absolute_68_lower=view.absolute_68[0], absolute_68_upper=view.absolute_68[1],
                        absolute_95_lower=view.absolute_95[0], absolute_95_upper=view.absolute_95[1],
                        relative=view.relative,
                        relative_68_lower=view.relative_68[0], relative_68_upper=view.relative_68[1],
                        relative_95_lower=view.relative_95[0], relative_95_upper=view.relative_95[1],
                        p_value=view.p_value, note=view.note,
                    )  # fmt: skip
                else:
                    record["note"] = note
                rows.append(record)
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        from workbench.display import results_text

        return results_text(self)

    def _repr_html_(self) -> str:
        from workbench.display import results_html

        return results_html(self)


def _variations(table: pd.DataFrame, settings: AnalysisSettings) -> list[str]:
    if settings.variations is not None:
        return list(settings.variations)
    found = sorted({str(v) for v in table["variation"]} - {"__multiple__"}, key=lambda v: (len(v), v))
    return [settings.control] + [v for v in found if v != settings.control]


def _slices(table: pd.DataFrame, settings: AnalysisSettings):
    """(metric, dimension, dimension_value) → {variation: row}, with missing arms zero-filled and
    unknown variations left out, in the table's order."""
    variations = _variations(table, settings)
    records = table.assign(variation=table["variation"].astype(str)).to_dict("records")
    groups: dict[tuple, dict[str, dict]] = {}
    for record in records:
        key = (record["metric"], record["dimension"], record["dimension_value"])
        if record["variation"] in variations:
            groups.setdefault(key, {})[record["variation"]] = record
    for key, arms in groups.items():
        template = next(iter(arms.values()))
        yield key, {v: arms.get(v) or _zero_row(template, v) for v in variations}


def _arm_mean(arm: ArmMoments) -> float:
    """The arm's mean, NaN (shown blank) for an arm without units rather than a made-up 0."""
    return arm.mean if arm.n else math.nan


def _one_arm_note(dimension: str, value: str, control: ArmMoments, treatment: ArmMoments) -> str | None:
    if dimension != "overall" and (control.n == 0) != (treatment.n == 0):
        arm = "the control" if treatment.n == 0 else "this variation"
        return f"{dimension} = {value} has units only in {arm}, so the two arms cannot be compared here"
    return None


def _test(
    control: ArmMoments,
    treatment: ArmMoments,
    settings: AnalysisSettings,
    relative: bool,
    guardrail: bool,
    inverse: bool,
) -> dict:
    """The configured test on one scale, as result columns."""
    if settings.engine == "bayesian":
        r = bayesian_test(
            control, treatment, prior=settings.prior, relative=relative, alpha=settings.alpha, inverse=inverse
        )
        return {"estimate": r.estimate, "ci_lower": r.ci_lower, "ci_upper": r.ci_upper, "standard_error": r.sd,
                "chance_to_win": r.chance_to_win, "risk_control": r.risk_control, "risk_treatment": r.risk_treatment}  # fmt: skip
    if settings.sequential:
        r = sequential_test(
            control, treatment, relative=relative, alpha=settings.alpha, tuning=settings.sequential_tuning
        )
    else:
        alternative = ("greater" if inverse else "less") if guardrail else "two-sided"
        r = t_test(control, treatment, relative=relative, alpha=settings.alpha, alternative=alternative)
    return {
        "estimate": r.estimate,
        "ci_lower": r.ci_lower,
        "ci_upper": r.ci_upper,
        "standard_error": r.standard_error,
        "p_value": r.p_value,
    }


def _compare(
    control: ArmMoments, treatment: ArmMoments, settings: AnalysisSettings, guardrail: bool, inverse: bool
) -> dict:
    """Effects, interval and test of one comparison (NaN plus a note when it cannot be made)."""
    out: dict[str, Any] = {"absolute_effect": math.nan, "relative_effect": math.nan, "ci_lower": math.nan, "ci_upper": math.nan,
                           "standard_error": math.nan, "p_value": math.nan, "chance_to_win": math.nan,
                           "risk_control": math.nan, "risk_treatment": math.nan, "note": None}  # fmt: skip
    if control.n > 0 and treatment.n > 0:
        out["absolute_effect"] = treatment.mean - control.mean
        if control.unadjusted_mean != 0:
            out["relative_effect"] = (treatment.mean - control.mean) / control.unadjusted_mean
    note = comparison_note(control, treatment, settings.relative)
    if note is not None:
        out["note"] = note
        return out
    chosen = _test(control, treatment, settings, settings.relative, guardrail, inverse)
    out.update({k: v for k, v in chosen.items() if k != "estimate"})
    if settings.engine == "bayesian":
        # posterior means on both scales (they differ from the data only under a proper prior)
        out["relative_effect" if settings.relative else "absolute_effect"] = chosen["estimate"]
        if settings.relative or control.unadjusted_mean != 0:
            other = bayesian_test(
                control, treatment, prior=settings.prior, relative=not settings.relative, alpha=settings.alpha
            )
            out["absolute_effect" if settings.relative else "relative_effect"] = other.estimate
    return out


def _significance(row: Mapping, settings: AnalysisSettings) -> str:
    if settings.engine == "bayesian":
        ctw = row["chance_to_win"]
        if pd.isna(ctw):
            return ""
        return "better" if ctw >= 1 - settings.alpha else "worse" if ctw <= settings.alpha else ""
    p = row["p_value_adjusted"] if settings.correction != "none" else row["p_value"]
    if pd.isna(p) or p >= settings.alpha:
        return ""
    effect = row["relative_effect"] if settings.relative else row["absolute_effect"]
    good = (effect < 0) if row["inverse"] else (effect > 0)
    return "better" if good else "worse"


def experiment_results(
    sufficient_statistics: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    unit_counts: pd.DataFrame | None = None,
    experiment: str | None = None,
    units_per_day: pd.DataFrame | None = None,
) -> ExperimentResults:
    """Compare every variation with the control for every metric and dimension value of
    ``sufficient_statistics`` under ``settings``; ``unit_counts`` (the experiment engine's health
    facts: dimension, dimension_value, variation, users, ``__multiple__`` included) feeds the health
    checks, which otherwise use the table's units; ``units_per_day`` (day, variation, users) is kept
    in the health checks."""
    settings = settings or AnalysisSettings()
    missing = [c for c in REQUIRED_COLUMNS if c not in sufficient_statistics.columns]
    if missing:
        raise WorkbenchError(
            f"the sufficient-statistics table lacks column(s) {', '.join(missing)}; see docs/sufficient-statistics.md."
        )
    table = sufficient_statistics.reset_index(drop=True)
    variations = _variations(table, settings)
    weights = list(settings.weights) if settings.weights is not None else [1.0 / len(variations)] * len(variations)
    if unit_counts is None:
        first_metric = table[table["metric"] == table["metric"].iloc[0]] if len(table) else table
        unit_counts = first_metric[["dimension", "dimension_value", "variation", "users"]]
    health = health_checks(unit_counts, variations, weights, units_per_day)

    rows = []
    for (metric, dimension, value), arms in _slices(table, settings):
        control_row = arms[settings.control]
        metric_type = control_row["metric_type"]
        guardrail = settings.metric_group(metric) == "guardrail"
        inverse = metric in settings.inverse_metrics
        base = {"metric": metric, "metric_type": metric_type, "metric_group": settings.metric_group(metric), "inverse": inverse,
                "dimension": dimension, "dimension_value": value, "baseline": settings.control}  # fmt: skip
        control_raw = row_moments(control_row)
        if len(variations) == 1:
            rows.append({**base, "variation": settings.control, "units": int(control_row["users"]), "baseline_units": int(control_row["users"]),
                         "mean": control_raw.mean, "baseline_mean": control_raw.mean, **_compare(control_raw, control_raw, settings, guardrail, inverse),
                         "note": "only one variation (the control): nothing to compare"})  # fmt: skip
            continue
        for variation, row in arms.items():
            if variation == settings.control:
                continue
            treatment_raw = row_moments(row)
            control, treatment, theta = control_raw, treatment_raw, math.nan
            use_cuped = (
                settings.cuped is not False
                and metric_types.get(metric_type).cuped
                and has_covariate(control_row)
                and has_covariate(row)
            )
            if use_cuped:
                theta = pooled_theta(cuped_sums(control_row), cuped_sums(row))
                if theta != 0:
                    control, treatment = (
                        cuped_moments(cuped_sums(control_row), theta),
                        cuped_moments(cuped_sums(row), theta),
                    )
            record = {**base, "variation": variation, "units": int(row["users"]), "baseline_units": int(control_row["users"]),
                      "mean": _arm_mean(treatment_raw), "baseline_mean": _arm_mean(control_raw)}  # fmt: skip
            record.update(_compare(control, treatment, settings, guardrail, inverse))
            one_arm = _one_arm_note(dimension, value, control_raw, treatment_raw)
            if one_arm:
                record["note"] = one_arm
            if use_cuped and theta == 0 and record["note"] is None:
                record["note"] = (
                    "CUPED skipped: the pre-exposure covariate has no variance here, so the result is unadjusted"
                )
            record["cuped"] = bool(use_cuped and theta != 0)
            record["theta"] = theta
            if record["cuped"]:
                unadjusted = _compare(control_raw, treatment_raw, settings, guardrail, inverse)
                for key in ("absolute_effect", "relative_effect", "ci_lower", "ci_upper", "p_value", "chance_to_win"):
                    record[f"unadjusted_{key}"] = unadjusted[key]
            rows.append(record)

    frame = pd.DataFrame(rows, columns=list(ROW_FIELDS) if not rows else None)
    for key in ("absolute_effect", "relative_effect", "ci_lower", "ci_upper", "p_value", "chance_to_win"):
        if f"unadjusted_{key}" not in frame:
            frame[f"unadjusted_{key}"] = math.nan
    if "cuped" not in frame:
        frame["cuped"], frame["theta"] = False, math.nan
    for key in (
        "metric_type",
        "metric_group",
        "inverse",
        "standard_error",
        "p_value",
        "chance_to_win",
        "risk_control",
        "risk_treatment",
        "note",
    ):
        if key not in frame:
            frame[key] = pd.Series(dtype=object)
    frame["cuped"] = frame["cuped"].fillna(False).astype(bool)
    frame["p_value_adjusted"] = math.nan
    if settings.engine == "frequentist" and settings.correction != "none":
        for index in frame.groupby(["dimension", "dimension_value"], sort=False).groups.values():
            frame.loc[index, "p_value_adjusted"] = adjusted_p_values(
                frame.loc[index, "p_value"].to_numpy(dtype=float), settings.correction
            )
    frame["significance"] = [_significance(r, settings) for r in frame.to_dict("records")]
    return ExperimentResults(frame, health, settings, sufficient_statistics.copy(), experiment)
