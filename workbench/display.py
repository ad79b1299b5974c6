"""How results look, in one place: the palette, number formats, the health banner and the results
table that a notebook cell (an ``ExperimentResults`` shown as HTML or text), the experiment reports
and the dashboard all draw.

Functions take a results object (:class:`workbench.stats.ExperimentResults`, its ``health`` and
``settings``) and return HTML or text; they compute nothing and import nothing else of the
workbench, so the statistics engine can use them without depending on the reports.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from workbench.stats import ExperimentResults
    from workbench.stats.decision import Decision
    from workbench.stats.health import HealthChecks

# One palette for every chart, table and banner.
BETTER, WORSE, NEUTRAL, MUTED = "#1a7f37", "#cf222e", "#57606a", "#d0d7de"
BACKGROUNDS = {"better": "#dafbe1", "worse": "#ffebe9"}  # rows and banners
NOTICE = "#fff8c5"  # a decision that is neither ship nor harm: keep running, inconclusive, no data
SERIES = ("#0969da", "#bf3989", "#9a6700", "#1a7f37", "#8250df")  # one colour per variation
MARKS = {"better": "▲ better", "worse": "▼ worse"}
# "0": toolkit charts show without their static PNG (report kernels, whose pages draw the figures'
# JSON themselves: workbench.toolkit.charts)
CHART_IMAGES_ENV = "WORKBENCH_CHART_IMAGES"


# How a metric's values are written (``format:`` of a metric, defaults from its type's registry entry).
FORMATS = ("number", "percent", "duration", "currency")


@dataclass(frozen=True)
class Currency:
    """How money is written: ``symbol`` before the amount (after it, space-separated, with
    ``symbol_after``), ``decimals`` digits after the point, thousands separated by commas."""

    symbol: str = "$"
    decimals: int = 2
    symbol_after: bool = False


@dataclass(frozen=True)
class ValueFormat:
    """A metric's units: ``kind`` one of :data:`FORMATS` (``percent``: a rate of 0–1 shown in %;
    ``duration``: seconds shown as ``1m 23s``), ``currency`` used by the ``currency`` kind."""

    kind: str = "number"
    currency: Currency = field(default_factory=Currency)


@dataclass(frozen=True)
class Labels:
    """What names an experiment's results for readers: its ``name`` (empty: the key),
    ``description`` and ``hypothesis``, ``variation_names`` (id → name; unnamed ids are shown as
    ``variation <id>``), ``metric_names`` (metric → display name) and ``formats`` (metric →
    :class:`ValueFormat`; missing: plain numbers)."""

    name: str = ""
    description: str = ""
    hypothesis: str = ""
    variation_names: Mapping[str, str] = field(default_factory=dict)
    metric_names: Mapping[str, str] = field(default_factory=dict)
    formats: Mapping[str, ValueFormat] = field(default_factory=dict)

    def variation(self, variation: Any) -> str:
        """``Total price`` for a named variation, ``variation 1`` otherwise."""
        return self.variation_names.get(str(variation)) or f"variation {variation}"

    def format(self, metric: str) -> ValueFormat:
        """The metric's :class:`ValueFormat` (plain numbers when none is known)."""
        return self.formats.get(metric) or ValueFormat()

    def to_dict(self) -> dict:
        """JSON-able, read back by :meth:`from_dict`."""
        formats = {m: {"kind": f.kind, "currency": vars(f.currency)} for m, f in self.formats.items()}
        return {
            "name": self.name,
            "description": self.description,
            "hypothesis": self.hypothesis,
            "variation_names": dict(self.variation_names),
            "metric_names": dict(self.metric_names),
            "formats": formats,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Labels:
        """The labels :meth:`to_dict` wrote."""
        formats = {m: ValueFormat(f["kind"], Currency(**f["currency"])) for m, f in data.get("formats", {}).items()}
        return cls(
            data.get("name", ""),
            data.get("description", ""),
            data.get("hypothesis", ""),
            dict(data.get("variation_names", {})),
            dict(data.get("metric_names", {})),
            formats,
        )


def sentence_start(text: str) -> str:
    """``text`` with its first letter in upper case (``variation 1`` → ``Variation 1``)."""
    return text[:1].upper() + text[1:]


def missing(x: Any) -> bool:
    """True for None and NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def percent(x: float | None) -> str:
    """``+1.2%``; ``n/a`` when missing; ``∞`` / ``-∞``."""
    if missing(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:+.1%}"


def number(x: float | None) -> str:
    """Four significant digits; empty when missing."""
    return "" if missing(x) else f"{x:.4g}"


def duration(seconds: float | None) -> str:
    """Seconds as a human duration: ``42.5s``, ``1m 23s``, ``2h 05m``, ``3d 4h``; ``n/a`` when missing."""
    if missing(seconds) or math.isinf(seconds):
        return "n/a" if missing(seconds) else ("∞" if seconds > 0 else "-∞")
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if round(s, 1) < 60:
        return f"{sign}{s:.3g}s"
    if round(s) < 3600:
        minutes, rest = divmod(round(s), 60)
        return f"{sign}{minutes}m {rest:02d}s"
    if round(s / 60) < 24 * 60:
        hours, rest = divmod(round(s / 60), 60)
        return f"{sign}{hours}h {rest:02d}m"
    days, rest = divmod(round(s / 3600), 24)
    return f"{sign}{days}d {rest}h"


def money(x: float | None, currency: Currency) -> str:
    """``$1,234.50`` / ``-$3.20`` (``1.234,50 €`` style is not attempted: symbol and digits only)."""
    if missing(x) or math.isinf(x):
        return "n/a"
    sign, amount = ("-" if x < 0 else ""), f"{abs(x):,.{currency.decimals}f}"
    return f"{sign}{amount} {currency.symbol}" if currency.symbol_after else f"{sign}{currency.symbol}{amount}"


def value(x: float | None, fmt: ValueFormat) -> str:
    """A metric value in its units: ``3.12%``, ``43.0%`` (percent: a rate of 0–1), ``1m 23s`` (duration in
    seconds), ``$12.30`` (currency), else four significant digits; empty when missing."""
    if missing(x):
        return ""
    if fmt.kind == "percent":
        return f"{x * 100:#.3g}".rstrip(".") + "%"  # three significant digits, kept: 43.0%
    if fmt.kind == "duration":
        return duration(x)
    if fmt.kind == "currency":
        return money(x, fmt.currency)
    return number(x)


def change(x: float | None, fmt: ValueFormat, relative: bool) -> str:
    """An effect in the metric's units: relative as a signed percentage, absolute as signed
    percentage points (``+1.2 pp``), a signed duration or amount, or a signed number."""
    if relative or missing(x) or math.isinf(x):
        return percent(x)
    if fmt.kind == "percent":
        return f"{x * 100:+.2g} pp"
    sign = "+" if x >= 0 else ""
    if fmt.kind in ("duration", "currency"):
        return sign + value(x, fmt)
    return f"{x:+.4g}"


def effect(x: float | None, relative: bool) -> str:
    """An effect on its scale: a signed percentage (relative) or a signed number (absolute)."""
    if not relative and not missing(x) and not math.isinf(x):
        return f"{x:+.4g}"
    return percent(x)


def probability(x: float | None) -> str:
    """A chance as ``97.5%``, never rounded to certainty: ``>99.9%`` / ``<0.1%`` at the ends; empty when missing."""
    if missing(x):
        return ""
    return ">99.9%" if x > 0.999 else "<0.1%" if x < 0.001 else f"{x:.1%}"


def certainty(row: dict, engine: str) -> str:
    """``p = 0.012`` (the adjusted p-value when there is one) or ``chance to beat control 97.5%``."""
    if engine == "bayesian":
        chance = row.get("chance_to_win")
        return "no chance to win computed" if missing(chance) else f"chance to beat control {probability(chance)}"
    p = row.get("p_value_adjusted")
    p = row.get("p_value") if missing(p) else p
    return "no p-value" if missing(p) else f"p = {p:.2g}"


# -- health ------------------------------------------------------------------------------------
def health_facts(health: HealthChecks) -> str:
    """The health checks' figures in one sentence."""
    return (
        f"sample-ratio check p = {health.srm_p_value:.3g} (flagged below 0.001); "
        f"{health.multiple_exposure_units:,} units ({health.multiple_exposure_share:.1%}) saw more than one variation and are left out"
    )


def health_banner_html(health: HealthChecks) -> str:
    """The health banner: green "Healthy" with the figures, or red "Not healthy" listing every warning."""
    facts = html.escape(health_facts(health))
    if not health.warnings:
        return f'<div class="wb-banner wb-healthy" style="background:{BACKGROUNDS["better"]};padding:6px 10px;border-radius:4px">✔ <b>Healthy</b>: {facts}.</div>'
    items = "".join(f"<li>{html.escape(w)}</li>" for w in health.warnings)
    return (
        f'<div class="wb-banner wb-unhealthy" style="background:{BACKGROUNDS["worse"]};padding:6px 10px;border-radius:4px">'
        f"⚠ <b>Not healthy</b>: {facts}.<ul style='margin:4px 0'>{items}</ul></div>"
    )


def health_text(health: HealthChecks) -> list[str]:
    """The health banner as plain lines."""
    head = f"{'Healthy' if not health.warnings else 'NOT HEALTHY'}: {health_facts(health)}."
    return [head, *(f"WARNING: {w}" for w in health.warnings)]


# -- the decision ------------------------------------------------------------------------------
def decision_html(decision: Decision, health: HealthChecks, aside: str = "") -> str:
    """What a report shows first: the red health banner when a check failed, then the decision's
    headline (green ship, red roll back or don't trust yet, yellow otherwise), followed on its line
    by ``aside`` (HTML, e.g. a link), with its reasons (the health warnings are the banner's, not
    repeated)."""
    colour = BACKGROUNDS.get(decision.tone, NOTICE)
    untrusted = "The results below may be biased: find the cause of the failed checks before acting on any of them."
    reasons = (untrusted,) if decision.action == "don't trust yet" else decision.reasons
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    banner = health_banner_html(health) if health.warnings else ""
    return (
        f'{banner}<div class="wb-decision wb-decision-{decision.tone}" style="background:{colour};padding:8px 12px;'
        f'border-radius:4px;margin:6px 0"><div style="font-size:1.3em"><b>Decision: {html.escape(decision.headline)}</b>{aside}</div>'
        f"<ul style='margin:4px 0'>{items}</ul></div>"
    )


def decision_and_health_html(decision: Decision, health: HealthChecks, aside: str = "") -> str:
    """:func:`decision_html` (``aside`` beside the headline), followed by the green health banner
    when every check passed."""
    return decision_html(decision, health, aside) + ("" if health.warnings else health_banner_html(health))


def decision_text(decision: Decision) -> list[str]:
    """The decision as plain lines: ``DECISION: <headline>.`` then one ``- reason`` per line."""
    return [f"DECISION: {decision.headline}.", *(f"- {r}" for r in decision.reasons)]


# -- results tables ----------------------------------------------------------------------------
def _segment(row: dict) -> str:
    return "all units" if row["dimension"] == "overall" else f"{row['dimension']} = {row['dimension_value']}"


def _p_value(row: dict, corrected: bool) -> float | None:
    return row.get("p_value_adjusted") if corrected else row.get("p_value")


def _heads(results: ExperimentResults, segments: bool) -> list[str]:
    corrected = results.settings.correction != "none"
    effect_scale = "relative effect" if results.settings.relative else "absolute effect"
    return [
        "metric",
        *(["segment"] if segments else []),
        "variation",
        "baseline",
        "variation value",
        effect_scale,
        f"{1 - results.settings.alpha:.0%} interval",
        "chance to win",
        "adjusted p-value" if corrected else "p-value",
        "note",
    ]


def _record_cells(results: ExperimentResults, r: dict, segments: bool) -> dict[str, str]:
    """One row's figures as text, keyed by what they are (shared by the HTML and the text view)."""
    labels, relative = results.labels, results.settings.relative
    fmt = labels.format(r["metric"])
    p = _p_value(r, results.settings.correction != "none")
    interval = (
        ""
        if missing(r["ci_lower"]) and missing(r["ci_upper"])
        else f"[{change(r['ci_lower'], fmt, relative)}, {change(r['ci_upper'], fmt, relative)}]"
    )
    return {
        "metric": r["metric"],
        "segment": _segment(r) if segments else "",
        "variation": labels.variation(r["variation"]),
        "baseline": value(r["baseline_mean"], fmt),
        "baseline_units": f"{int(r['baseline_units']):,} units",
        "mean": value(r["mean"], fmt),
        "units": f"{int(r['units']):,} units",
        "effect": change(r["relative_effect" if relative else "absolute_effect"], fmt, relative),
        "mark": MARKS.get(r["significance"], ""),
        "interval": interval,
        "chance": probability(r.get("chance_to_win")),
        "p": "" if missing(p) else f"{p:.3g}",
        "note": r["note"] if isinstance(r.get("note"), str) else "",
    }


@dataclass(frozen=True)
class Axis:
    """The shared horizontal axis of a table's interval drawings: ``low`` to ``high`` (effects on
    the analysed scale, zero always inside) over ``width`` pixels."""

    low: float
    high: float
    width: int = 160

    @classmethod
    def spanning(cls, values: Iterable[float], width: int = 160) -> Axis:
        """An axis of ``width`` pixels spanning zero and every finite ``values`` (below 1e9 in size:
        ±1e9 stands for an infinite end), 5% of the span padded on each side (±1 when all are zero)."""
        finite = [v for v in values if not missing(v) and math.isfinite(v) and abs(v) < 1e9]
        low, high = min([0.0, *finite]), max([0.0, *finite])
        pad = (high - low) * 0.05 or 1.0
        return cls(low - pad, high + pad, width)

    @classmethod
    def of(cls, rows: list[dict]) -> Axis:
        """An axis spanning every finite interval end of ``rows`` and zero, 5% padded."""
        return cls.spanning(x for r in rows for x in (r["ci_lower"], r["ci_upper"]))

    def x(self, v: float) -> float:
        """The pixel of ``v`` (clipped to the axis: an infinite end of a one-sided interval is drawn to the edge)."""
        v = min(max(v, self.low), self.high)
        return round((v - self.low) / (self.high - self.low) * self.width, 2)


def interval_svg(r: dict, axis: Axis, relative: bool) -> str:
    """A row's interval drawn inline on ``axis``: a bar from the lower to the upper end, a dot at
    the effect, a dashed line at zero; green when significantly better, red when worse, grey
    otherwise. Empty when the row has no interval."""
    lower, upper = r["ci_lower"], r["ci_upper"]
    if missing(lower) or missing(upper):
        return ""
    colour = {"better": BETTER, "worse": WORSE}.get(r["significance"], NEUTRAL)
    point = r["relative_effect" if relative else "absolute_effect"]
    dot = "" if missing(point) else f'<circle class="wb-effect" cx="{axis.x(point)}" cy="8" r="3" fill="{colour}"/>'
    return (
        f'<svg class="wb-interval" width="{axis.width}" height="16" viewBox="0 0 {axis.width} 16" '
        f'data-axis-low="{axis.low!r}" data-axis-high="{axis.high!r}" role="img">'
        f'<line class="wb-zero" x1="{axis.x(0)}" y1="0" x2="{axis.x(0)}" y2="16" stroke="{NEUTRAL}" stroke-dasharray="2,2"/>'
        f'<line class="wb-ci" x1="{axis.x(lower)}" y1="8" x2="{axis.x(upper)}" y2="8" stroke="{colour}" stroke-width="4"/>'
        f"{dot}</svg>"
    )


def _small(text: str) -> str:
    return f'<br><span style="font-size:11px;color:{NEUTRAL}">{html.escape(text)}</span>' if text else ""


def results_table_html(results: ExperimentResults, rows: pd.DataFrame | None = None, caption: str = "") -> str:
    """GrowthBook's results view of ``rows`` (default: every row of ``results.table``): one row
    per metric × variation (× segment) with the metric and its display name, the baseline's and
    the variation's value in the metric's units (units counted below), the effect, its interval
    drawn inline on one axis shared by the table (zero dashed; green significantly better, red
    worse), chance to win and p-value side by side, and a note. Significant rows are tinted; each
    row's ``title`` (hover) repeats the comparison in a sentence."""
    rows = results.table if rows is None else rows
    if rows.empty:
        return "<p><i>No results for this selection.</i></p>"
    records = rows.to_dict("records")
    segments = len({(r["dimension"], r["dimension_value"]) for r in records}) > 1
    axis = Axis.of(records)
    relative, engine, labels = results.settings.relative, results.settings.engine, results.labels
    body = []
    for r in records:
        c = _record_cells(results, r, segments)
        title = (
            f"{r['metric']}: {c['variation']} {c['mean']} over {int(r['units']):,} units vs control "
            f"{c['baseline']} over {int(r['baseline_units']):,} units; effect {c['effect']}, "
            f"{certainty(r, engine)}" + (f"; note: {c['note']}" if c["note"] else "")
        )
        named = labels.variation_names.get(str(r["variation"]))
        cells = [
            html.escape(c["metric"]) + _small(labels.metric_names.get(r["metric"], "")),
            *([html.escape(c["segment"])] if segments else []),
            html.escape(c["variation"]) + _small(f"id {r['variation']}" if named else ""),
            html.escape(c["baseline"]) + _small(c["baseline_units"]),
            html.escape(c["mean"]) + _small(c["units"]),
            f"<b>{html.escape(c['effect'])}</b>" + _small(c["mark"]),
            interval_svg(r, axis, relative) + _small(c["interval"]),
            html.escape(c["chance"]),
            html.escape(c["p"]),
            html.escape(c["note"]),
        ]
        colour = BACKGROUNDS.get(r["significance"], "")
        style = f' style="background:{colour}"' if colour else ""
        body.append(
            f'<tr class="wb-row wb-{r["significance"] or "neutral"}" title="{html.escape(title)}"{style}>'
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + "</tr>"
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _heads(results, segments))
    caption_html = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="wb-results">{caption_html}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<p style="font-size:12px;color:{NEUTRAL}">Green: significantly better than the control; red: significantly worse; '
        "the dashed line in each interval is no difference (one scale per table); hover a row for details.</p>"
    )


