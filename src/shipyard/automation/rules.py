"""Automation rules as YAML: parsing and validation, with errors naming the line and the field.

A rule::

    name: retrain-on-drift            # optional when the caller names it
    description: Retrain when the churn monitor drifts
    on: alert.fired                   # a journal action, a prefix ending in '.', or a list of those
    where: context.alert.metric startswith 'drift.'   # optional (see conditions.py)
    do:                               # one action or a list, run in order; a failure stops the list
      - run_pipeline:
          pipeline: churn.pipelines:retraining
          params: {base: "churn-data@1"}
          window_param: dataset       # the alert's window rows (with labels) as a dataset version
      - notify: {message: "retraining after {{ event.payload.rule }}"}

String values of an action may hold templates (``{{ event.payload.version }}``), rendered with
Jinja2's sandbox when the rule fires (:mod:`shipyard.automation.templates`). Every check here runs
when a rule is saved, so a stored rule is always well formed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from shipyard.automation import templates
from shipyard.automation.conditions import parse_condition
from shipyard.automation.filters import check_filter
from shipyard.core.errors import InvalidInput
from shipyard.core.names import check_name

MAX_TEXT = 50_000
MAX_ACTIONS = 20
TOP_KEYS = ("name", "description", "on", "where", "do")
STRATEGIES = ("direct", "bluegreen", "canary", "shadow", "ab", "rolling")

# action -> argument -> (accepted types, required). Strings may always be templates.
_STR, _NUM, _MAP = (str,), (int, float, str), (dict, str)
ACTIONS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "run_pipeline": {
        "pipeline": (_STR, True),
        "params": (_MAP, False),
        "executor": (_STR, False),
        "window_param": (_STR, False),  # alert.fired only: the alert window's rows as this dataset param
        "cache": ((bool,), False),  # reuse cached step outputs (default: no, a retraining really runs)
    },
    "evaluate": {
        "model": (_STR, True),
        "version": ((int, str), True),
        "dataset": (_STR, True),
        "label_column": (_STR, True),
        "against": (_STR, False),  # an alias of the same model (default: champion)
        "metric": (_STR, False),  # default: accuracy (classification) or r2 (regression)
        "tolerance": (_NUM, False),  # the candidate passes when it is at most this much worse
        "higher_is_better": ((bool, str), False),
    },
    "request_review": {
        "model": (_STR, True),
        "version": ((int, str), True),
        "comment": (_STR, False),
    },
    "deploy": {
        "endpoint": (_STR, True),
        "model": (_STR, True),  # a models:/ URI, or a model name with `version`
        "version": ((int, str), False),
        "strategy": (_STR, False),
        "options": (_MAP, False),
    },
    "promote": {"endpoint": (_STR, True), "reason": (_STR, False)},
    "rollback": {"endpoint": (_STR, True), "reason": (_STR, False)},
    "notify": {"message": (_STR, True), "url": (_STR, False), "retries": ((int,), False)},
}
# Actions that change what an endpoint serves: saving or enabling such a rule needs `deploy`.
DEPLOYING = ("deploy", "promote", "rollback")


class Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so the key ``on`` (and on/off/yes/no values) stay text."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _fail(message: str, field: str, line: int | None) -> InvalidInput:
    where = f"line {line}: " if line else ""
    return InvalidInput(f"{where}{field}: {message}", field=field, details={"line": line} if line else None)


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key, and of each item under ``do`` as ``do[i]``."""
    try:
        node = yaml.compose(text, Loader=Loader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[str(key.value)] = key.start_mark.line + 1
                if key.value == "do" and isinstance(value, yaml.SequenceNode):
                    for i, item in enumerate(value.value):
                        lines[f"do[{i}]"] = item.start_mark.line + 1
    return lines


def load_text(text: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the rule is empty: give its YAML", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the rule is longer than {MAX_TEXT} characters", field="text")
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _fail(f"not valid YAML ({problem})", "text", line) from None


def parse_rule(text: str, name: str | None = None) -> dict[str, Any]:
    """The YAML text → the rule's spec ``{name, description, on, where, do}``; InvalidInput when invalid."""
    data = load_text(text)
    lines = _key_lines(text)
    if not isinstance(data, Mapping):
        raise _fail("a rule is a mapping with on, where and do", "text", 1)
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(f"unknown key (a rule has {', '.join(TOP_KEYS)})", str(key), lines.get(str(key)))
    rule_name = data.get("name", name)
    if name is not None and data.get("name") not in (None, name):
        raise _fail(f"the YAML names the rule {data.get('name')!r}, not {name!r}", "name", lines.get("name"))
    if rule_name is None:
        raise _fail("the rule needs a name", "name", None)
    try:
        check_name(rule_name, "rule name")
    except InvalidInput as exc:
        raise _fail(exc.message, "name", lines.get("name")) from None
    description = data.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 2000):
        raise _fail("must be text of at most 2000 characters", "description", lines.get("description"))
    on = _on(data.get("on"), lines.get("on"))
    try:
        where = parse_condition(data.get("where"), "where")
    except InvalidInput as exc:
        line = lines.get("where")
        raise InvalidInput(f"line {line}: {exc.message}" if line else exc.message, field=exc.field) from None
    actions = _actions(data.get("do"), lines)
    return {"name": rule_name, "description": description, "on": on, "where": where, "do": actions}


