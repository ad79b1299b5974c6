"""API keys in the database (seed 001's ``apiKeys``): create, list, revoke, and find a key's producer.

A key is ``wbk_`` + 43 URL-safe characters (32 random bytes); only its SHA-256 is stored, so a key
is shown once, when created, and never again. The key's name (any text of 1 to 255 UTF-8 bytes,
e.g. ``Web API``) is the producer recorded in ``events.producer_id``. Keys declared under
``events.api_keys`` in ``workbench.yml`` keep working beside the table's; ``keys list`` names them
so they can be moved into the table.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.db.connection import SqlDatabase
from workbench.errors import ConfigError
from workbench.events.settings import EventSettings, event_settings
from workbench.events.statements import api_key_statements
from workbench.events.store import ensure_event_store

KEY_PREFIX = "wbk_"
NAME_BYTES = 255


def key_sha256(key: str) -> str:
    """The hex SHA-256 of ``key``'s UTF-8 bytes: what the table stores in place of the key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(db: SqlDatabase, name: str, settings: EventSettings | None = None) -> str:
    """Store a new key named ``name`` and return it (the only time it is seen); a ConfigError when
    the name is not 1 to 255 bytes of text or an active key already has it."""
    settings = settings or event_settings()
    _check_name(name, settings)
    ensure_event_store(db, settings)
    statements = api_key_statements(settings.schema)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as conn:
        if conn.execute(sa.text(statements["active_by_name"]), {"name": name}).first() is not None:
            raise ConfigError(f"An active API key is already named {name!r}: revoke it first or choose another name.")
        conn.execute(
            sa.text(statements["insert"]),
            {"id": f"key_{uuid.uuid4()}", "name": name, "key_sha256": key_sha256(key), "now": _now()},
        )
    return key


def list_api_keys(db: SqlDatabase, settings: EventSettings | None = None):
    """A DataFrame of every key: name, created_at, revoked_at (UTC) and where it is kept
    (``database`` or the config file, whose keys have no times)."""
    import pandas as pd

    settings = settings or event_settings()
    ensure_event_store(db, settings)
    stored = db.sql(api_key_statements(settings.schema)["listing"], limit=None)
    stored["kept_in"] = "database"
    configured = pd.DataFrame(
        {"name": list(settings.api_keys), "created_at": None, "revoked_at": None, "kept_in": settings.source}
    )
    return pd.concat([stored, configured], ignore_index=True) if len(configured) else stored


def revoke_api_key(db: SqlDatabase, name: str, settings: EventSettings | None = None) -> None:
    """Revoke the active key named ``name``: events it sends from now on are refused."""
    settings = settings or event_settings()
    ensure_event_store(db, settings)
    with db.transaction() as conn:
        revoked = conn.execute(sa.text(api_key_statements(settings.schema)["revoke"]), {"name": name, "now": _now()})
        if revoked.rowcount:
            return
    if name in settings.api_keys:
        raise ConfigError(f"The key {name!r} is declared in {settings.source}: delete it from events.api_keys there.")
    raise ConfigError(f"No active API key is named {name!r}: `workbench events keys list` shows the keys.")


def producer_for_key(db: SqlDatabase, key: str, settings: EventSettings | None = None) -> str:
    """The producer (key name) of ``key``: an active key of the table, else one of ``events.api_keys``;
    a ConfigError that never echoes the key otherwise. The store must exist (:func:`ensure_event_store`)."""
    settings = settings or event_settings()
    if isinstance(key, str) and key:
        found = db.sql(api_key_statements(settings.schema)["producer_of"], key_sha256=key_sha256(key))
        if len(found):
            return str(found.iloc[0, 0])
        if (producer := settings.configured_producer(key)) is not None:
            return producer
    raise ConfigError(
        f"The API key given is not an active key of the api_keys table nor one of the events.api_keys in "
        f"{settings.source}: create one with `workbench events keys create NAME`."
    )


def _check_name(name: str, settings: EventSettings) -> None:
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ConfigError(f"An API key's name must be non-blank text without NUL, not {name!r}.")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_BYTES:
        raise ConfigError(f"An API key's name must be at most {NAME_BYTES} bytes of UTF-8.")
    if name in settings.api_keys:
        raise ConfigError(
            f"{name!r} already names a key in events.api_keys of {settings.source}: choose another name, or delete "
            "that entry first to move the producer into the api_keys table."
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
