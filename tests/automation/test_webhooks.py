"""Outgoing webhooks against real loopback receivers, through the SDK in every mode: signatures,
retries with backoff, dead letters after the last attempt, replay, filters."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from shipyard.automation import webhooks
from shipyard.core.errors import InvalidInput, NotFound

SECRET = "s3cret-s3cret-s3cret"


def test_deliveries_are_signed_and_verify(client: Any, receivers: Any) -> None:
    receiver = receivers()
    hook = client.create_webhook("ci", receiver.url, secret=SECRET, actions=["experiment."])
    assert hook.secret == SECRET and hook.kind == "webhook"
    assert client.list_webhooks()[0].secret is None  # shown once, at creation
    exp = client.create_experiment("signed")
    client.create_model("ignored")  # not matched by the filter

    [delivery] = client.deliver_webhooks()
    assert delivery.ok and delivery.attempts == 1 and delivery.status == 204
    [(headers, raw)] = receiver.requests
    event = json.loads(raw)
    assert event["action"] == "experiment.created" and event["entity_id"] == exp.id and event["seq"] == delivery.seq
    assert headers["X-Shipyard-Seq"] == str(event["seq"]) and headers["X-Shipyard-Event"] == "experiment.created"
    assert webhooks.verify(SECRET, headers, raw)
    # what the receiver checks: the HMAC over "<timestamp>." + the raw body
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), headers["X-Shipyard-Timestamp"].encode() + b"." + raw, hashlib.sha256)
    assert headers["X-Shipyard-Signature"] == "sha256=" + expected.hexdigest()
    assert not webhooks.verify("another-secret-value", headers, raw)
    assert not webhooks.verify(SECRET, headers, raw.replace(b"signed", b"forged"))
    stale = {**headers, "X-Shipyard-Timestamp": str(int(time.time()) - 3600)}
    stale["X-Shipyard-Signature"] = webhooks.sign(SECRET, stale["X-Shipyard-Timestamp"], raw)
    assert not webhooks.verify(SECRET, stale, raw)  # a replayed old request

    assert client.deliver_webhooks() == []  # the cursor moved past everything
    assert client.get_subscriber("ci").cursor >= delivery.seq


def test_retries_then_dead_letter_then_replay(client: Any, receivers: Any) -> None:
    receiver = receivers([500, 503], then=500)
    client.create_webhook("flaky", receiver.url, secret=SECRET, actions=["experiment.created"], max_attempts=3)
    first = client.create_experiment("one")
    [delivery] = client.deliver_webhooks()
    assert not delivery.ok and delivery.attempts == 3 and delivery.status == 500
    assert len(receiver.requests) == 3  # retried, bounded
    [letter] = client.list_dead_letters()
    assert letter.subscriber == "flaky" and letter.seq == delivery.seq and letter.event["entity_id"] == first.id
    assert letter.attempts == 3 and "HTTP 500" in letter.error
    assert client.get_subscriber("flaky").cursor >= delivery.seq  # the next events are not held up

    second = client.create_experiment("two")
    [failed] = client.deliver_webhooks()  # still failing
    assert not failed.ok
    assert [d.seq for d in client.list_dead_letters(subscriber="flaky")] == [letter.seq, failed.seq]

    receiver.then = 200  # the receiver is back
    replayed = client.replay_dead_letters(subscriber="flaky")
    assert [r.ok for r in replayed] == [True, True]
    assert client.list_dead_letters() == []
    assert [e["entity_id"] for e in receiver.events[-2:]] == [first.id, second.id]
    assert webhooks.verify(SECRET, *receiver.requests[-1])
    assert client.replay_dead_letters() == []


def test_a_refusing_receiver_is_not_retried_but_a_throttling_one_is(client: Any, receivers: Any) -> None:
    refusing, throttling = receivers([], then=400), receivers([429, 408])
    client.create_webhook("refuse", refusing.url, actions=["model.created"])
    client.create_webhook("throttle", throttling.url, actions=["model.created"])
    client.create_model("m")
    by_name = {d.subscriber: d for d in client.deliver_webhooks()}
    assert by_name["refuse"].ok is False and by_name["refuse"].attempts == 1 and by_name["refuse"].status == 400
    assert by_name["throttle"].ok and by_name["throttle"].attempts == 3
    assert [d.subscriber for d in client.list_dead_letters()] == ["refuse"]
    # a failed replay keeps the letter, with the attempts added up
    [again] = client.replay_dead_letters(ids=[client.list_dead_letters()[0].id])
    assert not again.ok and again.dead_letter_id is not None
    assert client.list_dead_letters()[0].attempts == 2


def test_unreachable_receivers_and_validation(client: Any) -> None:
    from tests.conftest import free_port

    client.create_webhook("gone", f"http://127.0.0.1:{free_port()}/x", actions=["model."], max_attempts=2)
    client.create_model("m")
    [delivery] = client.deliver_webhooks()
    assert not delivery.ok and delivery.attempts == 2 and "Connect" in (delivery.error or "")
    with pytest.raises(InvalidInput):
        client.create_webhook("bad", "ftp://x")
    with pytest.raises(InvalidInput):
        client.create_webhook("short", "http://127.0.0.1/x", secret="short")
    with pytest.raises(InvalidInput):
        client.create_webhook("many", "http://127.0.0.1/x", max_attempts=100)
    client.create_subscriber("plain")
    with pytest.raises(NotFound):
        client.delete_webhook("plain")
    client.delete_webhook("gone")
    assert client.list_dead_letters() == []  # a webhook's dead letters go with it
    assert [s.name for s in client.list_subscribers()] == ["plain"]


def test_the_background_runner_delivers(client: Any, receivers: Any) -> None:
    from shipyard.automation.runner import WebhookRunner

    receiver = receivers()
    client.create_webhook("bg", receiver.url, actions=["experiment.created"])
    runner = WebhookRunner(client, interval=0.05).start()
    try:
        ids = [client.create_experiment(f"bg{i}").id for i in range(3)]
        deadline = time.monotonic() + 20
        while len(receiver.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert [e["entity_id"] for e in receiver.events] == ids
