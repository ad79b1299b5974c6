"""How an experiment is analysed: engine, alpha, difference type, sequential, CUPED, correction
and its scope, post-stratification, metric groups, inverse metrics and priors. Defaults are
GrowthBook's — relative difference, two-sided (one-sided for guardrails), alpha 0.05, no correction
(when one is chosen, its family is the goal metrics), CUPED on when covariate sums are present, no
post-stratification, a flat prior — except the engine: ours is frequentist, GrowthBook's Bayesian.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.errors import ConfigError
from workbench.stats.bayesian import GaussianPrior
from workbench.stats.corrections import CORRECTIONS, Correction
from workbench.stats.sequential import DEFAULT_TUNING

Engine = Literal["frequentist", "bayesian"]
DifferenceType = Literal["relative", "absolute"]
ENGINES = ("frequentist", "bayesian")
DIFFERENCE_TYPES = ("relative", "absolute")
# Which comparisons one multiple-testing family holds. Every scope takes every variation; "goal"
# (GrowthBook's) corrects goal metrics, "goal_secondary" adds secondary metrics, "all" guardrails
# too; each family is one dimension's slices together (overall is its own). "everything" pools all
# metrics over overall and every dimension's slices.
CorrectionScope = Literal["goal", "goal_secondary", "all", "everything"]
CORRECTION_SCOPES = ("goal", "goal_secondary", "all", "everything")


# The fields held as tuples here and written as JSON lists.
_SEQUENCES = ("variations", "weights", "goal_metrics", "secondary_metrics", "guardrail_metrics", "post_stratification")


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings of one analysis, validated once on construction (errors name the setting).

    ``variations`` (ids as text, control included) and ``weights`` (traffic split) default to the
    variations found in the table with equal weights; ``cuped`` None means "on when the table has
    covariate sums"; metrics in no group count as goal metrics."""

    control: str = "0"
    variations: tuple[str, ...] | None = None
    weights: tuple[float, ...] | None = None
    engine: Engine = "frequentist"
    alpha: float = 0.05
    difference_type: DifferenceType = "relative"
    sequential: bool = False
    sequential_tuning: float = DEFAULT_TUNING
    cuped: bool | None = None
    correction: Correction = "none"
    correction_scope: CorrectionScope = "goal"
    post_stratification: tuple[str, ...] = ()
    target_mde: float = 0.1
    goal_metrics: tuple[str, ...] = ()
    secondary_metrics: tuple[str, ...] = ()
    guardrail_metrics: tuple[str, ...] = ()
    inverse_metrics: frozenset[str] = field(default_factory=frozenset)
    prior: GaussianPrior = field(default_factory=GaussianPrior)
    metric_priors: Mapping[str, GaussianPrior] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "control", str(self.control))
        if self.variations is not None:
            set_(self, "variations", tuple(str(v) for v in self.variations))
            if self.control not in self.variations:
                raise ConfigError(
                    f"control {self.control!r} is not among the variations {list(self.variations)}; list it in variations."
                )
        if self.weights is not None:
            set_(self, "weights", tuple(float(w) for w in self.weights))
            if self.variations is None or len(self.weights) != len(self.variations):
                raise ConfigError(
                    "weights need one entry per variation; give variations and weights of the same length."
                )
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ConfigError(f"weights {list(self.weights)} must be non-negative and not all zero.")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}.")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be between 0 and 1, got {self.alpha!r}.")
        if self.difference_type not in DIFFERENCE_TYPES:
            raise ConfigError(f"difference_type {self.difference_type!r} is not one of {', '.join(DIFFERENCE_TYPES)}.")
        if not self.sequential_tuning > 0:
            raise ConfigError(f"sequential_tuning must be a positive number of units, got {self.sequential_tuning!r}.")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction {self.correction!r} is not one of {', '.join(CORRECTIONS)}.")
        if not self.target_mde > 0:
            raise ConfigError(f"target_mde must be a positive relative effect (0.1 = 10%), got {self.target_mde!r}.")
        if self.correction_scope not in CORRECTION_SCOPES:
            raise ConfigError(
                f"correction_scope {self.correction_scope!r} is not one of {', '.join(CORRECTION_SCOPES)}."
            )
        if isinstance(self.post_stratification, str):
            set_(self, "post_stratification", (self.post_stratification,))
        set_(self, "post_stratification", tuple(str(d) for d in self.post_stratification))
        if self.engine == "bayesian" and (self.correction != "none" or self.sequential):
            raise ConfigError(
                "correction and sequential apply to the frequentist engine only; set engine='frequentist' or drop them."
            )
        for name in ("goal_metrics", "secondary_metrics", "guardrail_metrics"):
            set_(self, name, tuple(getattr(self, name)))
        set_(self, "inverse_metrics", frozenset(self.inverse_metrics))
        if isinstance(self.prior, dict):
            set_(self, "prior", GaussianPrior(**self.prior))
        set_(
            self,
            "metric_priors",
            {name: GaussianPrior(**p) if isinstance(p, dict) else p for name, p in dict(self.metric_priors).items()},
        )

    def with_overrides(self, **overrides: Any) -> AnalysisSettings:
        """A copy with the given settings replaced (None values are ignored); unknown names fail."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown analysis setting(s) {', '.join(unknown)}; use one of {', '.join(sorted(known))}."
            )
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def relative(self) -> bool:
        """True for relative differences (the default)."""
        return self.difference_type == "relative"

    def prior_for(self, metric: str) -> GaussianPrior:
        """The Bayesian prior of ``metric``: its own (``prior:`` on the metric) else the experiment's."""
        return self.metric_priors.get(metric, self.prior)

    def in_correction_family(self, metric: str) -> bool:
        """True when ``metric``'s p-values belong to the multiple-testing family of
        :attr:`correction_scope` (goal metrics; plus secondary; plus guardrails)."""
        group = self.metric_group(metric)
        if self.correction_scope == "goal":
            return group == "goal"
        if self.correction_scope == "goal_secondary":
            return group in ("goal", "secondary")
        return True

    def metric_group(self, metric: str) -> str:
        """ "guardrail", "secondary" or "goal" (the default) for ``metric``."""
        if metric in self.guardrail_metrics:
            return "guardrail"
        if metric in self.secondary_metrics:
            return "secondary"
        return "goal"

    @classmethod
    def from_dict(cls, data: dict) -> AnalysisSettings:
        """The settings :meth:`to_dict` wrote."""
        values = dict(data)
        for key in _SEQUENCES:
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        values["inverse_metrics"] = frozenset(values.get("inverse_metrics") or ())
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-able settings."""
        out = dataclasses.asdict(self)
        out["inverse_metrics"] = sorted(self.inverse_metrics)
        for key in _SEQUENCES:
            out[key] = list(out[key]) if out[key] is not None else None
        out["metric_priors"] = {name: dataclasses.asdict(p) for name, p in self.metric_priors.items()}
        return out
