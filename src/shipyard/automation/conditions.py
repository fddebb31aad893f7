"""The condition language of automation rules (``where:``): parsed by hand, evaluated without eval.

Two spellings give the same tree:

- an expression: ``payload.monitor == 'churn' and context.alert.metric startswith 'drift.'``, with
  ``and``, ``or``, ``not``, parentheses, the operators ``== != > >= < <= in contains startswith``
  and ``PATH exists``; literals are numbers, quoted strings, ``true``, ``false``, ``null`` and
  lists ``[1, 'a']``;
- YAML: a list of ``{field: PATH, op: OP, value: V}`` (all must hold), or a mapping
  ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``.

The tree is plain JSON (stored with the rule): ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": x}``,
``{"field": "payload.x", "op": "==", "value": 1}`` (``exists`` has no value). :func:`to_text` writes
it back as an expression; ``parse(to_text(tree)) == tree``. Every error is an ``InvalidInput``
naming the field and the column. Evaluation never raises: a missing path or values that cannot be
compared make the comparison false.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.core.errors import InvalidInput

OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "in", "contains", "startswith", "exists")
WORD_OPERATORS = ("in", "contains", "startswith", "exists")
KEYWORDS = ("and", "or", "not", "true", "false", "null", *WORD_OPERATORS)
MAX_TEXT = 4000
MAX_DEPTH = 32
_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|>=|<=|>|<)
    | (?P<punct>[()\[\],])
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*(?:\.(?:[A-Za-z_][A-Za-z0-9_\-]*|[0-9]+))*)
    )""",
    re.VERBOSE,
)
MISSING = object()


def _error(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field)


# -- parsing the expression form ---------------------------------------------------------------------


