"""A synthetic event stream with ground truth, for tests and benchmarks.

Users browse anonymously on one to three devices (each device one anonymous id); most devices
sign in at some point, after which their events carry both ids; some users also get server-side
events carrying only the user id. Events arrive shuffled (out of occurred_at order). The truth
says which user owns each anonymous id (None: the device never signed in), so the profile every
event should end in is known without running the workbench.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

START = datetime(2026, 1, 1)
TYPES = np.array(["pageview", "add-to-cart", "purchase"])
TYPE_WEIGHTS = [0.7, 0.2, 0.1]
PATHS = np.array(["/", "/pricing", "/docs", "/blog", "/checkout"])


@dataclass(frozen=True)
class SimulatedStream:
    """``events`` (event_index, type, user_id, anonymous_id, occurred_at, message_id), ``data``
    (event_index, key, value as text) and ``truth`` (anonymous_id, user_id or None)."""

    events: pd.DataFrame
    data: pd.DataFrame
    truth: pd.DataFrame

    def expected_owners(self) -> pd.Series:
        """Per event (indexed by event_index): ``u:<user id>`` or ``a:<anonymous id>`` of the profile it must end in."""
        owner = self.events["anonymous_id"].map(self.truth.set_index("anonymous_id")["user_id"])
        user = self.events["user_id"].fillna(owner)
        keys = np.where(user.notna(), "u:" + user.astype(str), "a:" + self.events["anonymous_id"].astype(str))
        return pd.Series(keys, index=self.events["event_index"].to_numpy())

    def records(self) -> list[dict]:
        """The events as ingestion records (occurredAt in epoch milliseconds), in arrival order."""
        payload: dict[int, dict[str, str]] = {}
        for index, key, value in self.data.itertuples(index=False):
            payload.setdefault(index, {})[key] = value
        out = []
        for e in self.events.itertuples(index=False):
            record = {
                "type": e.type,
                "occurredAt": int(e.occurred_at.value // 1_000_000),
                "data": payload.get(e.event_index, {}),
            }
            if pd.notna(e.user_id):
                record["userId"] = e.user_id
            if pd.notna(e.anonymous_id):
                record["anonymousId"] = e.anonymous_id
            if pd.notna(e.message_id):
                record["messageId"] = e.message_id
            out.append(record)
        return out

    def json_lines(self) -> bytes:
        return "".join(json.dumps(r) + "\n" for r in self.records()).encode("utf-8")

    def arrow_tables(self, producer_id: str):
        """(events, event_data) as Arrow tables shaped like the store's tables, profile_id empty:
        what another system writing straight into the tables would insert."""
        import pyarrow as pa

        from workbench.events.ingest import prefixed_uuid4

        n = len(self.events)
        ids = prefixed_uuid4("evt_", n)
        received = pa.array(np.full(n, np.datetime64(START, "us")), type=pa.timestamp("us"))
        events = pa.table(
            {
                "id": ids,
                "producer_id": pa.array(np.full(n, producer_id), type=pa.string()),
                "profile_id": pa.nulls(n, type=pa.string()),
                "type": pa.array(self.events["type"], type=pa.string(), from_pandas=True),
                "user_id": pa.array(self.events["user_id"], type=pa.string(), from_pandas=True),
                "anonymous_id": pa.array(self.events["anonymous_id"], type=pa.string(), from_pandas=True),
                "ip_address": pa.nulls(n, type=pa.string()),
                "message_id": pa.array(self.events["message_id"], type=pa.string(), from_pandas=True),
                "occurred_at": pa.array(
                    self.events["occurred_at"].to_numpy().astype("datetime64[us]"), type=pa.timestamp("us")
                ),
                "profile_associated_at": pa.nulls(n, type=pa.timestamp("us")),
                "created_at": received,
                "updated_at": received,
            }
        )
        position = pd.Series(np.arange(n), index=self.events["event_index"].to_numpy())
        data = pa.table(
            {
                "id": prefixed_uuid4("edt_", len(self.data)),
                "event_id": ids.take(pa.array(position.loc[self.data["event_index"].to_numpy()].to_numpy())),
                "key": pa.array(self.data["key"], type=pa.string(), from_pandas=True),
                "value": pa.array(self.data["value"], type=pa.string(), from_pandas=True),
            }
        )
        return events, data


def simulate_stream(
    users: int,
    *,
    seed: int = 0,
    events_per_device: float = 8.0,
    sign_in_rate: float = 0.8,
    server_event_rate: float = 0.3,
    days: int = 30,
    first_user: int = 0,
    message_ids: bool = True,
) -> SimulatedStream:
    """A shuffled stream for ``users`` users (ids ``u<first_user>``…), reproducible from ``seed``.

    ``events_per_device`` is the mean events per device, ``sign_in_rate`` the share of devices
    that sign in, ``server_event_rate`` the share of users with one user-id-only event.
    """
    rng = np.random.default_rng(seed)
    user_ids = np.array([f"u{first_user + k}" for k in range(users)], dtype=object)
    devices = 1 + rng.binomial(2, 0.35, size=users)
    device_user = np.repeat(np.arange(users), devices)
    n_devices = len(device_user)
    device_number = np.arange(n_devices) - np.repeat(np.cumsum(devices) - devices, devices)
    anonymous = np.array([f"a{first_user + u}.{d}" for u, d in zip(device_user, device_number)], dtype=object)
    per_device = 1 + rng.poisson(events_per_device - 1, size=n_devices)
    signs_in = rng.random(n_devices) < sign_in_rate
    sign_in_at = np.floor(rng.random(n_devices) * per_device).astype(int)
    start = rng.random(n_devices) * days * 86_400

    device = np.repeat(np.arange(n_devices), per_device)
    position = np.arange(len(device)) - np.repeat(np.cumsum(per_device) - per_device, per_device)
    gaps = rng.exponential(300, size=len(device))  # seconds between a device's events
    elapsed = np.cumsum(gaps)
    first = np.cumsum(per_device) - per_device
    seconds = start[device] + elapsed - np.repeat(elapsed[first] - gaps[first], per_device)
    known = signs_in[device] & (position >= sign_in_at[device])
    event_type = np.where(
        signs_in[device] & (position == sign_in_at[device]),
        "sign-in",
        rng.choice(TYPES, size=len(device), p=TYPE_WEIGHTS),
    )
    device_events = pd.DataFrame(
        {
            "type": event_type,
            "user_id": np.where(known, user_ids[device_user[device]], None),
            "anonymous_id": anonymous[device],
            "occurred_at": seconds,
        }
    )
    server_users = np.flatnonzero(rng.random(users) < server_event_rate)
    server_events = pd.DataFrame(
        {
            "type": "subscription",
            "user_id": user_ids[server_users],
            "anonymous_id": None,
            "occurred_at": rng.random(len(server_users)) * days * 86_400,
        }
    )
    events = pd.concat([device_events, server_events], ignore_index=True)
    events["occurred_at"] = pd.Timestamp(START) + pd.to_timedelta(np.round(events["occurred_at"] * 1000), unit="ms")
    events = events.sample(frac=1.0, random_state=rng.integers(2**32)).reset_index(drop=True)
    events.insert(0, "event_index", np.arange(len(events)))
    events["message_id"] = (f"m{first_user}." + events["event_index"].astype(str)) if message_ids else None
    truth = pd.DataFrame({"anonymous_id": anonymous, "user_id": np.where(signs_in, user_ids[device_user], None)})
    return SimulatedStream(events, _payload(events, rng), truth)


def _payload(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One or two payload keys per event, by type, values as text."""
    parts = []
    kinds = {
        "pageview": [("path", lambda n: rng.choice(PATHS, size=n))],
        "add-to-cart": [
            ("sku", lambda n: np.char.add("sku-", rng.integers(1, 50, size=n).astype(str))),
            ("price", lambda n: np.round(rng.uniform(1, 100, size=n), 2).astype(str)),
        ],
        "purchase": [
            ("amount", lambda n: rng.integers(5, 500, size=n).astype(str)),
            ("currency", lambda n: rng.choice(["USD", "EUR"], size=n)),
        ],
        "sign-in": [("via", lambda n: rng.choice(["google", "email"], size=n))],
        "subscription": [("plan", lambda n: rng.choice(["free", "pro"], size=n))],
    }
    for event_type, keys in kinds.items():
        index = events.loc[events["type"] == event_type, "event_index"].to_numpy()
        for key, values in keys:
            parts.append(pd.DataFrame({"event_index": index, "key": key, "value": values(len(index)).astype(object)}))
    return pd.concat(parts, ignore_index=True).sort_values(["event_index", "key"], ignore_index=True)
