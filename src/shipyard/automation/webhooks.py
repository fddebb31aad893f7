"""Outgoing webhooks: each matching event POSTed as JSON, signed with HMAC-SHA256.

Headers of every delivery:

- ``X-Shipyard-Event``: the action (``version.registered``), ``X-Shipyard-Seq``: the event's seq
  (receivers deduplicate by it: delivery is at least once);
- ``X-Shipyard-Timestamp``: seconds since the epoch when this attempt was signed;
- ``X-Shipyard-Signature``: ``sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
  ``f"{timestamp}.".encode() + raw_body``.

A receiver recomputes the HMAC over the timestamp header, a dot and the raw body bytes, compares
it in constant time, and rejects timestamps older than a few minutes (a replayed request carries
an old timestamp, and changing it breaks the signature). :func:`verify` does exactly that.

Sending retries with exponential backoff (``monitoring.notify.post_with_retries``): a 2xx
acknowledges, a 4xx other than 408/429 is final, the rest is retried up to the webhook's
``max_attempts``; after the last failure the event goes to the dead-letter list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-Shipyard-Signature"
TIMESTAMP_HEADER = "X-Shipyard-Timestamp"
EVENT_HEADER = "X-Shipyard-Event"
SEQ_HEADER = "X-Shipyard-Seq"
TOLERANCE_S = 300
BACKOFF_S = 0.5  # first retry after this, then doubling


def body_of(event: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(event), separators=(",", ":"), sort_keys=True, default=str).encode()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: float = TOLERANCE_S) -> bool:
    """What a receiver does: the signature matches the timestamp and raw body, and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def send(url: str, secret: str, event: Mapping[str, Any], max_attempts: int, backoff_s: float | None = None) -> dict:
    """Deliver one event with retries; the outcome as ``{"ok", "attempts", "status"|"error"}``, never raises."""
    from shipyard.monitoring.notify import TIMEOUT_S, post_with_retries

    body = body_of(event)

    def prepare() -> tuple[bytes, dict[str, str]]:
        timestamp = str(int(time.time()))
        return body, {
            EVENT_HEADER: str(event.get("action", "")),
            SEQ_HEADER: str(event.get("seq", "")),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "user-agent": "shipyard-webhooks",
        }

    return post_with_retries(
        url, prepare, retries=max_attempts, backoff_s=BACKOFF_S if backoff_s is None else backoff_s, timeout_s=TIMEOUT_S
    )
