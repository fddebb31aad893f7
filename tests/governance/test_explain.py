"""Explanations through the SDK: global permutation importance stored with the version (every mode),
and local explanations of one prediction. For a linear model the local contribution of a feature is
known exactly — its weight times (its value minus the background's mean) — so the numbers are checked
against that; a classifier's output is its positive-class probability; reasons read as adverse-action
notices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from shipyard import Client
from shipyard.core.errors import InvalidInput, PermissionDenied
from tests.governance.test_evaluate import journal_payloads, register_credit
from tests.governance.test_lifecycle import as_user


def register_linear(client: Client, n: int = 300) -> tuple[int, LinearRegression, pd.DataFrame]:
    """y = 3a - 1b + 0c (+ tiny noise), registered with its training data ``lin@1``."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n), "c": rng.normal(0, 1, n)})
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(0, 0.01, n)
    dataset = client.log_dataset(frame, "lin")
    model = LinearRegression().fit(frame[["a", "b", "c"]], frame["y"])
    mv = client.register_model(model, "lin", data_refs=[dataset.ref], input_example=frame[["a", "b", "c"]].head(2))
    return mv.version, model, frame


def test_global_importance_is_stored_with_a_background(client: Client) -> None:
    version, _, frame = register_linear(client)

    ev = client.explain_version("lin", version, "lin@1", label_column="y", n_repeats=3)

    r = ev.result
    assert ev.kind == "explanation" and ev.dataset == "lin@1"
    assert r["method"] == "permutation" and r["score"] == "r2" and r["target"] == "label"
    ranked = [item["feature"] for item in r["importances"]]
    assert ranked[:2] == ["a", "b"]  # the variance each explains: a 3² · 1 > b 1² · 2²
    assert r["importances"][0]["mean"] > 0.5 and abs(r["importances"][2]["mean"]) < 0.01  # c is ignored
    assert r["features"] == ["a", "b", "c"]
    assert 0 < len(r["background"]) <= 100 and set(r["background"][0]) == {"a", "b", "c"}
    assert "shap_importances" not in r  # shap is not installed here: the optional path is skipped
    payload = journal_payloads(client, "version.evaluated")[-1]
    assert payload["kind"] == "explanation" and payload["top_features"][0] == "a"

    # without a label: how much the model relies on each feature (agreement with its own predictions)
    unlabelled = client.explain_version("lin", version, "lin@1", n_repeats=2, max_rows=50)
    assert unlabelled.result["target"] == "model predictions" and unlabelled.result["rows"] == 50
    assert unlabelled.result["importances"][-1]["feature"] == "c"


