"""The decision an experiment's results support: what to do, not only which variation won.

:func:`decide` reads an :class:`~workbench.stats.results.ExperimentResults` (overall rows only)
and returns one :class:`Decision`, by the first rule that applies:

1. **no data** — no unit was exposed;
2. **don't trust yet** — any health warning (sample-ratio mismatch overall or in a segment, 1% or
   more units in several variations, unknown variations, a variation without units): the numbers
   may be biased, so none of them decides;
3. **ship** a variation significantly better than the control on at least one goal metric and
   significantly worse on none of its metrics (goal, secondary or guardrail); among several, the
   one better on most goal metrics, then with the largest summed goal effect;
4. **roll back** when a variation is significantly worse than the control on any metric and none
   can ship;
5. **keep running** when no goal metric is significant yet and GrowthBook's mid-experiment power
   (:mod:`workbench.stats.midexperiment_power`, 80% power for ``settings.target_mde``) says more
   units would reach it within :data:`MAX_EXTENSION` times the sample so far: the extra days are
   ``additional units / units so far × days so far`` for the goal comparison that needs most, at
   the traffic so far;
6. **inconclusive** otherwise: already powered for ``target_mde`` with no effect that large, power
   not computable, more than :data:`MAX_EXTENSION` times the sample needed, no goal metrics, or a
   single variation.

"Significantly" is the results' own ``significance`` column (the configured engine, correction and
one-sided guardrail tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from workbench.display import certainty, effect, missing, sentence_start

if TYPE_CHECKING:
    import pandas as pd

    from workbench.stats.results import ExperimentResults

Action = Literal["ship", "roll back", "keep running", "inconclusive", "don't trust yet", "no data"]
# Keep running only while the planned effect needs at most this many times the units so far more.
MAX_EXTENSION = 3.0


@dataclass(frozen=True)
class Decision:
    """What to do with an experiment. ``action`` is one of :data:`Action`; ``variations`` the
    variation to ship or those to roll back (empty otherwise); ``reasons`` plain sentences with the
    evidence, most important first; ``more_units`` / ``more_days`` what "keep running" still
    needs (units over both arms of the neediest goal comparison; days at the traffic so far, None
    when the days are unknown) for the planned relative effect ``target_mde``."""

    action: Action
    variations: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    more_units: float | None = None
    more_days: float | None = None
    target_mde: float | None = None
    names: Mapping[str, str] = field(default_factory=dict, compare=False)

    def _shown(self, short: bool) -> str:
        """The variations by name, else ``variation 2`` (``2`` when ``short``), joined by "and"."""
        return " and ".join(self.names.get(v) or (v if short else f"variation {v}") for v in self.variations)

    @property
    def headline(self) -> str:
        """The decision as the first sentence of a report, e.g. ``Ship variation 2`` (``Ship Big
        buttons`` when the variation is named)."""
        if self.action == "ship":
            return f"Ship {self._shown(False)}"
        if self.action == "roll back":
            return f"Roll back {self._shown(False)}"
        if self.action == "keep running":
            return f"Keep running: {self._more()} for the planned {self.target_mde:.0%} effect"
        if self.action == "don't trust yet":
            return "Don't trust yet: the health checks failed"
        if self.action == "no data":
            return "No data yet"
        return "Inconclusive"

    @property
    def label(self) -> str:
        """The decision in a few words, for the index and tables, e.g. ``keep running (9 more days)``."""
        if self.action in ("ship", "roll back"):
            return f"{self.action} {self._shown(True)}"
        if self.action == "keep running":
            return f"keep running ({self._more()})"
        if self.action == "don't trust yet":
            return "don't trust yet (health)"
        return "no data yet" if self.action == "no data" else self.action

    @property
    def tone(self) -> str:
        """``better`` (ship), ``worse`` (roll back, don't trust yet) or ``neutral``: its colour."""
        return {"ship": "better", "roll back": "worse", "don't trust yet": "worse"}.get(self.action, "neutral")

    def _more(self) -> str:
        if self.more_days is not None:
            return f"about {math.ceil(self.more_days):,} more days"
        return f"about {self.more_units:,.0f} more units"

    def to_dict(self) -> dict:
        """JSON-able: ``action``, ``headline``, ``variations`` (ids), ``reasons``, ``more_units``, ``more_days``."""
        return {
            "action": self.action,
            "headline": self.headline,
            "variations": list(self.variations),
            "reasons": list(self.reasons),
            "more_units": self.more_units,
            "more_days": self.more_days,
        }


def days_so_far(units_per_day: pd.DataFrame) -> int | None:
    """Days from the first to the last first-exposure day (both counted); None without days."""
    import pandas as pd

    if units_per_day.empty:
        return None
    days = pd.to_datetime(units_per_day["day"])
    return int((days.max() - days.min()).days) + 1


def _figures(row: dict, results: ExperimentResults) -> str:
    """``-33.0%, p = 7e-60``: a comparison's effect on the analysis' scale and how sure it is."""
    settings = results.settings
    size = effect(row["relative_effect" if settings.relative else "absolute_effect"], settings.relative)
    return f"{size}, {certainty(row, settings.engine)}"


def _harm_reasons(rows: Sequence[dict], results: ExperimentResults) -> list[str]:
    by_variation: dict[str, list[str]] = {}
    for row in rows:
        if row["significance"] == "worse":
            by_variation.setdefault(str(row["variation"]), []).append(f"{row['metric']} ({_figures(row, results)})")
    return [
        f"{sentence_start(results.labels.variation(v))} is significantly worse on {', '.join(found)}."
        for v, found in by_variation.items()
    ]


def _extension(row: dict) -> float | None:
    """Extra units the comparison needs for 80% power, as a multiple of its units so far (inf when
    not even 2^27 times are enough); None when its power is unknown."""
    if missing(row.get("power")):
        return None
    more = row.get("power_additional_units")
    return math.inf if missing(more) else more / (row["units"] + row["baseline_units"])


def _power_reason(row: dict, results: ExperimentResults, days: int | None) -> str:
    """One goal comparison without a significant result, and what its power says."""
    head = f"{row['metric']}, {results.labels.variation(row['variation'])}: no significant difference ({_figures(row, results)})"
    mde = f"{results.settings.target_mde:.0%}"
    extension, power = _extension(row), row.get("power")
    if extension is None:
        why = row.get("power_note") or row.get("note") or "power is computed for relative differences only"
        return f"{head}; its power could not be computed ({why})."
    if math.isinf(extension):
        return f"{head}; {power:.0%} power to detect a {mde} effect, and not even 2^27 times the units would give 80%."
    if extension == 0:
        return f"{head}, with {power:.0%} power to detect a {mde} effect: an effect that large would most likely have shown."
    when = f" ({math.ceil(extension * days):,} more days at the traffic so far)" if days else ""
    more = row["power_additional_units"]
    return (
        f"{head}; {power:.0%} power to detect a {mde} effect so far, about {more:,.0f} more units{when} would give 80%."
    )


def decide(results: ExperimentResults) -> Decision:
    """The :class:`Decision` the overall results of ``results`` support (the rule in the module
    docstring)."""
    settings, health, names = results.settings, results.health, results.labels.variation_names
    t = results.table
    overall = t[(t["dimension"] == "overall") & (t["variation"].astype(str) != str(settings.control))]
    if not health.units:
        return Decision("no data", reasons=("No unit has been exposed to this experiment yet.",), names=names)
    if health.warnings:
        return Decision("don't trust yet", reasons=tuple(health.warnings), names=names)
    rows = overall.to_dict("records")
    harms = _harm_reasons(rows, results)
    harmed = {str(r["variation"]) for r in rows if r["significance"] == "worse"}
    goal = [r for r in rows if r["metric_group"] == "goal"]
    wins: dict[str, list[dict]] = {}
    for row in goal:
        if row["significance"] == "better" and str(row["variation"]) not in harmed:
            wins.setdefault(str(row["variation"]), []).append(row)
    if wins:
        effect_key = "relative_effect" if settings.relative else "absolute_effect"
        best = max(wins, key=lambda v: (len(wins[v]), sum(abs(r[effect_key]) for r in wins[v])))
        found = ", ".join(f"{r['metric']} ({_figures(r, results)})" for r in wins[best])
        shown = sentence_start(results.labels.variation(best))
        reason = f"{shown} is significantly better on {found} and significantly worse on no metric."
        return Decision("ship", (best,), (reason, *harms), names=names)
    if harmed:
        ordered = tuple(v for v in dict.fromkeys(str(r["variation"]) for r in rows) if v in harmed)
        return Decision("roll back", ordered, tuple(harms), names=names)
    if not goal:
        why = "no goal metrics are configured"
        if not rows:
            why = "no metrics are configured" if t.empty else "only one variation (the control): nothing to compare"
        return Decision("inconclusive", reasons=(f"Nothing decides this experiment: {why}.",), names=names)
    days = days_so_far(health.units_per_day)
    reasons = tuple(_power_reason(r, results, days) for r in goal)
    known = [(extension, r) for r in goal if (extension := _extension(r)) is not None]
    extension, neediest = max(known, key=lambda pair: pair[0], default=(0.0, None))
    if neediest is not None and 0 < extension <= MAX_EXTENSION:
        more_days = extension * days if days else None
        more_units = float(neediest["power_additional_units"])
        return Decision("keep running", (), reasons, more_units, more_days, settings.target_mde, names)
    if extension > MAX_EXTENSION:
        reasons += (
            f"80% power for a {settings.target_mde:.0%} effect needs more than {MAX_EXTENSION:g} times the units so far, too long to wait for.",
        )
    return Decision("inconclusive", reasons=reasons, names=names)
