"""Rule evaluation: judge one version against the rules of the policies that apply to it.

:class:`Evidence` gathers what the store knows about a version (lazily, once per evaluation):
its source run's metrics, its newest evaluation / fairness / reproducibility results, the
validation reports of its training data, its model card completeness and signature, and the
deployments it has been through. Each rule becomes a :class:`RuleResult` carrying the measured
value and the threshold, so a blocked transition can say exactly what failed.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from shipyard.core.errors import ShipyardError
from shipyard.governance.lifecycle_entities import RuleResult
from shipyard.store import schema as t


@dataclass(frozen=True)
class PolicyRef:
    name: str
    version: int
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Subject:
    """The version under judgement, as stored."""

    model_id: str
    name: str
    version: int
    version_id: str
    digest: str
    stage: str
    author: str | None
    source_run_id: str | None
    data_refs: list[str]
    risk_tier: str | None


def applies(policy: dict[str, Any], name: str, risk_tier: str | None) -> bool:
    """Does a policy's ``applies_to`` select this model? Empty lists select everything."""
    selector = policy.get("applies_to") or {}
    models = selector.get("models") or []
    tiers = selector.get("risk_tiers") or []
    if models and not any(fnmatch.fnmatchcase(name, pattern) for pattern in models):
        return False
    return not tiers or risk_tier in tiers


def tier_settings(policy: dict[str, Any], risk_tier: str | None) -> dict[str, Any]:
    """The deployment and approval settings in force: the policy's, overridden by its risk-tier entry."""
    merged = {"approvals": policy.get("approvals", {}).get("required", 1), **policy.get("deployment", {})}
    if risk_tier is not None:
        merged.update(policy.get("risk_tiers", {}).get(risk_tier, {}))
    return merged


class Evidence:
    """What the store knows about one version, read on first use."""

    def __init__(self, services: Any, subject: Subject):
        self.services = services
        self.subject = subject

    @cached_property
    def run_metrics(self) -> dict[str, float]:
        if self.subject.source_run_id is None:
            return {}
        try:
            return dict(self.services.tracking.get_run(self.subject.source_run_id).metrics)
        except Exception:  # a deleted run is simply no evidence
            return {}

    def newest(self, kind: str) -> dict[str, Any] | None:
        return self._newest.get(kind)

    @cached_property
    def _newest(self) -> dict[str, dict[str, Any]]:
        e = t.version_evaluations
        with self.services.db.read() as conn:
            rows = conn.execute(
                sa.select(e.c.kind, e.c.result, e.c.created_at, e.c.dataset)
                .where(e.c.version_id == self.subject.version_id)
                .order_by(e.c.created_at)
            ).all()
        newest: dict[str, dict[str, Any]] = {}
        for row in rows:  # ascending, so the last one of each kind wins
            newest[row.kind] = {"result": row.result or {}, "created_at": row.created_at, "dataset": row.dataset}
        return newest

    def evaluation_metric(self, kind: str, metric: str) -> float | None:
        found = self.newest(kind)
        if found is None:
            return None
        result = found["result"]
        metrics = result.get("metrics") if isinstance(result.get("metrics"), dict) else {}
        value = metrics.get(metric, result.get(metric))
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @cached_property
    def validations(self) -> dict[str, str]:
        """Each training dataset version → passed | failed | not validated (its newest report decides)."""
        statuses: dict[str, str] = {}
        for ref in self.subject.data_refs:
            try:
                reports = self.services.contracts.list_reports(ref)
            except Exception:
                statuses[ref] = "missing"
                continue
            statuses[ref] = "not validated" if not reports else "passed" if reports[0].passed else "failed"
        return statuses

    @cached_property
    def card(self) -> dict[str, Any]:
        try:
            found = self.services.evaluations.card_completeness(self.subject.name, self.subject.version)
        except AttributeError:  # the model-card service is not available in this build
            return {"unavailable": "model cards unavailable"}
        except ShipyardError as exc:
            return {"unavailable": f"model card unavailable: {exc.message}"}
        return found.model_dump() if hasattr(found, "model_dump") else dict(found)

    @cached_property
    def signature(self) -> dict[str, Any]:
        try:
            return dict(self.services.audit.verify_version_signature(self.subject.name, self.subject.version))
        except AttributeError:
            return {"valid": False, "reason": "signatures unavailable"}
        except ShipyardError as exc:
            return {"valid": False, "reason": f"signature check failed: {exc.message}"}

    @cached_property
    def completed_shadows(self) -> int:
        """Shadow deployments of this exact version (by digest) that ran to a verdict: promoted, or
        stopped after a passing judgement."""
        d = t.deployments
        with self.services.db.read() as conn:
            rows = conn.execute(
                sa.select(d.c.status, d.c.judgements).where(
                    d.c.strategy == "shadow", d.c.candidate_digest == self.subject.digest
                )
            ).all()
        completed = 0
        for row in rows:
            judgements = row.judgements or []
            passed = bool(judgements) and judgements[-1].get("verdict") == "pass"
            if row.status == "promoted" or (row.status in ("aborted", "rolled_back") and passed):
                completed += 1
        return completed


def _result(policy: PolicyRef, rule: str, kind: str, gate: str, passed: bool, value: Any, threshold: Any, message: str):
    return RuleResult(
        policy=policy.name,
        policy_version=policy.version,
        rule=rule,
        kind=kind,
        gate=gate,
        passed=passed,
        value=value,
        threshold=threshold,
        message=message,
    )


