"""Policies as code: parse and validate a policy's YAML into its canonical ``spec``.

A policy selects models (``applies_to``), says who must approve them (``approvals``), lists
evidence rules judged at gates (``rules``) and constrains deployments (``deployment``), with
per-risk-tier overrides (``risk_tiers``). Every error names the offending field, e.g.
``rules[2].max``. The rule semantics live in ``policy_rules.py``; docs/approvals.md is the reference.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from shipyard.core.errors import InvalidInput
from shipyard.deploy.entities import STRATEGIES
from shipyard.governance.roles import ROLES

GATES: tuple[str, ...] = ("review", "approve", "deploy")
RISK_TIERS: tuple[str, ...] = ("low", "medium", "high")
# Evidence rules are judged where a version moves forward unless the rule says otherwise.
DEFAULT_GATES: tuple[str, ...] = ("approve", "deploy")
MAX_APPROVALS = 20

TOP_KEYS = ("name", "description", "applies_to", "approvals", "rules", "deployment", "risk_tiers")
# The key naming each rule kind, and the other keys that kind accepts (besides name and gates).
RULE_KINDS: dict[str, tuple[str, ...]] = {
    "metric": ("min", "max", "source"),
    "fairness": ("min", "max"),
    "data_validation": (),
    "model_card": ("min_score",),
    "signature": (),
    "reproducibility": (),
}
RULE_VALUES: dict[str, tuple[Any, ...]] = {
    "data_validation": ("passed", True),
    "model_card": ("complete", True),
    "signature": ("valid", True),
    "reproducibility": ("verified", True),
}
METRIC_SOURCES = ("any", "evaluation", "run")


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(f"policy {field}: {message}", field=field)


def load_policy(text: str) -> dict[str, Any]:
    """YAML text → the validated, canonical spec."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("policy text is empty", field="text")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"policy: not valid YAML{where}: {problem}", field="text") from None
    return parse_policy(doc)


def parse_policy(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidInput("policy: the document must be a mapping of policy fields", field="text")
    unknown = sorted(set(map(str, doc)) - set(TOP_KEYS))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r}; expected one of {', '.join(TOP_KEYS)}", unknown[0])
    spec: dict[str, Any] = {}
    if doc.get("name") is not None:
        spec["name"] = _string(doc["name"], "name")
    if doc.get("description") is not None:
        spec["description"] = _string(doc["description"], "description")
    spec["applies_to"] = _applies_to(doc.get("applies_to"))
    spec["approvals"] = _approvals(doc.get("approvals"))
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise _bad("must be a list of rules", "rules")
    spec["rules"] = [_rule(rule, f"rules[{i}]") for i, rule in enumerate(rules)]
    spec["deployment"] = _deployment(doc.get("deployment"), "deployment")
    tiers = doc.get("risk_tiers") or {}
    if not isinstance(tiers, dict):
        raise _bad("must map a risk tier (low, medium, high) to its settings", "risk_tiers")
    spec["risk_tiers"] = {}
    for tier, settings in tiers.items():
        field = f"risk_tiers.{tier}"
        if tier not in RISK_TIERS:
            raise _bad(f"unknown risk tier {tier!r}; expected one of {', '.join(RISK_TIERS)}", field)
        settings = settings or {}
        if not isinstance(settings, dict):
            raise _bad("must be a mapping (approvals, strategies, shadow_before)", field)
        extra = sorted(set(settings) - {"approvals", "strategies", "shadow_before"})
        if extra:
            raise _bad(
                f"unknown field {extra[0]!r}; expected approvals, strategies, shadow_before", f"{field}.{extra[0]}"
            )
        entry = _deployment({k: v for k, v in settings.items() if k != "approvals"}, field)
        if "approvals" in settings:
            entry["approvals"] = _count(settings["approvals"], f"{field}.approvals")
        spec["risk_tiers"][tier] = entry
    return spec


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad("must be a non-empty string", field)
    return value.strip()


def _strings(value: Any, field: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _bad("must be a list of strings", field)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _bad("must be a list of non-empty strings", f"{field}[{i}]")
        if allowed is not None and item not in allowed:
            raise _bad(f"unknown value {item!r}; expected one of {', '.join(allowed)}", f"{field}[{i}]")
        if item not in out:
            out.append(item)
    return out


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_APPROVALS:
        raise _bad(f"must be a whole number between 1 and {MAX_APPROVALS}, not {value!r}", field)
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"must be a finite number, not {value!r}", field)
    return float(value)


def _mapping(value: Any, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"must be a mapping with {', '.join(keys)}", field)
    extra = sorted(set(map(str, value)) - set(keys))
    if extra:
        raise _bad(f"unknown field {extra[0]!r}; expected {', '.join(keys)}", f"{field}.{extra[0]}")
    return value


