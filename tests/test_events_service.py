"""The HTTP collection service: what @grouparoo/client-web posts is stored through the loss-free
ingestion path, bad events are answered 400 and quarantined, keys are checked, CORS preflights are
answered, bodies are limited; on DuckDB and PostgreSQL, in process (Starlette's TestClient) and as
a real `workbench events serve` process under uvicorn."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from starlette.testclient import TestClient

import workbench as wb
from support.event_service import free_port, start_service, wait_for_current_profiles
from workbench.events.api_keys import create_api_key
from workbench.events.http_records import sender_address
from workbench.events.service import create_app
from workbench.events.settings import EventSettings
from workbench.events.store import ensure_event_store

SETTINGS = EventSettings(schema="grouparoo", source="the test settings")
BIN = Path(sys.executable).parent


@pytest.fixture
def db(backend, request):
    url = backend.new_url(f"svc_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())[-45:]}")
    database = wb.connect(url, read_only=False)
    yield database
    database.dispose()


def client_event(key: str, **fields) -> dict:
    """An event exactly as @grouparoo/client-web 0.3.3 builds it (src/client.ts, track())."""
    return {
        "apiKey": key,
        "type": "pageview",
        "data": {"path": "/"},
        "userId": None,
        "anonymousId": "aid-1",
        "sessionId": "sid-1",
        "ocurredAt": 1_764_000_000_123,
        **fields,
    }


def test_a_client_event_is_stored_with_its_data_times_and_address(db, tmp_path):
    key = create_api_key(db, "Web API", SETTINGS)
    quarantine = tmp_path / "q.jsonl"
    with TestClient(create_app(db, SETTINGS, quarantine, keep_profiles=False), client=("203.0.113.7", 5555)) as client:
        before = datetime.utcnow()
        answer = client.post("/api/v1/track", json=client_event(key, data={"path": "/", "n": 3, "ok": True}))
        after = datetime.utcnow()
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"accepted": 1}
        again = client.post("/api/v1/track", json=client_event(key, data={"path": "/", "n": 3, "ok": True}))
        assert again.json() == {"accepted": 1}  # a retry of the same event: stored once (below)
        no_time = client_event(key, type="signup")
        del no_time["ocurredAt"]
        assert client.post("/api/v1/track", json=no_time).json() == {"accepted": 1}
    events = db.sql(
        "SELECT id, producer_id, type, user_id, anonymous_id, ip_address, occurred_at, created_at, message_id "
        "FROM grouparoo.events ORDER BY type"
    )
    assert events["type"].tolist() == ["pageview", "signup"]
    assert events["producer_id"].tolist() == ["Web API", "Web API"]
    assert events["ip_address"].tolist() == ["203.0.113.7", "203.0.113.7"]
    assert events["anonymous_id"].tolist() == ["aid-1", "aid-1"] and events["user_id"].isna().all()
    page, signup = events.iloc[0], events.iloc[1]
    assert page["occurred_at"] == datetime(1970, 1, 1) + timedelta(milliseconds=1_764_000_000_123)
    assert before - timedelta(seconds=1) <= page["created_at"] <= after
    assert signup["occurred_at"] == signup["created_at"]  # no client time: the receipt time
    assert page["message_id"].startswith("sha256:") and pd.isna(signup["message_id"])
    data = db.sql(f"SELECT key, value FROM grouparoo.event_data WHERE event_id = '{page['id']}' ORDER BY key")
    assert list(data.itertuples(index=False, name=None)) == [
        ("n", "3"),
        ("ok", "true"),
        ("path", "/"),
        ("sessionId", "sid-1"),
    ]
    assert not quarantine.exists()


def test_bad_events_are_answered_400_and_quarantined_without_the_key(db, tmp_path):
    key = create_api_key(db, "Web API", SETTINGS)
    quarantine = tmp_path / "q.jsonl"
    with TestClient(create_app(db, SETTINGS, quarantine, keep_profiles=False)) as client:
        no_ids = client.post("/api/v1/track", json=client_event(key, anonymousId=None))
        nested = client.post("/api/v1/track", json=client_event(key, data={"a": {"b": 1}}))
        broken = client.post(
            "/api/v1/track",
            content=b'{"apiKey": "' + key.encode() + b'", "type": ',
            headers={"content-type": "application/json"},
        )
        wrong_key = client.post("/api/v1/track", json=client_event("wbk_not-a-key"))
        no_key = client.post("/api/v1/track", json={k: v for k, v in client_event(key).items() if k != "apiKey"})
        batch = client.post(
            "/api/v1/track/batch",
            json={
                "apiKey": key,
                "events": [client_event(key, type="a"), {"type": "b"}, client_event(key, type="c", ocurredAt="soon")],
            },
        )
    assert (no_ids.status_code, no_ids.json()) == (
        400,
        {"error": {"message": "The event was refused: userId or anonymousId is required."}},
    )
    assert nested.status_code == 400 and "nested dict" in nested.json()["error"]["message"]
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]["message"]
    assert (
        wrong_key.status_code == 401 and "apiKey is missing, unknown or revoked" in wrong_key.json()["error"]["message"]
    )
    assert no_key.status_code == 401
    assert batch.status_code == 400
    assert batch.json()["accepted"] == 1 and [r["index"] for r in batch.json()["refused"]] == [1, 2]
    assert db.sql("SELECT type FROM grouparoo.events")["type"].tolist() == ["a"]
    text = quarantine.read_text()
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 7  # every refused event, one line each
    assert key not in text and "wbk_not-a-key" not in text
    assert [e["line"] for e in entries] == sorted(e["line"] for e in entries)
    assert {e["file"] for e in entries} == {"HTTP"}


def test_cors_preflight_origins_and_body_limits(db, tmp_path):
    key = create_api_key(db, "Web API", SETTINGS)
    settings = EventSettings(schema="grouparoo", allowed_origins=("http://shop.example",))
    with TestClient(create_app(db, settings, tmp_path / "q.jsonl", keep_profiles=False)) as client:
        headers = {
            "Origin": "http://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        allowed = client.options("/api/v1/track", headers=headers)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://shop.example"
        other = client.options("/api/v1/track", headers={**headers, "Origin": "http://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        posted = client.post("/api/v1/track", json=client_event(key), headers={"Origin": "http://shop.example"})
        assert posted.headers["access-control-allow-origin"] == "http://shop.example"
        huge = client.post("/api/v1/track", json=client_event(key, data={"x": "y" * 40_000}))
        assert huge.status_code == 413 and "over the limit of 32,768 bytes" in huge.json()["error"]["message"]
        assert client.get("/healthz").json() == {"status": "ok"}
    with TestClient(create_app(db, SETTINGS, tmp_path / "q2.jsonl", keep_profiles=False)) as client:
        anyone = client.options("/api/v1/track", headers={**headers, "Origin": "http://anywhere.example"})
        assert anyone.status_code == 200 and anyone.headers["access-control-allow-origin"] == "*"


def test_the_sender_address_trusts_forwarded_for_only_from_configured_proxies():
    assert sender_address("198.51.100.2", "203.0.113.9", ()) == "198.51.100.2"
    assert sender_address("10.0.0.5", "203.0.113.9, 10.0.0.7", ("10.0.0.0/8",)) == "203.0.113.9"
    assert (
        sender_address("10.0.0.5", "1.1.1.1, 203.0.113.9", ("10.0.0.5",)) == "203.0.113.9"
    )  # the left one is the sender's claim
    assert sender_address("10.0.0.5", "not-an-ip", ("10.0.0.5",)) == "10.0.0.5"
    assert sender_address("198.51.100.2", "203.0.113.9", ("10.0.0.0/8",)) == "198.51.100.2"


def test_forwarded_addresses_are_believed_only_from_trusted_proxies_and_batches_store_every_event(db, tmp_path):
    key = create_api_key(db, "Server", SETTINGS)
    settings = EventSettings(schema="grouparoo", trusted_proxies=("10.0.0.0/8",))
    forwarded = {"X-Forwarded-For": "198.51.100.4, 203.0.113.9"}
    app = create_app(db, settings, tmp_path / "q.jsonl", keep_profiles=False)
    with TestClient(app, client=("10.1.2.3", 4000)) as proxied, TestClient(app, client=("192.0.2.1", 4000)) as direct:
        batch = {"apiKey": key, "events": [client_event(key, type="a", ocurredAt=1), {"type": "b", "userId": 7}]}
        assert proxied.post("/api/v1/track/batch", json=batch, headers=forwarded).json() == {"accepted": 2}
        assert direct.post("/api/v1/track", json=client_event(key, type="c"), headers=forwarded).json() == {
            "accepted": 1
        }
    rows = db.sql("SELECT type, coalesce(user_id, '-') AS user_id, ip_address FROM grouparoo.events ORDER BY type")
    assert list(rows.itertuples(index=False, name=None)) == [
        ("a", "-", "203.0.113.9"),
        ("b", "7", "203.0.113.9"),
        ("c", "-", "192.0.2.1"),
    ]


def test_the_keeper_associates_events_and_refreshes_properties_while_serving(db, tmp_path):
    key = create_api_key(db, "Web API", SETTINGS)
    properties = {"score_change": {"type": "quiz", "aggregate": "diff", "key": "score"}}
    settings = EventSettings(schema="grouparoo", resolve_every_seconds=0.2, properties=properties)
    with TestClient(create_app(db, settings, tmp_path / "q.jsonl")) as client:
        for ms, score in ((1_000, 3), (2_000, 10), (3_000, 7)):
            client.post("/api/v1/track", json=client_event(key, type="quiz", data={"score": score}, ocurredAt=ms))
        client.post("/api/v1/track", json=client_event(key, type="identify", userId="u-9", ocurredAt=4_000))
        wait_for_current_profiles(lambda: client.get("/healthz").json())
    events = db.sql("SELECT DISTINCT profile_id FROM grouparoo.events")
    assert len(events) == 1 and events.iloc[0, 0] is not None
    values = db.sql("SELECT profile_id, name, value FROM grouparoo.profile_property_values")
    assert list(values.itertuples(index=False, name=None)) == [(events.iloc[0, 0], "score_change", "4")]  # 7 − 3


def test_resolve_watch_associates_rows_other_systems_inserted(backend, tmp_path):
    url = backend.new_url("svc_resolve_watch")
    db = wb.connect(url, read_only=False)
    ensure_event_store(db, SETTINGS)
    with db.transaction() as conn:
        for i, (user, anonymous) in enumerate([(None, "a-1"), ("u-1", "a-1"), (None, "a-2")]):
            conn.execute(
                sa.text(
                    "INSERT INTO grouparoo.events (id, producer_id, type, user_id, anonymous_id, occurred_at, created_at, "
                    "updated_at) VALUES (:id, 'backend', 'signup', :user, :anonymous, :at, :at, :at)"
                ),
                {"id": f"evt_{i}", "user": user, "anonymous": anonymous, "at": datetime(2026, 1, 1, 0, i)},
            )
    db.dispose()
    (tmp_path / "workbench.yml").write_text("events:\n  resolve_every_seconds: 0.3\n")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    watch = subprocess.Popen(
        [str(BIN / "workbench"), "events", "resolve", "--watch", "--database", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [watch.stdout.readline() for _ in range(3)]  # the banner, then two rounds
    watch.send_signal(signal.SIGTERM)
    watch.communicate(timeout=30)
    assert lines[0].startswith("Resolving every 0.3 s")
    assert "associated 3 events" in lines[1] and "2 profiles" in lines[1] and "0 events left" in lines[1]
    assert "associated 0 events" in lines[2]
    db = wb.connect(url)
    owners = db.sql(
        "SELECT e.id, p.user_id FROM grouparoo.events e JOIN grouparoo.profiles p ON p.id = e.profile_id ORDER BY e.id"
    )
    db.dispose()
    assert owners["user_id"].tolist()[:2] == ["u-1", "u-1"] and pd.isna(owners["user_id"].iloc[2])
    once = subprocess.run(
        [str(BIN / "workbench"), "events", "resolve", "--database", url], env=env, capture_output=True, text=True
    )
    assert once.returncode == 0 and once.stdout.splitlines() == [
        "Identity resolution: associated 0 events in 0 batch(es); 2 profiles, 0 merges logged, 0 events left without a profile"
    ]


def test_a_real_service_process_binds_localhost_and_stores_across_a_kill(backend, tmp_path):
    url = backend.new_url("svc_real_process")
    db = wb.connect(url, read_only=False)
    key = create_api_key(db, "Web API", SETTINGS)
    db.dispose()
    port = free_port()
    service = start_service(url, port, tmp_path)
    try:
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{port}" in listening
        track = f"http://127.0.0.1:{port}/api/v1/track"
        for i in range(5):
            assert requests.post(track, json=client_event(key, ocurredAt=1_764_000_000_000 + i)).status_code == 200
        service.send_signal(signal.SIGKILL)
        service.wait()
        service = start_service(url, port, tmp_path)
        for i in range(3, 8):  # 3 and 4 are retries of events already acknowledged
            assert requests.post(track, json=client_event(key, ocurredAt=1_764_000_000_000 + i)).status_code == 200
        # concurrent senders share group commits: each gets its own answer; 100..139 sent twice, one bad each
        bodies = [client_event(key, ocurredAt=1_764_000_000_100 + i % 40) for i in range(80)]
        bodies += [client_event(key, anonymousId=None)] * 4
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda body: requests.post(track, json=body, timeout=60), bodies))
        assert [a.status_code for a in answers] == [200] * 80 + [400] * 4
        assert all(a.json() == {"accepted": 1} for a in answers[:80])
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=30)
    assert service.returncode == 128 + signal.SIGTERM and "Traceback" not in err, (
        err
    )  # stopped as every command stops on SIGTERM
    assert key not in out + err
    db = wb.connect(url)
    times = db.sql("SELECT occurred_at FROM grouparoo.events ORDER BY occurred_at")["occurred_at"]
    db.dispose()
    assert len(times) == 48 and times.is_unique
