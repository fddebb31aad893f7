"""Alert rule logic, pure: conditions (static or dynamic), metric lookup and the hysteresis that
keeps an alert from flapping.

A static condition compares a window's value with a threshold (``{"op": ">", "value": 0.2}``). A
dynamic one fires when the value leaves ``mean ± k·σ`` of the metric's own recent history
(``{"dynamic": 3, "history": 24}``: the previous 24 windows, at least 5 of them with data).

Hysteresis: a rule fires after ``fire_after`` consecutive breaching windows and resolves after
``resolve_after`` consecutive clear ones; windows without enough data leave the state unchanged.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.core.errors import InvalidInput

OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
MIN_HISTORY = 5


def parse_condition(condition: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"> 0.2"``, ``"dynamic 3"`` (or ``"dynamic 3 over 48"``), or the dict form, checked."""
    if isinstance(condition, str):
        parts = condition.split()
        if len(parts) >= 2 and parts[0] == "dynamic":
            cond: dict[str, Any] = {"dynamic": parts[1]}
            if len(parts) == 4 and parts[2] == "over":
                cond["history"] = parts[3]
            elif len(parts) != 2:
                raise InvalidInput(
                    f"condition {condition!r}: write 'dynamic K' or 'dynamic K over N'", field="condition"
                )
            condition = cond
        elif len(parts) == 2 and parts[0] in OPERATORS:
            condition = {"op": parts[0], "value": parts[1]}
        else:
            raise InvalidInput(
                f"condition {condition!r}: write e.g. '> 0.2' (one of {' '.join(OPERATORS)}) or 'dynamic 3'",
                field="condition",
            )
    if not isinstance(condition, Mapping):
        raise InvalidInput("condition must be a string like '> 0.2' or an object", field="condition")
    if "dynamic" in condition:
        k = _number(condition["dynamic"], "condition.dynamic")
        history = int(_number(condition.get("history", 24), "condition.history"))
        if k <= 0 or history < MIN_HISTORY:
            raise InvalidInput(f"dynamic needs k > 0 and history >= {MIN_HISTORY}", field="condition")
        return {"dynamic": k, "history": history}
    op = condition.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        raise InvalidInput(f"condition op must be one of {' '.join(OPERATORS)}, not {op!r}", field="condition.op")
    return {"op": op, "value": _number(condition.get("value"), "condition.value")}


def _number(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must be a number, not {value!r}", field=field) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{field} must be finite", field=field)
    return number


def metric_value(metrics: Mapping[str, Any], path: str) -> float | None:
    """The number at a dotted path of a window's metrics (booleans count as 1/0); None when absent."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return 1.0 if node else 0.0
    if isinstance(node, int | float) and math.isfinite(node):
        return float(node)
    return None


def breached(
    condition: Mapping[str, Any], value: float, history: Sequence[float]
) -> tuple[bool | None, dict[str, Any]]:
    """Whether ``value`` breaches the condition, with the threshold used; None when a dynamic rule
    has too little history to judge."""
    if "dynamic" in condition:
        past = [v for v in history[-int(condition["history"]) :] if v is not None]
        if len(past) < MIN_HISTORY:
            return None, {"dynamic": condition["dynamic"], "history": len(past), "reason": "too little history"}
        mean = sum(past) / len(past)
        sigma = math.sqrt(sum((v - mean) ** 2 for v in past) / (len(past) - 1))
        k = float(condition["dynamic"])
        low, high = mean - k * sigma, mean + k * sigma
        outside = value < low or value > high if sigma > 0 else not math.isclose(value, mean, rel_tol=1e-9)
        return outside, {"dynamic": k, "mean": mean, "sigma": sigma, "low": low, "high": high}
    return bool(OPERATORS[condition["op"]](value, condition["value"])), {
        "op": condition["op"],
        "value": condition["value"],
    }


def advance(
    state: Mapping[str, Any], breach: bool, fire_after: int, resolve_after: int
) -> tuple[dict[str, Any], str | None]:
    """The rule's next hysteresis state after one judged window, and ``"fire"``/``"resolve"``/None."""
    new = dict(state)
    active = bool(new.get("active"))
    if breach:
        new["breaches"] = int(new.get("breaches", 0)) + 1
        new["clears"] = 0
        if not active and new["breaches"] >= fire_after:
            new["active"] = True
            return new, "fire"
    else:
        new["clears"] = int(new.get("clears", 0)) + 1
        new["breaches"] = 0
        if active and new["clears"] >= resolve_after:
            new["active"] = False
            return new, "resolve"
    return new, None
