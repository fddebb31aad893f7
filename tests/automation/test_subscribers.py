"""Subscribers over the journal through the SDK (embedded and remote, SQLite and PostgreSQL): filters,
durable cursors, at-least-once delivery with failing and crashing handlers, idempotency by seq."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.automation.entities import Event
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound


class Crash(BaseException):
    """What a killed process looks like to the code after the handler: nothing runs, nothing is acked."""


def _experiments(client: Any, *names: str) -> list[int]:
    for name in names:
        client.create_experiment(name)
    return [e.seq for e in client.read_events(after=0, limit=1000, actions=["experiment.created"])][-len(names) :]


def test_filters_by_action_prefix_and_entity_type(client: Any) -> None:
    runs = client.create_subscriber("runs", actions=["run."])
    models = client.create_subscriber("models", entity_types=["model"])
    client.create_subscriber("created", actions=["experiment.created", "model.created"])
    head = client.read_events(after=0, limit=1000)[-1].seq
    client.create_subscriber("all", after=head)
    assert runs.cursor < models.cursor  # each starts after its own creation: new events only
    assert client.poll_events("created").events == [] and client.poll_events("all").events[0].seq > head
    client.ack_events("all", client.poll_events("all").scanned_to)

    exp = client.create_experiment("e")
    run = client.create_run(experiment=exp.id)
    client.log_params(run.id, {"a": 1})
    client.create_model("m")

    assert {e.action for e in client.poll_events("runs").events} == {"run.created", "run.params_logged"}
    assert [e.action for e in client.poll_events("models").events] == ["model.created"]
    assert [e.action for e in client.poll_events("created").events] == ["experiment.created", "model.created"]
    batch = client.poll_events("all")
    assert [e.seq for e in batch.events] == [e.seq for e in client.read_events(after=head + 1, limit=1000)]
    assert batch.scanned_to == batch.events[-1].seq

    # a subscriber whose filter leaves entries out still moves past them
    page = client.poll_events("models")
    client.ack_events("models", page.scanned_to)
    assert client.get_subscriber("models").cursor == client.read_events(after=0, limit=1000)[-1].seq
    assert client.poll_events("models").events == []
    # read_events filters like a subscriber; run.* is the prefix run.
    assert {e.entity_type for e in client.read_events(after=0, actions=["run.*"], limit=100)} == {"run"}
    assert [s.name for s in client.list_subscribers()] == ["all", "created", "models", "runs"]


def test_subscriber_validation(client: Any) -> None:
    client.create_subscriber("s")
    with pytest.raises(AlreadyExists):
        client.create_subscriber("s")
    with pytest.raises(InvalidInput):
        client.create_subscriber("t", after=-1)
    with pytest.raises(NotFound):
        client.poll_events("nobody")
    client.delete_subscriber("s")
    with pytest.raises(NotFound):
        client.get_subscriber("s")


def test_at_least_once_with_a_failing_handler(client: Any) -> None:
    client.create_subscriber("flaky", actions=["experiment."])
    seqs = _experiments(client, "a", "b", "c", "d")
    seen: list[int] = []
    failures = {seqs[2]: 2}  # the third event fails twice, then succeeds

    def handler(event: Event) -> None:
        seen.append(event.seq)
        if failures.get(event.seq):
            failures[event.seq] -= 1
            raise RuntimeError("receiver down")

    consumer = client.subscribe("flaky", handler, batch=10)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            consumer.run_once()
        assert client.get_subscriber("flaky").cursor == seqs[1]  # acknowledged up to the one before
    assert consumer.run_once() == 2
    assert seen == [seqs[0], seqs[1], seqs[2], seqs[2], seqs[2], seqs[3]]  # redelivered, none lost
    assert client.get_subscriber("flaky").cursor >= seqs[3]
    assert consumer.run_once() == 0


def test_a_restarted_subscriber_resumes_after_its_last_ack(client: Any) -> None:
    client.create_subscriber("worker", actions=["experiment."])
    seqs = _experiments(client, *[f"x{i}" for i in range(6)])
    handled: list[int] = []

    def crashing(event: Event) -> None:
        handled.append(event.seq)
        if len(handled) == 3:
            raise Crash  # killed after handling the third, before acknowledging it

    with pytest.raises(Crash):
        client.subscribe("worker", crashing).run_once()
    assert client.get_subscriber("worker").cursor == seqs[1]

    # a new consumer (a new process) resumes after the last acknowledged seq
    resumed: list[int] = []
    assert client.subscribe("worker", lambda e: resumed.append(e.seq)).run_once() == 4
    assert resumed == seqs[2:]  # the third again (handled but not acked), then the rest
    assert sorted(set(handled + resumed)) == seqs


def test_idempotency_by_seq(client: Any) -> None:
    client.create_subscriber("once", actions=["experiment."])
    seqs = _experiments(client, "p", "q")
    effects: list[int] = []

    def handler(event: Event) -> None:
        if client.mark_processed("once", event.seq):
            effects.append(event.seq)

    for _ in range(2):  # the same events delivered twice (no ack in between)
        for event in client.poll_events("once").events:
            handler(event)
    assert effects == seqs


def test_a_background_consumer_follows_new_events(client: Any) -> None:
    import threading

    client.create_subscriber("live", actions=["experiment.created"])
    got: list[str] = []
    done = threading.Event()

    def handler(event: Event) -> None:
        got.append(event.entity_id)
        if len(got) == 3:
            done.set()

    consumer = client.subscribe("live", handler, interval=0.05).start()
    try:
        ids = [client.create_experiment(f"live{i}").id for i in range(3)]
        consumer.notify()
        assert done.wait(20)
    finally:
        consumer.stop()
    assert got == ids
