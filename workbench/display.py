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


def effect(x: float | None, relative: bool) -> str:
    """An effect on its scale: a signed percentage (relative) or a signed number (absolute)."""
    if not relative and not missing(x) and not math.isinf(x):
        return f"{x:+.4g}"
    return percent(x)


def certainty(row: dict, engine: str) -> str:
    """``p = 0.012`` (the adjusted p-value when there is one) or ``chance to beat control 97.5%``."""
    if engine == "bayesian":
        chance = row.get("chance_to_win")
        return "no chance to win computed" if missing(chance) else f"chance to beat control {chance:.1%}"
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


def _cells(results: ExperimentResults, rows: pd.DataFrame) -> tuple[list[str], list[dict], list[list[str]]]:
    """Headings, the row records and their cells: one row per metric × variation (× segment when
    ``rows`` holds several)."""
    settings = results.settings
    bayesian, relative = settings.engine == "bayesian", settings.relative
    records = rows.to_dict("records")
    segments = len({(r["dimension"], r["dimension_value"]) for r in records}) > 1
    heads = [
        "metric",
        *(["segment"] if segments else []),
        "variation",
        "control mean",
        "variation mean",
        "units (control / variation)",
        "effect",
        "interval",
    ]
    heads += (
        ["chance to win", "risk"] if bayesian else ["adjusted p-value" if settings.correction != "none" else "p-value"]
    )
    heads += ["", "note"]
    cells = []
    for r in records:
        p = r.get("p_value_adjusted") if settings.correction != "none" else r.get("p_value")
        interval = (
            ""
            if missing(r["ci_lower"]) and missing(r["ci_upper"])
            else f"[{effect(r['ci_lower'], relative)}, {effect(r['ci_upper'], relative)}]"
        )
        row = [
            r["metric"],
            *([_segment(r)] if segments else []),
            str(r["variation"]),
            number(r["baseline_mean"]),
            number(r["mean"]),
            f"{int(r['baseline_units']):,} / {int(r['units']):,}",
            effect(r["relative_effect" if relative else "absolute_effect"], relative),
            interval,
        ]
        if bayesian:
            row += [
                "" if missing(r.get("chance_to_win")) else f"{r['chance_to_win']:.1%}",
                effect(r.get("risk_treatment"), relative),
            ]
        else:
            row.append("" if missing(p) else f"{p:.3g}")
        row += [MARKS.get(r["significance"], ""), r["note"] if isinstance(r.get("note"), str) else ""]
        cells.append(row)
    return heads, records, cells


def results_table_html(results: ExperimentResults, rows: pd.DataFrame | None = None, caption: str = "") -> str:
    """An HTML table of ``rows`` (default: every row of ``results.table``): significantly better
    rows green, worse rows red, each row's ``title`` (hover) repeating the comparison in a sentence."""
    rows = results.table if rows is None else rows
    if rows.empty:
        return "<p><i>No results for this selection.</i></p>"
    heads, records, cells = _cells(results, rows)
    relative, engine = results.settings.relative, results.settings.engine
    body = []
    for r, row in zip(records, cells):
        title = (
            f"{r['metric']}: variation {r['variation']} mean {number(r['mean'])} over {int(r['units']):,} units vs control "
            f"{number(r['baseline_mean'])} over {int(r['baseline_units']):,} units; effect {effect(r['relative_effect' if relative else 'absolute_effect'], relative)}, "
            f"{certainty(r, engine)}" + (f"; note: {r['note']}" if isinstance(r.get("note"), str) and r["note"] else "")
        )
        colour = BACKGROUNDS.get(r["significance"], "")
        style = f' style="background:{colour}"' if colour else ""
        body.append(
            f'<tr class="wb-row wb-{r["significance"] or "neutral"}" title="{html.escape(title)}"{style}>'
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
            + "</tr>"
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    caption_html = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="wb-results">{caption_html}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<p style="font-size:12px;color:{NEUTRAL}">Green: significantly better than the control; red: significantly worse; hover a row for details.</p>'
    )


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
    return f"<div>{decision_and_health_html(results.decision, results.health)}{table}</div>"


def results_text(results: ExperimentResults) -> str:
    """The same view as plain text, for ``print(results)`` and the command line."""
    import pandas as pd

    if results.table.empty:
        body = "(no comparisons)"
    else:
        heads, _records, cells = _cells(results, results.table)
        body = pd.DataFrame(cells, columns=heads).to_string(index=False)
    return "\n".join(
        [*decision_text(results.decision), "", settings_line(results), *health_text(results.health), "", body]
    )
