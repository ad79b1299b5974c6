"""The tables and plain-language sentences of experiment reports and the dashboard: the verdict
(each goal metric's comparison behind the decision), the page of an experiment without data, the results of one metric group and segment, and the
provenance and SQL appendices. How numbers, rows and the health banner look is :mod:`workbench.display`'s.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from workbench.display import NOTICE, certainty, change, missing, results_table_html, sentence_start, value
from workbench.paths import shown_path

if TYPE_CHECKING:
    import pandas as pd

    from workbench.reports.data import ReportData
    from workbench.stats import AnalysisSettings, ExperimentResults

GROUPS = ("goal", "secondary", "guardrail")


_DUCKDB_FILE = re.compile(r"^(duckdb:///)(/[^?]*)")
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")  # $: no LaTeX math in Jupyter


def markdown_text(value: object) -> str:
    """``value`` (a variation id, a dimension value, a warning) as literal Markdown text: HTML
    special characters as entities, Markdown punctuation backslash-escaped, so data never becomes
    markup or script in a report."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(value), quote=False))


# An output carrying this metadata ends the HTML report (workbench.reports.report_end).
END_OF_REPORT = {"workbench_end_of_report": True}


def no_data_html(data: ReportData) -> str:
    """The whole page of an experiment no unit has been exposed to yet: what to check, no empty
    charts or health figures."""
    window = data.provenance.get("data_window", {})
    return (
        f'<div class="wb-decision wb-no-data" style="background:{NOTICE};padding:8px 12px;border-radius:4px">'
        f"<div style='font-size:1.3em'><b>No data yet</b></div><p>No unit has been exposed to "
        f"<code>{html.escape(data.key)}</code> between {html.escape(str(window.get('configured_start')))} and "
        f"{html.escape(str(window.get('configured_end')))}, so there is nothing to compare. This page turns into the full report "
        "once traffic arrives; if it should have, check the dates, the experiment key and its assignment query.</p></div>"
    )


def verdict(data: ReportData) -> str:
    """Markdown sentences behind the decision (which the report states first): for each goal metric
    whether each variation is significantly better or worse than the control (effect, interval,
    p-value or chance to win, and the power of one not significant yet), guardrails that got worse,
    and results that capping changed."""
    results = data.results
    settings, labels = results.settings, results.labels
    level = f"{1 - settings.alpha:.0%}"
    t = results.table[results.table["dimension"] == "overall"]
    lines = []
    for row in t[t["metric_group"] == "goal"].to_dict("records"):
        if row["variation"] == data.control:
            continue
        shown = markdown_text(sentence_start(labels.variation(row["variation"])))
        fmt = labels.format(row["metric"])
        ci = markdown_text(
            f"{level} interval {change(row['ci_lower'], fmt, settings.relative)} to {change(row['ci_upper'], fmt, settings.relative)}"
        )
        size = change(row["relative_effect" if settings.relative else "absolute_effect"], fmt, settings.relative)
        moved = markdown_text(f"{size} ({value(row['baseline_mean'], fmt)} → {value(row['mean'], fmt)})")
        sure = certainty(row, settings.engine)
        if missing(row["ci_lower"]) and isinstance(row["note"], str) and row["note"]:
            lines.append(f"- {shown} on {row['metric']}: cannot be compared ({row['note']}).")
        elif row["significance"] in ("better", "worse"):
            lines.append(f"- **{shown} is {row['significance']} on {row['metric']}**: {moved}, {ci}, {sure}.")
        else:
            power = power_sentence(row, settings)
            lines.append(f"- {shown} on {row['metric']}: no clear difference yet ({moved}, {ci}, {sure}).{power}")
    if not lines:
        lines.append(
            "- This experiment has no goal metrics configured: add `goal_metrics` to its entry in workbench.yml."
        )
    harmed = t[(t["metric_group"] == "guardrail") & (t["significance"] == "worse")]
    for row in harmed.to_dict("records"):
        fmt = labels.format(row["metric"])
        size = change(row["relative_effect" if settings.relative else "absolute_effect"], fmt, settings.relative)
        lines.append(
            f"- Guardrail **{row['metric']}** is worse in {markdown_text(labels.variation(row['variation']))} ({markdown_text(size)}, {certainty(row, settings.engine)})."
        )
    for row in t[t["capping_changed_verdict"]].to_dict("records"):
        lines.append(f"- {capping_sentence(row, results)}")
    return "\n".join(lines)


def power_sentence(row: dict, settings: AnalysisSettings) -> str:
    """Markdown: the mid-experiment power of a goal metric that is not yet significant (GrowthBook's)
    — the chance to detect a ``target_mde`` lift at the current sample and the units still needed
    for 80% — or "" when it could not be computed."""
    power = row.get("power")
    if power is None or missing(power):
        return ""
    mde = f"{settings.target_mde:.0%}"
    more = row.get("power_additional_units")
    if missing(more) or not more:
        return f" With {power:.0%} power to detect a {mde} lift, a real effect that large would most likely have shown."
    return (
        f" Power to detect a {mde} lift is {power:.0%} so far: about {more:,.0f} more units would give 80%,"
        " so keep it running if that lift matters."
    )


