"""What an HTTP sender posts, turned into the records file ingestion validates, and where it came from.

``@grouparoo/client-web`` (0.3.3) posts one JSON object per event: ``apiKey``, ``type``, ``data``,
``userId``, ``anonymousId``, ``sessionId`` and ``ocurredAt`` (spelled so; milliseconds since the
epoch). Server-side senders may spell it ``occurredAt`` (ISO 8601 or epoch milliseconds) and send a
``messageId``. The record keeps every field but the key: ``sessionId`` becomes the data row
``sessionId``. A client that retries sends the same object again, so an event without a
``messageId`` but with a time gets the id ``sha256:`` + the SHA-256 of its JSON (sorted keys, no
key); resending it stores nothing twice. (Two identical events in the same millisecond of the same
session are therefore one event.)
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from typing import Any

from workbench.events.ingest import Invalid

CLIENT_TIME_FIELDS = ("occurredAt", "ocurredAt")  # the second is @grouparoo/client-web's spelling


def record_of(body: Any) -> tuple[dict[str, Any], str]:
    """(the record for :func:`workbench.events.ingest.validated_event`, its JSON text without the API
    key for the quarantine); :class:`Invalid` when ``body`` is not a JSON object or its session
    id disagrees with ``data.sessionId``."""
    if not isinstance(body, dict):
        raise Invalid(f"an event must be a JSON object, not {type(body).__name__}")
    kept = {k: v for k, v in body.items() if k != "apiKey"}
    raw = json.dumps(kept, ensure_ascii=True, sort_keys=True, default=str)
    record = {k: kept.get(k) for k in ("type", "userId", "anonymousId", "messageId")}
    record["occurredAt"] = next((kept[k] for k in CLIENT_TIME_FIELDS if kept.get(k) is not None), None)
    data, session = kept.get("data"), kept.get("sessionId")
    if session is not None and session != "":
        if data is None:
            data = {}
        if isinstance(data, dict):
            if "sessionId" in data and data["sessionId"] != session:
                raise Invalid("sessionId and data.sessionId differ; send one of them")
            data = {**data, "sessionId": session}
    record["data"] = data
    if record["messageId"] in (None, "") and record["occurredAt"] is not None:
        record["messageId"] = "sha256:" + hashlib.sha256(raw.encode("ascii")).hexdigest()
    return record, raw


def sender_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]) -> str | None:
    """The sender's IP address: the connection's, unless it is one of ``trusted_proxies`` (addresses
    or networks); then the right-most ``X-Forwarded-For`` entry that is not a trusted proxy."""
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if peer is None or not trusted(peer) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop if _is_address(hop) else peer
    return hops[0] if hops else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
