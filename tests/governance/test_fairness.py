"""Fairness evaluations through the SDK in every mode, on a crafted dataset whose answer is known:
the model predicts exactly its input ``x``, so each group's selection rate, TPR and FPR are set by
construction. Numbers are compared with Fairlearn's own functions; small groups are flagged and
left out of the judgments; bad input is a 4xx naming the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier

from shipyard import Client
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.governance.fairness import wilson_interval
from tests.governance.test_evaluate import journal_payloads


def _group(name: str, tp: int, fn: int, fp: int, tn: int) -> pd.DataFrame:
    """Rows of one group with the given confusion counts (prediction = x)."""
    cells = [(1, 1, tp), (0, 1, fn), (1, 0, fp), (0, 0, tn)]  # (x = prediction, y = truth, count)
    rows = [{"x": x, "group": name, "y": y} for x, y, count in cells for _ in range(count)]
    return pd.DataFrame(rows)


def crafted() -> pd.DataFrame:
    """A: 100 rows, 60 selected; B: 100 rows, 30 selected; C: 10 rows (small), 9 selected."""
    return pd.concat(
        [
            _group("A", tp=50, fn=10, fp=10, tn=30),  # TPR 50/60, FPR 10/40, selection 0.6
            _group("B", tp=25, fn=25, fp=5, tn=45),  # TPR 25/50, FPR 5/50, selection 0.3
            _group("C", tp=5, fn=0, fp=4, tn=1),  # small
        ],
        ignore_index=True,
    )


def register_echo(client: Client, frame: pd.DataFrame) -> int:
    """A tree that predicts exactly x, registered on ``frame`` (dataset ``loans``)."""
    dataset = client.log_dataset(frame, "loans")
    model = DecisionTreeClassifier().fit(pd.DataFrame({"x": [0, 1, 0, 1]}), [0, 1, 0, 1])
    mv = client.register_model(model, "loans", data_refs=[dataset.ref], input_example=frame[["x"]].head(2))
    return mv.version


def test_fairness_matches_fairlearn_and_flags_small_groups(client: Client) -> None:
    frame = crafted()
    version = register_echo(client, frame)

    ev = client.evaluate_fairness("loans", version, "loans@1", ["group"], "y")

    r = ev.result
    assert ev.kind == "fairness" and ev.dataset == "loans@1"
    assert r["reference_group"] == "A"  # the largest judged group (A and B tie at 100; A first)
    assert r["small_groups"] == ["C"] and r["judged_groups"] == ["A", "B"]
    groups = {g["group"]: g for g in r["groups"]}
    a, b, c = groups["A"], groups["B"], groups["C"]
    assert (a["size"], b["size"], c["size"]) == (100, 100, 10)
    assert a["selection_rate"] == pytest.approx(0.6) and b["selection_rate"] == pytest.approx(0.3)
    assert a["tpr"] == pytest.approx(50 / 60) and b["tpr"] == pytest.approx(0.5)
    assert a["fpr"] == pytest.approx(10 / 40) and b["fpr"] == pytest.approx(0.1)
    assert a["accuracy"] == pytest.approx(0.8) and b["accuracy"] == pytest.approx(0.7)
    assert a["selection_rate_ci"] == pytest.approx(wilson_interval(60, 100))
    assert b["tpr_ci"] == pytest.approx(wilson_interval(25, 50))
    assert b["fpr_ci"] == pytest.approx(wilson_interval(5, 50))
    assert a["accuracy_ci"] == pytest.approx(wilson_interval(80, 100))
    assert b["disparate_impact_ratio"] == pytest.approx(0.5) and b["four_fifths_passed"] is False
    assert c["small"] is True and c["four_fifths_passed"] is None  # flagged, not judged
    assert c["disparate_impact_ratio"] == pytest.approx(0.9 / 0.6)

    judged = frame[frame["group"] != "C"]
    y, p, s = judged["y"], judged["x"], judged["group"]
    m = ev.metrics
    assert m["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=s)
    )
    assert m["demographic_parity_difference"] == pytest.approx(0.3)
    assert m["demographic_parity_ratio"] == pytest.approx(demographic_parity_ratio(y, p, sensitive_features=s))
    assert m["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(y, p, sensitive_features=s))
    assert m["equal_opportunity_difference"] == pytest.approx(equal_opportunity_difference(y, p, sensitive_features=s))
    assert m["equal_opportunity_difference"] == pytest.approx(50 / 60 - 0.5)
    assert m["disparate_impact_ratio"] == pytest.approx(0.5)
    assert m["four_fifths_passed"] is False

    # stored with the version, journaled with the headline figures
    assert client.get_evaluation("loans", version, "fairness").id == ev.id
    payload = journal_payloads(client, "version.evaluated")[-1]
    assert payload["kind"] == "fairness" and payload["dataset"] == "loans@1" and payload["version"] == version
    assert payload["four_fifths_passed"] is False and payload["small_groups"] == ["C"]


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-postgres"])
def test_reference_group_and_intersections(client: Client) -> None:
    frame = crafted()
    version = register_echo(client, frame)

    ev = client.evaluate_fairness("loans", version, "loans@1", ["group"], "y", reference_group="B")
    ratios = {g["group"]: g["disparate_impact_ratio"] for g in ev.result["groups"]}
    assert ratios["A"] == pytest.approx(2.0) and ratios["B"] == pytest.approx(1.0)
    assert ev.metrics["disparate_impact_ratio"] == pytest.approx(1.0) and ev.metrics["four_fifths_passed"] is True

    # several sensitive features: one group per combination; a lower min_group_size judges C too
    frame["band"] = np.where(np.arange(len(frame)) % 2 == 0, "even", "odd")
    client.log_dataset(frame, "loans")
    ev = client.evaluate_fairness("loans", version, "loans@2", "group,band", "y", min_group_size=5)
    names = {g["group"] for g in ev.result["groups"]}
    assert "group=A, band=even" in names and len(names) == 6
    assert ev.result["small_groups"] == []
    assert ev.result["sensitive_features"] == ["group", "band"]


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_labels_other_than_zero_one(client: Client) -> None:
    frame = crafted()
    frame["y"] = frame["y"].map({1: "good", 0: "bad"})
    dataset = client.log_dataset(frame, "words")
    model = DecisionTreeClassifier().fit(pd.DataFrame({"x": [0, 1, 0, 1]}), ["bad", "good", "bad", "good"])
    mv = client.register_model(model, "words", data_refs=[dataset.ref], input_example=frame[["x"]].head(2))
    ev = client.evaluate_fairness("words", mv.version, "words@1", ["group"], "y")
    assert ev.result["positive_label"] == "good"  # the model's last class
    assert ev.metrics["demographic_parity_difference"] == pytest.approx(0.3)
    flipped = client.evaluate_fairness("words", mv.version, "words@1", ["group"], "y", positive_label="bad")
    assert {g["group"]: g["selection_rate"] for g in flipped.result["groups"]}["A"] == pytest.approx(0.4)


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-sqlite"])
def test_bad_fairness_input_names_the_field(client: Client) -> None:
    frame = crafted()
    version = register_echo(client, frame)

    def field_of(exc_type: type[Exception], **kwargs: object) -> str | None:
        args = {"name": "loans", "version": version, "dataset": "loans@1", "sensitive_features": ["group"]}
        args.update({"label_column": "y", **kwargs})
        with pytest.raises(exc_type) as err:
            client.evaluate_fairness(**args)  # type: ignore[arg-type]
        return err.value.field  # type: ignore[attr-defined]

    assert field_of(InvalidInput, sensitive_features=["gender"]) == "sensitive_features"
    assert field_of(InvalidInput, sensitive_features=[]) == "sensitive_features"
    assert field_of(InvalidInput, label_column="nope") == "label_column"
    assert field_of(InvalidInput, reference_group="Z") == "reference_group"
    assert field_of(InvalidInput, reference_group="C") == "reference_group"  # too small to judge against
    assert field_of(InvalidInput, positive_label="maybe") == "positive_label"
    assert field_of(InvalidInput, min_group_size=0) == "min_group_size"
    assert field_of(NotFound, dataset="absent@1") == "dataset"

    multi = frame.assign(y=np.arange(len(frame)) % 3)  # three label values: not binary
    client.log_dataset(multi, "multi")
    assert field_of(InvalidInput, dataset="multi@1") == "label_column"

    # a regression model has no selection rate
    reg = LinearRegression().fit(pd.DataFrame({"x": [0, 1]}), [0.0, 1.0])
    mv = client.register_model(reg, "reg", input_example=frame[["x"]].head(2))
    with pytest.raises(InvalidInput, match="classifier") as err:
        client.evaluate_fairness("reg", mv.version, "loans@1", ["group"], "y")
    assert err.value.field == "version"


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_a_numeric_sensitive_feature_is_grouped_in_bands(client: Client) -> None:
    frame = crafted()
    frame["age"] = np.arange(len(frame)) % 60 + 18  # 60 distinct ages: quartile bands, not 60 groups
    version = register_echo(client, frame)
    ev = client.evaluate_fairness("loans", version, "loans@1", ["age"], "y")
    names = [g["group"] for g in ev.result["groups"]]
    assert len(names) == 4 and all(name.startswith("[") for name in names)
    lows = [float(name[1:].split(",")[0]) for name in names]
    assert lows == sorted(lows)  # numeric order, not text order
    # True means 1 for 0/1 labels
    same = client.evaluate_fairness("loans", version, "loans@1", ["age"], "y", positive_label=True)
    assert same.result["positive_label"] == "1" and same.metrics == ev.metrics
    assert sum(g["size"] for g in ev.result["groups"]) == len(frame)
