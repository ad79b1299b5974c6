"""The ``events:`` section of ``workbench.yml``: the schema holding the event store, the API keys
that name producers, and the declared profile properties.

    events:
      schema: grouparoo              # where the tables live (GrowthBook's sample owns public.events)
      api_keys:                      # producer name -> secret key sent by that producer (kept working;
        web: "k-3f9…"                #   new keys go to the api_keys table: workbench events keys create)
      properties:                    # see workbench.events.properties
        purchases: {type: purchase, aggregate: count}

The size limits of an ingested record (:class:`FieldLimits`) are fixed here, in one place.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.config_file import config_section
from workbench.db.dialects import LOWER_CASE_IDENTIFIER
from workbench.errors import ConfigError
from workbench.redaction import register_secret

DEFAULT_SCHEMA = "grouparoo"
NAME = LOWER_CASE_IDENTIFIER
SECTION_KEYS = {"schema", "api_keys", "properties", "allowed_origins", "trusted_proxies", "resolve_every_seconds"}
ORIGIN = re.compile(r"^https?://[^/\s?#]+$")  # scheme://host[:port], as browsers send in Origin


@dataclass(frozen=True)
class FieldLimits:
    """The largest values ingestion stores, in UTF-8 bytes; a record over any of them is quarantined.

    Segment's 32 KB per event for the record; 255 bytes for names and ids, far below PostgreSQL's
    B-tree entry limit (about 2,700 bytes) on the indexes over type, the ids and message_id.
    """

    type_bytes: int = 255  # type
    id_bytes: int = 255  # userId, anonymousId and messageId, each
    key_bytes: int = 255  # each key of data
    record_bytes: int = 32_768  # the whole line (a CSV record: its lines) as read
    request_bytes: int = 4_194_304  # one HTTP request body (workbench events serve), a batch included
    batch_events: int = 1_000  # events in one batch request


@dataclass(frozen=True)
class EventSettings:
    """Validated event settings; ``api_keys`` maps producer name -> key and never prints."""

    schema: str = DEFAULT_SCHEMA
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "defaults"
    limits: FieldLimits = field(default_factory=FieldLimits)
    allowed_origins: tuple[str, ...] = ("*",)  # origins whose pages may post events ("*": any)
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed
    resolve_every_seconds: float = 60.0  # the service's identity resolution and property refresh period

    def configured_producer(self, key: str) -> str | None:
        """The producer name whose ``events.api_keys`` entry is ``key``, or None (the keys of the
        ``api_keys`` table are :func:`workbench.events.api_keys.producer_for_key`'s)."""
        for producer, known in self.api_keys.items():
            if hmac.compare_digest(key.encode("utf-8", "surrogatepass"), known.encode("utf-8")):
                return producer
        return None


def validated_name(value: object, what: str) -> str:
    """``value`` when it is a lower-case SQL identifier, else a ConfigError naming ``what``."""
    if not isinstance(value, str) or not NAME.match(value):
        raise ConfigError(f"{what} must be a lower-case identifier (letters, digits, _), not {value!r}.")
    return value


def event_settings(path: Path | None = None) -> EventSettings:
    """The ``events:`` section of the project config (defaults when absent), validated."""
    path = path or paths.config_path()
    section = config_section(path, "events", SECTION_KEYS)
    schema = validated_name(section.get("schema", DEFAULT_SCHEMA), f"{path}: events.schema")
    keys = section.get("api_keys") or {}
    if not isinstance(keys, dict):
        raise ConfigError(f"{path}: events.api_keys must map producer names to keys, e.g. `web: <secret>`.")
    api_keys = {}
    for producer, key in keys.items():
        validated_name(producer, f"{path}: the producer name under events.api_keys")
        if not isinstance(key, str) or len(key) < 8:
            raise ConfigError(f"{path}: events.api_keys.{producer} must be a string of at least 8 characters.")
        register_secret(key)
        api_keys[producer] = key
    properties = section.get("properties") or {}
    if not isinstance(properties, dict) or not all(isinstance(v, dict) for v in properties.values()):
        raise ConfigError(
            f"{path}: events.properties must map property names to mappings like `{{type: purchase, aggregate: count}}`."
        )
    return EventSettings(
        schema,
        api_keys,
        properties,
        str(path),
        allowed_origins=_origins(section.get("allowed_origins", ["*"]), path),
        trusted_proxies=_proxies(section.get("trusted_proxies", []), path),
        resolve_every_seconds=_period(section.get("resolve_every_seconds", 60), path),
    )


def _origins(value: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(o, str) and (o == "*" or ORIGIN.match(o)) for o in value):
        raise ConfigError(
            f'{path}: events.allowed_origins must be a list of origins like https://shop.example.com (no path), or ["*"] for any.'
        )
    return tuple(value)


def _proxies(value: Any, path: Path) -> tuple[str, ...]:
    try:
        if not isinstance(value, list):
            raise TypeError
        for item in value:
            ipaddress.ip_network(item, strict=False)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{path}: events.trusted_proxies must be a list of IP addresses or networks (e.g. [10.0.0.0/8, 127.0.0.1])."
        ) from None
    return tuple(value)


def _period(value: Any, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86_400:
        raise ConfigError(f"{path}: events.resolve_every_seconds must be a number of seconds above 0 and up to 86400.")
    return float(value)
