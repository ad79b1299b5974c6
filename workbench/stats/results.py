"""The results of one experiment: every metric × variation × dimension value compared with the
control, with the experiment's health beside them.

:func:`experiment_results` turns the sufficient-statistics table (docs/sufficient-statistics.md)
and :class:`~workbench.stats.analysis_settings.AnalysisSettings` into an :class:`ExperimentResults`
with ``to_pandas()`` and ``to_dict()`` (JSON-able); how it looks in a notebook (``_repr_html_()``)
and as text (``str()``) is :mod:`workbench.display`'s. Comparisons that cannot be made carry a
sentence in ``note`` instead of raising.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench import metric_types
from workbench.display import Labels, ValueFormat
from workbench.errors import WorkbenchError
from workbench.stats.analysis_settings import AnalysisSettings
from workbench.stats.bayesian import bayesian_test, chance_to_win
from workbench.stats.corrections import adjusted_p_values
from workbench.stats.decision import Decision, decide
from workbench.stats.frequentist import Difference, difference, t_test, welch_dof
from workbench.stats.health import HealthChecks, health_checks
from workbench.stats.intervals import difference_intervals
from workbench.stats.midexperiment_power import mid_experiment_power
from workbench.stats.moments import ArmMoments, adjusted_pair, comparison_note, has_covariate, present, row_moments
from workbench.stats.post_stratification import STATISTICS as POST_STRATIFIED_STATISTICS
from workbench.stats.post_stratification import post_stratified_effect
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
STRATA = "__strata__"  # the dimension of post-stratification rows (docs/sufficient-statistics.md)
# The result columns kept again for the unadjusted (``unadjusted_*``) and uncapped (``uncapped_*``) views.
RESULT_KEYS = ("absolute_effect", "relative_effect", "ci_lower", "ci_upper", "p_value", "chance_to_win")
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
    the results came from, ``labels`` the names and units readers see (:class:`workbench.display.Labels`)."""

    table: pd.DataFrame
    health: HealthChecks
    settings: AnalysisSettings
    sufficient_statistics: pd.DataFrame
    experiment: str | None = None
    labels: Labels = field(default_factory=Labels)

    @property
    def decision(self) -> Decision:
        """What to do: ship, roll back, keep running, inconclusive or don't trust yet
        (:func:`workbench.stats.decision.decide`)."""
        return decide(self)

    def to_pandas(self) -> pd.DataFrame:
        """All result columns: the JSON fields plus ``metric_type``, ``metric_group``, ``inverse``,
        ``standard_error``, ``significance`` ("better"/"worse"/""), ``cuped``, ``theta`` and the
        ``unadjusted_*`` result kept beside a CUPED-adjusted one."""
        return self.table.copy()

    def to_dict(self) -> dict:
        """JSON-able results: ``experiment``, ``decision`` (:meth:`Decision.to_dict`), ``settings``, ``srm_p_value``,
        ``multiple_exposure_units``, ``health`` (warnings, unknown variations, SRM per dimension
        value), ``variation_names`` (id → configured name), ``results`` (one dict per comparison
        with exactly the documented fields, ``p_value`` and ``chance_to_win`` under both engines, and
        ``note``; a capped metric's also carry ``uncapped`` — the same fields uncapped — and
        ``capping_changed_verdict``) and ``sufficient_statistics``. NaN and infinite values become null."""
        fields = [*ROW_FIELDS, "p_value"]
        if self.settings.engine == "frequentist" and self.settings.correction != "none":
            fields.append("p_value_adjusted")
        fields.append("chance_to_win")
        results = []
        for record in self.table.to_dict("records"):
            out = {name: _json_value(record[name]) for name in fields}
            if self.settings.engine == "bayesian":
                out["risk"] = {
                    "control": _json_value(record["risk_control"]),
                    "treatment": _json_value(record["risk_treatment"]),
                }
            if _has_uncapped_result(record):
                uncapped = [k for k in fields if k in RESULT_KEYS]
                uncapped += ["p_value_adjusted"] if "p_value_adjusted" in fields else []
                out["uncapped"] = {k: _json_value(record[f"uncapped_{k}"]) for k in uncapped}
                out["capping_changed_verdict"] = bool(record["capping_changed_verdict"])
            out["note"] = _json_value(record["note"])
            results.append(out)
        return {
            "experiment": self.experiment,
            "variation_names": dict(self.labels.variation_names),
            "decision": self.decision.to_dict(),
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


class _Strata:
    """The post-stratification rows (``dimension`` = :data:`STRATA`, one per stratum × metric ×
    variation) of the strata ``settings.post_stratification`` names; empty when it names none."""

    def __init__(self, table: pd.DataFrame, settings: AnalysisSettings) -> None:
        self.settings = settings
        rows = table[table["dimension"] == STRATA] if settings.post_stratification else table.iloc[0:0]
        self.rows: dict[tuple[str, str, str], dict] = {
            (r["metric"], str(r["dimension_value"]), str(r["variation"])): r for r in rows.to_dict("records")
        }
        self.values: dict[str, list[str]] = {}
        for metric, value, _ in self.rows:
            if value not in self.values.setdefault(metric, []):
                self.values[metric].append(value)

    def get(self, metric: str, variation: str) -> list[tuple[Mapping, Mapping]] | None:
        """(control, treatment) rows per stratum of ``metric``, a missing arm zero-filled; None
        without strata."""
        pairs = []
        for value in self.values.get(metric, []):
            control = self.rows.get((metric, value, self.settings.control))
            treatment = self.rows.get((metric, value, variation))
            template = control or treatment
            if template is None:
                continue
            pairs.append(
                (control or _zero_row(template, self.settings.control), treatment or _zero_row(template, variation))
            )
        return pairs or None


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
    metric: str,
    relative: bool,
    diff: Difference | None = None,
) -> dict:
    """The configured test of ``metric`` on one scale, as result columns: guardrails are tested
    one-sided against harm (sequentially too), Bayesian tests use the metric's prior; ``diff``
    replaces the arms' own difference (a post-stratified estimate). Both engines give a chance to
    win and a p-value: the frequentist chance to win is the posterior probability of a better
    variation under a flat prior, ``Φ(effect / se)`` on the analysed scale (``Φ(−effect / se)``
    for inverse metrics); the Bayesian p-value is the two-sided Welch test of the same data."""
    inverse = metric in settings.inverse_metrics
    if settings.engine == "bayesian":
        p_value = t_test(control, treatment, relative=relative, alpha=settings.alpha, diff=diff).p_value
        r = bayesian_test(
            control,
            treatment,
            prior=settings.prior_for(metric),
            relative=relative,
            alpha=settings.alpha,
            inverse=inverse,
            diff=diff,
        )
        return {"estimate": r.estimate, "ci_lower": r.ci_lower, "ci_upper": r.ci_upper, "standard_error": r.sd,
                "chance_to_win": r.chance_to_win, "risk_control": r.risk_control, "risk_treatment": r.risk_treatment,
                "p_value": p_value}  # fmt: skip
    guardrail = settings.metric_group(metric) == "guardrail"
    alternative = ("greater" if inverse else "less") if guardrail else "two-sided"
    if settings.sequential:
        r = sequential_test(
            control,
            treatment,
            relative=relative,
            alpha=settings.alpha,
            tuning=settings.sequential_tuning,
            alternative=alternative,
            diff=diff,
        )
    else:
        r = t_test(control, treatment, relative=relative, alpha=settings.alpha, alternative=alternative, diff=diff)
    return {
        "estimate": r.estimate,
        "ci_lower": r.ci_lower,
        "ci_upper": r.ci_upper,
        "standard_error": r.standard_error,
        "p_value": r.p_value,
        "chance_to_win": chance_to_win(r.estimate, r.standard_error, inverse),
    }


