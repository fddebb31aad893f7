"""Pipeline schedules through the SDK (embedded and remote, SQLite and PostgreSQL) and the CLI."""

from __future__ import annotations

import threading

import pytest

from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.time import now_ms
from shipyard.pipelines.scheduler import Scheduler
from shipyard.pipelines.schedules import next_after, occurrences

MINUTE = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE  # a whole minute


def test_create_get_list_and_journal(client) -> None:
    schedule = client.create_schedule("nightly", "pkg.pipes:train", "0 3 * * *", {"C": 0.5}, start_at=T0)
    assert schedule.next_run_at == next_after("0 3 * * *", T0)
    assert schedule.next_run_at % (24 * 60 * MINUTE) == 3 * 60 * MINUTE  # 03:00 UTC
    assert client.get_schedule("nightly").params == {"C": 0.5}
    assert [s.name for s in client.list_schedules()] == ["nightly"]
    actions = [e.action for e in client.read_journal()]
    assert "schedule.created" in actions


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"target": "not a reference"}, "target"),
        ({"target": "pkg.mod"}, "target"),
        ({"catchup": "sometimes"}, "catchup"),
        ({"executor": "threads"}, "executor"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, kwargs, field) -> None:
    args = {"name": "s", "target": "pkg.mod:fn", "cron": "* * * * *", **kwargs}
    with pytest.raises(InvalidInput) as err:
        client.create_schedule(**args)
    assert err.value.field == field
    assert client.list_schedules() == []


def test_duplicate_and_unknown_names(client) -> None:
    client.create_schedule("s", "pkg.mod:fn", "* * * * *")
    with pytest.raises(AlreadyExists):
        client.create_schedule("s", "pkg.mod:fn", "* * * * *")
    with pytest.raises(NotFound):
        client.get_schedule("nope")
    with pytest.raises(NotFound):
        client.claim_schedule("nope")


@pytest.mark.parametrize(
    ("catchup", "expected_fires", "expected_skipped"),
    [("all", 6, 0), ("latest", 1, 5), ("skip", 1, 5)],
)
def test_catchup_policies_after_downtime(client, catchup, expected_fires, expected_skipped) -> None:
    client.create_schedule("every-minute", "pkg.mod:fn", "* * * * *", catchup=catchup, start_at=T0 - 1)
    # No scheduler ran from T0 to T0 + 5.5 minutes (occurrences at T0, T0+1m, ..., T0+5m); the last
    # one is 30 s old, which "skip" still counts as on time.
    now = T0 + 5 * MINUTE + 30_000
    claim = client.claim_schedule("every-minute", now=now)
    assert len(claim.fire_times) == expected_fires
    assert claim.skipped == expected_skipped
    if claim.fire_times:
        assert claim.fire_times[-1] == T0 + 5 * MINUTE
        assert claim.fire_times == sorted(claim.fire_times)
    assert claim.schedule.next_run_at == T0 + 6 * MINUTE
    assert client.get_schedule("every-minute").next_run_at == T0 + 6 * MINUTE
    # Claimed occurrences are gone: claiming again at the same instant yields nothing.
    assert client.claim_schedule("every-minute", now=now).fire_times == []


@pytest.mark.parametrize(("catchup", "fires"), [("skip", []), ("latest", [T0])])
def test_a_stale_occurrence_is_skipped_or_run(client, catchup, fires) -> None:
    client.create_schedule("s", "pkg.mod:fn", "*/5 * * * *", catchup=catchup, start_at=T0 - 1)
    claim = client.claim_schedule("s", now=T0 + 2 * MINUTE)
    assert claim.fire_times == fires and claim.skipped == 1 - len(fires)


def test_skip_fires_an_occurrence_that_is_on_time(client) -> None:
    client.create_schedule("s", "pkg.mod:fn", "*/5 * * * *", start_at=T0 - 1)
    claim = client.claim_schedule("s", now=T0 + 20_000)
    assert claim.fire_times == [T0] and claim.skipped == 0


