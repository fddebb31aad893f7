"""Model card assembly: everything the store knows about a version, plus its narrative sections.

Facts are read, never typed twice: details and lineage from the registry and the dataset service,
the source run's metrics from tracking, the newest evaluation / fairness / explanation results,
reviews and signatures. Narrative sections (intended use, limitations, ...) are edited text in
``model_card_sections``: version 0 holds model-wide text, a version's own text wins over it.

Completeness is what a policy checks (``model_card`` rules): each of :data:`REQUIRED_SECTIONS` is
either a narrative section with text or a fact the store holds.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from shipyard.core.time import now_ms
from shipyard.governance.evaluation_entities import (
    CardCompleteness,
    CardReview,
    CardSignature,
    ModelCard,
    ModelDetails,
    TrainingDataset,
)
from shipyard.store import schema as t

# Editable narrative sections, in the order a card shows them.
NARRATIVE_SECTIONS = (
    "overview",
    "intended_use",
    "users",
    "use_cases",
    "out_of_scope",
    "limitations",
    "tradeoffs",
    "ethical_considerations",
    "caveats",
)
# What a complete card has: narrative text for the first three, facts in the store for the others.
REQUIRED_SECTIONS = ("intended_use", "limitations", "ethical_considerations", "training_data", "evaluation", "fairness")
OWNER_TAG = "owner"
TOP_VALUES = 3


def assemble(services: Any, evaluations: Any, name: str, version: int) -> ModelCard:
    """The card of ``name``/``version`` (NotFound when either does not exist)."""
    mv = services.registry.get_version(name, version)
    model = services.registry.get_model(name)
    with services.db.read() as conn:
        sections = _sections(conn, model.id, version)
        owners = _owners(conn, name, model.tags.get(OWNER_TAG))
        reviews = _reviews(conn, mv.id)
        signatures = _signatures(conn, mv.id)
    newest = {kind: None for kind in ("evaluation", "fairness", "explanation")}
    for found in evaluations.list_evaluations(name, version):  # newest first
        if found.kind in newest and newest[found.kind] is None:
            newest[found.kind] = found
    if newest["explanation"] is not None:  # its background rows are raw data: never in a card
        explanation = newest["explanation"]
        result = {k: v for k, v in explanation.result.items() if k != "background"}
        newest["explanation"] = explanation.model_copy(update={"result": result})
    details = ModelDetails(
        name=name,
        version=version,
        uri=mv.uri,
        digest=mv.digest,
        flavor=mv.flavor,
        description=mv.description,
        model_description=model.description,
        created_by=mv.created_by,
        created_at=mv.created_at,
        owners=owners,
        risk_tier=model.risk_tier,
        stage=mv.stage,
        aliases=sorted(mv.aliases),
        source_run_id=mv.source_run_id,
        code_commit=mv.code_commit,
        signature=mv.signature,
    )
    card = ModelCard(
        model_details=details,
        sections=sections,
        training_data=[_dataset(services, ref) for ref in mv.data_refs],
        run_metrics=_run_metrics(services, mv.source_run_id),
        evaluation=newest["evaluation"],
        fairness=newest["fairness"],
        explanation=newest["explanation"],
        reviews=reviews,
        signatures=signatures,
        completeness=CardCompleteness(complete=False, score=0.0, missing=[], sections={}),
        generated_at=now_ms(),
    )
    card.completeness = completeness(card)
    return card


def completeness(card: ModelCard) -> CardCompleteness:
    present = {
        "intended_use": bool(card.sections.get("intended_use")),
        "limitations": bool(card.sections.get("limitations")),
        "ethical_considerations": bool(card.sections.get("ethical_considerations")),
        "training_data": bool(card.training_data),
        "evaluation": bool(card.run_metrics) or bool(card.evaluation and card.evaluation.metrics),
        "fairness": card.fairness is not None,
    }
    sections = {name: present[name] for name in REQUIRED_SECTIONS}
    missing = [name for name, ok in sections.items() if not ok]
    score = round(1.0 - len(missing) / len(REQUIRED_SECTIONS), 4)
    return CardCompleteness(complete=not missing, score=score, missing=missing, sections=sections)


def _sections(conn: sa.Connection, model_id: str, version: int) -> dict[str, str]:
    s = t.model_card_sections
    rows = conn.execute(
        sa.select(s.c.version, s.c.section, s.c.text).where(s.c.model_id == model_id, s.c.version.in_((0, version)))
    ).all()
    found: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.version):  # model-wide first, the version's own text wins
        found[row.section] = row.text
    return {name: found[name] for name in NARRATIVE_SECTIONS if found.get(name)}


def _owners(conn: sa.Connection, name: str, tag: str | None) -> list[str]:
    """The model's ``owner`` tag (comma-separated names) and every principal holding a role on it."""
    owners = [part.strip() for part in (tag or "").split(",") if part.strip()]
    g, p = t.role_grants, t.principals
    rows = conn.execute(
        sa.select(p.c.name)
        .join(g, g.c.principal_id == p.c.id)
        .where(g.c.scope_type == "model", g.c.scope == name)
        .order_by(p.c.name)
    ).scalars()
    return list(dict.fromkeys([*owners, *rows]))


def _reviews(conn: sa.Connection, version_id: str) -> list[CardReview]:
    r = t.version_reviews
    rows = conn.execute(sa.select(r).where(r.c.version_id == version_id).order_by(r.c.created_at, r.c.id)).all()
    return [
        CardReview(
            reviewer=row.reviewer,
            decision=row.decision,
            comment=row.comment,
            digest=row.digest,
            created_at=row.created_at,
        )
        for row in rows
    ]


def _signatures(conn: sa.Connection, version_id: str) -> list[CardSignature]:
    s = t.artifact_signatures
    rows = conn.execute(
        sa.select(s)
        .where(s.c.subject_type == "model_version", s.c.subject_id == version_id)
        .order_by(s.c.created_at, s.c.id)
    ).all()
    return [
        CardSignature(key_id=row.key_id, signer=row.signer, digest=row.digest, created_at=row.created_at)
        for row in rows
    ]


def _run_metrics(services: Any, run_id: str | None) -> dict[str, float | None]:
    if run_id is None:
        return {}
    try:
        metrics = services.tracking.get_run(run_id).metrics
    except Exception:  # a deleted run: the card simply has no run metrics
        return {}
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in sorted(metrics.items())}


def _dataset(services: Any, ref: str) -> TrainingDataset:
    """One training dataset version: row count, schema, and a summary of each column's profile."""
    try:
        version = services.data.resolve_version(ref)
    except Exception as exc:  # deleted or unreadable: the card says so rather than failing
        return TrainingDataset(ref=ref, error=getattr(exc, "message", str(exc)))
    profile = (version.profile or {}).get("columns") or {}
    columns = []
    for column in version.schema or []:
        stats = profile.get(column.get("name")) or {}
        summary: dict[str, Any] = {"name": column.get("name"), "type": column.get("type"), "kind": stats.get("kind")}
        for key in ("missing", "distinct", "min", "max", "mean", "std"):
            if stats.get(key) is not None:
                summary[key] = stats[key]
        if stats.get("top"):
            summary["top"] = [top.get("value") for top in stats["top"][:TOP_VALUES]]
        columns.append(summary)
    return TrainingDataset(
        ref=version.ref,
        digest=version.digest,
        row_count=version.row_count,
        columns=columns,
        description=version.description,
    )
