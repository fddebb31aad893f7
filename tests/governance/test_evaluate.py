"""Evaluations with slices through the SDK in every mode (embedded and remote, SQLite and PostgreSQL):
metrics overall and per slice match scikit-learn on the same rows, the result is stored with the
version and journaled, and bad input is a 4xx naming the field. Helpers here are shared by the
fairness, explanation and model-card tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_absolute_error

from shipyard import Client
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.registry.entities import ModelVersion

# ------------------------------------------------------------------------------------------------
# helpers


def credit_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Loan applications: income and age drive the label; ``region`` is a slice, not an input."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50.0, 15.0, n).round(1),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    frame["approved"] = ((frame["income"] / 10 + rng.normal(0, 1, n)) > 5).astype(int)
    return frame


def register_credit(client: Client, frame: pd.DataFrame | None = None, name: str = "credit") -> ModelVersion:
    """A logistic regression on income and age, registered with its training dataset in its lineage."""
    frame = credit_frame() if frame is None else frame
    dataset = client.log_dataset(frame, name)
    features = frame[["income", "age"]]
    model = LogisticRegression(max_iter=1000).fit(features, frame["approved"])
    return client.register_model(model, name, data_refs=[dataset.ref], input_example=features.head(3))


def journal_payloads(client: Client, action: str) -> list[dict[str, Any]]:
    return [e.payload for e in client.read_journal(after=0, limit=1000, action=action)]


# ------------------------------------------------------------------------------------------------
# the main flow, in every mode


def test_evaluation_with_slices_is_stored_and_journaled(client: Client) -> None:
    frame = credit_frame()
    mv = register_credit(client, frame)

    ev = client.evaluate_version("credit", mv.version, "credit@1", "approved", slices=["region", "age"])

    model = client.load_model(mv.uri)
    predicted = model.predict(frame[["income", "age"]])
    assert ev.kind == "evaluation" and ev.dataset == "credit@1" and ev.version == mv.version
    assert ev.result["task"] == "classification"
    assert ev.result["metrics"]["accuracy"] == pytest.approx(accuracy_score(frame["approved"], predicted))
    assert 0.5 < ev.result["metrics"]["roc_auc"] <= 1.0
    region = ev.result["slices"]["region"]
    assert set(region) == {"north", "south", "east"}
    for value, figures in region.items():
        rows = (frame["region"] == value).to_numpy()
        assert figures["count"] == int(rows.sum())
        assert figures["accuracy"] == pytest.approx(accuracy_score(frame["approved"][rows], predicted[rows]))
    # a numeric column with many values is cut into quantile bins that cover every row
    assert sum(v["count"] for v in ev.result["slices"]["age"].values()) == len(frame)
    assert all(key.startswith("[") for key in ev.result["slices"]["age"])

    stored = client.list_evaluations("credit", mv.version, kind="evaluation")
    assert [s.id for s in stored] == [ev.id]
    assert client.get_evaluation("credit", mv.version, "evaluation").metrics == ev.metrics
    payload = journal_payloads(client, "version.evaluated")[-1]
    assert payload["version"] == mv.version and payload["kind"] == "evaluation" and payload["dataset"] == "credit@1"
    assert payload["accuracy"] == pytest.approx(ev.metrics["accuracy"])


def test_regression_evaluation(client: Client) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 200), "segment": rng.choice(["a", "b"], 200)})
    frame["y"] = 3 * frame["x"] + rng.normal(0, 0.1, 200)
    dataset = client.log_dataset(frame, "reg")
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    mv = client.register_model(model, "reg", data_refs=[dataset.ref], input_example=frame[["x"]].head(2))

    ev = client.evaluate_version("reg", mv.version, "reg", "y", slices=["segment"])

    assert ev.dataset == "reg@1"  # a bare name resolves to the latest version
    assert ev.result["task"] == "regression"
    expected = mean_absolute_error(frame["y"], model.predict(frame[["x"]]))
    assert ev.metrics["mae"] == pytest.approx(expected)
    assert ev.metrics["r2"] > 0.99
    assert set(ev.result["slices"]["segment"]) == {"a", "b"}


# ------------------------------------------------------------------------------------------------
# bad input: a clear 4xx naming the field (embedded and remote)


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-sqlite"])
def test_bad_evaluation_input_names_the_field(client: Client) -> None:
    mv = register_credit(client)
    with pytest.raises(InvalidInput, match="no column 'nope'") as err:
        client.evaluate_version("credit", mv.version, "credit@1", "nope")
    assert err.value.field == "label_column"
    with pytest.raises(InvalidInput) as err:
        client.evaluate_version("credit", mv.version, "credit@1", "approved", slices=["missing"])
    assert err.value.field == "slices"
    with pytest.raises(NotFound) as err:
        client.evaluate_version("credit", mv.version, "nothing@1", "approved")
    assert err.value.field == "dataset"
    with pytest.raises(NotFound) as err:
        client.evaluate_version("credit", mv.version, "credit@7", "approved")
    assert err.value.field == "dataset"
    with pytest.raises(NotFound):
        client.evaluate_version("credit", 9, "credit@1", "approved")
    with pytest.raises(NotFound):
        client.evaluate_version("nobody", 1, "credit@1", "approved")
    # the model's inputs must be in the dataset
    client.log_dataset(pd.DataFrame({"income": [1.0, 2.0], "approved": [0, 1]}), "partial")
    with pytest.raises(InvalidInput, match="age") as err:
        client.evaluate_version("credit", mv.version, "partial@1", "approved")
    assert err.value.field == "dataset"
    assert client.list_evaluations("credit", mv.version) == []
    with pytest.raises(InvalidInput) as err:
        client.list_evaluations("credit", mv.version, kind="vibes")
    assert err.value.field == "kind"
    with pytest.raises(NotFound):
        client.get_evaluation("credit", mv.version, "fairness")


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_rows_without_label_are_counted_not_scored(client: Client) -> None:
    frame = credit_frame(200)
    mv = register_credit(client, frame)
    holes = frame.astype({"approved": "float64"})
    holes.loc[:9, "approved"] = np.nan
    client.log_dataset(holes, "holes")
    ev = client.evaluate_version("credit", mv.version, "holes@1", "approved")
    assert ev.result["rows"] == 190 and ev.result["rows_without_label"] == 10