def test_not_due_and_paused_schedules_do_not_fire(client) -> None:
    schedule = client.create_schedule("s", "pkg.mod:fn", "*/5 * * * *", start_at=T0 - 1)
    assert client.claim_schedule("s", now=schedule.next_run_at - 1).fire_times == []
    client.pause_schedule("s")
    assert client.claim_schedule("s", now=schedule.next_run_at + 1).fire_times == []
    before = now_ms()
    resumed = client.resume_schedule("s")
    # Resuming starts from the first occurrence after now: what fell due while paused is skipped.
    assert resumed.enabled and before < resumed.next_run_at <= before + 5 * MINUTE


def test_concurrent_claims_fire_each_occurrence_once(client, mode) -> None:
    if mode.startswith("remote"):
        pytest.skip("one SDK client; the concurrency is in the store, covered embedded")
    client.create_schedule("s", "pkg.mod:fn", "* * * * *", catchup="all", start_at=T0 - 1)
    now = T0 + 10 * MINUTE + 1
    fired: list[int] = []
    lock = threading.Lock()

    def claim() -> None:
        times = client.claim_schedule("s", now=now).fire_times
        with lock:
            fired.extend(times)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fired) == [T0 + i * MINUTE for i in range(11)]


def test_scheduler_tick_launches_and_records_each_fire(client) -> None:
    client.create_schedule("a", "pkg.mod:fn", "* * * * *", {"k": 1}, catchup="all", start_at=T0 - 1)
    launched: list[tuple[str, int, dict]] = []

    class Result:
        def __init__(self, n: int):
            self.id = f"run-{n}"
            self.status = "SUCCEEDED"

    def launch(c, schedule, fire_time):
        launched.append((schedule.name, fire_time, schedule.params))
        if len(launched) == 2:
            raise RuntimeError("pipeline import failed")
        return Result(len(launched))

    firings = Scheduler(client, launch=launch).tick(now=T0 + 2 * MINUTE + 1)
    assert [(f.fire_time, f.status) for f in firings] == [
        (T0, "SUCCEEDED"),
        (T0 + MINUTE, "ERROR"),
        (T0 + 2 * MINUTE, "SUCCEEDED"),
    ]
    assert launched[0][2] == {"k": 1}
    schedule = client.get_schedule("a")
    assert schedule.last_run_at == T0 + 2 * MINUTE and schedule.last_pipeline_run_id == "run-3"
    fired = [e.payload["after"] for e in client.read_journal() if e.action == "schedule.fired"]
    assert [f["error"] for f in fired] == [None, "pipeline import failed", None]


def test_occurrences_walks_back_from_the_end_after_long_downtime() -> None:
    year = 365 * 24 * 60 * MINUTE
    times, earlier = occurrences("* * * * *", T0, T0 + year, 3)
    assert times == [T0 + year - 2 * MINUTE, T0 + year - MINUTE, T0 + year]
    assert earlier == 10_000  # counted up to the cap, not a year of minutes


def test_scheduler_runs_a_real_pipeline_and_links_the_run(client) -> None:
    schedule = client.create_schedule(
        "repro-nightly", "tests.reproduce.pipelines:repro", "0 3 * * *", {"rows": 50}, start_at=T0 - 1
    )
    firings = Scheduler(client).tick(now=schedule.next_run_at + 1)
    assert [f.status for f in firings] == ["SUCCEEDED"]
    pipeline_run = client.get_pipeline_run(firings[0].pipeline_run_id)
    assert pipeline_run.schedule_id == schedule.id and pipeline_run.params["rows"] == 50
    assert client.get_schedule("repro-nightly").last_pipeline_run_id == pipeline_run.id


def test_a_failing_scheduled_pipeline_is_recorded_and_the_scheduler_goes_on(client) -> None:
    client.create_schedule("broken", "tests.reproduce.pipelines:repro", "* * * * *", {"rows": -5}, start_at=T0 - 1)
    client.create_schedule("missing", "tests.reproduce.nope:repro", "* * * * *", start_at=T0 - 1)
    firings = {f.schedule: f for f in Scheduler(client).tick(now=T0 + 1)}
    assert firings["broken"].status == "FAILED" and firings["broken"].pipeline_run_id
    assert client.get_pipeline_run(firings["broken"].pipeline_run_id).status == "FAILED"
    assert firings["missing"].status == "ERROR" and "tests.reproduce.nope" in firings["missing"].error
