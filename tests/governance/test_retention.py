"""Retention policies through the SDK (embedded and remote, SQLite and PostgreSQL), enforced at
controlled times: old segments are dropped, straddling ones rewritten, feedback and labels aged out,
every run journaled with its counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.time import now_ms
from shipyard.serving.prediction_log import read_predictions
from shipyard.store import schema as t
from tests.governance.privacy_helpers import ids_in, server_services

DAY = 86_400_000


def _log(client, ts: list[int]) -> list[str]:
    frame = pd.DataFrame({"x": np.arange(len(ts), dtype="float64"), "prediction": 0, "ts": ts})
    return client.log_predictions(frame, "m/1", timestamp_column="ts")


def test_policies_are_validated_listed_and_removed(client) -> None:
    assert client.list_retention() == []
    policy = client.set_retention("predictions", 30)
    assert (policy.target, policy.max_age_days, policy.max_age_ms) == ("predictions", 30.0, 30 * DAY)
    client.set_retention("labels", 0.5)
    client.set_retention("predictions", 7)  # replaces
    assert [(p.target, p.max_age_days) for p in client.list_retention()] == [("labels", 0.5), ("predictions", 7.0)]
    client.remove_retention("labels")
    assert [p.target for p in client.list_retention()] == ["predictions"]
    with pytest.raises(NotFound) as err:
        client.remove_retention("labels")
    assert err.value.field == "target"
    with pytest.raises(InvalidInput, match="predictions, feedback, labels") as err:
        client.set_retention("metrics", 3)
    assert err.value.field == "target"
    for days in (0, -1, float("inf")):
        with pytest.raises(InvalidInput) as err:
            client.set_retention("feedback", days)
        assert err.value.field == "max_age_days"
    run = client.enforce_retention()
    assert run.cutoffs.keys() == {"predictions"} and run.predictions == 0
    for bad in (-1, 2**63):
        with pytest.raises(InvalidInput) as err:
            client.enforce_retention(now_ms=bad)
        assert err.value.field == "now_ms"


def test_enforcement_drops_rewrites_and_ages_out(client) -> None:
    client.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    now = now_ms()
    old = _log(client, [now - 40 * DAY] * 10)  # entirely past the cutoff: dropped whole
    straddling = _log(client, [now - 35 * DAY] * 4 + [now - 10 * DAY] * 6)  # rewritten without 4 rows
    recent = _log(client, [now - DAY] * 5)  # untouched
    client.record_labels({i: 1 for i in old[:3]})
    client.record_feedback({straddling[0]: 1.0, recent[0]: 2.0})
    with server_services(client) as services:
        before = {s.digest for s in services.predictions.list_segments()}

    for target, days in (("predictions", 30), ("feedback", 1), ("labels", 1)):
        client.set_retention(target, days)
    run = client.enforce_retention(now_ms=now)
    assert run.cutoffs == {"predictions": now - 30 * DAY, "feedback": now - DAY, "labels": now - DAY}
    assert (run.predictions, run.segments_deleted, run.segments_rewritten) == (14, 1, 1)
    assert (run.feedback, run.labels) == (0, 0)  # they arrived just now
    assert run.blobs_deleted == 2

    with server_services(client) as services:
        logged = read_predictions(services.db, services.artifacts)
        assert sorted(logged["prediction_id"]) == sorted(straddling[4:] + recent)
        assert logged["ts"].min() >= now - 30 * DAY
        after = {s.digest for s in services.predictions.list_segments()}
        assert len(after) == 2 and len(before & after) == 1  # the recent segment's blob is kept
        assert not any(services.artifacts.has(d) for d in before - after)  # the replaced bytes are gone
        with services.db.read() as conn:
            entries = conn.execute(
                sa.select(t.journal.c.entity_id, t.journal.c.payload).where(t.journal.c.action == "retention.enforced")
            ).all()
        counts = {e.entity_id: e.payload for e in entries}
        assert counts["predictions"]["rows"] == 14 and counts["predictions"]["segments_deleted"] == 1
        assert "labels" not in counts and "feedback" not in counts  # nothing removed: not journaled
    assert {p.target: p.last_enforced_at for p in client.list_retention()} == {
        "feedback": now,
        "labels": now,
        "predictions": now,
    }

    # two days later the feedback and labels are old enough; the log's remaining rows are not
    later = client.enforce_retention(now_ms=now + 2 * DAY)
    assert (later.feedback, later.labels, later.predictions) == (2, 3, 0)
    with server_services(client) as services:
        assert ids_in(services, "prediction_labels") == set() and ids_in(services, "prediction_feedback") == set()
        with services.db.read() as conn:
            labels = conn.execute(
                sa.select(t.journal.c.payload).where(
                    t.journal.c.action == "retention.enforced", t.journal.c.entity_id == "labels"
                )
            ).scalar_one()
        assert labels == {"cutoff": now + DAY, "rows": 3}
    assert client.verify_journal()["ok"]


def test_nothing_happens_without_policies(client) -> None:
    client.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    _log(client, [1] * 3)  # 1970
    run = client.enforce_retention()
    assert run.cutoffs == {} and run.predictions == 0
    with server_services(client) as services:
        assert len(read_predictions(services.db, services.artifacts)) == 3