def _tokens(text: str, field: str) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise _error(f"{field}: unexpected {text[col - 1 : col + 10]!r} at column {col}", field)
        kind = m.lastgroup or ""
        value: Any = m.group(kind)
        col = m.start(kind) + 1
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise _error(f"{field}: number {value!r} at column {col} is out of range", field)
            value = int(value) if re.fullmatch(r"-?\d+", value) else number
        elif kind == "string":
            try:  # JSON's escapes; a single-quoted string may hold " and \'
                inner = value if value[0] == '"' else '"' + value[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
                value = json.loads(inner)
            except ValueError:
                raise _error(f"{field}: bad escape in the string at column {col}", field) from None
        out.append((kind, value, col))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, field: str):
        self.field = field
        self.tokens = _tokens(text, field)
        self.i = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def fail(self, expected: str) -> InvalidInput:
        tok = self.peek()
        if tok is None:
            return _error(f"{self.field}: expected {expected} at the end", self.field)
        return _error(f"{self.field}: expected {expected} at column {tok[2]}, found {tok[1]!r}", self.field)

    def take_word(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1] == word:
            self.i += 1
            return True
        return False

    def take_punct(self, punct: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "punct" and tok[1] == punct:
            self.i += 1
            return True
        return False

    def parse(self) -> dict[str, Any]:
        if not self.tokens:
            raise _error(f"{self.field}: the condition is empty", self.field)
        tree = self.or_(0)
        if self.peek() is not None:
            raise self.fail("'and', 'or' or the end")
        return tree

    def or_(self, depth: int) -> dict[str, Any]:
        parts = [self.and_(depth)]
        while self.take_word("or"):
            parts.append(self.and_(depth))
        return parts[0] if len(parts) == 1 else {"any": parts}

    def and_(self, depth: int) -> dict[str, Any]:
        parts = [self.not_(depth)]
        while self.take_word("and"):
            parts.append(self.not_(depth))
        return parts[0] if len(parts) == 1 else {"all": parts}

    def not_(self, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _error(f"{self.field}: nested more than {MAX_DEPTH} deep", self.field)
        if self.take_word("not"):
            return {"not": self.not_(depth + 1)}
        if self.take_punct("("):
            tree = self.or_(depth + 1)
            if not self.take_punct(")"):
                raise self.fail("')'")
            return tree
        return self.comparison()

    def comparison(self) -> dict[str, Any]:
        tok = self.peek()
        if tok is None or tok[0] != "word" or tok[1] in KEYWORDS:
            raise self.fail("a field path such as payload.monitor")
        self.i += 1
        path = tok[1]
        op_tok = self.peek()
        if op_tok is None or not (op_tok[0] == "op" or (op_tok[0] == "word" and op_tok[1] in WORD_OPERATORS)):
            raise self.fail(f"an operator ({' '.join(OPERATORS)})")
        self.i += 1
        if op_tok[1] == "exists":
            return {"field": path, "op": "exists"}
        return {"field": path, "op": op_tok[1], "value": self.literal()}

    def literal(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.fail("a value")
        kind, value, _ = tok
        if kind in ("number", "string"):
            self.i += 1
            return value
        if kind == "word" and value in ("true", "false", "null"):
            self.i += 1
            return {"true": True, "false": False, "null": None}[value]
        if self.take_punct("["):
            items: list[Any] = []
            if self.take_punct("]"):
                return items
            while True:
                items.append(self.literal())
                if self.take_punct("]"):
                    return items
                if not self.take_punct(","):
                    raise self.fail("',' or ']'")
        raise self.fail("a value (a number, a quoted string, true, false, null or a [list])")


def parse_expression(text: str, field: str = "where") -> dict[str, Any]:
    """An expression → the condition tree."""
    if not isinstance(text, str):
        raise _error(f"{field} must be a string", field)
    if len(text) > MAX_TEXT:
        raise _error(f"{field} is longer than {MAX_TEXT} characters", field)
    return _Parser(text, field).parse()


# -- the YAML form, and checking any tree --------------------------------------------------------------


def parse_condition(value: Any, field: str = "where") -> dict[str, Any] | None:
    """``where:`` as written (None, an expression, a list or a mapping) → the canonical tree (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_expression(value, field)
    return _check_tree(value, field, 0)


def _check_tree(value: Any, field: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _error(f"{field}: nested more than {MAX_DEPTH} deep", field)
    if isinstance(value, str):
        return parse_expression(value, field)
    if isinstance(value, list):
        if not value:
            raise _error(f"{field}: an empty list of conditions", field)
        parts = [_check_tree(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
        return parts[0] if len(parts) == 1 else {"all": parts}
    if not isinstance(value, Mapping):
        raise _error(f"{field}: a condition is an expression, a list or a mapping, not {type(value).__name__}", field)
    keys = set(value)
    for group in ("all", "any"):
        if keys == {group}:
            items = value[group]
            if not isinstance(items, list) or not items:
                raise _error(f"{field}.{group} must be a non-empty list of conditions", f"{field}.{group}")
            parts = [_check_tree(v, f"{field}.{group}[{i}]", depth + 1) for i, v in enumerate(items)]
            return parts[0] if len(parts) == 1 else {group: parts}
    if keys == {"not"}:
        return {"not": _check_tree(value["not"], f"{field}.not", depth + 1)}
    if "field" not in keys or "op" not in keys:
        raise _error(f"{field}: a comparison has 'field', 'op' and 'value' (or all/any/not)", field)
    extra = keys - {"field", "op", "value"}
    if extra:
        raise _error(f"{field}: unknown key {sorted(extra)[0]!r} (a comparison has field, op, value)", field)
    path, op = value["field"], value["op"]
    check_path(path, f"{field}.field")
    if op not in OPERATORS:
        raise _error(f"{field}.op must be one of {' '.join(OPERATORS)}, not {op!r}", f"{field}.op")
    if op == "exists":
        if "value" in keys:
            raise _error(f"{field}: 'exists' takes no value", f"{field}.value")
        return {"field": path, "op": "exists"}
    if "value" not in keys:
        raise _error(f"{field}: {op!r} needs a value", f"{field}.value")
    return {"field": path, "op": op, "value": _check_literal(value["value"], f"{field}.value")}


def check_path(path: Any, field: str) -> str:
    if not isinstance(path, str) or not path or len(path) > 300:
        raise _error(f"{field} must be a dotted path such as payload.monitor", field)
    parts = path.split(".")
    if not all(_PATH_PART.fullmatch(p) for p in parts) or parts[0] in KEYWORDS or parts[0].isdigit():
        raise _error(f"{field}: {path!r} is not a dotted path such as payload.monitor", field)
    return path


def _check_literal(value: Any, field: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _error(f"{field}: numbers must be finite", field)
        return value
    if isinstance(value, list):
        return [_check_literal(v, f"{field}[{i}]") for i, v in enumerate(value)]
    raise _error(f"{field}: a value is a number, a string, true, false, null or a list of those", field)


# -- writing a tree back --------------------------------------------------------------------------------


def _literal_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal_text(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def to_text(tree: Mapping[str, Any] | None) -> str:
    """The condition tree as an expression (parentheses around every group, so the meaning is exact)."""
    if tree is None:
        return ""
    if "all" in tree or "any" in tree:
        word = " and " if "all" in tree else " or "
        return "(" + word.join(to_text(p) for p in tree.get("all", tree.get("any", []))) + ")"
    if "not" in tree:
        return "not " + to_text(tree["not"])
    if tree["op"] == "exists":
        return f"{tree['field']} exists"
    return f"{tree['field']} {tree['op']} {_literal_text(tree['value'])}"


def describe(tree: Mapping[str, Any] | None) -> str:
    """:func:`to_text` without the outermost parentheses: how a rule's condition is shown."""
    text = to_text(tree)
    return text[1:-1] if tree is not None and ("all" in tree or "any" in tree) else text


def paths(tree: Mapping[str, Any] | None) -> list[str]:
    """Every field path a tree reads."""
    if tree is None:
        return []
    if "all" in tree or "any" in tree:
        return [p for part in tree.get("all", tree.get("any", [])) for p in paths(part)]
    if "not" in tree:
        return paths(tree["not"])
    return [tree["field"]]


# -- evaluation -------------------------------------------------------------------------------------------


def lookup(root: Any, path: str) -> Any:
    """``a.b.0.c`` in nested mappings and lists; :data:`MISSING` when any step is absent."""
    current = root
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def evaluate(tree: Mapping[str, Any] | None, resolve: Callable[[str], Any]) -> bool:
    """Whether the condition holds; ``resolve(path)`` gives a field's value or :data:`MISSING`."""
    if tree is None:
        return True
    if "all" in tree:
        return all(evaluate(p, resolve) for p in tree["all"])
    if "any" in tree:
        return any(evaluate(p, resolve) for p in tree["any"])
    if "not" in tree:
        return not evaluate(tree["not"], resolve)
    actual = resolve(tree["field"])
    if tree["op"] == "exists":
        return actual is not MISSING and actual is not None
    if actual is MISSING:
        return False
    return _compare(actual, tree["op"], tree["value"])


def _compare(actual: Any, op: str, expected: Any) -> bool:
    try:
        if op == "==":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if op in (">", ">=", "<", "<="):
            if isinstance(actual, bool) or isinstance(expected, bool):
                return False
            if not (
                isinstance(actual, int | float)
                and isinstance(expected, int | float)
                or isinstance(actual, str)
                and isinstance(expected, str)
            ):
                return False
            return {">": actual > expected, ">=": actual >= expected, "<": actual < expected, "<=": actual <= expected}[
                op
            ]
        if op == "in":
            return isinstance(expected, list) and actual in expected
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            return isinstance(actual, list | tuple | Mapping) and expected in actual
        if op == "startswith":
            return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    except TypeError:
        return False
    return False
