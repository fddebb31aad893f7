"""Model cards through the SDK in every mode: assembled from what the store knows (details, owners,
lineage and profile, run metrics, evaluation with slices, fairness, explanation, reviews, signatures),
narrative sections model-wide and per version, completeness, rendering as Markdown, escaped HTML and
Model Card Toolkit JSON, and policies that read completeness and fairness results."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.core.errors import InvalidInput, NotFound, PolicyViolation
from shipyard.governance.cards import REQUIRED_SECTIONS
from tests.governance.test_evaluate import credit_frame, journal_payloads


def register_from_run(client: Client) -> int:
    """``credit`` trained in a run that logged auc, registered from the run with its dataset in the lineage."""
    frame = credit_frame()
    dataset = client.log_dataset(frame, "credit")
    model = LogisticRegression(max_iter=1000).fit(frame[["income", "age"]], frame["approved"])
    client.create_experiment("credit-training")
    run = client.create_run("credit-training")
    client.log_metric(run.id, "auc", 0.91, synchronous=True)
    client.log_model(run.id, model, input_example=frame[["income", "age"]].head(3))
    client.end_run(run.id)
    return client.register_model(f"runs:/{run.id}/model", "credit", data_refs=[dataset.ref]).version


def test_model_card_is_assembled_from_the_store(client: Client) -> None:
    version = register_from_run(client)
    client.set_model_tags("credit", {"owner": "risk-team"})
    client.create_principal("alice")
    client.grant_role("alice", "reviewer", model="credit")
    client.set_risk_tier("credit", "high")

    before = client.card_completeness("credit", version)
    assert before.complete is False
    assert before.missing == ["intended_use", "limitations", "ethical_considerations", "fairness"]
    assert before.sections["training_data"] and before.sections["evaluation"]  # lineage and run metrics
    assert before.score == pytest.approx(2 / 6, abs=1e-4)

    client.set_card_section("credit", "intended_use", "Pre-screening of consumer loan applications.")
    client.set_card_section("credit", "limitations", "Model-wide: not for mortgages.")
    client.set_card_section("credit", "limitations", "Version 1: trained on one region only.", version=version)
    client.set_card_section("credit", "ethical_considerations", "Income proxies <b>wealth</b> & age.")
    client.evaluate_version("credit", version, "credit@1", "approved", slices=["region"])
    client.evaluate_fairness("credit", version, "credit@1", ["region"], "approved")
    client.explain_version("credit", version, "credit@1", label_column="approved", n_repeats=2)

    card = client.get_model_card("credit", version)
    d = card.model_details
    mv = client.get_version("credit", version)
    assert (d.name, d.version, d.digest, d.flavor, d.stage, d.risk_tier) == (
        "credit", version, mv.digest, "sklearn", "draft", "high"
    )  # fmt: skip
    assert d.owners == ["risk-team", "alice"]
    assert card.sections["limitations"] == "Version 1: trained on one region only."  # the version's text wins
    assert [ds.ref for ds in card.training_data] == ["credit@1"] and card.training_data[0].row_count == 400
    assert {c["name"] for c in card.training_data[0].columns} >= {"income", "age", "region", "approved"}
    assert card.run_metrics == {"auc": pytest.approx(0.91)}
    assert set(card.evaluation.result["slices"]["region"]) == {"north", "south", "east"}
    assert card.fairness.result["sensitive_features"] == ["region"]
    assert card.explanation.result["importances"][0]["feature"] == "income"
    assert "background" not in card.explanation.result  # raw rows stay out of the card
    assert card.signatures and card.signatures[0].digest == mv.digest  # signed at registration
    assert card.completeness.complete and card.completeness.score == 1.0 and card.completeness.missing == []
    assert list(card.completeness.sections) == list(REQUIRED_SECTIONS)

    client.submit_for_review("credit", version, comment="ready")
    card = client.get_model_card("credit", version)
    assert card.model_details.stage == "in_review"
    assert [(r.decision, r.comment) for r in card.reviews] == [("submit", "ready")]

    markdown = client.render_model_card("credit", version)
    assert markdown.startswith(f"# Model card: credit version {version}\n")
    for heading in (
        "## Model details",
        "## Intended use",
        "## Training data",
        "## Evaluation",
        "## Fairness",
        "## Explanations",
        "## Limitations",
        "## Ethical considerations",
        "## Approvals",
        "## Signatures",
    ):
        assert heading in markdown  # fmt: skip
    assert "Pre-screening of consumer loan applications." in markdown and mv.digest in markdown

    page = client.render_model_card("credit", version, format="html")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "Income proxies &lt;b&gt;wealth&lt;/b&gt; &amp; age." in page

    toolkit = json.loads(client.render_model_card("credit", version, format="json"))
    assert set(toolkit) >= {"model_details", "model_parameters", "quantitative_analysis", "considerations"}
    considerations = toolkit["considerations"]
    assert set(considerations) == {"users", "use_cases", "limitations", "tradeoffs", "ethical_considerations"}
    assert considerations["limitations"] == [{"description": "Version 1: trained on one region only."}]
    assert toolkit["model_details"]["owners"] == [{"name": "risk-team"}, {"name": "alice"}]
    metrics = toolkit["quantitative_analysis"]["performance_metrics"]
    assert {"type": "auc", "value": "0.91", "slice": ""} in metrics
    assert any(m["slice"] == "region=east" and m["type"] == "accuracy" for m in metrics)
    assert any(m["type"] == "selection_rate" and "confidence_interval" in m for m in metrics)
    assert "background" not in toolkit["shipyard"]["explanation"]["result"]  # no raw rows in a card

    payloads = journal_payloads(client, "card.section_set")
    assert [p["section"] for p in payloads] == ["intended_use", "limitations", "limitations", "ethical_considerations"]
    assert [p["version"] for p in payloads] == [None, None, version, None]


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-sqlite"])
def test_card_sections_bad_input_and_removal(client: Client) -> None:
    version = register_from_run(client)
    with pytest.raises(InvalidInput) as err:
        client.set_card_section("credit", "vibes", "good")
    assert err.value.field == "section"
    with pytest.raises(InvalidInput) as err:
        client.set_card_section("credit", "caveats", "x" * 60_000)
    assert err.value.field == "text"
    with pytest.raises(NotFound):
        client.set_card_section("nobody", "caveats", "x")
    with pytest.raises(NotFound) as err:
        client.set_card_section("credit", "caveats", "x", version=42)
    assert err.value.field == "version"
    with pytest.raises(InvalidInput) as err:
        client.render_model_card("credit", version, format="pdf")
    assert err.value.field == "format"
    with pytest.raises(NotFound):
        client.get_model_card("credit", 42)

    client.set_card_section("credit", "caveats", "Scores drift in winter.")
    assert client.get_model_card("credit", version).sections["caveats"] == "Scores drift in winter."
    removed = client.set_card_section("credit", "caveats", "")
    assert removed.text == "" and "caveats" not in client.get_model_card("credit", version).sections


@pytest.mark.parametrize("mode", ["embedded-sqlite", "remote-postgres"])
def test_policies_read_card_completeness_and_fairness(client: Client) -> None:
    version = register_from_run(client)
    client.add_policy(
        "fair-and-documented",
        """
