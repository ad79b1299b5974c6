"""The statistics engine: pure Python on the small sufficient-statistics table, no database access.

``experiment_results(table, AnalysisSettings(...))`` gives an :class:`ExperimentResults`; the
modules below hold one statistical idea each (moments, frequentist, sequential, bayesian,
post_stratification, health, corrections, power, midexperiment_power, intervals). See
docs/statistics.md.
"""

from workbench.stats.analysis_settings import AnalysisSettings
from workbench.stats.bayesian import GaussianPrior
from workbench.stats.midexperiment_power import MidExperimentPower, mid_experiment_power
from workbench.stats.power import PowerPlan, plan_mde, plan_sample_size
from workbench.stats.results import ExperimentResults, experiment_results

__all__ = [
    "AnalysisSettings",
    "ExperimentResults",
    "GaussianPrior",
    "MidExperimentPower",
    "PowerPlan",
    "experiment_results",
    "mid_experiment_power",
    "plan_mde",
    "plan_sample_size",
]
