"""The tables and plain-language sentences of experiment reports and the dashboard: the verdict
(which variation won, how sure we are), the health summary, results tables per metric group with
significance highlighted and hover details, and the provenance appendix.
"""
from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from workbench.reports.data import ReportData

GROUPS = ("goal", "secondary", "guardrail")
ROW_COLOURS = {"better": "#dafbe1", "worse": "#ffebe9"}


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def markdown_text(value: object) -> str:
    """``value`` (a variation id, a dimension value, a warning) as literal Markdown text: HTML
    special characters as entities, Markdown punctuation backslash-escaped, so data never becomes
    markup or script in a report."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(value), quote=False))


def _pct(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:+.1%}"


def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _certainty(row, bayesian: bool) -> str:
    if bayesian:
        return f"chance to beat control {row['chance_to_win']:.1%}" if not _missing(row["chance_to_win"]) else "no chance to win computed"
    p = row["p_value_adjusted"] if not _missing(row.get("p_value_adjusted")) else row["p_value"]
    return f"p = {p:.2g}" if not _missing(p) else "no p-value"


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def verdict(data: ReportData) -> str:
    """Markdown sentences a stakeholder can act on: for each goal metric which variation is
    significantly better or worse than the control (effect, 95% interval, p-value or chance to
    win), guardrails that got worse, and the overall call (with a caution when health failed)."""
    settings = data.summary["settings"]
    bayesian = settings["engine"] == "bayesian"
    level = f"{1 - settings['alpha']:.0%}"
    t = data.results[data.results["dimension"] == "overall"]
    if len(t) and not (t["units"].sum() + t["baseline_units"].sum()):
        return ("**No data yet**: no unit has been exposed to this experiment between its start and end, so there is nothing "
                "to compare; the results fill in once traffic arrives (check the dates and the experiment key if it should have).")
    lines = []
    winners: dict[str, int] = {}
    losers: set[str] = set()
    for row in t[t["metric_group"] == "goal"].to_dict("records"):
        if row["variation"] == data.control:
            continue
        shown = markdown_text(row["variation"])
        ci = f"{level} interval {_pct(row['ci_lower'])} to {_pct(row['ci_upper'])}" if settings["difference_type"] == "relative" else f"{level} interval {_num(row['ci_lower'])} to {_num(row['ci_upper'])}"
        effect = f"{_pct(row['relative_effect'])} ({_num(row['baseline_mean'])} → {_num(row['mean'])})"
        if _missing(row["ci_lower"]) and isinstance(row["note"], str) and row["note"]:
            lines.append(f"- Variation {shown} on {row['metric']}: cannot be compared ({row['note']}).")
        elif row["significance"] == "better":
            winners[row["variation"]] = winners.get(row["variation"], 0) + 1
            lines.append(f"- **Variation {shown} is better on {row['metric']}**: {effect}, {ci}, {_certainty(row, bayesian)}.")
        elif row["significance"] == "worse":
            losers.add(row["variation"])
            lines.append(f"- **Variation {shown} is worse on {row['metric']}**: {effect}, {ci}, {_certainty(row, bayesian)}.")
        else:
            lines.append(f"- Variation {shown} on {row['metric']}: no clear difference yet ({effect}, {ci}, {_certainty(row, bayesian)}).")
    harmed = t[(t["metric_group"] == "guardrail") & (t["significance"] == "worse")]
    for row in harmed.to_dict("records"):
        losers.add(row["variation"])
        lines.append(f"- Guardrail **{row['metric']}** is worse in variation {markdown_text(row['variation'])} ({_pct(row['relative_effect'])}, {_certainty(row, bayesian)}).")
    candidates = sorted((v for v in winners if v not in losers), key=lambda v: -winners[v])
    if candidates:
        call = f"**Variation {markdown_text(candidates[0])} won**: significantly better than the control on {winners[candidates[0]]} goal metric(s) with no goal or guardrail metric worse."
    elif losers and not winners:
        call = f"**No variation beat the control**; variation(s) {', '.join(markdown_text(v) for v in sorted(losers))} did worse. Keep the control."
    elif not lines:
        call = "This experiment has no goal metrics configured: add `goal_metrics` to its entry in workbench.yml."
    else:
        call = "**No winner yet**: no variation is significantly better on the goal metrics without harming another."
    if data.warnings:
        call += " **Caution: the health checks below failed, so these numbers may be biased.**"
    return "\n".join([call, "", *lines])


def health_summary(data: ReportData) -> str:
    """Markdown: healthy or not, with SRM p-value, multiple exposures and each warning."""
    health = data.summary
    srm_p, share = health["srm_p_value"], health["health"]["multiple_exposure_share"] or 0.0
    facts = (f"sample-ratio check p = {srm_p:.3g} (flagged below 0.001), {health['multiple_exposure_units']:,} units "
             f"({share:.1%}) saw more than one variation and are left out")
    if not data.warnings:
        return f"✔ **Healthy**: {facts}."
    return "\n".join([f"⚠ **Not healthy**: {facts}.", "", *[f"- {markdown_text(w)}" for w in data.warnings]])


def results_rows(data_results: pd.DataFrame, group: str, dimension_value: str = "all") -> pd.DataFrame:
    """The results of ``group``'s metrics at ``dimension_value`` (``"all"``: overall), in order."""
    t = data_results[(data_results["metric_group"] == group) & (data_results["dimension_value"] == dimension_value)]
    if dimension_value == "all":
        t = t[t["dimension"] == "overall"]
    return t.reset_index(drop=True)


