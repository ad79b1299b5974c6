"""Profile properties computed in the database equal pandas on the generator's raw events,
grouped by the generator's own truth of who owns each event, on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.db.bulk_write import write_transaction
from workbench.errors import ConfigError
from workbench.events import profile_properties, resolve_identities
from workbench.events.properties import property_spec
from workbench.events.settings import EventSettings
from workbench.events.simulate import simulate_stream
from workbench.events.statements import event_tables
from workbench.events.store import ensure_event_store

SETTINGS = EventSettings(
    schema="grouparoo",
    api_keys={},
    source="the test settings",
    properties={"purchases": {"type": "purchase", "aggregate": "count"}},
)
AS_OF = datetime(2026, 1, 20)
PROPERTIES = {
    "purchases": {"type": "purchase", "aggregate": "count"},
    "usd_revenue": {
        "type": "purchase",
        "aggregate": "sum",
        "key": "amount",
        "filters": [{"key": "currency", "op": "equals", "value": "USD"}],
    },
    "other_purchases": {
        "type": "purchase",
        "aggregate": "count",
        "filters": [{"key": "currency", "op": "not_equals", "value": "USD"}],
    },
    "avg_dear_price": {
        "type": "add-to-cart",
        "aggregate": "avg",
        "key": "price",
        "filters": [{"key": "price", "op": "greater", "value": 20}],
    },
    "min_cheap_price": {
        "type": "add-to-cart",
        "aggregate": "min",
        "key": "price",
        "filters": [{"key": "price", "op": "less", "value": 80}],
    },
    "max_amount": {"type": "purchase", "aggregate": "max", "key": "amount"},
    "price_change": {"type": "add-to-cart", "aggregate": "diff", "key": "price"},
    "last_price_step": {"type": "add-to-cart", "aggregate": "diff", "key": "price", "between": "last_two"},
    "last_path": {"type": "pageview", "aggregate": "most_recent", "key": "path"},
    "first_pageview_at": {"type": "pageview", "aggregate": "least_recent", "column": "occurred_at"},
    "o_paths": {
        "type": "pageview",
        "aggregate": "all_values",
        "key": "path",
        "filters": [{"key": "path", "op": "contains", "value": "o"}],
    },
    "last_sku_without_1": {
        "type": "add-to-cart",
        "aggregate": "most_recent",
        "key": "sku",
        "filters": [{"key": "sku", "op": "not_contains", "value": "1"}],
    },
    "pageviews_last_7_days": {"type": "pageview", "aggregate": "count", "within_days": 7},
    "pageviews_5_to_15": {"type": "pageview", "aggregate": "count", "since": "2026-01-05", "until": "2026-01-15"},
}


@pytest.fixture(scope="module")
def stream():
    return simulate_stream(150, seed=41)


@pytest.fixture(scope="module")
def resolved(backend, stream):
    url = backend.new_url(f"properties_{backend.name}")
    db = wb.connect(url, read_only=False)
    ensure_event_store(db, SETTINGS)
    events, data = stream.arrow_tables("web")
    tables = event_tables("grouparoo")
    with write_transaction(db) as writer:
        writer.append(tables["events"], events)
        writer.append(tables["event_data"], data)
    resolve_identities(db, batch_size=500, settings=SETTINGS)
    db.dispose()
    database = wb.connect(url)  # properties are read on an analysis (read-only) session
    yield database
    database.dispose()


def expected_properties(stream) -> pd.DataFrame:
    """Each property by owner key, in pandas from the raw stream."""
    owners = stream.expected_owners()
    wide = stream.data.pivot(index="event_index", columns="key", values="value")
    ev = stream.events.assign(owner=owners.loc[stream.events["event_index"]].to_numpy()).join(wide, on="event_index")
    ev = ev.sort_values(["owner", "occurred_at"])

    def num(s):
        return pd.to_numeric(s, errors="coerce")

    def of(t):
        return ev[ev["type"] == t]

    purchase, cart, page = of("purchase"), of("add-to-cart"), of("pageview")
    assert not page.duplicated(["owner", "occurred_at"]).any() and not cart.duplicated(["owner", "occurred_at"]).any()
    out = pd.DataFrame(index=pd.Index(sorted(set(owners)), name="owner"))
    out["purchases"] = purchase.groupby("owner").size()
    usd = purchase[purchase["currency"] == "USD"]
    out["usd_revenue"] = num(usd["amount"]).groupby(usd["owner"]).sum()
    out["other_purchases"] = purchase[purchase["currency"] != "USD"].groupby("owner").size()
    dear = cart[num(cart["price"]) > 20]
    out["avg_dear_price"] = num(dear["price"]).groupby(dear["owner"]).mean()
    cheap = cart[num(cart["price"]) < 80]
    out["min_cheap_price"] = num(cheap["price"]).groupby(cheap["owner"]).min()
    out["max_amount"] = num(purchase["amount"]).groupby(purchase["owner"]).max()
    prices = num(cart["price"]).groupby(cart["owner"])
    out["price_change"] = prices.last() - prices.first()
    out["last_price_step"] = prices.apply(lambda p: p.iloc[-1] - p.iloc[-2] if len(p) > 1 else np.nan)
    out["last_path"] = page.groupby("owner")["path"].last()
    out["first_pageview_at"] = page.groupby("owner")["occurred_at"].first()
    with_o = page[page["path"].str.contains("o", regex=False)]
    out["o_paths"] = with_o.groupby("owner")["path"].agg(list)
    no_1 = cart[~cart["sku"].str.contains("1", regex=False)]
    out["last_sku_without_1"] = no_1.groupby("owner")["sku"].last()
    out["pageviews_last_7_days"] = page[page["occurred_at"] >= AS_OF - timedelta(days=7)].groupby("owner").size()
    window = page[(page["occurred_at"] >= datetime(2026, 1, 5)) & (page["occurred_at"] < datetime(2026, 1, 15))]
    out["pageviews_5_to_15"] = window.groupby("owner").size()
    for count in ("purchases", "other_purchases", "pageviews_last_7_days", "pageviews_5_to_15"):
        out[count] = out[count].fillna(0).astype(int)
    return out


def test_profile_properties_equal_pandas_on_the_raw_events(resolved, stream):
    got = profile_properties(resolved, PROPERTIES, as_of=AS_OF, settings=SETTINGS)
    got.index = ["u:" + u if isinstance(u, str) else "a:" + a for u, a in zip(got["user_id"], got["anonymous_id"])]
    expected = expected_properties(stream)
    assert len(got) == len(expected) and got.index.is_unique
    got = got.loc[expected.index]
    for name in PROPERTIES:
        want, have = expected[name], got[name]
        if name in ("o_paths",):
            assert all(
                (list(h) if isinstance(h, (list, np.ndarray)) else None) == (w if isinstance(w, list) else None)
                for h, w in zip(have, want)
            ), name
        elif name in (
            "usd_revenue",
            "avg_dear_price",
            "min_cheap_price",
            "max_amount",
            "price_change",
            "last_price_step",
        ):
            np.testing.assert_allclose(
                have.astype(float).to_numpy(), want.astype(float).to_numpy(), rtol=1e-12, err_msg=name
            )
        elif name == "first_pageview_at":
            assert (pd.to_datetime(have) == pd.to_datetime(want)).where(want.notna(), have.isna()).all(), name
        else:
            assert [None if pd.isna(v) else v for v in have] == [None if pd.isna(v) else v for v in want], name
    assert "USD" not in got.attrs["sql"] and ":filter_value" in got.attrs["sql"]  # values are bound, never spliced


def test_declared_properties_come_from_the_config(resolved, stream):
    got = profile_properties(resolved, settings=SETTINGS)
    assert list(got.columns) == ["profile_id", "user_id", "anonymous_id", "purchases"]
    assert got["purchases"].sum() == int((stream.events["type"] == "purchase").sum())


@pytest.mark.parametrize(
    "declaration, message",
    [
        ({"type": "purchase", "aggregate": "median"}, "aggregate"),
        ({"type": "purchase", "aggregate": "sum"}, "needs 'key'"),
        ({"type": "purchase", "aggregate": "most_recent", "column": "password"}, "column"),
        ({"type": "purchase", "aggregate": "count", "filters": [{"key": "a", "op": "like", "value": "x"}]}, "op"),
        (
            {"type": "purchase", "aggregate": "count", "filters": [{"key": "a", "op": "greater", "value": "x"}]},
            "number",
        ),
        ({"type": "purchase", "aggregate": "count", "since": "last week"}, "ISO 8601"),
        ({"type": "purchase", "aggregate": "count", "within_days": -3}, "within_days"),
        ({"type": "purchase", "aggregate": "diff"}, "needs 'key'"),
        ({"type": "purchase", "aggregate": "diff", "key": "amount", "between": "first_two"}, "between"),
        ({"type": "purchase", "aggregate": "count", "between": "last_two"}, "between"),
    ],
)
def test_bad_declarations_are_refused_naming_the_entry(declaration, message):
    with pytest.raises(ConfigError, match=message) as caught:
        property_spec("revenue", declaration, "workbench.yml: events.properties")
    assert "events.properties.revenue" in str(caught.value)


def test_property_names_must_be_identifiers():
    with pytest.raises(ConfigError, match="identifier"):
        property_spec('x"; DROP TABLE profiles; --', {"type": "a", "aggregate": "count"})