def _compare(
    control: ArmMoments,
    treatment: ArmMoments,
    settings: AnalysisSettings,
    metric: str,
    diffs: Mapping[bool, Difference] | None = None,
) -> dict:
    """Effects, interval and test of one comparison of ``metric`` (NaN plus a note when it cannot
    be made). The relative effect is over the control's absolute mean. ``diffs`` (relative → the
    difference on that scale) replace the arms' own differences (post-stratified estimates)."""
    out: dict[str, Any] = {"absolute_effect": math.nan, "relative_effect": math.nan, "ci_lower": math.nan, "ci_upper": math.nan,
                           "standard_error": math.nan, "p_value": math.nan, "chance_to_win": math.nan,
                           "risk_control": math.nan, "risk_treatment": math.nan, "note": None}  # fmt: skip
    if control.n > 0 and treatment.n > 0:
        out["absolute_effect"] = treatment.mean - control.mean
        if control.unadjusted_mean != 0:
            out["relative_effect"] = (treatment.mean - control.mean) / abs(control.unadjusted_mean)
    if diffs:
        out["absolute_effect"], out["relative_effect"] = diffs[False].estimate, diffs[True].estimate
    note = comparison_note(control, treatment, settings.relative)
    prior = settings.prior_for(metric)
    if note is None and settings.engine == "bayesian" and prior.proper and control.unadjusted_mean == 0:
        note = "the control mean is 0, so the relative prior cannot be scaled to this metric; use a flat prior"
    if note is not None:
        out["note"] = note
        return out
    data = (diffs or {}).get(True) or (difference(control, treatment, True) if control.unadjusted_mean != 0 else None)
    out["data_standard_error"] = data.standard_error if data else math.nan
    chosen = _test(control, treatment, settings, metric, settings.relative, (diffs or {}).get(settings.relative))
    out.update({k: v for k, v in chosen.items() if k != "estimate"})
    if settings.engine == "bayesian":
        # posterior means on both scales (they differ from the data only under a proper prior)
        out["relative_effect" if settings.relative else "absolute_effect"] = chosen["estimate"]
        if settings.relative or control.unadjusted_mean != 0:
            other = _test(
                control, treatment, settings, metric, not settings.relative, (diffs or {}).get(not settings.relative)
            )
            out["absolute_effect" if settings.relative else "relative_effect"] = other["estimate"]
    return out


