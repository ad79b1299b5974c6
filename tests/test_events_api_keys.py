"""API keys in the database: created once and shown once, only a hash stored, listed, revoked, used
by file ingestion; keys of workbench.yml keep working. On DuckDB and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.errors import ConfigError
from workbench.events import ingest
from workbench.events.api_keys import create_api_key, list_api_keys, producer_for_key, revoke_api_key
from workbench.events.settings import EventSettings

CONFIG_KEY = "config-key-0123456"
SETTINGS = EventSettings(schema="grouparoo", api_keys={"web": CONFIG_KEY}, source="the test settings")


@pytest.fixture
def db(backend, request):
    url = backend.new_url(f"keys_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())[-45:]}")
    database = wb.connect(url, read_only=False)
    yield database
    database.dispose()


def test_a_key_is_stored_as_its_hash_and_names_its_producer(db):
    key = create_api_key(db, "Web API", SETTINGS)
    rows = db.sql("SELECT name, key_sha256, revoked_at FROM grouparoo.api_keys")
    assert rows["name"].tolist() == ["Web API"]
    assert rows["key_sha256"].tolist() == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in db.sql("SELECT * FROM grouparoo.api_keys").to_string()
    assert producer_for_key(db, key, SETTINGS) == "Web API"
    assert producer_for_key(db, CONFIG_KEY, SETTINGS) == "web"
    counts = ingest(db, io.BytesIO(b'{"type": "page", "anonymousId": "a1"}\n'), key, settings=SETTINGS)
    assert counts.stored == 1
    assert db.sql("SELECT producer_id FROM grouparoo.events")["producer_id"].tolist() == ["Web API"]


def test_names_are_unique_among_active_keys_and_revoking_refuses_the_key(db):
    first = create_api_key(db, "iPhone app", SETTINGS)
    with pytest.raises(ConfigError, match="already named 'iPhone app'"):
        create_api_key(db, "iPhone app", SETTINGS)
    with pytest.raises(ConfigError, match=r"already names a key in events\.api_keys"):
        create_api_key(db, "web", SETTINGS)
    revoke_api_key(db, "iPhone app", SETTINGS)
    with pytest.raises(ConfigError, match="not an active key") as caught:
        producer_for_key(db, first, SETTINGS)
    assert first not in str(caught.value)
    second = create_api_key(db, "iPhone app", SETTINGS)
    assert producer_for_key(db, second, SETTINGS) == "iPhone app"
    listing = list_api_keys(db, SETTINGS)
    assert listing["name"].tolist() == ["iPhone app", "iPhone app", "web"]
    assert listing["revoked_at"].notna().tolist() == [True, False, False]
    assert listing["kept_in"].tolist() == ["database", "database", "the test settings"]
    with pytest.raises(ConfigError, match="No active API key is named 'nobody'"):
        revoke_api_key(db, "nobody", SETTINGS)
    with pytest.raises(ConfigError, match=r"delete it from events\.api_keys"):
        revoke_api_key(db, "web", SETTINGS)
    for bad in ("", "   ", "a\x00b", "x" * 256):
        with pytest.raises(ConfigError, match=r"An API key.s name"):
            create_api_key(db, bad, SETTINGS)


def test_the_cli_prints_a_new_key_once_as_its_last_line(tmp_path, monkeypatch):
    from workbench.cli import app

    config = tmp_path / "workbench.yml"
    config.write_text(f"events:\n  api_keys:\n    web: {CONFIG_KEY}\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(config))
    url = f"duckdb:///{tmp_path / 'keys.duckdb'}"
    runner = CliRunner()
    created = runner.invoke(app, ["events", "keys", "create", "Web API", "--database", url])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"wbk_[A-Za-z0-9_-]{43}", key)
    listed = runner.invoke(app, ["events", "keys", "list", "--database", url])
    assert listed.exit_code == 0 and "Web API" in listed.output and key not in listed.output
    assert "Keys kept in workbench.yml still work" in listed.output and CONFIG_KEY not in listed.output
    sent = runner.invoke(
        app,
        ["ingest", "events", "-", "--producer-key", key, "--database", url],
        input=b'{"type": "a", "userId": "u"}\n',
    )
    assert sent.exit_code == 0 and "stored 1" in sent.output and key not in sent.output
    revoked = runner.invoke(app, ["events", "keys", "revoke", "Web API", "--database", url])
    assert revoked.exit_code == 0 and "Revoked the API key 'Web API'" in revoked.output
    refused = runner.invoke(
        app,
        ["ingest", "events", "-", "--producer-key", key, "--database", url],
        input=b'{"type": "a", "userId": "u"}\n',
    )
    assert refused.exit_code == 1 and key not in refused.output and "not an active key" in refused.output
    again = runner.invoke(app, ["events", "keys", "revoke", "Web API", "--database", url])
    assert again.exit_code == 1 and "No active API key is named 'Web API'" in again.output