applies_to: {models: [credit]}
rules:
  - model_card: complete
    gates: [review]
  - fairness: disparate_impact_ratio
    min: 0.8
    gates: [review]
""",
    )
    with pytest.raises(PolicyViolation) as err:
        client.submit_for_review("credit", version)
    violated = {v["rule"] for v in err.value.details["violations"]}
    assert any("model_card" in rule for rule in violated) and any("disparate_impact_ratio" in r for r in violated)

    for section in ("intended_use", "limitations", "ethical_considerations"):
        client.set_card_section("credit", section, f"{section} text")
    fairness = client.evaluate_fairness("credit", version, "credit@1", ["region"], "approved", min_group_size=10)
    check = client.check_version("credit", version, gate="review")
    by_kind = {r.kind: r for r in check.results}
    assert by_kind["model_card"].passed is True
    assert by_kind["fairness"].value == pytest.approx(fairness.metrics["disparate_impact_ratio"])
    assert by_kind["fairness"].passed == (fairness.metrics["disparate_impact_ratio"] >= 0.8)


@pytest.mark.parametrize("mode", ["embedded-sqlite"])
def test_audit_log_and_evidence_bundle_carry_the_card(client: Client, tmp_path: Path) -> None:
    version = register_from_run(client)
    client.set_card_section("credit", "intended_use", "Pre-screening.")
    client.evaluate_fairness("credit", version, "credit@1", ["region"], "approved")
    summaries = [e.summary for e in client.audit_log("credit", version)]
    assert any("evaluated: fairness on credit@1" in s for s in summaries)
    # a model-wide section is about no one version: it is in the model's log
    assert any("model card section 'intended_use' edited" in e.summary for e in client.audit_log("credit"))

    client.download_bundle("credit", version, tmp_path / "evidence.zip")
    with zipfile.ZipFile(tmp_path / "evidence.zip") as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        markdown = bundle.read("model_card.md").decode()
        toolkit = json.loads(bundle.read("model_card.json"))
    assert manifest["model_card"] == "rendered"  # this service's card, not the bundle's fallback
    assert "## Fairness" in markdown and "Pre-screening." in markdown
    assert toolkit["considerations"]["use_cases"] == [{"description": "Pre-screening."}]
