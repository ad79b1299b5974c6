"""The statistics engine: pure Python on the small sufficient-statistics table, no database access.

``experiment_results(table, AnalysisSettings(...))`` gives an :class:`ExperimentResults`; the
modules below hold one statistical idea each (moments, frequentist, sequential, bayesian, health,
corrections, power, intervals). See docs/statistics.md.
"""

from workbench.stats.analysis_settings import AnalysisSettings
from workbench.stats.bayesian import GaussianPrior
from workbench.stats.results import ExperimentResults, experiment_results

__all__ = ["AnalysisSettings", "ExperimentResults", "GaussianPrior", "experiment_results"]