def _applies_to(value: Any) -> dict[str, Any]:
    value = _mapping(value, "applies_to", ("models", "risk_tiers"))
    return {
        "models": _strings(value.get("models"), "applies_to.models"),
        "risk_tiers": _strings(value.get("risk_tiers"), "applies_to.risk_tiers", RISK_TIERS),
    }


def _approvals(value: Any) -> dict[str, Any]:
    value = _mapping(value, "approvals", ("required", "roles", "groups"))
    required = _count(value["required"], "approvals.required") if "required" in value else 1
    groups = _strings(value.get("groups"), "approvals.groups")
    # roles default to reviewer; an explicit empty list means "any role", so membership decides alone
    roles = _strings(value["roles"], "approvals.roles", ROLES) if "roles" in value else ["reviewer"]
    if not roles and not groups:
        raise _bad("an empty list of roles needs approvals.groups (otherwise anyone could approve)", "approvals.roles")
    return {"required": required, "roles": roles, "groups": groups}


def _deployment(value: Any, field: str) -> dict[str, Any]:
    value = _mapping(value, field, ("strategies", "shadow_before"))
    out: dict[str, Any] = {}
    if "strategies" in value:
        strategies = _strings(value["strategies"], f"{field}.strategies", STRATEGIES)
        if not strategies:
            raise _bad("must list at least one strategy", f"{field}.strategies")
        out["strategies"] = strategies
    if "shadow_before" in value:
        before = _strings(value["shadow_before"], f"{field}.shadow_before", STRATEGIES)
        if "shadow" in before:
            raise _bad("a shadow cannot need a shadow before it", f"{field}.shadow_before")
        out["shadow_before"] = before
    return out


def _rule(rule: Any, field: str) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise _bad(f"must be a mapping naming one rule kind ({', '.join(RULE_KINDS)})", field)
    kinds = [k for k in rule if k in RULE_KINDS]
    if len(kinds) != 1:
        found = f"found {', '.join(map(str, kinds))}" if kinds else "found none"
        raise _bad(f"must name exactly one rule kind of {', '.join(RULE_KINDS)} ({found})", field)
    kind = kinds[0]
    allowed = (kind, "name", "gates", "gate", *RULE_KINDS[kind])
    extra = sorted(set(map(str, rule)) - set(allowed))
    if extra:
        raise _bad(
            f"unknown field {extra[0]!r} for a {kind} rule; expected {', '.join(allowed)}", f"{field}.{extra[0]}"
        )
    if "gates" in rule and "gate" in rule:
        raise _bad("give gate or gates, not both", f"{field}.gates")
    gates = _strings(rule.get("gates", rule.get("gate")), f"{field}.gates", GATES) or list(DEFAULT_GATES)
    out: dict[str, Any] = {"kind": kind, "gates": gates}
    if kind in ("metric", "fairness"):
        out["metric"] = _string(rule[kind], f"{field}.{kind}")
        if "min" not in rule and "max" not in rule:
            raise _bad(f"a {kind} rule needs min or max", f"{field}.min")
        for bound in ("min", "max"):
            if bound in rule:
                out[bound] = _number(rule[bound], f"{field}.{bound}")
        if "min" in out and "max" in out and out["min"] > out["max"]:
            raise _bad(f"min {out['min']:g} is above max {out['max']:g}", f"{field}.min")
        if kind == "metric":
            source = rule.get("source", "any")
            if source not in METRIC_SOURCES:
                raise _bad(f"unknown source {source!r}; expected one of {', '.join(METRIC_SOURCES)}", f"{field}.source")
            out["source"] = source
    else:
        expected = RULE_VALUES[kind]
        if rule[kind] not in expected:
            raise _bad(f"must be {expected[0]!r} (or true), not {rule[kind]!r}", f"{field}.{kind}")
        if "min_score" in rule:
            score = _number(rule["min_score"], f"{field}.min_score")
            if not 0 <= score <= 1:
                raise _bad(f"must be between 0 and 1, not {score:g}", f"{field}.min_score")
            out["min_score"] = score
    out["name"] = _string(rule["name"], f"{field}.name") if "name" in rule else rule_label(out)
    return out


def rule_label(rule: dict[str, Any]) -> str:
    """A readable name for a rule, used in every violation message: ``metric accuracy >= 0.9``."""
    kind = rule["kind"]
    if kind in ("metric", "fairness"):
        bounds = []
        if "min" in rule:
            bounds.append(f">= {rule['min']:g}")
        if "max" in rule:
            bounds.append(f"<= {rule['max']:g}")
        return f"{kind} {rule['metric']} {' and '.join(bounds)}"
    if kind == "model_card" and "min_score" in rule:
        return f"model_card score >= {rule['min_score']:g}"
    return {
        "data_validation": "data_validation passed",
        "model_card": "model_card complete",
        "signature": "signature valid",
        "reproducibility": "reproducibility verified",
    }[kind]