def _comparison(
    control_row: Mapping,
    treatment_row: Mapping,
    settings: AnalysisSettings,
    metric: str,
    strata: list[tuple[Mapping, Mapping]] | None = None,
) -> dict:
    """:func:`_compare` of two rows, CUPED-adjusted when the metric type takes CUPED, both rows carry
    covariate sums and ``settings.cuped`` is not False; adds ``cuped`` and ``theta``. With
    ``strata`` (one (control, treatment) row pair per stratum) the effect is post-stratified
    (GrowthBook's ``EffectMomentsPostStratification``, :mod:`workbench.stats.post_stratification`)
    when it can be, with the Welch degrees of freedom of the summed arms, as GrowthBook; otherwise
    a note says why and the unstratified estimate stands. Adds ``post_stratified``."""
    control, treatment = row_moments(control_row), row_moments(treatment_row)
    use_cuped = (
        settings.cuped is not False
        and metric_types.get(control_row["metric_type"]).cuped
        and has_covariate(control_row)
        and has_covariate(treatment_row)
    )
    theta = math.nan
    if use_cuped:
        control, treatment, theta = adjusted_pair(control_row, treatment_row)
    diffs, why_not = None, None
    statistic = metric_types.get(control_row["metric_type"]).statistic
    if (
        strata
        and statistic in POST_STRATIFIED_STATISTICS
        and comparison_note(control, treatment, settings.relative) is None
    ):
        effects = {
            relative: post_stratified_effect(strata, statistic, cuped=bool(use_cuped and theta != 0), relative=relative)
            for relative in (True, False)
        }
        why_not = next((e for e in effects.values() if isinstance(e, str)), None)
        if why_not is None:
            dof = welch_dof(control, treatment)
            diffs = {rel: Difference(e.point_estimate, e.standard_error**2, dof) for rel, e in effects.items()}
    out = _compare(control, treatment, settings, metric, diffs)
    if use_cuped and theta == 0 and out["note"] is None:
        out["note"] = "CUPED skipped: the pre-exposure covariate has no variance here, so the result is unadjusted"
    if why_not and out["note"] is None:
        out["note"] = f"post-stratification not applied ({why_not}), so the result is unstratified"
    out["cuped"], out["theta"], out["post_stratified"] = bool(use_cuped and theta != 0), theta, diffs is not None
    return out