def _bounds(rule: dict[str, Any]) -> Any:
    """The threshold as data: the bound itself (the rule's name says its direction), or both bounds."""
    if "min" in rule and "max" in rule:
        return {"min": rule["min"], "max": rule["max"]}
    return rule["min"] if "min" in rule else rule["max"]


def _required(rule: dict[str, Any]) -> str:
    parts = []
    if "min" in rule:
        parts.append(f">= {rule['min']:g}")
    if "max" in rule:
        parts.append(f"<= {rule['max']:g}")
    return " and ".join(parts)


def _within(value: float, rule: dict[str, Any]) -> bool:
    if math.isnan(value):
        return False
    return ("min" not in rule or value >= rule["min"]) and ("max" not in rule or value <= rule["max"])


def judge_rule(policy: PolicyRef, rule: dict[str, Any], gate: str, ev: Evidence) -> RuleResult:
    """One evidence rule → its result (measured value, threshold, message)."""
    kind, label = rule["kind"], rule["name"]

    def result(passed: bool, value: Any, threshold: Any, message: str) -> RuleResult:
        return _result(policy, label, kind, gate, passed, value, threshold, message)

    if kind == "metric":
        metric, source = rule["metric"], rule.get("source", "any")
        value, where = None, None
        if source in ("any", "evaluation"):
            value, where = ev.evaluation_metric("evaluation", metric), "the newest evaluation"
        if value is None and source in ("any", "run"):
            found = ev.run_metrics.get(metric)
            value, where = (float(found), "the source run") if found is not None else (None, None)
        threshold = _bounds(rule)
        if value is None:
            missing = {
                "any": "neither the newest evaluation nor the source run has it",
                "evaluation": "the newest evaluation does not have it",
                "run": "the source run does not have it" if ev.subject.source_run_id else "there is no source run",
            }[source]
            return result(False, None, threshold, f"no value for metric {metric!r}: {missing}")
        passed = _within(value, rule)
        return result(passed, value, threshold, f"{metric} = {value:g} (from {where}), required {_required(rule)}")
    if kind == "fairness":
        metric = rule["metric"]
        value = ev.evaluation_metric("fairness", metric)
        threshold = _bounds(rule)
        if value is None:
            return result(False, None, threshold, f"no fairness evaluation with {metric!r} for this version")
        passed = _within(value, rule)
        return result(passed, value, threshold, f"fairness {metric} = {value:g}, required {_required(rule)}")
    if kind == "data_validation":
        statuses = ev.validations
        if not statuses:
            return result(False, None, "passed", "the version has no training data lineage to validate")
        bad = {ref: s for ref, s in statuses.items() if s != "passed"}
        message = (
            f"every training dataset version passed validation ({', '.join(statuses)})"
            if not bad
            else "training data not validated or failing: " + ", ".join(f"{r} {s}" for r, s in bad.items())
        )
        return result(not bad, statuses, "passed", message)
    if kind == "model_card":
        card = ev.card
        if "unavailable" in card:
            return result(False, None, "complete", card["unavailable"])
        score = card.get("score")
        missing = list(card.get("missing") or [])
        if "min_score" in rule:
            passed = isinstance(score, (int, float)) and score >= rule["min_score"]
            return result(
                bool(passed),
                score,
                rule["min_score"],
                f"model card score {score} (missing: {', '.join(missing) or '-'})",
            )
        complete = bool(card.get("complete"))
        message = "the model card is complete" if complete else f"the model card lacks {', '.join(missing) or '?'}"
        return result(complete, "complete" if complete else f"missing {', '.join(missing)}", "complete", message)
    if kind == "signature":
        sig = ev.signature
        valid = bool(sig.get("valid"))
        return result(valid, "valid" if valid else "invalid", "valid", str(sig.get("reason") or "signature checked"))
    if kind == "reproducibility":
        found = ev.newest("reproducibility")
        if found is None:
            return result(False, None, "identical", "the version was never reproduced")
        identical = found["result"].get("identical") is True
        message = "the newest reproduction is bit-identical" if identical else "the newest reproduction differs"
        return result(identical, identical, True, message)
    raise ValueError(f"unknown rule kind {kind!r}")  # parse_policy admits no other kind


def evidence_results(policy: PolicyRef, gate: str, ev: Evidence) -> list[RuleResult]:
    return [judge_rule(policy, rule, gate, ev) for rule in policy.spec.get("rules", []) if gate in rule["gates"]]


def strategy_results(policy: PolicyRef, ev: Evidence, strategy: str | None) -> list[RuleResult]:
    """The deployment constraints in force for the model's risk tier, judged for ``strategy``."""
    if strategy is None:
        return []
    settings = tier_settings(policy.spec, ev.subject.risk_tier)
    tier = ev.subject.risk_tier or "no"
    out: list[RuleResult] = []
    allowed = settings.get("strategies")
    if allowed:
        passed = strategy in allowed
        message = f"strategy {strategy} is {'allowed' if passed else 'not allowed'} for {tier} risk models"
        out.append(_result(policy, "allowed strategies", "strategy", "deploy", passed, strategy, allowed, message))
    if strategy in (settings.get("shadow_before") or []):
        count = ev.completed_shadows
        message = (
            f"{count} completed shadow deployment(s) of version {ev.subject.version}"
            if count
            else f"{tier} risk models must complete a shadow deployment of this version before a {strategy}"
        )
        rule = f"shadow before {strategy}"
        out.append(_result(policy, rule, "shadow_before", "deploy", count > 0, count, ">= 1 completed shadow", message))
    return out