def _on(value: Any, line: int | None) -> list[str]:
    if value is None:
        raise _fail("say which events fire the rule, e.g. on: alert.fired", "on", line)
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise _fail("an action (alert.fired), a prefix ending in '.' (deployment.) or a list of those", "on", line)
    try:
        return check_filter(values, "on")
    except InvalidInput as exc:
        raise _fail(exc.message.removeprefix("on "), "on", line) from None


def _actions(value: Any, lines: dict[str, int]) -> list[dict[str, Any]]:
    line = lines.get("do")
    if value is None:
        raise _fail(f"say what to do: one of {', '.join(ACTIONS)}", "do", line)
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > MAX_ACTIONS:
        raise _fail(f"give 1 to {MAX_ACTIONS} actions", "do", line)
    return [_action(item, f"do[{i}]", lines.get(f"do[{i}]", line)) for i, item in enumerate(items)]


def _action(item: Any, field: str, line: int | None) -> dict[str, Any]:
    if isinstance(item, str):  # `- notify` alone is not enough: every action takes arguments
        item = {item: None}
    if not isinstance(item, Mapping) or len(item) != 1:
        raise _fail(f"an action is a mapping with one key, one of {', '.join(ACTIONS)}", field, line)
    kind, args = next(iter(item.items()))
    if kind not in ACTIONS:
        raise _fail(f"unknown action {kind!r} (one of {', '.join(ACTIONS)})", field, line)
    args = {} if args is None else args
    if not isinstance(args, Mapping):
        raise _fail("the action's arguments are a mapping", f"{field}.{kind}", line)
    schema = ACTIONS[kind]
    for arg, argv in args.items():
        if arg not in schema:
            raise _fail(f"unknown argument (it takes {', '.join(schema)})", f"{field}.{kind}.{arg}", line)
        types, _ = schema[arg]
        if isinstance(argv, bool) and bool not in types or not isinstance(argv, types):
            names = " or ".join(sorted({"text" if t is str else t.__name__ for t in types}))
            raise _fail(f"must be {names}", f"{field}.{kind}.{arg}", line)
        _check_json(argv, f"{field}.{kind}.{arg}", line)
    for arg, (_, required) in schema.items():
        if required and arg not in args:
            raise _fail("is required", f"{field}.{kind}.{arg}", line)
    strategy = args.get("strategy")
    if kind == "deploy" and isinstance(strategy, str) and "{{" not in strategy and strategy not in STRATEGIES:
        raise _fail(f"one of {', '.join(STRATEGIES)}", f"{field}.deploy.strategy", line)
    url = args.get("url")
    if kind == "notify" and isinstance(url, str) and "{{" not in url and not url.startswith(("http://", "https://")):
        raise _fail("an http(s) URL", f"{field}.notify.url", line)
    try:
        templates.check(dict(args), f"{field}.{kind}")
    except InvalidInput as exc:
        raise InvalidInput(f"line {line}: {exc.message}" if line else exc.message, field=exc.field) from None
    return {"action": kind, "args": dict(args)}


def _check_json(value: Any, field: str, line: int | None) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise _fail("only plain values (text, numbers, booleans, lists, mappings)", field, line) from None


def digest(text: str) -> str:
    """The identity of a rule's text: saving the same YAML again makes no new version."""
    return hashlib.sha256(text.strip().encode()).hexdigest()


def deploys(spec: Mapping[str, Any]) -> bool:
    return any(a["action"] in DEPLOYING for a in spec.get("do", []))


def matches_on(on: list[str], action: str) -> bool:
    return any(action.startswith(a) if a.endswith(".") else action == a for a in on)
