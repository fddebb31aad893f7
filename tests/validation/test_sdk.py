"""Contracts and validation reports through the SDK: embedded and remote, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest

from shipyard import Client
from shipyard.core.errors import Conflict, InvalidInput, NotFound
from shipyard.data.validation import ValidationFailed, check, dump_yaml, validate_frame


def _people(n: int = 40, *, bad: bool = False) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "id": list(range(1, n + 1)),
            "age": [20 + i % 50 for i in range(n)],
            "region": ["eu" if i % 3 else "us" for i in range(n)],
            "price": [10.0 + i for i in range(n)],
            "cost": [5.0 + i for i in range(n)],
        }
    )
    if bad:
        df.loc[3, "age"] = 150
        df.loc[7, "region"] = "mars"
        df.loc[9, "cost"] = df.loc[9, "price"] + 1  # within the cost range, above the price
    return df


def test_infer_set_and_get_contract_versions(client: Client) -> None:
    v1 = client.log_dataset(_people(), name="people")
    spec = client.infer_contract(v1.ref)
    cols = spec["columns"]
    assert cols["age"]["type"] == "int64" and cols["age"]["nullable"] is False
    assert (cols["age"]["min"], cols["age"]["max"]) == (20, 59)
    assert cols["region"]["allowed"] == ["eu", "us"]
    assert spec["rows"] == {"min": 20, "max": 80}

    first = client.set_contract("people", spec)
    assert (first.version, first.dataset) == (1, "people") and first.digest.startswith("sha256:")
    assert client.set_contract("people", spec).version == 1  # same content: no new version
    spec["checks"] = [{"name": "margin", "expr": "price >= cost"}]
    second = client.set_contract("people", dump_yaml(spec))  # YAML text works too
    assert second.version == 2 and second.digest != first.digest
    assert client.get_contract("people").version == 2
    assert client.get_contract("people", 1).spec == first.spec
    assert [c.version for c in client.list_contracts("people")] == [1, 2]

    with pytest.raises(NotFound):
        client.get_contract("people", 9)
    with pytest.raises(NotFound) as missing:
        client.get_contract("nobody")
    assert missing.value.field == "dataset"
    with pytest.raises(NotFound):
        client.set_contract("nobody", spec)

    journal = client.read_journal(entity_type="data_contract", limit=10)
    assert [e.action for e in journal] == ["contract.set", "contract.set"]
    assert journal[1].payload["after"] == {"dataset": "people", "version": 2, "digest": second.digest}


def test_a_bad_spec_is_rejected_naming_the_path(client: Client) -> None:
    client.log_dataset(_people(), name="people")
    with pytest.raises(InvalidInput) as info:
        client.set_contract("people", {"columns": {"age": {"min": "old"}}})
    assert info.value.field == "spec.columns.age.min"
    assert "columns.age.min: expected a number" in str(info.value)
    with pytest.raises(InvalidInput, match="checks.0.name"):
        client.set_contract("people", "checks:\n  - {expr: 'a > 1'}\n")
    assert client.list_contracts("people") == []


def test_validate_dataset_stores_the_report(client: Client) -> None:
    good = client.log_dataset(_people(), name="people")
    client.set_contract("people", client.infer_contract(good.ref))
    passed = client.validate_dataset(good.ref)
    assert passed.passed and passed.ref == good.ref and passed.contract_version == 1 and passed.id

    spec = client.get_contract("people").spec
    spec["checks"] = [{"name": "margin", "expr": "price >= cost"}]
    client.set_contract("people", spec)
    bad = client.log_dataset(_people(bad=True), name="people")
    report = client.validate_dataset("people")  # latest version, latest contract
    assert report.ref == bad.ref == "people@2" and report.contract_version == 2 and report.dataset == "people"
    assert not report.passed
    failed = {c.name: c for c in report.failed}
    assert set(failed) == {"age.max", "region.allowed", "checks.margin"}
    assert failed["age.max"].failing_count == 1 and failed["age.max"].failing_rows[0]["_row"] == 3
    assert failed["region.allowed"].failing_rows[0]["region"] == "mars"
    assert failed["checks.margin"].failing_rows[0]["cost"] == 20.0

    older = client.validate_dataset(bad.ref, contract=1)  # an older contract version still applies
    assert older.contract_version == 1 and {c.name for c in older.failed} == {"age.max", "region.allowed"}
    adhoc = client.validate_dataset(bad.ref, contract={"columns": {"id": {"unique": True}}})
    assert adhoc.passed and adhoc.contract_version is None

    stored = client.validation_reports(bad.ref)
    assert [r.id for r in stored] == [adhoc.id, older.id, report.id]  # newest first
    assert client.get_validation_report(report.id) == report
    assert [r.id for r in client.validation_reports(good.ref)] == [passed.id]
    with pytest.raises(NotFound):
        client.get_validation_report("nope")

    entries = client.read_journal(action="dataset_version.validated", limit=10)
    assert len(entries) == 4
    assert entries[1].entity_id == bad.id and entries[1].payload["after"]["passed"] is False
    assert entries[1].payload["after"]["failed"] == ["age.max", "region.allowed", "checks.margin"]


def test_validate_frame_stores_nothing(client: Client) -> None:
    client.log_dataset(_people(), name="people")
    client.set_contract("people", {"columns": {"age": {"max": 100}}})
    report = client.validate_frame(_people(bad=True), "people")  # a dataset name means its latest contract
    assert not report.passed and report.id is None and report.contract_version == 1
    assert client.validate_frame(_people(), {"rows": {"min": 1}}).passed
    assert client.validation_reports("people@1") == []


def test_reports_must_match_their_contract(client: Client) -> None:
    client.log_dataset(_people(), name="people")
    client.set_contract("people", {"columns": {"age": {"max": 100}}})
    other = validate_frame(_people(), {"columns": {"age": {"max": 10}}})
    with pytest.raises(Conflict, match="contract version 1"):
        client._call("contracts", "record_report", ref="people@1", contract_version=1, report=other)
    lying = other.model_copy(update={"passed": True})
    with pytest.raises(InvalidInput, match="contradicts"):
        client._call("contracts", "record_report", ref="people@1", contract_version=None, report=lying)
    assert client.validation_reports("people@1") == []


def test_gate_on_a_stored_version(client: Client) -> None:
    client.log_dataset(_people(bad=True), name="people")
    client.set_contract("people", {"columns": {"age": {"max": 100}}})
    with pytest.raises(ValidationFailed) as info:
        check("people@1", client=client)
    assert "age.max" in str(info.value) and info.value.report.ref == "people@1"
    assert info.value.report.id == client.validation_reports("people@1")[0].id  # the report was stored
    assert check("people@1", contract={"rows": {"min": 1}}, client=client).passed


def test_an_inferred_contract_accepts_the_version_it_came_from(client: Client) -> None:
    """Real column types through parquet and back: missing values, zoned times, dates, categoricals."""
    import datetime as dt

    df = pd.DataFrame(
        {
            "i": [1, 2, None, 4],
            "f": [1.5, float("nan"), 2.5, 3.0],
            "s": ["a", None, "b", "a"],
            "b": [True, False, True, False],
            "t": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01"], utc=True),
            "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None, dt.date(2024, 1, 4)],
            "code": ["x1", "x2", "x3", "x4"],
            "cat": pd.Categorical(["u", "v", "u", None]),
        }
    )
    version = client.log_dataset(df, name="mixed")
    spec = client.infer_contract(version.ref)
    cols = spec["columns"]
    assert cols["code"] == {"type": "string", "nullable": False, "unique": True}
    assert cols["s"]["allowed"] == ["a", "b"] and cols["cat"]["allowed"] == ["u", "v"]
    assert (cols["t"]["type"], cols["d"]["type"]) == ("datetime", "date")
    assert cols["b"] == {"type": "bool", "nullable": False}
    client.set_contract("mixed", spec)
    report = client.validate_dataset(version.ref)
    assert report.passed, report.summary()
    shifted = df.assign(d=[dt.date(2024, 1, 1), "2024-01-02", None, dt.date(2024, 1, 4)], s=["a", "c", "b", None])
    bad = client.validate_frame(shifted, "mixed")
    assert {c.name for c in bad.failed} == {"d.type", "s.allowed"}