def test_local_contributions_of_a_linear_model_are_exact(client: Client) -> None:
    version, model, _ = register_linear(client)
    stored = client.explain_version("lin", version, "lin@1", n_repeats=1)
    background = pd.DataFrame(stored.result["background"])
    x = {"a": -3.0, "b": 5.0, "c": 0.5}

    found = client.explain_prediction("lin", version, x, top_k=3)

    weights = dict(zip(["a", "b", "c"], model.coef_, strict=True))
    expected = {f: weights[f] * (x[f] - background[f].mean()) for f in x}
    assert found.output_name == "prediction"
    assert found.output == pytest.approx(float(model.predict(pd.DataFrame([x]))[0]))
    assert found.prediction == pytest.approx(found.output)
    assert found.base_value == pytest.approx(float(model.predict(background[["a", "b", "c"]]).mean()))
    assert {c.feature: c.contribution for c in found.contributions} == pytest.approx(expected, abs=1e-9)
    assert [c.feature for c in found.contributions][0] == "a"  # sorted by |contribution|
    assert found.contributions[0].value == -3.0
    assert found.reasons[0].startswith("a = -3 lowered the prediction by ")
    assert found.background == "explanation of lin@1" and found.background_rows == len(background)
    assert len(client.explain_prediction("lin", version, x, top_k=1).contributions) == 1


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-postgres"])
def test_local_explanation_of_a_classifier(client: Client) -> None:
    mv = register_credit(client)
    # no explanation stored yet: the background comes from the training data in the lineage
    found = client.explain_prediction("credit", mv.version, {"income": 12.0, "age": 30})
    model = client.load_model(mv.uri)
    proba = model.predict_proba(pd.DataFrame({"income": [12.0], "age": [30]}))[0, 1]
    assert found.output == pytest.approx(proba) and found.output_name == "probability of 1"
    assert found.prediction == 0
    assert found.background == "training data credit@1"
    assert found.contributions[0].feature == "income" and found.contributions[0].contribution < 0
    assert found.reasons[0].startswith("income = 12 lowered the score by ")


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-sqlite"])
def test_bad_explanation_input_names_the_field(client: Client) -> None:
    version, _, _ = register_linear(client)

    def field_of(**kwargs: object) -> str | None:
        args = {"name": "lin", "version": version, "inputs": {"a": 1.0, "b": 2.0, "c": 3.0}, **kwargs}
        with pytest.raises(InvalidInput) as err:
            client.explain_prediction(**args)  # type: ignore[arg-type]
        return err.value.field

    assert field_of(inputs={}) == "inputs"
    assert field_of(inputs={"a": 1.0, "b": 2.0}) == "inputs"  # c is missing
    assert field_of(inputs={"a": 1.0, "b": 2.0, "c": 3.0, "zz": 1}) == "inputs"
    assert field_of(inputs={"a": "lots", "b": 2.0, "c": 3.0}) is not None
    assert field_of(top_k=0) == "top_k"
    with pytest.raises(InvalidInput) as err:
        client.explain_version("lin", version, "lin@1", label_column="nope")
    assert err.value.field == "label_column"
    with pytest.raises(InvalidInput) as err:
        client.explain_version("lin", version, "lin@1", n_repeats=0)
    assert err.value.field == "n_repeats"

    # a version with no lineage and no stored explanation has nothing to explain against
    bare = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1])
    mv = client.register_model(bare, "bare", input_example=pd.DataFrame({"a": [0.0]}))
    with pytest.raises(InvalidInput, match="explain_version") as err:
        client.explain_prediction("bare", mv.version, {"a": 1.0})
    assert err.value.field == "version"


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_multiclass_explains_the_predicted_class(client: Client) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"u": rng.normal(0, 1, 300), "v": rng.normal(0, 1, 300)})
    frame["kind"] = np.select([frame["u"] > 0.5, frame["u"] < -0.5], ["high", "low"], "mid")
    dataset = client.log_dataset(frame, "three")
    model = LogisticRegression(max_iter=1000).fit(frame[["u", "v"]], frame["kind"])
    mv = client.register_model(model, "three", data_refs=[dataset.ref], input_example=frame[["u", "v"]].head(2))
    found = client.explain_prediction("three", mv.version, {"u": 2.0, "v": 0.0})
    assert found.prediction == "high" and found.output_name == "probability of high"
    assert found.contributions[0].feature == "u" and found.contributions[0].contribution > 0


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_background_skips_rows_with_missing_inputs(client: Client) -> None:
    frame = pd.DataFrame({"a": [float(i % 7) for i in range(60)], "city": ["x", "y", "z"] * 20})
    frame["y"] = (frame["a"] > 3).astype(int)
    training = frame.astype({"city": "object"})
    training.loc[:4, "city"] = None  # the signature (from a complete example) refuses missing cities
    dataset = client.log_dataset(training, "gaps")
    # a standard pipeline that takes both columns and uses only a
    model = make_pipeline(ColumnTransformer([("a", "passthrough", ["a"])]), LogisticRegression())
    model.fit(frame[["a", "city"]], frame["y"])
    mv = client.register_model(model, "gaps", data_refs=[dataset.ref], input_example=frame[["a", "city"]].head(2))
    found = client.explain_prediction("gaps", mv.version, {"a": 1.0, "city": "x"})
    assert found.background == "training data gaps@1" and found.background_rows == 55


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_an_erased_dataset_no_longer_explains_predictions(client: Client) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"user_id": np.arange(80), "a": rng.normal(0, 1, 80)})
    frame["y"] = 2 * frame["a"]
    dataset = client.log_dataset(frame, "people")
    model = LinearRegression().fit(frame[["a"]], frame["y"])
    mv = client.register_model(model, "people", data_refs=[dataset.ref], input_example=frame[["a"]].head(2))
    client.explain_version("people", mv.version, "people@1", n_repeats=1)
    assert client.explain_prediction("people", mv.version, {"a": 1.0}).background == "explanation of people@1"

    client.erase_subject({"user_id": 7})  # people@1 is purged of the subject; people@2 is written without it
    # neither the stored sample nor the purged data: the erasure's successor, the same data without the subject
    assert client.explain_prediction("people", mv.version, {"a": 1.0}).background == "training data people@2"
    client.explain_version("people", mv.version, "people@2", n_repeats=1)
    assert client.explain_prediction("people", mv.version, {"a": 1.0}).background == "explanation of people@2"


@pytest.mark.parametrize("mode", ["remote-sqlite"])
def test_a_viewer_may_explain_a_prediction_but_not_store_results(client: Client) -> None:
    version, _, _ = register_linear(client)
    client.explain_version("lin", version, "lin@1", n_repeats=1)
    client.create_principal("vera")
    client.grant_role("vera", "viewer", model="lin")
    with as_user(client, "vera") as vera:
        assert vera.explain_prediction("lin", version, {"a": 1.0, "b": 2.0, "c": 3.0}).contributions
        assert vera.get_model_card("lin", version).model_details.name == "lin"
        with pytest.raises(PermissionDenied):
            vera.explain_version("lin", version, "lin@1")
        with pytest.raises(PermissionDenied):
            vera.evaluate_fairness("lin", version, "lin@1", ["a"], "y")
        with pytest.raises(PermissionDenied):
            vera.set_card_section("lin", "caveats", "mine now")
