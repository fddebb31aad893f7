"""Notification channels for alerts: a webhook (JSON POST with retries), a Slack-compatible webhook
(``{"text": ..., "blocks": [...]}``) and the log.

Delivery never raises: each attempt's outcome is returned and stored on the alert, so a dead
receiver is visible in ``shipyard monitor alerts`` rather than lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.core.errors import InvalidInput

log = logging.getLogger("shipyard.alerts")
CHANNEL_TYPES = ("webhook", "slack", "log")
RETRIES = 3
BACKOFF_S = 0.5
TIMEOUT_S = 5.0


def check_channels(channels: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Channels as ``[{"type": "webhook", "url": ...}, {"type": "log"}]``; ``"log"`` or a URL string is
    shorthand (a URL is a webhook; ``slack:URL`` a Slack webhook). The default is the log."""
    out: list[dict[str, Any]] = []
    for i, channel in enumerate(channels if channels is not None else ["log"]):
        if isinstance(channel, str):
            if channel == "log":
                channel = {"type": "log"}
            elif channel.startswith("slack:"):
                channel = {"type": "slack", "url": channel[len("slack:") :]}
            else:
                channel = {"type": "webhook", "url": channel}
        if not isinstance(channel, Mapping) or channel.get("type") not in CHANNEL_TYPES:
            raise InvalidInput(f"channel {i}: type must be one of {', '.join(CHANNEL_TYPES)}", field=f"channels[{i}]")
        if channel["type"] != "log":
            url = channel.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise InvalidInput(f"channel {i}: {channel['type']} needs an http(s) url", field=f"channels[{i}].url")
        out.append(dict(channel))
    return out


def slack_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(str(event.get("status")), ":bell:")
    title = f"{icon} [{event.get('severity', '').upper()}] {event.get('rule')} {event.get('status')}"
    lines = [str(event.get("message", ""))]
    if event.get("runbook"):
        lines.append(f"Runbook: {event['runbook']}")
    if event.get("owner"):
        lines.append(f"Owner: {event['owner']}")
    text = title + "\n" + "\n".join(lines)
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
        ],
    }


def deliver(channels: Sequence[Mapping[str, Any]], event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Send ``event`` (an alert as JSON plus ``status``) to every channel; one outcome per channel."""
    outcomes = []
    for channel in channels:
        kind = channel["type"]
        if kind == "log":
            level = logging.WARNING if event.get("status") == "firing" else logging.INFO
            log.log(level, "alert %s %s: %s", event.get("rule"), event.get("status"), event.get("message"))
            outcomes.append({"type": "log", "ok": True, "attempts": 1})
            continue
        body = slack_payload(event) if kind == "slack" else dict(event)
        outcomes.append({"type": kind, "url": channel["url"], **_post(channel["url"], body)})
    return outcomes


def _post(url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    import httpx

    error = None
    for attempt in range(1, RETRIES + 1):
        try:
            response = httpx.post(url, json=body, timeout=TIMEOUT_S)
            if response.status_code < 300:
                return {"ok": True, "attempts": attempt, "status": response.status_code}
            error = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break  # the receiver refuses this payload; retrying will not change its mind
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < RETRIES:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    log.warning("alert notification to %s failed: %s", url, error)
    return {"ok": False, "attempts": attempt, "error": error}
