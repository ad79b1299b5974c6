"""How an experiment is analysed: engine, alpha, difference type, sequential, CUPED, correction,
metric groups, inverse metrics and prior. Defaults are GrowthBook's: frequentist, relative
difference, two-sided, alpha 0.05, no correction, CUPED on when covariate sums are present.
"""

from __future__ import annotations

import dataclasses
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
    goal_metrics: tuple[str, ...] = ()
    secondary_metrics: tuple[str, ...] = ()
    guardrail_metrics: tuple[str, ...] = ()
    inverse_metrics: frozenset[str] = field(default_factory=frozenset)
    prior: GaussianPrior = field(default_factory=GaussianPrior)

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
        if self.engine == "bayesian" and (self.correction != "none" or self.sequential):
            raise ConfigError(
                "correction and sequential apply to the frequentist engine only; set engine='frequentist' or drop them."
            )
        for name in ("goal_metrics", "secondary_metrics", "guardrail_metrics"):
            set_(self, name, tuple(getattr(self, name)))
        set_(self, "inverse_metrics", frozenset(self.inverse_metrics))
        if isinstance(self.prior, dict):
            set_(self, "prior", GaussianPrior(**self.prior))

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
        for key in ("variations", "weights", "goal_metrics", "secondary_metrics", "guardrail_metrics"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        values["inverse_metrics"] = frozenset(values.get("inverse_metrics") or ())
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-able settings."""
        out = dataclasses.asdict(self)
        out["inverse_metrics"] = sorted(self.inverse_metrics)
        for key in ("variations", "weights", "goal_metrics", "secondary_metrics", "guardrail_metrics"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out
