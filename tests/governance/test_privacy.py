"""Erasure of a data subject through the SDK, embedded and remote, on SQLite and PostgreSQL: the rows
leave the prediction log, feedback, labels and datasets (bytes included), the model trained on them is
flagged, and neither the journal nor the erasure record holds the erased value."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.serving.prediction_log import read_predictions
from tests.governance.privacy_helpers import (
    SUBJECT_EMAIL,
    customers,
    erasures_text,
    files_holding,
    ids_in,
    journal_text,
    server_services,
    store_roots,
)

SUBJECT = {"user_id": "7", "email": SUBJECT_EMAIL}


def _world(client):
    """A dataset holding the subject, a model trained on it, its batch-logged predictions with labels
    and feedback, and data the erasure must not touch."""
    frame = customers()
    dataset = client.log_dataset(frame, "customers")
    client.set_contract("customers", {"columns": {"user_id": {"max": 5}}})  # users 6.. fail: rows kept verbatim
    assert not client.validate_dataset(dataset.ref).passed
    client.log_dataset(pd.DataFrame({"city": ["Oslo", "Lima"], "n": [1, 2]}), "cities")  # no subject key
    model = LogisticRegression().fit(frame[["x", "z"]], frame["y"])
    client.register_model(model, "churn", data_refs=[dataset.ref], input_example=frame[["x", "z"]].head(2))
    client.register_model(model, "other")  # trained on nothing recorded: never flagged
    scored = frame[["user_id", "email", "x", "z"]].copy()
    scored["prediction"] = model.predict(frame[["x", "z"]])
    scored["ts"] = 1_700_000_000_000 + scored["user_id"] * 1000
    ids = client.log_predictions(scored, "churn/1", timestamp_column="ts")
    client.record_labels({ids[i]: int(frame["y"][i]) for i in (6, 7, 8)})
    client.record_feedback({ids[7]: 1.0, ids[8]: 0.0})
    return frame, dataset, ids


def test_erase_subject_everywhere(client) -> None:
    frame, dataset, ids = _world(client)
    seq_before = client.last_journal_seq()

    plan = client.erase_subject(SUBJECT, dry_run=True)
    assert plan.dry_run and plan.id is None and plan.status == "planned"
    assert (plan.predictions, plan.labels, plan.feedback) == (1, 1, 1)
    assert [(d.dataset, d.rows, d.erased_versions) for d in plan.datasets] == [("customers", 1, ["customers@1"])]
    assert [(m.model, m.version) for m in plan.model_versions] == [("churn", 1)]
    # a dry run changes nothing
    assert client.last_journal_seq() == seq_before
    assert client.get_dataset("customers").version == 1
    assert len(client.load_dataset("customers@1")) == len(frame)

    erasure = client.erase_subject(SUBJECT)
    assert erasure.id and erasure.status == "complete" and not erasure.dry_run
    assert (erasure.predictions, erasure.segments_rewritten, erasure.labels, erasure.feedback) == (1, 1, 1, 1)
    assert erasure.datasets[0].new_version == "customers@2"
    assert erasure.blobs_deleted >= 2 and erasure.blobs_kept == []

    # the dataset: a new version without the subject's row, every other row kept
    latest = client.get_dataset("customers")
    assert latest.ref == "customers@2" and latest.parents == ["customers@1"] and latest.row_count == len(frame) - 1
    expected = frame[frame["user_id"] != 7].reset_index(drop=True)
    pd.testing.assert_frame_equal(client.load_dataset("customers@2"), expected)
    assert SUBJECT_EMAIL not in str(latest.profile)
    # the old version says who erased it and what to read instead
    old = client.get_dataset("customers@1")
    assert old.tags["shipyard.erased_by"] == erasure.id and old.tags["shipyard.erased_successor"] == "customers@2"
    assert old.profile is None
    with pytest.raises(NotFound, match=f"erased by erasure {erasure.id}.*read customers@2"):
        client.load_dataset("customers@1")
    assert client.get_dataset("cities").version == 1  # datasets without the key are untouched
    # the stored validation report of the old version kept failing rows verbatim: the subject's is gone
    assert erasure.datasets[0].validation_rows == 1
    (report,) = client.validation_reports("customers@1")
    failing = next(c for c in report.checks if c.name == "user_id.max").failing_rows
    assert [r["user_id"] for r in failing] == [6, 8, 9, 10] and SUBJECT_EMAIL not in str(report)

    # the model trained on it is flagged; the other is not
    assert client.get_version("churn", 1).tags["shipyard.erasure"] == erasure.id
    assert "shipyard.erasure" not in client.get_version("other", 1).tags
    assert [(m.model, m.version, m.reasons) for m in erasure.model_versions] == [
        ("churn", 1, ["trained on customers@1"])
    ]

    with server_services(client) as services:
        logged = read_predictions(services.db, services.artifacts)
        assert len(logged) == len(frame) - 1 and ids[7] not in set(logged["prediction_id"])
        assert 7.0 not in set(logged["in.user_id"]) and SUBJECT_EMAIL not in set(logged["in.email"])
        assert ids_in(services, "prediction_labels") == {ids[6], ids[8]}
        assert ids_in(services, "prediction_feedback") == {ids[8]}
        # the bytes are gone from the artifact store (and from the home's cache of dataset copies)
        assert files_holding(store_roots(services), SUBJECT_EMAIL) == []
        assert files_holding(store_roots(services), "person8@example.org")  # the search does find others
        # the journal and the erasure record keep keys and counts, never the value
        assert SUBJECT_EMAIL not in journal_text(services) and SUBJECT_EMAIL not in erasures_text(services)
        assert '"7"' not in erasures_text(services)
        assert "erasure.recorded" in journal_text(services)
    assert client.verify_journal()["ok"]

    assert client.get_erasure(erasure.id).status == "complete"
    assert [e.id for e in client.list_erasures()] == [erasure.id]
    recorded = client.get_erasure(erasure.id)
    assert recorded.subject_keys == ["email", "user_id"] and recorded.predictions == 1

    # erasing again finds nothing left
    again = client.erase_subject(SUBJECT)
    assert (again.predictions, again.labels, again.datasets) == (0, 0, [])


def test_numbers_match_as_text_and_every_pair_must_match(client) -> None:
    frame, _, ids = _world(client)
    # user 7 with someone else's email: no row has both
    none = client.erase_subject({"user_id": 7, "email": "person8@example.org"}, dry_run=True)
    assert (none.predictions, none.datasets) == (0, [])
    # "7.0" and 7 both name the integer 7 in the dataset and the float 7.0 in the log
    plan = client.erase_subject({"user_id": "7.0"}, dry_run=True)
    assert plan.predictions == 1 and plan.datasets[0].rows == 1


def test_bad_subjects_are_refused_by_name(client) -> None:
    _world(client)
    with pytest.raises(
        InvalidInput, match="no prediction log, batch log, dataset or monitor sample has a column 'nope'"
    ) as err:
        client.erase_subject({"nope": "1"})
    assert err.value.field == "subject.nope"
    with pytest.raises(InvalidInput) as err:
        client.erase_subject({})
    assert err.value.field == "subject"
    with pytest.raises(InvalidInput) as err:
        client.erase_subject({"user_id": ""})
    assert err.value.field == "subject.user_id"
    assert client.list_erasures() == []


def test_models_trained_on_a_version_purged_earlier_are_flagged_again(client) -> None:
    _world(client)
    first = client.erase_subject({"user_id": "7"})
    second = client.erase_subject({"user_id": "8"})
    # user 8 was in customers@1 too, but its files are gone: the model trained on it is flagged, saying so
    assert [(d.erased_versions, d.new_version) for d in second.datasets] == [(["customers@2"], "customers@3")]
    assert [(m.model, m.version, m.reasons) for m in second.model_versions] == [
        ("churn", 1, ["trained on customers@1 (purged by an earlier erasure)"])
    ]
    assert client.get_version("churn", 1).tags["shipyard.erasure"] == second.id != first.id
    assert client.get_dataset("customers@2").tags["shipyard.erased_successor"] == "customers@3"
    assert client.get_dataset("customers@1").tags["shipyard.erased_by"] == first.id
    assert len(client.load_dataset("customers")) == 38