def capping_sentence(row: dict, results: ExperimentResults) -> str:
    """Markdown: capping changed this comparison's verdict — the capped and the uncapped call and
    effects side by side (the capped one is the result shown)."""
    settings, fmt = results.settings, results.labels.format(row["metric"])
    key = "relative_effect" if settings.relative else "absolute_effect"

    def call(significance: str) -> str:
        return {"better": "better", "worse": "worse"}.get(significance, "no clear difference")

    return (
        f"Capping changed the verdict on **{row['metric']}** for {markdown_text(results.labels.variation(row['variation']))}: "
        f"capped {call(row['significance'])} ({markdown_text(change(row[key], fmt, settings.relative))}), "
        f"uncapped {call(row['uncapped_significance'])} ({markdown_text(change(row['uncapped_' + key], fmt, settings.relative))}); "
        "outliers decide this result, so look at the largest values before acting."
    )


def results_rows(
    results: ExperimentResults, group: str, dimension: str = "overall", value: str | None = None
) -> pd.DataFrame:
    """The results of ``group``'s metrics in ``dimension`` (``"overall"``: all units) at ``value``
    (None: every value of the dimension), in order."""
    t = results.table
    t = t[(t["metric_group"] == group) & (t["dimension"] == dimension)]
    if value is not None:
        t = t[t["dimension_value"] == value]
    return t.reset_index(drop=True)


def group_table_html(
    results: ExperimentResults, group: str, dimension: str = "overall", value: str | None = None
) -> str:
    """The results table (:func:`workbench.display.results_table_html`) of :func:`results_rows`."""
    rows = results_rows(results, group, dimension, value)
    if rows.empty:
        return f"<p><i>No {group} metrics for this selection.</i></p>"
    return results_table_html(results, rows)


def dimension_values(results: ExperimentResults) -> list[tuple[str, str]]:
    """(dimension, value) pairs present, overall first."""
    pairs = results.table[["dimension", "dimension_value"]].drop_duplicates()
    return [("overall", "all")] + [tuple(p) for p in pairs.itertuples(index=False) if p[0] != "overall"]


# Shows the outputs of the chosen dimension's section in the static page: each section starts at
# an output holding a .wb-dimension-section marker and runs to the next one; charts are resized
# once shown. Without script (or in JupyterLab, which runs none) every section stays visible.
_DIMENSION_SCRIPT = """<script>(function () {
  var select = document.currentScript.previousElementSibling;
  function show() {
    var markers = document.querySelectorAll(".wb-dimension-section");
    markers.forEach(function (marker) {
      var on = marker.dataset.dimension === select.value;
      for (var o = marker.closest(".jp-OutputArea-child"); o; o = o.nextElementSibling) {
        if (o !== marker.closest(".jp-OutputArea-child") && o.querySelector(".wb-dimension-section")) break;
        o.style.display = on ? "" : "none";
        if (on && window.Plotly) o.querySelectorAll(".js-plotly-plot").forEach(function (c) { Plotly.Plots.resize(c); });
      }
    });
  }
  select.addEventListener("change", show);
  document.addEventListener("DOMContentLoaded", show);
})();</script>"""


def dimension_selector_html(dimensions: list[str]) -> str:
    """A ``<select>`` of ``dimensions`` whose inline script shows the chosen one's section
    (:func:`dimension_section_html` onwards) and hides the others, offline and from ``file://``."""
    options = "".join(f'<option value="{html.escape(d)}">{html.escape(d)}</option>' for d in dimensions)
    return (
        f'<label for="wb-dimension">Dimension: </label><select id="wb-dimension">{options}</select>{_DIMENSION_SCRIPT}'
    )


def dimension_section_html(dimension: str) -> str:
    """The heading that starts ``dimension``'s section of the report (the marker
    :func:`dimension_selector_html`'s script looks for)."""
    name = html.escape(dimension)
    return f'<h3 class="wb-dimension-section" data-dimension="{name}">By {name}</h3>'


def provenance_html(data: ReportData) -> str:
    """The provenance of a report as a two-column HTML table: no secrets (the URL is masked) and no
    folders of the machine (files relative to the project root, or by name)."""
    p = data.provenance
    window = p.get("data_window", {})
    database = _DUCKDB_FILE.sub(lambda m: m[1] + shown_path(m[2]), str(p.get("database")))
    items = [
        ("experiment", p.get("experiment")),
        ("config file", shown_path(p.get("config_file") or "")),
        ("config SHA-256", p.get("config_sha256")),
        ("database", database),
        ("configured window", f"{window.get('configured_start')} to {window.get('configured_end')}"),
        ("first/last exposure day", f"{window.get('first_exposure_day')} to {window.get('last_exposure_day')}"),
        ("dimensions", ", ".join(p.get("dimensions", [])) or "none"),
        ("computed at", p.get("computed_at")),
        ("computation time", f"{p.get('seconds')} s"),
        ("packages", ", ".join(f"{k} {v}" for k, v in p.get("packages", {}).items())),
    ]
    return (
        "<table>"
        + "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in items
        )
        + "</table>"
    )


def sql_appendix_html(queries: list[str]) -> str:
    """Every query that ran, collapsed under one ``<details>`` line that says how many there are."""
    blocks = "".join(f"<pre>{html.escape(query)}</pre>" for query in queries)
    return f"<details><summary>{len(queries)} SQL quer{'y' if len(queries) == 1 else 'ies'} (click to show)</summary>{blocks}</details>"
