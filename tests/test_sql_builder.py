"""The compiled SQL: bound values, one scan per metric source, and it transpiles for the warehouses
users outgrow DuckDB into (BigQuery, Snowflake, Trino, Spark SQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
import yaml

from workbench.db.dialects import transpile
from workbench.errors import ConfigError
from workbench.experiments import sql as sql_builder
from workbench.experiments.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "workbench.yml")


def all_queries(config):
    exp = config.experiment("checkout-layout")
    every = tuple(config.metrics.values())
    return [
        sql_builder.experiment_query(config, exp, (), 20, every),
        sql_builder.experiment_query(config, exp, ("browser", "country"), 5, every, ("browser",)),
        sql_builder.experiment_query(config, exp, ("country",), 20, ()),
        sql_builder.unit_metrics_query(config, exp),
        sql_builder.discovery_query(config.assignment_query("anonymous")),
    ]


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake", "trino", "spark"])
def test_compiled_sql_transpiles_for_warehouses(config, dialect):
    for query in all_queries(config):
        text = transpile(query.sql, dialect, query.params)
        assert ":experiment_key" not in text and ":start" not in text
        sqlglot.parse_one(text, read=dialect)  # the output is valid in its own dialect


def test_values_are_bound_not_written_into_the_sql(config):
    query = sql_builder.experiment_query(config, config.experiment("checkout-layout"), ("browser",))
    assert "checkout-layout" not in query.sql and "2026" not in query.sql
    assert query.params["experiment_key"] == "checkout-layout" and query.params["top_n"] == 20
    assert [query.params[f"variation_{i}"] for i in range(3)] == ["0", "1", "2"]


def test_metrics_over_one_table_share_one_scan(config):
    """Five metrics reading `orders` with different SQL (ids and timestamp; amount as value; an
    event-level quantile; a capped CUPED copy) and two reading `sessions`: one scan each."""
    exp = config.experiment("checkout-layout")
    names = ("purchased", "revenue_per_user", "average_order_value", "revenue_per_user_cuped", "order_amount_p90")
    names += ("retention_rate", "session_duration")
    query = sql_builder.experiment_query(
        config, exp, ("browser", "country"), 20, tuple(config.metric(n) for n in names)
    )
    assert query.sql.count("FROM orders") == 1 and query.sql.count("FROM sessions") == 1
    assert query.sql.count("FROM experiment_viewed") == 1  # units built once
    assert query.sql.count("FROM per_unit GROUP BY") == 1  # every breakdown from one aggregate over the units
    assert query.sql.count("GROUPING SETS") == 1


def test_metric_without_identity_join_is_a_config_error(config, tmp_path):
    data = yaml.safe_load((ROOT / "workbench.yml").read_text())
    data["identity_joins"] = []
    cfg = parse_config(data, tmp_path / "workbench.yml")
    with pytest.raises(
        ConfigError,
        match=r"metric 'page_views_per_user' is keyed by \['anonymous_id'\] but experiment 'checkout-layout' counts user_id units and no identity join links them; add an identity join\.",
    ):
        sql_builder.experiment_query(
            cfg, cfg.experiment("checkout-layout"), (), 20, (cfg.metric("page_views_per_user"),)
        )