def _power(record: Mapping, settings: AnalysisSettings, variations: int) -> dict:
    """GrowthBook's mid-experiment power of one overall goal-metric comparison
    (:mod:`workbench.stats.midexperiment_power`): the chance to detect ``settings.target_mde`` at
    the current sample and the units still needed, from the data's relative standard error (the
    post-stratified or CUPED one where used). Blank when the comparison could not be made."""
    blank = {"power": math.nan, "power_additional_units": math.nan, "power_note": None}
    se = record.get("data_standard_error", math.nan)
    if record["note"] is not None or not se > 0:
        return blank
    prior = settings.prior_for(record["metric"]) if settings.engine == "bayesian" else None
    result = mid_experiment_power(
        standard_error=se,
        units=int(record["units"]) + int(record["baseline_units"]),
        target_mde=settings.target_mde,
        alpha=settings.alpha,
        goal_metrics=max(1, len(settings.goal_metrics)),
        variations=variations,
        corrected=settings.engine == "frequentist" and settings.correction != "none",
        sequential=settings.sequential,
        sequential_tuning=settings.sequential_tuning,
        prior=prior if prior is not None and prior.proper else None,
    )
    if result.error:
        return {**blank, "power_note": result.error}
    return {"power": result.power, "power_additional_units": result.additional_units, "power_note": None}


def _uncapped(row: Mapping) -> dict:
    """The row with its ``*_uncapped`` sums in place of the capped ones (GrowthBook's
    ``replace_with_uncapped``)."""
    out = dict(row)
    for column, value in row.items():
        if column.endswith("_uncapped") and not pd.isna(value):
            out[column.removesuffix("_uncapped")] = value
    return out


def _has_uncapped_result(row: Mapping) -> bool:
    return any(not pd.isna(row[f"uncapped_{key}"]) for key in ("p_value", "chance_to_win"))


def _correction_families(frame: pd.DataFrame, settings: AnalysisSettings) -> list:
    """Row indexes of each multiple-testing family under ``settings.correction_scope``: the
    metrics in scope (every variation) of one dimension's slices together, overall on its own; with
    "everything", all rows in one family (GrowthBook's ``setAdjustedPValuesOnResults`` pools the
    goal metrics of every variation and slice of one analysis)."""
    in_scope = frame["metric"].map(settings.in_correction_family).astype(bool)
    if settings.correction_scope == "everything":
        return [frame.index[in_scope]]
    return [index for _, index in frame[in_scope].groupby("dimension", sort=False).groups.items()]


def _significance(row: Mapping, settings: AnalysisSettings, prefix: str = "") -> str:
    """ "better", "worse" or "" for one result row; ``prefix`` "uncapped_" judges the uncapped result."""
    if settings.engine == "bayesian":
        ctw = row[f"{prefix}chance_to_win"]
        if pd.isna(ctw):
            return ""
        return "better" if ctw >= 1 - settings.alpha else "worse" if ctw <= settings.alpha else ""
    adjusted = row[f"{prefix}p_value_adjusted"]
    p = adjusted if settings.correction != "none" and not pd.isna(adjusted) else row[f"{prefix}p_value"]
    if pd.isna(p) or p >= settings.alpha:
        return ""
    effect = row[f"{prefix}relative_effect"] if settings.relative else row[f"{prefix}absolute_effect"]
    good = (effect < 0) if row["inverse"] else (effect > 0)
    return "better" if good else "worse"


