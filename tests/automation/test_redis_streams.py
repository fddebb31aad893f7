"""The Redis Streams transport against the real Redis of every development and CI machine: racing
publishers put each seq in the stream exactly once and in order; a consumer that crashes leaves its
entries pending and another consumer of the group claims them; webhooks delivered through Redis."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shipyard.automation.entities import Event
from shipyard.automation.redis_streams import Publisher, RedisConsumer, connect
from shipyard.services import Services


class Crash(BaseException):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from shipyard.core.settings import Settings

    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    s = Services(Settings.resolve(home=tmp_path / "home", store_uri=store_uri, remote_uri=""))
    yield s
    s.close()


def _write(services: Services, n: int, prefix: str = "e") -> None:
    for i in range(n):
        services.tracking.create_experiment(f"{prefix}{i}")


def test_racing_publishers_append_each_seq_exactly_once_in_order(services: Services, redis_prefix: str) -> None:
    _write(services, 20)
    connections = [connect() for _ in range(4)]
    publishers = [Publisher(services.events, r, redis_prefix, batch=7) for r in connections]
    stop = threading.Event()

    def writer() -> None:
        for i in range(30):
            services.tracking.create_experiment(f"w{i}")
        stop.set()

    def publish(p: Publisher) -> None:
        while not stop.is_set():
            p.publish_once()
        p.publish_all()

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=publish, args=(p,)) for p in publishers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    publishers[0].publish_all()

    entries = connections[0].xrange(f"{redis_prefix}events")
    seqs = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    assert seqs == [e.seq for e in services.events.read_events(after=0, limit=1000)]  # each once, in order
    assert publishers[1].published() == seqs[-1]
    assert [Event.model_validate_json(fields[b"event"]).seq for _, fields in entries] == seqs
    for r in connections:
        r.close()


def test_a_crashed_consumers_pending_entries_are_claimed_by_another(services: Services, redis_prefix: str) -> None:
    r = connect()
    services.events.create_subscriber("g", actions=["experiment.created"])
    _write(services, 5)
    services.registry.create_model("not-matched")
    Publisher(services.events, r, redis_prefix).publish_all()
    expected = [e.seq for e in services.events.read_events(after=0, actions=["experiment.created"], limit=100)]

    handled_a: list[int] = []

    def crashing(event: Event) -> None:
        handled_a.append(event.seq)
        if len(handled_a) == 2:
            raise Crash  # killed: read (so pending) but not acknowledged

    a = RedisConsumer(services.events, r, "g", crashing, prefix=redis_prefix, consumer="a", batch=10)
    with pytest.raises(Crash):
        a.run_once()
    assert a.pending() == 5  # 6 entries read (5 experiments and a model), only the first acknowledged
    b_seen: list[int] = []
    b = RedisConsumer(
        services.events, r, "g", lambda e: b_seen.append(e.seq), prefix=redis_prefix, consumer="b", claim_idle_ms=50
    )
    time.sleep(0.1)  # longer than claim_idle_ms: consumer "a" is presumed dead
    assert b.run_once() == 4
    assert sorted(set(handled_a) | set(b_seen)) == expected  # none lost
    assert handled_a[1] in b_seen  # handled before the crash but never acked: delivered again
    assert b.pending() == 0
    assert services.events.get_subscriber("g").cursor >= expected[-1]
    r.close()


def test_a_new_group_starts_at_the_subscribers_cursor(services: Services, redis_prefix: str) -> None:
    r = connect()
    _write(services, 3, "old")
    services.events.create_subscriber("late", actions=["experiment."])
    _write(services, 2, "new")
    Publisher(services.events, r, redis_prefix).publish_all()
    seen: list[str] = []
    consumer = RedisConsumer(
        services.events, r, "late", lambda e: seen.append(e.payload["after"]["name"]), prefix=redis_prefix
    )
    consumer.run_once()
    assert seen == ["new0", "new1"]
    r.close()


def test_webhooks_through_redis(services: Services, redis_prefix: str, receivers: Any) -> None:
    from shipyard.automation import webhooks
    from shipyard.automation.runner import WebhookRunner

    ok, down = receivers(), receivers([], then=503)
    hook = services.events.create_webhook("ok", ok.url, actions=["experiment.created"])
    services.events.create_webhook("down", down.url, actions=["experiment.created"], max_attempts=2)
    _write(services, 3)
    runners = [WebhookRunner(services.events, "redis", prefix=redis_prefix) for _ in range(2)]
    for runner in runners:  # two runners share the work: each event is delivered once per webhook
        runner.run_once()
    assert [e["payload"]["after"]["name"] for e in ok.events] == ["e0", "e1", "e2"]
    assert all(webhooks.verify(hook.secret or "", h, raw) for h, raw in ok.requests)
    assert [d.seq for d in services.events.list_dead_letters(subscriber="down")] == [e["seq"] for e in ok.events]
    assert len(down.requests) == 6


def test_a_deleted_webhooks_group_is_dropped(services: Services, redis_prefix: str, receivers: Any) -> None:
    from shipyard.automation.runner import WebhookRunner

    r = connect()
    services.events.create_webhook("short-lived", receivers().url)
    runner = WebhookRunner(services.events, "redis", prefix=redis_prefix)
    runner.run_once()
    assert [g["name"] for g in r.xinfo_groups(f"{redis_prefix}events")] == [b"short-lived"]
    services.events.delete_webhook("short-lived")
    runner.run_once()
    assert r.xinfo_groups(f"{redis_prefix}events") == []
    r.close()
