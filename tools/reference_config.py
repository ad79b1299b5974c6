"""``docs/reference/configuration.md``: every key of ``workbench.yml``.

:data:`CONFIG_KEYS` is written by hand (type, default, meaning, an example and a bad value); the
page is generated from it and from the code: every example is applied to :data:`BASE_CONFIG` and
must pass :func:`workbench.config_check.validate_config_file`, and the "error" column is the message
that function raises for the bad value. :func:`accepted_keys` reads the key sets the loaders accept,
and generation fails unless the two lists are the same, so a new key cannot go undocumented.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import yaml

from workbench import metric_types

BASE_CONFIG = """\
identifier_types: [user_id, anonymous_id]
identity_joins:
  - sql: SELECT userId AS user_id, anonymousId AS anonymous_id FROM experiment_viewed
assignment_queries:
  - name: logged_in
    identifier_type: user_id
    sql: SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id, browser FROM experiment_viewed
    dimensions: [browser]
fact_tables:
  - name: orders
    sql: SELECT userId AS user_id, anonymousId AS anonymous_id, timestamp, amount, qty FROM orders
metrics:
  - name: purchased
    type: binomial
    sql: SELECT userId AS user_id, timestamp FROM orders
  - name: orders_per_user
    type: count
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
  - name: revenue_per_user
    type: mean
    sql: SELECT userId AS user_id, anonymousId AS anonymous_id, timestamp, amount AS value FROM orders
  - name: average_order_value
    type: ratio
    numerator: revenue_per_user
    denominator: orders_per_user
  - name: order_amount_p90
    type: quantile
    quantile: {value: 0.9, level: event}
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
  - name: bulk_buyer
    type: binomial
    fact_table: orders
    row_filter: qty > 1
experiments:
  - key: checkout-layout
    assignment_query: logged_in
    variations: ["0", "1"]
    goal_metrics: [purchased]
    analysis: {engine: frequentist}
events:
  properties:
    revenue: {type: purchase, aggregate: sum, key: amount, filters: [{key: currency, op: equals, value: USD}]}
event_sources:
  clicks: {table: analytics.clicks, unit: account_id, timestamp: clicked_at}