def header_html(results: ExperimentResults) -> str:
    """The experiment's name (its key when unnamed) in large type, with its description and
    hypothesis; not a heading element, so a page's sections stay its headings."""
    labels = results.labels
    name = labels.name or results.experiment or "Experiment"
    parts = [f'<div class="wb-title" style="font-size:1.6em;font-weight:600;margin:4px 0">{html.escape(name)}</div>']
    if labels.description:
        parts.append(f'<div class="wb-description" style="margin:2px 0">{html.escape(labels.description)}</div>')
    if labels.hypothesis:
        parts.append(
            f'<div class="wb-hypothesis" style="margin:2px 0"><b>Hypothesis:</b> {html.escape(labels.hypothesis)}</div>'
        )
    return f'<div class="wb-header">{"".join(parts)}</div>'


def settings_line(results: ExperimentResults) -> str:
    """``checkout-layout: frequentist, relative difference, alpha 0.05, sequential, holm correction``."""
    s = results.settings
    return (
        f"{results.experiment or 'experiment'}: {s.engine}, {s.difference_type} difference, alpha {s.alpha}"
        + (", sequential" if s.sequential else "")
        + (f", {s.correction} correction" if s.correction != "none" else "")
    )


def results_html(results: ExperimentResults) -> str:
    """A notebook cell's view of the results: the decision (after the health banner when a check
    failed, else the green one after it), then every comparison."""
    table = results_table_html(results, caption=settings_line(results))
    return f"<div>{header_html(results)}{decision_and_health_html(results.decision, results.health)}{table}</div>"


def results_text(results: ExperimentResults) -> str:
    """The same view as plain text, for ``print(results)`` and the command line."""
    import pandas as pd

    if results.table.empty:
        body = "(no comparisons)"
    else:
        records = results.table.to_dict("records")
        segments = len({(r["dimension"], r["dimension_value"]) for r in records}) > 1
        keys = ["metric", *(["segment"] if segments else []), "variation", "baseline", "mean", "effect", "interval"]
        keys += ["chance", "p", "note"]
        cells = []
        for r in records:
            c = _record_cells(results, r, segments)
            c["baseline"], c["mean"] = f"{c['baseline']} ({c['baseline_units']})", f"{c['mean']} ({c['units']})"
            c["effect"] = f"{c['effect']} {c['mark']}".strip()
            cells.append([c[k] for k in keys])
        body = pd.DataFrame(cells, columns=_heads(results, segments)).to_string(index=False)
    labels = results.labels
    header = [labels.name] if labels.name else []  # the settings line names the key
    header += [labels.description] if labels.description else []
    header += [f"Hypothesis: {labels.hypothesis}"] if labels.hypothesis else []
    return "\n".join(
        [*decision_text(results.decision), "", *header, settings_line(results), *health_text(results.health), "", body]
    )
