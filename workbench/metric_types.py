"""Every metric type, defined once: the registry the experiment engine and the statistics engine ask.

A :class:`MetricType` says what a metric's SQL must return, which options it takes, how the
experiment query turns a unit's rows into one per-unit value, the sufficient-statistic columns it
produces and the statistic the statistics engine computes from them, and its reference-page
contract. The config parser, the SQL compiler, the per-unit and baseline queries, the data-quality
checks, the statistics engine and the reference pages read these entries; none of them branches on a
type's name. Adding a type is one :func:`register` call (see docs/contributing.md); a type that
needs a new statistic adds it to :mod:`workbench.stats.moments` first.

This module sits below both engines, so it imports nothing else of the workbench.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Shape = Literal["unit", "ratio", "events", "unit_quantile"]
UNIT: Shape = "unit"  # one value per unit, aggregated from the unit's rows
RATIO: Shape = "ratio"  # two unit metrics of the config, numerator and denominator
EVENTS: Shape = "events"  # event level: every counted row's value, no per-unit value; a quantile over them
# one value per unit (aggregated as for UNIT), a quantile over the units' values: not a ratio's
# part, no planning baseline
UNIT_QUANTILE: Shape = "unit_quantile"
# The level of the quantile a shape's statistic takes (``quantile: {level: …}`` in the config).
QUANTILE_LEVELS: dict[Shape, str] = {EVENTS: "event", UNIT_QUANTILE: "unit"}

# The statistics the statistics engine computes (workbench.stats.moments), with the
# sufficient-statistic columns each reads.
STATISTIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "proportion": ("main_sum", "main_sum_squares"),
    "sample_mean": ("main_sum", "main_sum_squares"),
    "ratio": (
        "main_sum",
        "main_sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "main_denominator_sum_product",
    ),
    # event level, clustered in units: main_sum… are sums over units of sᵢ (events ≤ the
    # quantile) and nᵢ (events), as GrowthBook's QuantileClusteredStatistic reads them
    "quantile_event": (
        "quantile",
        "quantile_n",
        "quantile_nstar",
        "quantile_lower",
        "quantile_upper",
        "quantile_level",
        "main_sum",
        "main_sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "main_denominator_sum_product",
    ),
    "quantile_unit": ("quantile", "quantile_n", "quantile_nstar", "quantile_lower", "quantile_upper", "quantile_level"),
}
# Added to a unit metric's columns when it has a CUPED covariate.
CUPED_COLUMNS = ("covariate_sum", "covariate_sum_squares", "main_covariate_sum_product")
# Added to a ratio metric's columns when it has a CUPED covariate (GrowthBook's names): the
# numerator's pre-exposure value is the covariate of CUPED_COLUMNS, the denominator's adds these.
RATIO_CUPED_COLUMNS = (
    *CUPED_COLUMNS,
    "denominator_pre_sum",
    "denominator_pre_sum_squares",
    "main_post_denominator_pre_sum_product",
    "main_pre_denominator_post_sum_product",
    "main_pre_denominator_pre_sum_product",
    "denominator_post_denominator_pre_sum_product",
)
QUANTILE_COLUMNS = ("quantile", "quantile_n", "quantile_nstar", "quantile_lower", "quantile_upper", "quantile_level")
# A capped metric's sums again over the per-unit values before capping (GrowthBook's names).
UNCAPPED_COLUMNS = tuple(
    f"{column}_uncapped"
    for column in (
        "main_sum",
        "main_sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "main_denominator_sum_product",
        *RATIO_CUPED_COLUMNS,
    )
)
# Every sufficient-statistic column, in the order of docs/sufficient-statistics.md.
STAT_COLUMNS = (
    "main_sum",
    "main_sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "main_denominator_sum_product",
    *RATIO_CUPED_COLUMNS,
    *QUANTILE_COLUMNS,
    *UNCAPPED_COLUMNS,
)


@dataclass(frozen=True)
class Contract:
    """A type's row of ``docs/reference/metric-types.md``: what its SQL returns, its per-unit value
    and the statistic computed from it, in words."""

    returns: str
    per_unit: str
    statistic: str


@dataclass(frozen=True)
class MetricType:
    """One metric type.

    ``shape`` says how values are formed (:data:`UNIT`, :data:`RATIO`, :data:`EVENTS`,
    :data:`UNIT_QUANTILE`);
    ``statistic`` names the statistic the statistics engine computes (a key of
    :data:`STATISTIC_COLUMNS`). For unit and unit-quantile types, the experiment query counts each
    unit's rows that count (``{rows}``) and, when ``value_aggregate`` names a SQL aggregate (``SUM``, ``MAX``, …),
    aggregates their ``value`` (``{value}``, NULL without rows); ``unit_value`` is the SQL of the
    per-unit value from those two. The same formula gives the CUPED covariate over the
    pre-exposure rows. ``value_column``: the SQL must return ``value``. ``cuped`` and ``capping``:
    the options the type takes. ``value_format``: how its values are shown unless the metric sets
    ``format`` (one of ``workbench.display.FORMATS``: ``percent`` for rates of 0–1, ``duration``
    for seconds, ``currency``, ``number``). ``example`` is the type's metric entry in the reference page's
    example config (``name`` and ``sql`` have defaults).
    """

    name: str
    shape: Shape
    statistic: str
    contract: Contract
    value_column: bool = True
    value_aggregate: str | None = None
    unit_value: str = ""
    cuped: bool = False
    capping: bool = False
    value_format: str = "number"
    example: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """The sufficient-statistic columns the type produces (without CUPED's)."""
        return STATISTIC_COLUMNS[self.statistic]

    @property
    def per_unit(self) -> bool:
        """True when each unit has one value of this type: it may be a ratio's numerator or
        denominator and has a planning baseline."""
        return self.shape == UNIT

    @property
    def unit_values(self) -> bool:
        """True when the experiment query forms one value per unit from ``unit_value`` (unit and
        unit-quantile types)."""
        return self.shape in (UNIT, UNIT_QUANTILE)

    @property
    def quantile_level(self) -> str | None:
        """``"event"`` or ``"unit"`` for a quantile type (the level its quantile is taken at), else None."""
        return QUANTILE_LEVELS.get(self.shape)

    @property
    def reads_value(self) -> bool:
        """True when the type's values come from the rows' ``value`` (aggregated per unit, or
        every row's at event level); False when it only counts rows."""
        return self.value_aggregate is not None or self.shape == EVENTS

    def required_columns(self, identifier_types: Iterable[str]) -> list[str]:
        """The columns a metric's SQL must return: its identifier columns, ``timestamp`` and,
        when the type reads it, ``value``."""
        return [*identifier_types, "timestamp", *(["value"] if self.value_column else [])]

    def unit_value_sql(self, rows: str, value: str) -> str:
        """The per-unit value: :attr:`unit_value` with the SQL of the row count and of the aggregate."""
        return self.unit_value.format(rows=rows, value=value)


REGISTRY: dict[str, MetricType] = {}


def register(kind: MetricType) -> MetricType:
    """Add ``kind`` to the registry (its name must be new and its statistic known); returns it."""
    if kind.name in REGISTRY:
        raise ValueError(f"a metric type named {kind.name!r} is already registered.")
    if kind.statistic not in STATISTIC_COLUMNS:
        raise ValueError(
            f"metric type {kind.name!r}: statistic {kind.statistic!r} is not one of {list(STATISTIC_COLUMNS)}."
        )
    if kind.unit_values and "{rows}" not in kind.unit_value and "{value}" not in kind.unit_value:
        raise ValueError(f"metric type {kind.name!r}: unit_value must use {{rows}} or {{value}}.")
    REGISTRY[kind.name] = kind
    return kind


def names() -> tuple[str, ...]:
    """Every registered type's name, in registration order."""
    return tuple(REGISTRY)


def get(name: str) -> MetricType:
    """The registered type called ``name``; a ValueError naming the known types otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"metric_type {name!r} is not one of {', '.join(REGISTRY)}.") from None


def quantile_type(level: str, preferred: MetricType | None = None) -> MetricType | None:
    """The registered quantile type taking its quantile at ``level`` (``event`` / ``unit``):
    ``preferred`` when it does, else the first registered one; None when no type does."""
    if preferred is not None and preferred.quantile_level == level:
        return preferred
    return next((kind for kind in REGISTRY.values() if kind.quantile_level == level), None)


_ROWS = "1 when the unit has at least one row that counts, else 0"
register(MetricType(
    "binomial", UNIT, "proportion",
    Contract("the identifier columns, `timestamp`", _ROWS, "proportion `p = Σx/n`, variance `p(1−p)`"),
    value_column=False, unit_value="CASE WHEN {rows} > 0 THEN 1.0 ELSE 0.0 END", cuped=True, capping=True,
    value_format="percent",
    example={"name": "purchased", "sql": "SELECT userId AS user_id, timestamp FROM orders"},
))  # fmt: skip
register(MetricType(
    "count", UNIT, "sample_mean",
    Contract("the identifier columns, `timestamp`, `value`", "the number of rows that count (`value` is not summed)",
             "sample mean, unbiased variance `(Σx² − (Σx)²/n)/(n−1)`"),
    unit_value="CAST({rows} AS DOUBLE PRECISION)", cuped=True, capping=True, example={"name": "orders_per_user"},
))  # fmt: skip
register(MetricType(
    "mean", UNIT, "sample_mean",
    Contract("the identifier columns, `timestamp`, `value`",
             "the sum of `value` over the rows that count (NULLs ignored; 0 without rows)", "sample mean, unbiased variance"),
    value_aggregate="SUM", unit_value="COALESCE({value}, 0.0)", cuped=True, capping=True, example={"name": "revenue_per_user"},
))  # fmt: skip
register(MetricType(
    "duration", UNIT, "sample_mean",
    Contract("the identifier columns, `timestamp`, `value` (seconds)",
             "the sum of `value` over the rows that count, as for mean", "sample mean, unbiased variance"),
    value_aggregate="SUM", unit_value="COALESCE({value}, 0.0)", cuped=True, capping=True, value_format="duration",
    example={"name": "session_duration", "sql": "SELECT userId AS user_id, sessionStart AS timestamp, duration AS value FROM sessions"},
))  # fmt: skip
register(MetricType(
    "ratio", RATIO, "ratio",
    Contract("nothing: `numerator` and `denominator` name two metrics with a per-unit value",
             "the numerator's and the denominator's per-unit values, each with its own window, filter and capping",
             "`Σm/Σd` with the delta-method variance from `main_denominator_sum_product`; with CUPED, "
             "GrowthBook's regression-adjusted ratio over both parts' pre-exposure values"),
    value_column=False, cuped=True,
    example={"name": "average_order_value", "numerator": "revenue_per_user", "denominator": "orders_per_user"},
))  # fmt: skip
register(MetricType(
    "quantile", EVENTS, "quantile_event",
    Contract("the identifier columns, `timestamp`, `value`",
             "none: event level, over the `value`s of the rows that count (NULLs dropped); per unit, the "
             "events at or below the arm's quantile and the unit's events (the clusters)",
             "the value at rank `ceil(n·q)` and its order-statistic 95% interval (ranks `n·q ∓ 1.96·sqrt(n·q·(1−q))`), "
             "variance corrected for events clustered in units (GrowthBook's `QuantileClusteredStatistic`)"),
    example={"name": "order_amount_p90", "quantile": {"value": 0.9, "level": "event"}},
))  # fmt: skip
register(MetricType(
    "quantile_unit", UNIT_QUANTILE, "quantile_unit",
    Contract("the identifier columns, `timestamp`, `value`",
             "the sum of `value` over the rows that count (NULLs ignored; 0 without rows), as for mean",
             "the per-unit value at rank `ceil(n·q)` over the `n` units and its order-statistic 95% interval"),
    value_aggregate="SUM", unit_value="COALESCE({value}, 0.0)",
    example={"name": "revenue_per_user_p90", "type": "quantile", "quantile": {"value": 0.9, "level": "unit"}},
))  # fmt: skip