"""

# section -> how to reach it from the top of BASE_CONFIG (str: mapping key, int: list position)
SECTIONS: dict[str, tuple[Any, ...]] = {
    "(top level)": (),
    "database": ("database",),
    "identity_joins[]": ("identity_joins", 0),
    "assignment_queries[]": ("assignment_queries", 0),
    "fact_tables[]": ("fact_tables", 0),
    "metrics[]": ("metrics", 2),
    "metrics[].window": ("metrics", 2, "window"),
    "metrics[].capping": ("metrics", 2, "capping"),
    "metrics[].cuped": ("metrics", 2, "cuped"),
    "metrics[].quantile": ("metrics", 4, "quantile"),
    "metrics[].prior": ("metrics", 2, "prior"),
    "currency": ("currency",),
    "experiments[]": ("experiments", 0),
    "experiments[].analysis": ("experiments", 0, "analysis"),
    "experiments[].analysis.prior": ("experiments", 0, "analysis", "prior"),
    "events": ("events",),
    "events.properties.NAME": ("events", "properties", "revenue"),
    "events.properties.NAME.filters[]": ("events", "properties", "revenue", "filters", 0),
    "event_sources.NAME": ("event_sources", "clicks"),
    "event_sources.NAME.unit_join": ("event_sources", "clicks", "unit_join"),
    "event_sources.NAME.sessions": ("event_sources", "clicks", "sessions"),
}
RATIO, QUANTILE, BINOMIAL, FACT = ("metrics", 3), ("metrics", 4), ("metrics", 0), ("metrics", 5)
_per_unit = [kind.name for kind in metric_types.REGISTRY.values() if kind.per_unit]
PER_UNIT_TYPES = f"a {', '.join(_per_unit[:-1])} or {_per_unit[-1]} metric"


@dataclass(frozen=True)
class Key:
    """One documented key. ``example`` and ``bad`` are YAML flow mappings merged into the key's
    section (``bad`` "-name" deletes the key; None: nothing is checked; ``example`` None: the
    section's own table has them); ``at`` overrides where."""

    section: str
    key: str
    type: str
    default: str
    meaning: str
    example: str | None
    bad: str | None
    at: tuple[Any, ...] | None = None


K = Key
CONFIG_KEYS: tuple[Key, ...] = (
    K(
        "(top level)",
        "database",
        "mapping",
        "{}",
        "where the data lives and the session limits; see `database`",
        None,
        "{database: [x]}",
    ),
    K(
        "(top level)",
        "identifier_types",
        "list of names",
        "[]",
        "the kinds of unit ids the data holds",
        None,
        "{identifier_types: [user id]}",
    ),
    K(
        "(top level)",
        "identity_joins",
        "list of mappings",
        "[]",
        "SQL linking ids of two or more identifier types",
        None,
        "{identity_joins: {sql: x}}",
    ),
    K(
        "(top level)",
        "assignment_queries",
        "list of mappings",
        "[]",
        "SQL returning who saw which variation when",
        None,
        "{assignment_queries: [x]}",
    ),
    K(
        "(top level)",
        "fact_tables",
        "list of mappings",
        "[]",
        "SQL returning rows of facts that many metrics read; one scan per table per analysis",
        None,
        "{fact_tables: {name: x}}",
    ),
    K("(top level)", "metrics", "list of mappings", "[]", "what is measured per unit", None, "{metrics: {name: x}}"),
    K(
        "(top level)",
        "currency",
        "mapping",
        "`{symbol: $, decimals: 2}`",
        "how `format: currency` metrics are written unless they set their own; see `currency`",
        None,
        "{currency: euro}",
    ),
    K("currency", "symbol", "text", "`$`", "written before the amount (`$12.30`)", "{symbol: €}", "{symbol: [x]}"),
    K(
        "currency",
        "decimals",
        "whole number 0–6",
        "2",
        "digits after the decimal point",
        "{decimals: 0}",
        "{decimals: 2.5}",
    ),
    K(
        "currency",
        "symbol_after",
        "true / false",
        "false",
        "the symbol after the amount, space-separated (`12.30 €`)",
        "{symbol_after: true}",
        "{symbol_after: yes please}",
    ),
    K(
        "fact_tables[]",
        "name",
        "name",
        "required",
        "how metrics refer to it (`fact_table:`)",
        "{name: orders}",
        "{name: order rows}",
    ),
    K(
        "fact_tables[]",
        "sql",
        "SQL",
        "required",
        "returns the identifier columns, `timestamp` and the columns metrics read; a plain "
        "`SELECT … FROM <table>` shares its scan with every metric over that table",
        "{sql: 'SELECT userId AS user_id, timestamp, amount, qty FROM orders'}",
        "{sql: 'SELECT userId AS user_id, amount FROM orders'}",
    ),
    K(
        "fact_tables[]",
        "identifier_types",
        "list of names",
        "the identifier columns the SQL returns",
        "which id columns key the rows; needed with `SELECT *`",
        "{identifier_types: [user_id]}",
        "{identifier_types: [device_id]}",
    ),
    K("fact_tables[]", "description", "text", '""', "shown in listings", "{description: One row per order}", None),
    K(
        "metrics[]",
        "fact_table",
        "name",
        "none (the metric has its own `sql`)",
        "the fact table whose rows the metric reads, instead of `sql`",
        "{fact_table: orders}",
        "{fact_table: purchases}",
        at=FACT,
    ),
    K(
        "metrics[]",
        "column",
        "name or `rows`",
        "`rows`",
        "with `fact_table`: the column a mean, duration or quantile metric reads; `rows` counts rows (count, binomial)",
        "{type: mean, column: amount}",
        "{type: mean, column: amout}",
        at=FACT,
    ),
    K(
        "metrics[]",
        "row_filter",
        "SQL condition",
        "every row",
        "with `fact_table`: the rows the metric counts, over the table's columns (checked as `filter`)",
        "{row_filter: qty > 2}",
        "{row_filter: quantity > 1}",
        at=FACT,
    ),
    K("(top level)", "experiments", "list of mappings", "[]", "the experiments to analyse", None, "{experiments: [x]}"),
    K(
        "(top level)",
        "incremental",
        "true / false",
        "false",
        "every experiment's default for `experiments[].incremental`",
        "{incremental: true}",
        "{incremental: 1}",
    ),
    K(
        "(top level)",
        "late_data_hours",
        "number ≥ 0",
        "24",
        "every experiment's default for `experiments[].late_data_hours`",
        "{late_data_hours: 48}",
        "{late_data_hours: -1}",
    ),
    K(
        "(top level)",
        "state_schema",
        "lower-case name",
        "workbench_state",
        "where incremental refresh keeps its state: the PostgreSQL schema it creates and writes (its only "
        "writes); on DuckDB the name of the state file `data/state/<database>.state.duckdb` attached beside the "
        "read-only database; on Spark the catalog database of its Parquet tables "
        "([incremental refresh](../experiment-engine.md#incremental-refresh))",
        "{state_schema: wb_state}",
        "{state_schema: Workbench-State}",
    ),
    K(
        "(top level)",
        "events",
        "mapping",
        "{}",
        "the Grouparoo-style event store ([events](../events.md))",
        None,
        "{events: [x]}",
    ),
    K(
        "(top level)",
        "event_sources",
        "mapping of name → mapping",
        "{}",
        "more tables of events for the toolkit ([toolkit](../toolkit.md))",
        None,
        "{event_sources: [x]}",
    ),
    K(
        "database",
        "url",
        "URL",
        "`$WORKBENCH_DATABASE_URL`, else `data/workbench.duckdb`",
        "the database (DuckDB file, PostgreSQL, Spark Connect `sc://host:15002` or `spark+local://`); never with a "
        "password or token (use `$WORKBENCH_DATABASE_PASSWORD` or `.env`)",
        "{url: postgresql+psycopg://analyst@db-host:5432/analytics}",
        "{url: 'db-host:5432/analytics'}",
    ),
    K(
        "database",
        "statement_timeout_seconds",
        "number",
        "600",
        "queries running longer are stopped",
        "{statement_timeout_seconds: 300}",
        "{statement_timeout_seconds: ten}",
    ),
    K(
        "database",
        "duckdb_memory_limit",
        "text",
        "4GB",
        "DuckDB's `memory_limit`; DuckDB checks the value when it connects",
        "{duckdb_memory_limit: 8GB}",
        None,
    ),
    K(
        "database",
        "duckdb_threads",
        "integer",
        "2",
        "DuckDB's `threads`",
        "{duckdb_threads: 4}",
        "{duckdb_threads: many}",
    ),
    K(
        "database",
        "allow_privileged_role",
        "true / false",
        "false",
        "analyse on PostgreSQL as a superuser or a role that may run server programs or read and write server files "
        "(refused otherwise; a warning when allowed)",
        "{allow_privileged_role: false}",
        "{allow_privileged_role: maybe}",
    ),
    K(
        "database",
        "spark_tables",
        "mapping of table name → Parquet path",
        "{}",
        "on Spark (`sc://…`, `spark+local://`): Parquet folders or files, as the Spark server sees them, "
        "registered as views under these names in every session ([scaling](../scaling.md#pointing-the-workbench-at-spark))",
        "{spark_tables: {orders: /data/orders.parquet}}",
        "{spark_tables: [orders]}",
    ),
    K(
        "identity_joins[]",
        "sql",
        "SQL",
        "required",
        "one column per identifier type it links; with a `timestamp` column too (when the pair was seen), "
        "an incremental refresh reads only its new rows ([incremental refresh](../experiment-engine.md#one-run))",
        "{sql: 'SELECT userId AS user_id, anonymousId AS anonymous_id FROM experiment_viewed'}",
        "{sql: SELECT userId AS user_id FROM experiment_viewed}",
    ),
    K(
        "identity_joins[]",
        "identifier_types",
        "list of names",
        "the identifier columns the SQL returns",
        "needed when the columns cannot be read from the SQL (`SELECT *`)",
        "{sql: SELECT * FROM id_map, identifier_types: [user_id, anonymous_id]}",
        "{sql: SELECT * FROM id_map}",
    ),
    K(
        "assignment_queries[]",
        "name",
        "name",
        "required",
        "how experiments refer to it",
        "{name: logged_in}",
        "{name: logged-in}",
    ),
    K(
        "assignment_queries[]",
        "identifier_type",
        "name",
        "required",
        "the unit of the experiments it serves; one of `identifier_types`",
        "{identifier_type: user_id}",
        "{identifier_type: device_id}",
    ),
    K(
        "assignment_queries[]",
        "sql",
        "SQL",
        "required",
        "returns `<identifier_type>, timestamp, experiment_id, variation_id` and the dimension columns",
        "{sql: 'SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id, browser FROM experiment_viewed'}",
        "{sql: 'SELECT userId AS user_id, timestamp, browser FROM experiment_viewed'}",
    ),
    K(
        "assignment_queries[]",
        "dimensions",
        "list of names",
        "[]",
        "columns of the SQL results can be broken down by (value at first exposure)",
        "{dimensions: [browser]}",
        "{dimensions: [timestamp]}",
    ),
    K("assignment_queries[]", "description", "text", '""', "free text", "{description: Logged-in users}", None),
    K(
        "metrics[]",
        "name",
        "name",
        "required",
        "how experiments refer to it",
        "{name: revenue_per_user}",
        "{name: revenue per user}",
    ),
    K(
        "metrics[]",
        "type",
        ", ".join(f"`{name}`" for name in metric_types.names()),
        "required",
        "how rows become a per-unit value ([metric types](metric-types.md))",
        "{type: duration}",
        "{type: sum}",
    ),
    K(
        "metrics[]",
        "sql",
        "SQL",
        "required (except ratio)",
        "returns the identifier columns, `timestamp` and (except binomial) `value`",
        "{sql: 'SELECT userId AS user_id, anonymousId AS anonymous_id, timestamp, amount AS value FROM orders'}",
        "{sql: 'SELECT userId AS user_id, timestamp FROM orders'}",
    ),
    K(
        "metrics[]",
        "identifier_types",
        "list of names",
        "the identifier columns the SQL returns",
        "which id columns key the rows; needed with `SELECT *`",
        "{identifier_types: [anonymous_id]}",
        "{identifier_types: [device_id]}",
    ),
    K(
        "metrics[]",
        "window",
        "mapping",
        "from first exposure to the experiment's end",
        "see `metrics[].window`",
        "{window: {hours: 72}}",
        "{window: 72}",
    ),
    K(
        "metrics[]",
        "capping",
        "mapping",
        "no cap",
        "see `metrics[].capping`",
        "{capping: {type: absolute, value: 100}}",
        "{capping: 100}",
    ),
    K(
        "metrics[]",
        "cuped",
        "mapping",
        "no covariate",
        "see `metrics[].cuped`",
        "{cuped: {lookback_days: 14}}",
        "{cuped: 14}",
    ),
    K(
        "metrics[]",
        "quantile",
        "mapping, or a number in (0, 1)",
        "required for quantile metrics",
        "see `metrics[].quantile`; a bare number is the level `value` at event level",
        "{quantile: 0.5}",
        "{quantile: 90}",
        QUANTILE,
    ),
    K(
        "metrics[]",
        "filter",
        "SQL condition",
        "none",
        "rows count only where it holds (metrics sharing one `sql` share one scan); one condition of the metric's "
        "columns, values, operators, CASE, CAST and a few pure functions: no comment, no `;` outside quotes, no "
        "subquery or file/table function",
        "{filter: amount > 10}",
        "{filter: 'amount >'}",
    ),
    K(
        "metrics[]",
        "numerator",
        "metric name",
        "required for ratio metrics",
        PER_UNIT_TYPES,
        "{numerator: revenue_per_user}",
        "{numerator: order_amount_p90}",
        RATIO,
    ),
    K(
        "metrics[]",
        "denominator",
        "metric name",
        "required for ratio metrics",
        PER_UNIT_TYPES,
        "{denominator: purchased}",
        "{denominator: no_such_metric}",
        RATIO,
    ),
    K(
        "metrics[]",
        "inverse",
        "true / false",
        "false",
        "lower is better (guardrails are then tested against increases)",
        "{inverse: true}",
        "{inverse: sometimes}",
    ),
    K(
        "metrics[]",
        "prior",
        "mapping",
        "the experiment's `analysis.prior`",
        "this metric's own proper Bayesian prior on the relative effect; see `metrics[].prior`",
        "{prior: {mean: 0, stddev: 0.3}}",
        "{prior: 0.3}",
    ),
    K(
        "metrics[]",
        "description",
        "text",
        '""',
        "the metric's display name, shown under its name in results rows",
        "{description: Revenue per user}",
        None,
    ),
    K(
        "metrics[]",
        "format",
        "`number`, `percent`, `duration` or `currency`",
        "the type's: `percent` for binomial, `duration` for duration, else `number`",
        "how values and absolute effects are shown: `percent` a rate of 0–1 in % (effects in percentage points), "
        "`duration` seconds as `1m 23s`, `currency` an amount in the top-level `currency` format",
        "{format: currency}",
        "{format: money}",
    ),
    K(
        "metrics[]",
        "currency",
        "mapping (keys of `currency`)",
        "the top-level `currency`",
        "this metric's own currency format, over the top-level one; needs `format: currency`",
        "{format: currency, currency: {symbol: £, decimals: 0}}",
        "{currency: {symbol: £}}",
    ),
    K(
        "metrics[].window",
        "delay_hours",
        "number ≥ 0",
        "0",
        "rows count from first exposure + this many hours",
        "{delay_hours: 24}",
        "{delay_hours: -1}",
    ),
    K(
        "metrics[].window",
        "hours",
        "number > 0",
        "until the experiment's end",
        "rows count for this many hours after the delay",
        "{hours: 72}",
        "{hours: 0}",
    ),
    K(
        "metrics[].capping",
        "type",
        "`absolute` / `percentile`",
        "required",
        "cap per-unit values at `value`, or at the `value` quantile of the experiment's per-unit values",
        "{type: percentile, value: 0.99}",
        "{type: relative, value: 1}",
    ),
    K(
        "metrics[].capping",
        "value",
        "number",
        "required",
        "the cap (absolute ≥ 0) or the quantile level (percentile, in (0, 1])",
        "{type: absolute, value: 100}",
        "{type: percentile, value: 99}",
    ),
    K(
        "metrics[].capping",
        "ignore_zeros",
        "true / false",
        "false",
        "percentile caps only: the quantile is taken over the non-zero per-unit values (GrowthBook's "
        '"ignore zeros"); refused on absolute caps',
        "{type: percentile, value: 0.99, ignore_zeros: true}",
        "{type: absolute, value: 100, ignore_zeros: true}",
    ),
    K(
        "metrics[].prior",
        "mean",
        "number",
        "0",
        "prior mean of the relative effect (0.05: +5%)",
        "{mean: 0.02, stddev: 0.3}",
        "{mean: high, stddev: 0.3}",
    ),
    K(
        "metrics[].prior",
        "stddev",
        "number > 0",
        "required",
        "prior standard deviation of the relative effect",
        "{stddev: 0.1}",
        "{stddev: 0}",
    ),
    K(
        "metrics[].quantile",
        "value",
        "number in (0, 1)",
        "required",
        "the quantile level ν (0.9: the 90th percentile)",
        "{value: 0.5}",
        "{value: 90}",
    ),
    K(
        "metrics[].quantile",
        "level",
        "`event` / `unit`",
        "event",
        "event: over the `value` of every row that counts (variance clustered by unit); unit: over the units' "
        "per-unit values (sum of `value`, 0 without rows), a `quantile_unit` metric",
        "{value: 0.9, level: unit}",
        "{value: 0.9, level: user}",
    ),
    K(
        "metrics[].cuped",
        "lookback_days",
        "number > 0",
        "required",
        "the covariate is the same metric over this many days before first exposure (a ratio: its numerator's "
        "and its denominator's, each over this window)",
        "{lookback_days: 14}",
        "{lookback_days: 0}",
    ),
    K(
        "experiments[]",
        "key",
        "text (letters, digits, `_ . : -`)",
        "required",
        "the experiment id in the assignment query's `experiment_id`",
        "{key: checkout-layout}",
        "{key: checkout layout}",
    ),
    K(
        "experiments[]",
        "name",
        "text",
        "the key",
        "the title of its report, notebook view and dashboard",
        "{name: Checkout layout}",
        "{name: [x]}",
    ),
    K(
        "experiments[]",
        "description",
        "text",
        '""',
        "what changed, shown under the name",
        "{description: Three layouts of the checkout page}",
        None,
    ),
    K(
        "experiments[]",
        "hypothesis",
        "text",
        '""',
        "what the change should do and why, shown under the description",
        "{hypothesis: A shorter checkout means more purchases.}",
        "{hypothesis: {more: sales}}",
    ),
    K(
        "experiments[]",
        "assignment_query",
        "name",
        "the only assignment query",
        "which assignment query exposes it",
        "{assignment_query: logged_in}",
        "{assignment_query: anonymous}",
    ),
    K(
        "experiments[]",
        "start",
        "date or timestamp (UTC)",
        "no lower bound",
        "first exposure counted",
        "{start: 2026-09-25}",
        "{start: soon}",
    ),
    K(
        "experiments[]",
        "end",
        "date or timestamp (UTC)",
        "no upper bound",
        "last exposure counted; a bare date includes that whole day",
        "{end: '2026-11-22 12:00:00'}",
        "{start: 2026-11-22, end: 2026-09-25}",
    ),
    K(
        "experiments[]",
        "variations",
        "list of ids (text) or `{id, name}` mappings, mixed as needed",
        "every variation found",
        "the variations analysed (other ids are reported as unknown); a name, unique in the experiment, "
        "is how tables, decisions, charts, the index and the dashboard call the variation (ids stay in JSON)",
        "{variations: [{id: '0', name: Control}, {id: '1', name: One-page checkout}]}",
        "{variations: [{id: '0', name: A}, {id: '1', name: A}]}",
    ),
    K(
        "experiments[]",
        "control",
        "variation id",
        "the first variation",
        "the baseline of every comparison",
        "{control: '1'}",
        "{control: '2'}",
    ),
    K(
        "experiments[]",
        "weights",
        "list of numbers > 0",
        "an equal split",
        "the planned traffic split (normalised), for the sample-ratio check",
        "{weights: [0.5, 0.5]}",
        "{weights: [1, 1, 1]}",
    ),
    K(
        "experiments[]",
        "dimensions",
        "list of names",
        "[]",
        "dimensions of its assignment query that reports break results down by",
        "{dimensions: [browser]}",
        "{dimensions: [country]}",
    ),
    K(
        "experiments[]",
        "activation_metric",
        "metric name (not a ratio)",
        "none",
        "only units with a counting row of this metric are analysed",
        "{activation_metric: purchased}",
        "{activation_metric: average_order_value}",
    ),
    K(
        "experiments[]",
        "goal_metrics",
        "list of metric names",
        "[]",
        "the metrics that decide",
        "{goal_metrics: [purchased]}",
        "{goal_metrics: [bought]}",
    ),
    K(
        "experiments[]",
        "secondary_metrics",
        "list of metric names",
        "[]",
        "reported beside the goal metrics",
        "{secondary_metrics: [revenue_per_user]}",
        "{secondary_metrics: revenue per user}",
    ),
    K(
        "experiments[]",
        "guardrail_metrics",
        "list of metric names",
        "[]",
        "tested one-sided against harm",
        "{guardrail_metrics: [orders_per_user]}",
        "{guardrail_metrics: [purchased, purchased]}",
    ),
    K(
        "experiments[]",
        "incremental",
        "true / false",
        "top-level `incremental`",
        "analyses keep a per-unit state and update it from the rows since the last run "
        "([incremental refresh](../experiment-engine.md#incremental-refresh)); `--full-refresh` rebuilds it",
        "{incremental: true}",
        "{incremental: 'yes'}",
    ),
    K(
        "experiments[]",
        "late_data_hours",
        "number ≥ 0",
        "top-level `late_data_hours`",
        "an incremental run reads again the rows this many hours older than the latest exposure seen; rows arriving "
        "later than that need `--full-refresh`",
        "{late_data_hours: 6}",
        "{late_data_hours: two days}",
    ),
    K(
        "experiments[]",
        "analysis",
        "mapping",
        "{}",
        "statistics settings; see `experiments[].analysis`",
        "{analysis: {engine: bayesian}}",
        "{analysis: bayesian}",
    ),
    K(
        "experiments[].analysis",
        "engine",
        "`frequentist` / `bayesian`",
        "frequentist",
        "which statistics ([statistics](../statistics.md))",
        "{engine: bayesian}",
        "{engine: bayes}",
    ),
    K(
        "experiments[].analysis",
        "alpha",
        "number in (0, 1)",
        "0.05",
        "significance level (frequentist), 1 − credibility (Bayesian)",
        "{alpha: 0.1}",
        "{alpha: 5}",
    ),
    K(
        "experiments[].analysis",
        "difference_type",
        "`relative` / `absolute`",
        "relative",
        "the effect reported",
        "{difference_type: absolute}",
        "{difference_type: ratio}",
    ),
    K(
        "experiments[].analysis",
        "sequential",
        "true / false",
        "false",
        "always-valid sequential intervals (frequentist)",
        "{sequential: true}",
        "{engine: bayesian, sequential: true}",
    ),
    K(
        "experiments[].analysis",
        "sequential_tuning",
        "number > 0",
        "5000",
        "units at which the sequential interval is tightest",
        "{sequential: true, sequential_tuning: 10000}",
        "{sequential_tuning: 0}",
    ),
    K(
        "experiments[].analysis",
        "cuped",
        "true / false",
        "on when the metric has a covariate",
        "use the CUPED covariate",
        "{cuped: false}",
        None,
    ),
    K(
        "experiments[].analysis",
        "correction",
        "`none` / `holm` / `bh`",
        "none",
        "multiple-testing correction (frequentist)",
        "{correction: holm}",
        "{correction: bonferroni}",
    ),
    K(
        "experiments[].analysis",
        "correction_scope",
        "`goal` / `goal_secondary` / `all` / `everything`",
        "goal",
        "which p-values one correction family holds: goal metrics (GrowthBook's), plus secondary, plus "
        "guardrails (each per dimension), or every metric and slice together",
        "{correction: holm, correction_scope: all}",
        "{correction_scope: guardrails}",
    ),
    K(
        "experiments[].analysis",
        "post_stratification",
        "list of dimension names",
        "[]",
        "post-stratify by these dimensions of the assignment query (their values at first exposure; "
        "[sufficient statistics](../sufficient-statistics.md))",
        "{post_stratification: [browser]}",
        "{post_stratification: [country]}",
    ),
    K(
        "experiments[].analysis",
        "target_mde",
        "number > 0",
        "0.1",
        "relative lift the reports' mid-experiment power is computed for (GrowthBook's default 10%)",
        "{target_mde: 0.05}",
        "{target_mde: 0}",
    ),
    K(
        "experiments[].analysis",
        "metric_priors",
        "mapping metric → prior",
        "the metrics' `prior`",
        "overrides the per-metric priors (each like `analysis.prior`)",
        "{engine: bayesian, metric_priors: {purchased: {mean: 0, sd: 0.2, proper: true}}}",
        None,
    ),
    K(
        "experiments[].analysis",
        "control",
        "variation id",
        "the experiment's `control`",
        "overrides the control",
        "{control: '0'}",
        "{control: '7'}",
    ),
    K(
        "experiments[].analysis",
        "variations",
        "list of ids",
        "the experiment's `variations`",
        "overrides the variations",
        "{variations: ['0', '1']}",
        "{variations: ['1', '2']}",
    ),
    K(
        "experiments[].analysis",
        "weights",
        "list of numbers",
        "the experiment's `weights`",
        "overrides the traffic split",
        "{weights: [0.4, 0.6]}",
        "{weights: [1]}",
    ),
    K(
        "experiments[].analysis",
        "goal_metrics",
        "list of metric names",
        "the experiment's",
        "overrides the metric group",
        "{goal_metrics: [purchased]}",
        None,
    ),
    K(
        "experiments[].analysis",
        "secondary_metrics",
        "list of metric names",
        "the experiment's",
        "overrides the metric group",
        "{secondary_metrics: []}",
        None,
    ),
    K(
        "experiments[].analysis",
        "guardrail_metrics",
        "list of metric names",
        "the experiment's",
        "overrides the metric group",
        "{guardrail_metrics: []}",
        None,
    ),
    K(
        "experiments[].analysis",
        "inverse_metrics",
        "list of metric names",
        "the metrics with `inverse: true`",
        "overrides which metrics are better lower",
        "{inverse_metrics: [orders_per_user]}",
        None,
    ),
    K(
        "experiments[].analysis",
        "prior",
        "mapping",
        "flat",
        "the Bayesian prior on the relative effect; see `experiments[].analysis.prior`",
        "{engine: bayesian, prior: {mean: 0, sd: 0.3, proper: true}}",
        "{prior: {scale: 1}}",
    ),
    K(
        "experiments[].analysis.prior",
        "mean",
        "number",
        "0",
        "prior mean of the relative effect",
        "{mean: 0.01, proper: true}",
        None,
    ),
    K(
        "experiments[].analysis.prior",
        "sd",
        "number > 0",
        "0.3",
        "prior standard deviation",
        "{sd: 0.1, proper: true}",
        "{sd: 0, proper: true}",
    ),
    K(
        "experiments[].analysis.prior",
        "proper",
        "true / false",
        "false",
        "use the prior (false: flat)",
        "{proper: true}",
        None,
    ),
    K(
        "events",
        "schema",
        "lower-case name",
        "grouparoo",
        "the schema holding the event store",
        "{schema: grouparoo}",
        "{schema: Events}",
    ),
    K(
        "events",
        "api_keys",
        "mapping producer → key (≥ 8 characters)",
        "{}",
        "the producers allowed to send events; keys never print",
        "{api_keys: {web: k-3f9c1d0e7a}}",
        "{api_keys: {web: short}}",
    ),
    K(
        "events",
        "allowed_origins",
        "list of origins",
        '["*"]',
        "the origins (scheme://host[:port]) whose pages may post to `workbench events serve`; `*`: any",
        "{allowed_origins: ['https://shop.example.com']}",
        "{allowed_origins: [shop.example.com/]}",
    ),
    K(
        "events",
        "trusted_proxies",
        "list of IP addresses / networks",
        "[]",
        "proxies whose `X-Forwarded-For` names the sender's address; others' is ignored",
        "{trusted_proxies: [10.0.0.0/8]}",
        "{trusted_proxies: [proxy.local]}",
    ),
    K(
        "events",
        "resolve_every_seconds",
        "seconds (0 < s ≤ 86400)",
        "60",
        "how often the service (and `events resolve --watch`) associates new events with profiles",
        "{resolve_every_seconds: 30}",
        "{resolve_every_seconds: 0}",
    ),
    K(
        "events",
        "properties",
        "mapping name → mapping",
        "{}",
        "profile properties; see `events.properties.NAME`",
        "{properties: {purchases: {type: purchase, aggregate: count}}}",
        "{properties: [purchases]}",
    ),
    K("events.properties.NAME", "type", "text", "required", "the event type read", "{type: purchase}", "-type"),
    K(
        "events.properties.NAME",
        "aggregate",
        "`count`, `sum`, `avg`, `min`, `max`, `diff`, `most_recent`, `least_recent`, `all_values`",
        "required",
        "how the events become one value per profile",
        "{aggregate: max}",
        "{aggregate: median}",
    ),
    K(
        "events.properties.NAME",
        "key",
        "payload key",
        "none",
        "the payload value aggregated",
        "{key: amount}",
        "{key: ''}",
    ),
    K(
        "events.properties.NAME",
        "between",
        "`earliest_and_latest`, `last_two`",
        "earliest_and_latest",
        "what `diff` subtracts from the latest value: the earliest, or the one before the latest",
        "{aggregate: diff, key: amount, between: last_two}",
        "{aggregate: diff, key: amount, between: first_two}",
    ),
    K(
        "events.properties.NAME",
        "column",
        "events column",
        "none",
        "an events column instead of a payload key (`most_recent`, `least_recent`, `all_values`)",
        "{aggregate: most_recent, key: null, column: occurred_at}",
        "{column: amount}",
    ),
    K(
        "events.properties.NAME",
        "filters",
        "list of mappings",
        "[]",
        "payload conditions every event must meet; see `events.properties.NAME.filters[]`",
        "{filters: [{key: currency, op: equals, value: EUR}]}",
        "{filters: {key: currency}}",
    ),
    K(
        "events.properties.NAME",
        "since",
        "ISO date",
        "none",
        "events from this moment (inclusive)",
        "{since: 2026-10-01}",
        "{since: yesterday}",
    ),
    K(
        "events.properties.NAME",
        "until",
        "ISO date",
        "none",
        "events before this moment (exclusive)",
        "{until: 2026-11-01}",
        "{until: tomorrow}",
    ),
    K(
        "events.properties.NAME",
        "within_days",
        "number > 0",
        "none",
        "events of the last N days before `as_of` (default now)",
        "{within_days: 14}",
        "{within_days: 0}",
    ),
    K(
        "events.properties.NAME.filters[]",
        "key",
        "payload key",
        "required",
        "the payload key compared",
        "{key: currency}",
        "-key",
    ),
    K(
        "events.properties.NAME.filters[]",
        "op",
        "`equals`, `not_equals`, `contains`, `not_contains`, `greater`, `less`",
        "required",
        "the comparison",
        "{op: not_equals}",
        "{op: like}",
    ),
    K(
        "events.properties.NAME.filters[]",
        "value",
        "text or number",
        "required",
        "compared with the payload value",
        "{value: USD}",
        "-value",
    ),
    K(
        "event_sources.NAME",
        "table",
        "[schema.]table",
        "required",
        "the table of events",
        "{table: analytics.clicks}",
        "{table: 'analytics.clicks; DROP TABLE x'}",
    ),
    K(
        "event_sources.NAME",
        "unit",
        "column",
        "required",
        "who did it (a column of `unit_join`'s table when set)",
        "{unit: account_id}",
        "-unit",
    ),
    K(
        "event_sources.NAME",
        "timestamp",
        "column",
        "required",
        "when it happened (UTC)",
        "{timestamp: clicked_at}",
        "{timestamp: clicked at}",
    ),
    K(
        "event_sources.NAME",
        "type",
        "column",
        "none: every row is one kind",
        "what happened",
        "{type: kind}",
        "{type: 1kind}",
    ),
    K(
        "event_sources.NAME",
        "value",
        "column",
        "none",
        "a number summed per unit",
        "{value: amount}",
        "{value: amount-usd}",
    ),
    K(
        "event_sources.NAME",
        "session",
        "column",
        "none",
        "a session id on each event",
        "{session: visit_id}",
        "{session: visit.id.x}",
    ),
    K(
        "event_sources.NAME",
        "page_type",
        "text",
        "none",
        "the `type` value that counts as a page view (`*`: every row)",
        "{page_type: page_view}",
        "{page_type: [page_view]}",
    ),
    K(
        "event_sources.NAME",
        "unit_join",
        "mapping",
        "none",
        "read the unit from another table; see `event_sources.NAME.unit_join`",
        "{unit_join: {table: visits, 'on': visit_id, key: id}}",
        "{unit_join: visits}",
    ),
    K(
        "event_sources.NAME",
        "sessions",
        "mapping",
        "none: sessions are derived",
        "an existing table of sessions; see `event_sources.NAME.sessions`",
        "{sessions: {table: visits, unit: account_id, start: started_at, duration_seconds: seconds}}",
        "{sessions: {table: visits}}",
    ),
    K(
        "event_sources.NAME.unit_join",
        "table",
        "[schema.]table",
        "required",
        "the table holding the unit column",
        "{table: visits, 'on': visit_id, key: id}",
        "{table: 'visits v', 'on': visit_id, key: id}",
    ),
    K(
        "event_sources.NAME.unit_join",
        "on",
        "column",
        "required",
        "the events column joined (quote it: YAML reads a bare `on` as true; both work)",
        "{table: visits, 'on': visit_id, key: id}",
        "{table: visits, key: id}",
    ),
    K(
        "event_sources.NAME.unit_join",
        "key",
        "column",
        "required",
        "the column of `table` it equals",
        "{table: visits, 'on': visit_id, key: id}",
        "{table: visits, 'on': visit_id, key: 'id;'}",
    ),
    K(
        "event_sources.NAME.sessions",
        "table",
        "[schema.]table",
        "required",
        "one row per session",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds}",
        "{unit: account_id, start: started_at, duration_seconds: seconds}",
    ),
    K(
        "event_sources.NAME.sessions",
        "unit",
        "column",
        "required",
        "whose session",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds}",
        "{table: visits, unit: 'account id', start: started_at, duration_seconds: seconds}",
    ),
    K(
        "event_sources.NAME.sessions",
        "start",
        "column",
        "required",
        "when it started",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds}",
        "{table: visits, unit: account_id, duration_seconds: seconds}",
    ),
    K(
        "event_sources.NAME.sessions",
        "duration_seconds",
        "column",
        "required",
        "how long it lasted",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds}",
        "{table: visits, unit: account_id, start: started_at}",
    ),
    K(
        "event_sources.NAME.sessions",
        "id",
        "column",
        "none",
        "the session id events carry in `session`",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds, id: id}",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds, id: 'id id'}",
    ),
    K(
        "event_sources.NAME.sessions",
        "pages",
        "column",
        "none",
        "pages viewed in the session",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds, pages: pages}",
        "{table: visits, unit: account_id, start: started_at, duration_seconds: seconds, pages: 2pages}",
    ),
)