def experiment_results(
    sufficient_statistics: pd.DataFrame,
    settings: AnalysisSettings | None = None,
    unit_counts: pd.DataFrame | None = None,
    experiment: str | None = None,
    units_per_day: pd.DataFrame | None = None,
    labels: Labels | None = None,
    warnings: Sequence[str] = (),
) -> ExperimentResults:
    """Compare every variation with the control for every metric and dimension value of
    ``sufficient_statistics`` under ``settings``; ``unit_counts`` (the experiment engine's health
    facts: dimension, dimension_value, variation, users, ``__multiple__`` included) feeds the health
    checks, which otherwise use the table's units; ``units_per_day`` (day, variation, users) is kept
    in the health checks; ``labels`` name the experiment and its variations, each metric without a
    format taking its type's (:attr:`workbench.metric_types.MetricType.value_format`); ``warnings``
    (sentences about the data, e.g. rows an incremental state misses) join the health warnings."""
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
    health.warnings.extend(warnings)

    strata = _Strata(table, settings)
    table = table[table["dimension"] != STRATA]
    rows = []
    for (metric, dimension, value), arms in _slices(table, settings):
        control_row = arms[settings.control]
        metric_type = control_row["metric_type"]
        base = {"metric": metric, "metric_type": metric_type, "metric_group": settings.metric_group(metric),
                "inverse": metric in settings.inverse_metrics, "dimension": dimension, "dimension_value": value,
                "baseline": settings.control}  # fmt: skip
        control_raw = row_moments(control_row)
        if len(variations) == 1:
            rows.append({**base, "variation": settings.control, "units": int(control_row["users"]), "baseline_units": int(control_row["users"]),
                         "mean": control_raw.mean, "baseline_mean": control_raw.mean, **_compare(control_raw, control_raw, settings, metric),
                         "note": "only one variation (the control): nothing to compare"})  # fmt: skip
            continue
        for variation, row in arms.items():
            if variation == settings.control:
                continue
            treatment_raw = row_moments(row)
            record = {**base, "variation": variation, "units": int(row["users"]), "baseline_units": int(control_row["users"]),
                      "mean": _arm_mean(treatment_raw), "baseline_mean": _arm_mean(control_raw)}  # fmt: skip
            pairs = strata.get(metric, variation) if dimension == "overall" else None
            record.update(_comparison(control_row, row, settings, metric, pairs))
            one_arm = _one_arm_note(dimension, value, control_raw, treatment_raw)
            if one_arm:
                record["note"] = one_arm
            if record["cuped"]:
                unadjusted = _compare(control_raw, treatment_raw, settings, metric)
                for key in RESULT_KEYS:
                    record[f"unadjusted_{key}"] = unadjusted[key]
            if dimension == "overall" and settings.relative and base["metric_group"] == "goal":
                record.update(_power(record, settings, len(variations)))
            if present(control_row, "main_sum_uncapped") and present(row, "main_sum_uncapped"):
                uncapped = _comparison(_uncapped(control_row), _uncapped(row), settings, metric)
                for key in RESULT_KEYS:
                    record[f"uncapped_{key}"] = uncapped[key]
            rows.append(record)

    frame = pd.DataFrame(rows, columns=list(ROW_FIELDS) if not rows else None)
    for key in RESULT_KEYS:
        for prefix in ("unadjusted", "uncapped"):
            if f"{prefix}_{key}" not in frame:
                frame[f"{prefix}_{key}"] = math.nan
    if "cuped" not in frame:
        frame["cuped"], frame["theta"], frame["post_stratified"] = False, math.nan, False
    frame["post_stratified"] = frame["post_stratified"].fillna(False).astype(bool)
    for key in ("power", "power_additional_units", "data_standard_error"):
        if key not in frame:
            frame[key] = math.nan
    for key in (
        "power_note",
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
    frame["uncapped_p_value_adjusted"] = math.nan
    if settings.engine == "frequentist" and settings.correction != "none":
        for index in _correction_families(frame, settings):
            for column in ("p_value", "uncapped_p_value"):
                frame.loc[index, f"{column}_adjusted"] = adjusted_p_values(
                    frame.loc[index, column].to_numpy(dtype=float), settings.correction
                )
    frame["significance"] = [_significance(r, settings) for r in frame.to_dict("records")]
    frame["uncapped_significance"] = [
        _significance(r, settings, prefix="uncapped_")
        if not pd.isna(r["uncapped_relative_effect"]) or not pd.isna(r["uncapped_absolute_effect"])
        else ""
        for r in frame.to_dict("records")
    ]
    frame["capping_changed_verdict"] = [
        bool(r["uncapped_significance"] != r["significance"]) if _has_uncapped_result(r) else False
        for r in frame.to_dict("records")
    ]
    labels = labels or Labels()
    types = dict(zip(table["metric"], table["metric_type"]))
    formats = {m: labels.formats.get(m) or ValueFormat(metric_types.get(t).value_format) for m, t in types.items()}
    labels = dataclasses.replace(labels, formats={**labels.formats, **formats})
    return ExperimentResults(frame, health, settings, sufficient_statistics.copy(), experiment, labels)