def results_table_html(data_results: pd.DataFrame, group: str, dimension_value: str = "all", engine: str = "frequentist") -> str:
    """An HTML table of :func:`results_rows`: one row per metric × variation with the control and
    variation means, units, effect, interval and p-value (or chance to win); significantly better
    rows green, worse rows red; each row's ``title`` (hover) repeats the details in a sentence."""
    rows = results_rows(data_results, group, dimension_value)
    if rows.empty:
        return f"<p><i>No {group} metrics for this selection.</i></p>"
    bayesian = engine == "bayesian"
    heads = ["metric", "variation", "control mean", "variation mean", "units (control / variation)", "effect", "interval", "chance to win" if bayesian else "p-value", ""]
    body = []
    for r in rows.to_dict("records"):
        p = r["chance_to_win"] if bayesian else (r["p_value_adjusted"] if not _missing(r.get("p_value_adjusted")) else r["p_value"])
        mark = {"better": "▲ better", "worse": "▼ worse"}.get(r["significance"], "")
        cells = [r["metric"], r["variation"], _num(r["baseline_mean"]), _num(r["mean"]), f"{int(r['baseline_units']):,} / {int(r['units']):,}",
                 _pct(r["relative_effect"]), f"[{_pct(r['ci_lower'])}, {_pct(r['ci_upper'])}]", "" if _missing(p) else (f"{p:.1%}" if bayesian else f"{p:.3g}"), mark]
        title = (f"{r['metric']}: variation {r['variation']} mean {_num(r['mean'])} over {int(r['units']):,} units vs control {_num(r['baseline_mean'])} "
                 f"over {int(r['baseline_units']):,} units; effect {_pct(r['relative_effect'])}, {_certainty(r, bayesian)}" + (f"; note: {r['note']}" if isinstance(r["note"], str) and r["note"] else ""))
        colour = ROW_COLOURS.get(r["significance"], "")
        style = f' style="background:{colour}"' if colour else ""
        body.append(f'<tr class="wb-row wb-{r["significance"] or "neutral"}" title="{html.escape(title)}"{style}>' + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return (f'<table class="wb-results" data-group="{html.escape(group)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            '<p style="font-size:12px;color:#57606a">Green: significantly better than the control; red: significantly worse; hover a row for details.</p>')


def dimension_values(data_results: pd.DataFrame) -> list[tuple[str, str]]:
    """(dimension, value) pairs present, overall first."""
    pairs = data_results[["dimension", "dimension_value"]].drop_duplicates()
    return [("overall", "all")] + [tuple(p) for p in pairs.itertuples(index=False) if p[0] != "overall"]


def provenance_html(data: ReportData) -> str:
    """The provenance of a report as a two-column HTML table (no secrets: the URL is masked)."""
    p = data.provenance
    window = p.get("data_window", {})
    items = [("experiment", p.get("experiment")), ("config file", p.get("config_file")), ("config SHA-256", p.get("config_sha256")),
             ("database", p.get("database")), ("configured window", f"{window.get('configured_start')} to {window.get('configured_end')}"),
             ("first/last exposure day", f"{window.get('first_exposure_day')} to {window.get('last_exposure_day')}"),
             ("dimension", p.get("dimension") or "none"), ("computed at", p.get("computed_at")), ("computation time", f"{p.get('seconds')} s"),
             ("packages", ", ".join(f"{k} {v}" for k, v in p.get("packages", {}).items()))]
    return "<table>" + "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in items) + "</table>"