def accepted_keys() -> dict[str, set[str]]:
    """Section -> the keys the loaders accept there, read from the code's own key sets."""
    from workbench.config_file import DATABASE_KEYS
    from workbench.events.properties import SPEC_KEYS
    from workbench.events.settings import SECTION_KEYS
    from workbench.experiments import config as cfg
    from workbench.stats.analysis_settings import AnalysisSettings
    from workbench.stats.bayesian import GaussianPrior
    from workbench.toolkit.sources import EventSource, SessionTable, UnitJoin

    def names(cls: type, skip: set[str] = frozenset()) -> set[str]:
        return {f.name for f in fields(cls)} - skip

    return {
        "(top level)": cfg.TOP_KEYS | cfg.OTHER_SECTIONS,
        "database": set(DATABASE_KEYS),
        "identity_joins[]": set(cfg.IDENTITY_JOIN_KEYS),
        "assignment_queries[]": set(cfg.ASSIGNMENT_KEYS),
        "fact_tables[]": set(cfg.FACT_TABLE_KEYS),
        "metrics[]": set(cfg.METRIC_KEYS),
        "metrics[].window": set(cfg.WINDOW_KEYS),
        "metrics[].capping": set(cfg.CAPPING_KEYS),
        "metrics[].cuped": set(cfg.CUPED_KEYS),
        "metrics[].quantile": set(cfg.QUANTILE_KEYS),
        "metrics[].prior": set(cfg.PRIOR_KEYS),
        "currency": set(cfg.CURRENCY_KEYS),
        "experiments[]": set(cfg.EXPERIMENT_KEYS),
        "experiments[].analysis": names(AnalysisSettings),
        "experiments[].analysis.prior": names(GaussianPrior),
        "events": set(SECTION_KEYS),
        "events.properties.NAME": set(SPEC_KEYS),
        "events.properties.NAME.filters[]": {"key", "op", "value"},
        "event_sources.NAME": names(EventSource, {"name"}),
        "event_sources.NAME.unit_join": names(UnitJoin),
        "event_sources.NAME.sessions": names(SessionTable),
    }


