"""workbench.yml: seed 000's setup parses into the model, and every mistake is one sentence naming
the file, the entry and what to change, before any query runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from workbench import paths
from workbench.errors import ConfigError
from workbench.experiments.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
SEED = yaml.safe_load((ROOT / "workbench.yml").read_text())


def test_seed_000_setup_is_expressed_exactly():
    cfg = load_config(ROOT / "workbench.yml")
    assert cfg.identifier_types == ("user_id", "anonymous_id")
    assert cfg.identity_joins[0].identifier_types == ("user_id", "anonymous_id")
    assert {n: (q.identifier_type, q.dimensions) for n, q in cfg.assignment_queries.items()} == {
        "logged_in": ("user_id", ("browser", "country")),
        "anonymous": ("anonymous_id", ("browser", "country")),
    }
    purchased = cfg.metric("purchased")
    assert (purchased.type, purchased.identifier_types) == ("binomial", ("user_id", "anonymous_id"))
    suggested = [
        "purchased",
        "revenue_per_user",
        "average_order_value",
        "page_views_per_user",
        "retention_rate",
        "session_duration",
        "pages_per_session",
        "sessions_with_searches",
    ]
    assert set(suggested) <= set(cfg.metrics)
    assert cfg.metric("retention_rate").window.delay_hours == 24
    assert cfg.metric("average_order_value").numerator is cfg.metric("revenue_per_user")
    planted = {
        "checkout-layout",
        "add-to-cart-cta",
        "results-order",
        "price-display",
        "confirmation-email",
        "homepage-nav-ios",
    }
    assert set(cfg.experiments) == planted
    assert cfg.experiment("homepage-nav-ios").weights == (0.5, 0.25, 0.25)


def test_variations_by_id_or_with_a_name_and_the_metrics_units(tmp_path):
    """Plain ids and {id, name} entries mix; names reach the experiment, ids stay the variations;
    a metric's format and currency override its type's, the top-level currency is the default."""

    def change(d):
        d["currency"] = {"symbol": "€", "symbol_after": True}
        exp = d["experiments"][0]
        exp.update(variations=[{"id": 0, "name": " Control "}, "1", {"id": "2", "name": "Summary beside form"}])
        exp.update(name="Checkout", description="One page", hypothesis="Fewer steps, more purchases.")
        metric(d, "revenue_per_user").update(format="currency")
        metric(d, "average_order_value").update(format="currency", currency={"symbol": "£", "decimals": 0})
        metric(d, "retention_rate").update(format="number")

    cfg = parse_config(edited(change), tmp_path / "workbench.yml")
    exp = cfg.experiment("checkout-layout")
    assert exp.variations == ("0", "1", "2") and exp.control == "0"
    assert exp.variation_names == {"0": "Control", "2": "Summary beside form"}
    assert (exp.name, exp.description, exp.hypothesis) == ("Checkout", "One page", "Fewer steps, more purchases.")
    revenue, aov = cfg.metric("revenue_per_user").format, cfg.metric("average_order_value").format
    assert (revenue.kind, revenue.currency.symbol, revenue.currency.symbol_after, revenue.currency.decimals) == (
        "currency", "€", True, 2,
    )  # fmt: skip
    assert (aov.currency.symbol, aov.currency.decimals, aov.currency.symbol_after) == ("£", 0, True)
    assert cfg.metric("retention_rate").format.kind == "number"
    assert cfg.metric("purchased").format is None  # the binomial type's own (percent) applies
    plain = load_config(ROOT / "workbench.yml").experiment("results-order")
    assert plain.variation_names == {"0": "Control", "1": "Best sellers first"} and plain.hypothesis


def test_path_comes_from_workbench_config(tmp_path, monkeypatch):
    path = tmp_path / "other.yml"
    path.write_text(yaml.safe_dump(SEED))
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    assert paths.config_path() == path
    assert load_config().path == path


def test_database_section_still_read(tmp_path):
    data = copy.deepcopy(SEED) | {"database": {"url": "duckdb:///x.duckdb", "duckdb_threads": 2}}
    assert parse_config(data, tmp_path / "w.yml").database["duckdb_threads"] == 2


def edited(change) -> dict:
    data = copy.deepcopy(SEED)
    change(data)
    return data


def metric(data, name):
    return next(m for m in data["metrics"] if m["name"] == name)


CASES = [
    (lambda d: d.update(metrics_=1), "unknown top-level key(s) ['metrics_']; allowed:"),
    (
        lambda d: metric(d, "purchased").update(windw={"hours": 1}),
        "metric 'purchased': unknown key(s) ['windw']; allowed: [",
    ),
    (
        lambda d: metric(d, "purchased").update(windw={"hours": 1}),
        "Did you mean 'window'?",
    ),
    (
        lambda d: d["experiments"][0].update(goal_metrics=["purchases"]),
        "experiment 'checkout-layout'.goal_metrics: 'purchases' is not a defined metric; define it under 'metrics' or fix the name",
    ),
    (
        lambda d: d["experiments"][0].update(goal_metrics=["purchases"]),
        "). Did you mean 'purchased'?",
    ),
    (
        lambda d: metric(d, "average_order_value").update(denominator="orders"),
        "metric 'average_order_value'.denominator: 'orders' is not a defined metric; define it or fix the name.",
    ),
    (
        lambda d: metric(d, "average_order_value").update(numerator="pages_per_session"),
        "metric 'average_order_value'.numerator: 'pages_per_session' is a ratio metric, which cannot be a numerator or denominator (a ratio of ratios is a cycle of definitions)",
    ),
    (
        lambda d: d["metrics"].append(dict(metric(d, "purchased"))),
        "metrics: two entries share the name 'purchased'; rename one.",
    ),
    (
        lambda d: metric(d, "purchased").update(type="average"),
        "metric 'purchased': type 'average' is not one of ['binomial', 'count', 'mean', 'duration', 'ratio', 'quantile', 'quantile_unit'].",
    ),
    (
        lambda d: metric(d, "retention_rate").update(window={"delay_hours": "one day"}),
        "metric 'retention_rate'.window.delay_hours: must be a number, not 'one day'.",
    ),
    (
        lambda d: metric(d, "revenue_per_user_cuped").update(
            sql="SELECT userId AS user_id, timestamp, amount FROM orders"
        ),
        "metric 'revenue_per_user_cuped': the SQL returns ['user_id', 'timestamp', 'amount'] but a mean metric needs ['value']; add them to its SELECT",
    ),
    # fact tables: every reference checked before any query runs
    (
        lambda d: metric(d, "revenue_per_user").update(fact_table="purchases"),
        "metric 'revenue_per_user'.fact_table: 'purchases' is not a defined fact table; define it under 'fact_tables' or fix the name (defined: ['orders', 'sessions']).",
    ),
    (
        lambda d: d["experiments"][0].update(dimensions=["browsr"]),
        "is not a dimension of assignment query 'logged_in' ['browser', 'country']. Did you mean 'browser'?",
    ),
    (
        lambda d: metric(d, "revenue_per_user").update(column="amout"),
        "metric 'revenue_per_user'.column: ['amout'] is not a column of fact table 'orders'; its columns are ['user_id', 'anonymous_id', 'timestamp', 'amount', 'qty']. Did you mean 'amount'?",
    ),
    (
        lambda d: metric(d, "revenue_per_user").update(column="rows"),
        "metric 'revenue_per_user'.column: mean metrics read a column's values; name a column of fact table 'orders'; its columns are",
    ),
    (
        lambda d: metric(d, "orders_per_user").update(column="amount"),
        "metric 'orders_per_user'.column: count metrics count rows; write `column: rows` (or leave it out), or use type mean to sum 'amount'.",
    ),
    (
        lambda d: metric(d, "bulk_buyer").update(row_filter="quantity > 1"),
        "metric 'bulk_buyer'.row_filter: ['quantity'] is not a column of fact table 'orders'; its columns are",
    ),
    (
        lambda d: metric(d, "bulk_buyer").update(row_filter="qty > (SELECT 1)"),
        "metric 'bulk_buyer'.row_filter: 'qty > (SELECT 1)' uses",
    ),
    (
        lambda d: metric(d, "bulk_buyer").update(filter="qty > 1"),
        "metric 'bulk_buyer': a metric over a fact table takes no 'filter' (use 'row_filter'); remove it.",
    ),
    (
        lambda d: metric(d, "purchased").update(row_filter="qty > 1"),
        "metric 'purchased': 'row_filter' belongs to metrics over a fact table; add 'fact_table' or remove it.",
    ),
    (
        lambda d: d["fact_tables"][0].update(sql="SELECT userId AS user_id, amount FROM orders"),
        "fact table 'orders': the SQL returns ['user_id', 'amount'] but a fact table needs ['timestamp']; add them to its SELECT",
    ),
    (
        lambda d: d["fact_tables"].append(dict(d["fact_tables"][0])),
        "fact_tables: two entries share the name 'orders'; rename one.",
    ),
    (
        lambda d: d["assignment_queries"][0].update(
            sql="SELECT userId AS user_id, timestamp, experimentId AS experiment_id, browser, country FROM experiment_viewed"
        ),
        "assignment query 'logged_in': the SQL returns ['user_id', 'timestamp', 'experiment_id', 'browser', 'country'] but an assignment query needs ['variation_id']",
    ),
    (
        lambda d: d["assignment_queries"][0].update(identifier_type="device_id"),
        "assignment query 'logged_in'.identifier_type: 'device_id' is not one of identifier_types ['user_id', 'anonymous_id']",
    ),
    (
        lambda d: d["experiments"][0].update(control="3"),
        "experiment 'checkout-layout'.control: '3' is not one of its variations ['0', '1', '2'].",
    ),
    (
        lambda d: d["experiments"][0].update(start="last monday"),
        "experiment 'checkout-layout'.start: 'last monday' is not a date or timestamp",
    ),
    (
        lambda d: d["experiments"][0].update(dimensions=["os"]),
        "experiment 'checkout-layout'.dimensions: 'os' is not a dimension of assignment query 'logged_in'",
    ),
    (
        lambda d: metric(d, "session_duration").update(capping={"type": "percentile", "value": 99}),
        "metric 'session_duration'.capping.value: must be ≤ 1, not 99.",
    ),
    # variations by id or {id, name}; formats of metrics
    (
        lambda d: d["experiments"][0].update(variations=["0", {"id": "1", "label": "B"}, "2"]),
        'experiment \'checkout-layout\'.variations: an entry must be an id or {id: "0", name: "Control"}, not',
    ),
    (
        lambda d: d["experiments"][0].update(variations=[{"name": "Control"}, "1", "2"]),
        'experiment \'checkout-layout\'.variations: an entry must be an id or {id: "0", name: "Control"}, not',
    ),
    (
        lambda d: d["experiments"][0].update(variations=[{"id": "0", "name": "A"}, {"id": "1", "name": "A"}, "2"]),
        "experiment 'checkout-layout'.variations: two variations share a name: ['A', 'A'].",
    ),
    (
        lambda d: d["experiments"][0].update(variations=[{"id": "0", "name": 7}, "1", "2"]),
        "experiment 'checkout-layout'.variations: the name of variation '0' must be text, not 7.",
    ),
    (
        lambda d: d["experiments"][0].update(variations=["0", {"id": "0", "name": "Again"}, "2"]),
        "experiment 'checkout-layout'.variations: lists a variation twice",
    ),
    (
        lambda d: d["experiments"][0].update(hypothesis=["more", "sales"]),
        "experiment 'checkout-layout'.hypothesis: must be text, not",
    ),
    (
        lambda d: metric(d, "revenue_per_user").update(format="money"),
        "metric 'revenue_per_user'.format: 'money' is not one of ['number', 'percent', 'duration', 'currency'].",
    ),
    (
        lambda d: metric(d, "purchased").update(currency={"symbol": "€"}),
        "metric 'purchased': 'currency' needs 'format: currency'; add it or remove 'currency'.",
    ),
    (
        lambda d: metric(d, "purchased").update(format="percent", currency={"symbol": "€"}),
        "metric 'purchased': 'currency' applies to 'format: currency' only, not 'percent'; remove it.",
    ),
    (
        lambda d: metric(d, "revenue_per_user").update(currency={"decimals": 2.5}),
        "metric 'revenue_per_user'.currency.decimals: must be a whole number from 0 to 6, not 2.5.",
    ),
    (
        lambda d: d.update(currency={"sign": "€"}),
        "currency: must be a mapping with keys among ['decimals', 'symbol', 'symbol_after']",
    ),
    (
        lambda d: metric(d, "purchased").update(name="1purchased"),
        "metric '1purchased': 'name' must be a plain name (letters, digits and _, at most 63 characters), not '1purchased'.",
    ),
]


@pytest.mark.parametrize("change, message", CASES)
def test_each_mistake_is_one_sentence_naming_file_and_entry(change, message, tmp_path):
    path = tmp_path / "workbench.yml"
    with pytest.raises(ConfigError) as err:
        config = parse_config(edited(change), path)
        for key in config.broken_experiments:  # an experiment entry's mistake fails that experiment alone
            config.experiment(key)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text and text.endswith((".", "?"))


def test_a_mistyped_name_gets_the_closest_one_and_a_far_one_none(tmp_path):
    config = parse_config(copy.deepcopy(SEED), tmp_path / "workbench.yml")
    with pytest.raises(ConfigError, match=r"configured: \[.*\]\. Did you mean 'checkout-layout'\?$"):
        config.experiment("checkout-layot")
    with pytest.raises(ConfigError, match=r"Did you mean 'purchased'\?$"):
        config.metric("purchasd")
    with pytest.raises(ConfigError) as far:
        config.experiment("zzz")
    assert "Did you mean" not in str(far.value)


def test_star_sql_columns_are_probed_on_the_database_before_the_query(growthbook_url, tmp_path):
    import workbench as wb
    from workbench.experiments.engine import experiment, sufficient_stats

    data = edited(
        lambda d: d["metrics"].append(
            {"name": "views_star", "type": "count", "identifier_types": ["user_id"], "sql": "SELECT * FROM pages"}
        )
    )
    data["experiments"][0]["goal_metrics"] = ["views_star"]
    cfg = parse_config(data, tmp_path / "workbench.yml")
    db = wb.connect(growthbook_url)
    with pytest.raises(
        ConfigError, match=r"metric 'views_star': the SQL returns \[.*\] but needs \['user_id', 'value'\]; add them"
    ):
        sufficient_stats(experiment("checkout-layout", cfg), db=db)
    db.dispose()


def test_sections_of_other_modules_are_left_to_them(tmp_path):
    data = copy.deepcopy(SEED) | {"events": {"table": "raw_events"}, "event_sources": {}}
    assert set(parse_config(data, tmp_path / "w.yml").metrics) == {m["name"] for m in SEED["metrics"]}
