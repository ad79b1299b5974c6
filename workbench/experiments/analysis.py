"""One call from a configured experiment to its results: database → sufficient statistics →
statistics engine.

``analyze("checkout-layout")`` runs the experiment engine's one query for every dimension
(:func:`workbench.experiments.engine.experiment_facts`: sufficient statistics and health facts in
one pass over each source table) and hands the small tables to
:func:`workbench.stats.experiment_results`; the results keep the settings they were computed with
and the health facts, new units per day included. Settings come from the
experiment's config entry (variations, weights, metric groups, ``inverse`` metrics, and the
``analysis:`` mapping) and can be overridden by keyword arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from workbench.display import Labels
    from workbench.experiments.engine import Experiment
    from workbench.stats import AnalysisSettings, ExperimentResults


def analysis_settings(experiment: Experiment, **overrides: Any) -> AnalysisSettings:
    """The :class:`AnalysisSettings` of ``experiment``'s config entry, then ``overrides`` (None
    values ignored); errors name the config file and entry."""
    from workbench.stats import AnalysisSettings
    from workbench.stats.bayesian import GaussianPrior

    groups = experiment.metric_groups
    base = AnalysisSettings(
        control=experiment.control or "0",
        variations=tuple(experiment.variations) or None,
        weights=tuple(experiment.weights) if experiment.variations else None,
        goal_metrics=groups["goal"],
        secondary_metrics=groups["secondary"],
        guardrail_metrics=groups["guardrail"],
        inverse_metrics=frozenset(name for name, inverse in experiment.inverse.items() if inverse),
        metric_priors={  # `prior:` on a metric entry: its own proper prior on the relative effect
            name: GaussianPrior(mean=m.prior.mean, sd=m.prior.stddev, proper=True)
            for name, m in experiment.metrics.items()
            if m.prior is not None
        },
    )
    try:
        configured = base.with_overrides(**experiment.analysis)
    except (ConfigError, TypeError, ValueError) as exc:  # ValueError: a bad prior (GaussianPrior's own check)
        raise ConfigError(f"{experiment.config.path}: experiments[{experiment.key}].analysis: {exc}") from None
    return configured.with_overrides(**overrides)


def labels(experiment: Experiment) -> Labels:
    """What readers see of ``experiment``'s entry: its name, description, hypothesis, variation
    names, each metric's description as its display name and the metrics' configured formats."""
    from workbench.display import Labels

    entry = experiment.settings
    return Labels(
        entry.name,
        entry.description,
        entry.hypothesis,
        dict(entry.variation_names),
        {name: m.description for name, m in experiment.metrics.items() if m.description},
        {name: m.format for name, m in experiment.metrics.items() if m.format is not None},
    )


def post_stratification(experiment: Experiment, settings: AnalysisSettings) -> tuple[str, ...]:
    """The dimensions ``settings`` post-stratify by, each checked to be a dimension of the
    experiment's assignment query (before any query runs)."""
    strata = tuple(getattr(settings, "post_stratification", ()) or ())
    dimensions = experiment.settings.assignment_query.dimensions
    unknown = [d for d in strata if d not in dimensions]
    if unknown:
        raise ConfigError(
            f"{experiment.config.path}: experiments[{experiment.key}].analysis.post_stratification: "
            f"{', '.join(map(repr, unknown))} {'is not a dimension' if len(unknown) == 1 else 'are not dimensions'} "
            f"of assignment query {experiment.settings.assignment_query.name!r}; use some of {list(dimensions)}."
            + did_you_mean(unknown[0], dimensions)
        )
    return strata


def analyze(
    experiment_or_key: Experiment | str,
    db=None,
    *,
    dimensions: Sequence[str] | None = None,
    incremental: bool | None = None,
    full_refresh: bool = False,
    **setting_overrides: Any,
) -> ExperimentResults:
    """Results of an experiment (a key of ``workbench.yml`` or an ``Experiment``) on ``db``
    (default: the project's database), overall and per value of each of ``dimensions`` (default:
    the experiment's configured dimensions; ``()`` for overall only). ``setting_overrides`` are
    :class:`~workbench.stats.AnalysisSettings` fields, e.g. ``engine="bayesian"``. ``incremental``
    (default: the entry's ``incremental``) and ``full_refresh``: read the units and per-unit parts
    from the experiment's incremental-refresh state, brought up to date (rebuilt) first
    (:func:`~workbench.experiments.engine.experiment_facts`)."""
    from workbench.experiments.engine import experiment as load_experiment
    from workbench.experiments.engine import experiment_facts
    from workbench.stats import experiment_results

    exp = load_experiment(experiment_or_key) if isinstance(experiment_or_key, str) else experiment_or_key
    settings = analysis_settings(exp, **setting_overrides)
    strata = post_stratification(exp, settings)
    own_db = db is None
    if own_db:
        from workbench.db.connection import connect

        db = connect()
    dims = tuple(exp.settings.dimensions if dimensions is None else dimensions)
    try:
        facts = experiment_facts(
            exp, db, dimensions=dims, strata=strata, incremental=incremental, full_refresh=full_refresh
        )
    finally:
        if own_db:  # the session analyze opened is closed, so it holds no DuckDB file open
            db.dispose()
    days = facts.days
    per_day = days[days["variation"].isin(list(exp.variations) or days["variation"].unique())].reset_index(drop=True)
    table = facts.stats
    refresh = table.attrs.get("refresh")
    table.attrs = {"sql": [table.attrs.get("sql", "")], "experiment": exp.key}
    return experiment_results(
        table, settings, facts.units, experiment=exp.key, units_per_day=per_day, labels=labels(exp),
        warnings=[refresh.warning] if refresh is not None and refresh.warning else [],
    )  # fmt: skip