def documented_keys() -> dict[str, set[str]]:
    """Section -> the keys :data:`CONFIG_KEYS` documents."""
    out: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for key in CONFIG_KEYS:
        out[key.section].add(key.key)
    return out


def _with(base: dict[str, Any], at: tuple[Any, ...], change: str) -> dict[str, Any]:
    """A copy of ``base`` with ``change`` (YAML flow mapping, or "-key" to delete) merged at ``at``."""
    data = copy.deepcopy(base)
    target = data
    for step in at:
        target = target[step] if isinstance(step, int) else target.setdefault(step, {})
    if change.startswith("-"):
        del target[change[1:]]
    else:
        target.update(yaml.safe_load(change))
    return data


def _outcome(data: dict[str, Any]) -> str | None:
    """None when ``data`` passes every check, else the error sentence (paths relative)."""
    from tools.reference_docs import isolated_project
    from workbench.config_check import validate_config_file
    from workbench.errors import ConfigError

    with isolated_project() as folder:
        path = folder / "workbench.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        try:
            validate_config_file(path)
        except ConfigError as exc:
            return str(exc).replace(f"{folder}/", "")
    return None


def _flow(change: str) -> str:
    return change.strip()[1:-1].strip() if change.strip().startswith("{") else change


def configuration_page() -> str:
    """The Markdown page: one table per section, examples checked, errors as the code raises them."""
    from tools.reference_docs import GENERATED, cell, code

    accepted, documented = accepted_keys(), documented_keys()
    if accepted != documented:
        gaps = {
            s: (
                sorted(accepted.get(s, set()) - documented.get(s, set())),
                sorted(documented.get(s, set()) - accepted.get(s, set())),
            )
            for s in SECTIONS
            if accepted.get(s) != documented.get(s)
        }
        raise ValueError(
            f"reference_config.CONFIG_KEYS is out of date (section: (undocumented, no longer accepted)): {gaps}."
        )
    base = yaml.safe_load(BASE_CONFIG)
    if (problem := _outcome(base)) is not None:
        raise ValueError(f"reference_config.BASE_CONFIG does not validate: {problem}")
    lines = [
        "# Configuration reference: `workbench.yml`",
        "",
        GENERATED,
        "",
        (
            "The file is found at `--config`, else `$WORKBENCH_CONFIG`, else `workbench.yml` in the project root. "
            "Every mistake is one sentence naming the file and the entry, raised before any query runs "
            "(`workbench.config_check.validate_config_file(path)` checks every section at once). The examples "
            "below are each merged into the base config at the end of this page and pass that check; the error "
            "column is what the check says when the example's value is replaced by the bad value shown. "
            "Semantics: [experiment engine](../experiment-engine.md), [metric types](metric-types.md), "
            "[statistics](../statistics.md), [events](../events.md), [toolkit](../toolkit.md)."
        ),
        "",
    ]
    for section, at in SECTIONS.items():
        lines += [
            f"## {section}",
            "",
            "| key | type | default | meaning | example | bad value → error |",
            "|---|---|---|---|---|---|",
        ]
        for key in (k for k in CONFIG_KEYS if k.section == section):
            where = key.at or at
            if key.example is not None and (problem := _outcome(_with(base, where, key.example))) is not None:
                raise ValueError(f"the example of {section} {key.key} ({key.example}) does not validate: {problem}")
            if key.bad is None:
                error = "not checked"
            elif (message := _outcome(_with(base, where, key.bad))) is None:
                raise ValueError(
                    f"the bad value of {section} {key.key} ({key.bad}) is accepted; pick a value that fails or None."
                )
            else:
                shown = f"without `{key.bad[1:]}`" if key.bad.startswith("-") else code(_flow(key.bad))
                error = f"{shown} → {cell(message)}"
            example = code(_flow(key.example)) if key.example else "its own section below"
            lines.append(
                f"| `{key.key}` | {cell(key.type)} | {cell(key.default)} | {cell(key.meaning)} | {example} | {error} |"
            )
        lines.append("")
    lines += [
        "## The base config",
        "",
        "Every example and bad value above is merged into this file, which passes every check.",
        "",
        "```yaml",
        BASE_CONFIG.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines).rstrip() + "\n"
