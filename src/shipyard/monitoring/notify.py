"""Notification channels for alerts: a webhook (JSON POST with retries), a Slack-compatible webhook
(``{"text": ..., "blocks": [...]}``) and the log.

Delivery never raises: each attempt's outcome is returned and stored on the alert, so a dead
receiver is visible in ``shipyard monitor alerts`` rather than lost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
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
    outcome = post_with_retries(url, lambda: (json.dumps(body, default=str).encode(), {}))
    if not outcome["ok"]:
        log.warning("alert notification to %s failed: %s", url, outcome["error"])
    return outcome


def post_with_retries(
    url: str,
    prepare: Callable[[], tuple[bytes, Mapping[str, str]]],
    *,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    timeout_s: float = TIMEOUT_S,
) -> dict[str, Any]:
    """POST a JSON body with bounded retries and exponential backoff (``backoff_s``, twice that, …).

    ``prepare()`` returns the body and extra headers before each attempt (so a signature may carry a
    fresh timestamp). A 2xx succeeds; a 4xx other than 408/429 is final, since the receiver refuses
    this payload; anything else (5xx, 408, 429, connection errors) is retried. Shared by alert
    channels and event webhooks (``shipyard.automation.webhooks``). Never raises.
    """
    import httpx

    error = None
    status = None
    attempt = 0
    for attempt in range(1, max(1, retries) + 1):
        content, headers = prepare()
        try:
            response = httpx.post(
                url, content=content, headers={"content-type": "application/json", **headers}, timeout=timeout_s
            )
            status = response.status_code
            if status < 300:
                return {"ok": True, "attempts": attempt, "status": status}
            error = f"HTTP {status}"
            if 400 <= status < 500 and status not in (408, 429):
                break  # the receiver refuses this payload; retrying will not change its mind
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            status = None
            error = f"{type(exc).__name__}: {exc}"
        if attempt < retries:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    outcome: dict[str, Any] = {"ok": False, "attempts": attempt, "error": error}
    if status is not None:
        outcome["last_status"] = status
    return outcome
