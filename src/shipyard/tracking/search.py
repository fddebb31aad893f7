"""The run search language: filter and order runs by their metrics, params, tags and attributes.

Filters
-------
A filter is a boolean expression over the fields of a run::

    metrics.accuracy > 0.9 and params.model = 'rf' and tags.team = 'risk'
    (status = 'FAILED' or status = 'KILLED') and start_time >= '2026-01-01T00:00'
    not params.optimizer in ('sgd', 'adam') and metrics.`val loss` is not null

Keywords (``and``, ``or``, ``not``, ``in``, ``like``, ``ilike``, ``is``, ``null``) are
case-insensitive. ``not`` binds tightest, then ``and``, then ``or``; use parentheses to group.

**Fields.** ``metrics.KEY`` (the latest value of a metric), ``params.KEY``, ``tags.KEY``, and the run
attributes, written bare or with the prefix ``attributes.``, ``attr.`` or ``run.``:
``run_id`` (alias ``id``), ``name`` (alias ``run_name``), ``status``, ``user``, ``start_time``,
``end_time``, ``experiment_id``, ``parent_run_id``, ``description``. The singular prefixes
``metric.``, ``param.``, ``tag.`` and ``attribute.`` work too. A KEY is written bare when it
consists of letters (of any script), digits, ``_``, ``.``, ``/`` and ``-`` (``metrics.train/loss``,
``params.max-depth``, ``tags.shipyard.source``); any other key is quoted with backticks or
double quotes right after the prefix: ``metrics.`val loss```, ``params."batch size"``. Keys are
case-sensitive; prefixes and attribute names are not.

**Operators.** ``=`` (or ``==``), ``!=`` (or ``<>``), ``<``, ``<=``, ``>``, ``>=``;
``in (v1, v2, …)`` and ``not in (…)``; ``like``, ``ilike`` (case-insensitive), ``not like``,
``not ilike``, where ``%`` matches any run of characters, ``_`` one character and a backslash
makes the next character literal; ``is null`` / ``is not null`` test whether a run has the
metric, param or tag at all (or, for an attribute, whether it is unset).

**Values.** Numbers (``3``, ``-0.5``, ``1e-3``); strings in single or double quotes, with backslash
escapes (``\\n``, ``\\t``, ``\\\\``, ``\\'``, ``\\"``; any other backslash is kept as it is) or a doubled
quote (``'it''s'``); and, for metrics, ``NaN``, ``inf`` and ``-inf``.

**Meaning.**

* A comparison on a metric, param or tag the run does not have is false — also for ``!=``,
  ``not in`` and ``not like``. Only ``is null`` matches runs that lack it. ``not (…)`` negates
  the whole expression, so ``not metrics.loss > 1`` does match runs without a loss.
* Metrics compare as numbers. ``metrics.x = NaN`` matches runs whose latest value is NaN; NaN is
  never ``<`` or ``>`` anything, and is ``!=`` every number.
* Params compare as strings with a quoted value (``params.model = 'rf'``). With an unquoted
  number they compare as numbers (``params.lr < 0.01`` matches ``'0.001'`` and ``'1e-3'``);
  a param whose value is not a number (in JSON number syntax: ``-1``, ``0.5``, ``1e-3``; not
  ``.5``, ``+1`` or ``inf``) then matches no comparison except ``!=``.
* Tags and the text attributes compare as strings; ``<`` and ``>`` on strings compare code points
  (the same on SQLite and PostgreSQL, whatever the server's collation).
* ``start_time`` and ``end_time`` take epoch milliseconds or an ISO-8601 time (UTC when no zone is
  given): ``start_time > '2026-01-01T00:00'``.
* ``status`` takes RUNNING, FINISHED, FAILED or KILLED, in any case, with ``=``, ``!=``, ``in``
  and ``not in``.
* ``like`` is case-sensitive and ``ilike`` is not; on SQLite ``ilike`` folds only ASCII letters.

A filter may be at most 20,000 characters, with at most 200 comparisons, 1,000 values in all and
50 levels of parentheses and ``not``.

Order
-----
``order_by`` is a list of ``FIELD [ASC|DESC]`` items (ascending by default), such as
``["metrics.accuracy DESC", "params.lr", "start_time asc"]``. Runs lacking the metric, param or
tag sort last in either direction, and a NaN metric sorts after every number. Params that are
numbers sort numerically, before those that are not. Ties are broken by ``start_time`` (newest
first) and then the run id, so the order is total and pages never overlap. Without an order the
newest runs come first.

Errors
------
A malformed filter raises :class:`~shipyard.core.errors.FilterSyntaxError` whose first line says
where and what, followed by the filter with a caret under the spot::

    invalid filter at column 15: expected a value after '>'
      metrics.acc > and x
                    ^

Unknown fields, unknown statuses, and values of the wrong type (a string compared to a metric)
are reported the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeAlias

import sqlalchemy as sa
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from shipyard.core.errors import FilterSyntaxError, InvalidInput
from shipyard.core.time import parse_time
from shipyard.store.schema import latest_metrics, params, runs, tags

__all__ = [
    "And",
    "Comparison",
    "Field",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "build_search_query",
    "compile_filter",
    "parse_filter",
    "parse_order_by",
]

# ---------------------------------------------------------------------------------------------
# The syntax tree
# ---------------------------------------------------------------------------------------------

FieldKind: TypeAlias = Literal["metric", "param", "tag", "attribute"]
Value: TypeAlias = str | int | float

#: Operators after normalisation (``==`` becomes ``=``, ``<>`` becomes ``!=``).
ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
OPERATORS = frozenset(
    {"=", "!=", *ORDERING_OPS, "in", "not in", "like", "not like", "ilike", "not ilike", "is null", "is not null"}
)

RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")

#: Attribute name (as written, lower-cased) -> canonical name.
ATTRIBUTE_ALIASES: dict[str, str] = {
    "run_id": "run_id",
    "id": "run_id",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "user": "user",
    "start_time": "start_time",
    "end_time": "end_time",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
    "description": "description",
}
TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})

_PREFIXES: dict[str, FieldKind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

MAX_FILTER_LENGTH = 20_000
MAX_NESTING = 50
MAX_COMPARISONS = 200
MAX_VALUES = 1_000  # in all the filter's lists together; keeps bind parameters within bounds
_INT64 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Field:
    """A metric, param or tag (``key`` as logged) or a run attribute (``key`` its canonical name)."""

    kind: FieldKind
    key: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``.

    ``value`` is a tuple for ``in``/``not in``, None for ``is null``/``is not null``, else one
    value, already normalised: a float for metrics (NaN and ±inf included), epoch milliseconds
    for times, upper case for status, and for params a ``str`` (string comparison) or an
    ``int``/``float`` (numeric comparison).
    """

    field: Field
    op: str
    value: Value | tuple[Value, ...] | None = None


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_KEYWORDS = "and|or|not|in|like|ilike|is|null|asc|desc"

_GRAMMAR = rf"""
filter: or_expr
order: field (ASC | DESC)?

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr                                   -> negation
         | _LPAR or_expr _RPAR
         | comparison
?comparison: field CMP_OP value                           -> compare
           | field NOT? IN _LPAR value (_COMMA value)* _RPAR -> in_list
           | field NOT? LIKE value                        -> like
           | field IS NOT? NULL                           -> is_null

field: IDENT (BACKTICK_KEY | DSTRING)?
value: NUMBER | SSTRING | DSTRING | NAN | INF

_AND.2: /and\b/i
_OR.2: /or\b/i
NOT.2: /not\b/i
IN.2: /in\b/i
LIKE.2: /i?like\b/i
IS.2: /is\b/i
NULL.2: /null\b/i
ASC.2: /asc\b/i
DESC.2: /desc\b/i
NAN.2: /nan\b/i
INF.2: /[+-]?inf(inity)?\b/i
CMP_OP: /==|!=|<>|<=|>=|=|<|>/
_LPAR: "("
_RPAR: ")"
_COMMA: ","
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
SSTRING: /'(?:[^'\\]|\\.|'')*'/s
DSTRING: /"(?:[^"\\]|\\.|"")*"/s
BACKTICK_KEY: /`(?:[^`\\]|\\.|``)*`/s
IDENT: /(?!(?:{_KEYWORDS})\b)[^\W\d][\w.\/\-]*/i

%import common.WS
%ignore WS
"""

_LARK = Lark(_GRAMMAR, start=["filter", "order"], parser="lalr", lexer="contextual", maybe_placeholders=False)

_VALUE_TERMINALS = frozenset({"NUMBER", "SSTRING", "DSTRING", "NAN", "INF"})
_OPERATOR_HELP = "an operator (=, !=, <, <=, >, >=, in, not in, like, ilike, is null)"
_TERMINAL_HELP = {
    "IDENT": "a field such as metrics.accuracy, params.model, tags.team or status",
    "NOT": "'not'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "_AND": "'and'",
    "_OR": "'or'",
    "IN": "'in'",
    "LIKE": "'like' or 'ilike'",
    "IS": "'is'",
    "NULL": "'null'",
    "ASC": "'asc'",
    "DESC": "'desc'",
    "$END": "the end",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter into its syntax tree; None for an empty filter.

    Raises FilterSyntaxError, with the column and a caret line, for anything malformed or
    meaningless (unknown field, a string compared to a metric, an unknown status …).
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterSyntaxError(f"invalid filter: expected text, got {type(text).__name__}", field="filter")
    if not text.strip():
        return None
    tree = _parse(text, "filter", what="filter", field="filter")
    node = _transform(tree, text, what="filter", field="filter")
    assert isinstance(node, Comparison | And | Or | Not)
    _check_size(node)
    return node


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    """Parse ``order_by`` items such as ``"metrics.accuracy DESC"`` or ``"start_time"``."""
    keys: list[OrderKey] = []
    for index, item in enumerate(items or []):
        if not isinstance(item, str):
            raise FilterSyntaxError(f"invalid order_by item {index + 1}: expected text", field="order_by")
        if not item.strip():
            raise FilterSyntaxError(f"invalid order_by item {index + 1}: it is empty", field="order_by")
        tree = _parse(item, "order", what="order_by", field="order_by")
        key = _transform(tree, item, what="order_by", field="order_by")
        assert isinstance(key, OrderKey)
        keys.append(key)
    return keys


def _parse(text: str, start: str, *, what: str, field: str) -> Tree:
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(f"invalid {what}: longer than {MAX_FILTER_LENGTH} characters", field=field)
    bad = next((i for i, ch in enumerate(text) if ch == "\0" or 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        raise _error(text, bad, "NUL characters and lone surrogates are not allowed", what=what, field=field)
    parser = _LARK.parse_interactive(text, start=start)
    tokens: list[Token] = []  # every token the parser consumed, or is about to
    # How deep the syntax tree gets, tracked while lexing so that a pathological filter fails
    # cleanly instead of exhausting the stack: one level per open parenthesis, plus one per
    # prefix "not" still in force (a "not" ends at the next and/or/")" of its own level).
    nots_per_level = [0]
    nots = 0
    try:
        for token in parser.iter_parse():
            previous = tokens[-1].type if tokens else None
            tokens.append(token)
            if token.type == "_LPAR":
                nots_per_level.append(0)
            elif token.type == "_RPAR" and len(nots_per_level) > 1:
                nots -= nots_per_level.pop()
            elif token.type in ("_AND", "_OR"):
                nots -= nots_per_level[-1]
                nots_per_level[-1] = 0
            elif token.type == "NOT" and previous in (None, "_LPAR", "_AND", "_OR", "NOT"):
                nots_per_level[-1] += 1
                nots += 1
            if len(nots_per_level) - 1 + nots > MAX_NESTING:
                raise _error(text, token.start_pos or 0, "the expression is nested too deeply", what=what, field=field)
        return parser.feed_eof(tokens[-1] if tokens else None)
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            pos = len(text)
        else:
            pos = exc.token.start_pos or 0
            if tokens and exc.token is tokens[-1]:  # the parser rejected a token the lexer accepted
                tokens.pop()
        # Else the contextual lexer found a token that is only valid elsewhere.
        expected = _accepted_after(tokens, start)
        previous = tokens[-1] if tokens else None
        raise _error(
            text, pos, _expected_message(expected, exc.token, previous, what), what=what, field=field
        ) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream
        char = text[pos]
        if char in "'\"`":
            problem = "unterminated quoted name" if char == "`" else "unterminated string"
        else:
            expected = _describe(_accepted_after(tokens, start), what, tokens[-1] if tokens else None)
            problem = f"unexpected character {char!r}, expected {expected}"
            if tokens:
                problem += f" after {_quote_token(tokens[-1])}"
        raise _error(text, pos, problem, what=what, field=field) from None
    except UnexpectedInput as exc:  # pragma: no cover - lark raises only the two above for LALR
        raise _error(text, getattr(exc, "pos_in_stream", 0) or 0, "malformed", what=what, field=field) from None


def _accepted_after(tokens: list[Token], start: str) -> set[str]:
    """The terminals that may follow ``tokens`` — exactly, unlike the LALR table's merged lookaheads."""
    replay = _LARK.parse_interactive("", start=start)
    for token in tokens:
        replay.feed_token(token)
    return set(replay.accepts())


def _expected_message(expected: set[str], found: Token, previous: Token | None, what: str) -> str:
    description = _describe(expected, what, previous)
    if found.type == "IDENT" and "NUMBER" in expected:
        description += f" (quote text values: '{found}')"
    where = f" after {_quote_token(previous)}" if previous is not None else " at the start"
    message = f"expected {description}{where}"
    if found.type == "$END":
        message += f" but the {what} ended"
    return message


def _describe(expected: set[str] | frozenset[str], what: str, previous: Token | None) -> str:
    expected = set(expected)
    if {"BACKTICK_KEY", "DSTRING"} <= expected:
        # After a field name: a quoted key is only meaningful right after a prefix like "metrics.".
        if previous is not None and str(previous).endswith("."):
            return "a quoted key or a name"
        expected -= {"BACKTICK_KEY", "DSTRING"}
    parts: list[str] = []
    if "CMP_OP" in expected:
        parts.append(_OPERATOR_HELP)
        expected -= {"CMP_OP", "IN", "LIKE", "IS", "NOT"}
    if "NUMBER" in expected:  # a lone DSTRING is a quoted key
        parts.append("a value")
        expected -= _VALUE_TERMINALS
    if {"IDENT", "NOT", "_LPAR"} <= expected:
        parts.append("a field such as metrics.accuracy, params.model or status, 'not' or '('")
        expected -= {"IDENT", "NOT", "_LPAR"}
    for name in sorted(expected, key=lambda n: (n == "$END", n)):
        if name == "$END":
            parts.append(f"the end of the {what}")
        else:
            parts.append(_TERMINAL_HELP.get(name, name.lower()))
    if len(parts) <= 1:
        return parts[0] if parts else "something else"
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _quote_token(token: Token) -> str:
    text = str(token)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"'{text}'" if "'" not in text else f'"{text}"'


def _error(text: str, pos: int, problem: str, *, what: str = "filter", field: str = "filter") -> FilterSyntaxError:
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    line_no = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    where = f"line {line_no}, column {column}" if "\n" in text else f"column {column}"
    snippet = text[line_start:line_end].replace("\t", " ").replace("\r", " ")
    caret = column - 1
    if len(snippet) > 100:  # show a window around the spot
        left = max(0, caret - 50)
        snippet = ("…" if left else "") + snippet[left : left + 100] + ("…" if left + 100 < len(snippet) else "")
        caret = caret - left + (1 if left else 0)
    message = f"invalid {what} at {where}: {problem}\n  {snippet}\n  {' ' * caret}^"
    return FilterSyntaxError(message, field=field, details={"line": line_no, "column": column, "position": pos})


@dataclass(frozen=True, slots=True)
class _Literal:
    kind: Literal["number", "string", "nan", "inf"]
    value: Value
    token: Token


@dataclass(frozen=True, slots=True)
class _FieldRef:
    field: Field
    token: Token


def _transform(tree: Tree, text: str, *, what: str, field: str) -> Node | OrderKey:
    try:
        return _Builder(text, what, field).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterSyntaxError):
            raise exc.orig_exc from None
        raise


@v_args(inline=True)
class _Builder(Transformer):
    """Turns the parse tree into the syntax tree, checking that every comparison makes sense."""

    def __init__(self, text: str, what: str, field: str):
        super().__init__()
        self.text = text
        self.what = what
        self.error_field = field

    def _fail(self, pos: int | None, problem: str) -> FilterSyntaxError:
        return _error(self.text, pos or 0, problem, what=self.what, field=self.error_field)

    # --- structure ---------------------------------------------------------------------------
    def filter(self, node: Node) -> Node:
        return node

    def order(self, ref: _FieldRef, direction: Token | None = None) -> OrderKey:
        return OrderKey(ref.field, descending=direction is not None and direction.type == "DESC")

    def or_expr(self, *items: Node) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Or) else (item,))
        return Or(tuple(flat))

    def and_expr(self, *items: Node) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, And) else (item,))
        return And(tuple(flat))

    def negation(self, _not: Token, item: Node) -> Node:
        return Not(item)

    # --- leaves ------------------------------------------------------------------------------
    def field(self, ident: Token, quoted: Token | None = None) -> _FieldRef:
        raw = str(ident)
        if quoted is not None:
            if not raw.endswith(".") or quoted.start_pos != ident.end_pos:
                raise self._fail(
                    quoted.start_pos,
                    f"a quoted key must directly follow a prefix such as metrics., found after {_quote_token(ident)}",
                )
            prefix, key = raw[:-1], _unquote(str(quoted))
        elif "." in raw:
            prefix, key = raw.split(".", 1)
        else:
            attribute = ATTRIBUTE_ALIASES.get(raw.lower())
            if attribute is None:
                raise self._fail(
                    ident.start_pos,
                    f"unknown attribute '{raw}' (attributes are {', '.join(_attribute_names())}; "
                    f"for logged values write metrics.{raw}, params.{raw} or tags.{raw})",
                )
            return _FieldRef(Field("attribute", attribute), ident)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            raise self._fail(
                ident.start_pos,
                f"unknown field '{raw}{quoted or ''}': start with metrics., params., tags. or attributes.",
            )
        if not key:
            raise self._fail(ident.start_pos, f"'{raw}{quoted or ''}' has no key after the prefix")
        if kind == "attribute":
            attribute = ATTRIBUTE_ALIASES.get(key.lower())
            if attribute is None:
                raise self._fail(
                    ident.start_pos, f"unknown attribute '{key}' (attributes are {', '.join(_attribute_names())})"
                )
            return _FieldRef(Field("attribute", attribute), ident)
        return _FieldRef(Field(kind, key), ident)

    def value(self, token: Token) -> _Literal:
        text = str(token)
        if token.type == "NUMBER":
            number: int | float = float(text)
            if re.fullmatch(r"[+-]?\d{1,18}", text):
                number = int(text)
            return _Literal("number", number, token)
        if token.type == "NAN":
            return _Literal("nan", math.nan, token)
        if token.type == "INF":
            return _Literal("inf", -math.inf if text.startswith("-") else math.inf, token)
        return _Literal("string", _unquote(text), token)

    # --- comparisons -------------------------------------------------------------------------
    def compare(self, ref: _FieldRef, op_token: Token, literal: _Literal) -> Comparison:
        op = {"==": "=", "<>": "!="}.get(str(op_token), str(op_token))
        return Comparison(ref.field, op, self._check_value(ref, op, literal, op_token))

    def in_list(self, ref: _FieldRef, *rest: Any) -> Comparison:
        negated = isinstance(rest[0], Token) and rest[0].type == "NOT"
        in_token = rest[1] if negated else rest[0]
        literals = [item for item in rest if isinstance(item, _Literal)]
        values = tuple(self._check_value(ref, "in", literal, in_token) for literal in literals)
        return Comparison(ref.field, "not in" if negated else "in", values)

    def like(self, ref: _FieldRef, *rest: Any) -> Comparison:
        negated = isinstance(rest[0], Token) and rest[0].type == "NOT"
        like_token: Token = rest[-2]
        op = str(like_token).lower()
        value = self._check_value(ref, op, rest[-1], like_token)
        return Comparison(ref.field, f"not {op}" if negated else op, value)

    def is_null(self, ref: _FieldRef, *rest: Token) -> Comparison:
        negated = any(token.type == "NOT" for token in rest)
        return Comparison(ref.field, "is not null" if negated else "is null", None)

    def _check_value(self, ref: _FieldRef, op: str, literal: _Literal, op_token: Token) -> Value:
        """Check that ``ref op literal`` makes sense and return the literal's normalised value."""
        field = ref.field
        where = literal.token.start_pos
        shown = f"{_field_text(field)} {op}"
        if op in ("like", "ilike") and (field.kind == "metric" or field.key in TIME_ATTRIBUTES):
            raise self._fail(op_token.start_pos, f"'{op}' compares text; {_field_text(field)} is a number")
        if op in ("like", "ilike") and literal.kind != "string":
            raise self._fail(where, f"'{op}' needs a quoted pattern, as in {_field_text(field)} {op} 'abc%'")
        if literal.kind in ("nan", "inf") and field.kind != "metric":
            raise self._fail(where, f"{literal.token} is only a value for metrics")
        if field.kind == "metric":
            if literal.kind == "string":
                raise self._fail(where, f"metrics are numbers; {shown} needs a number, not a string")
            return float(literal.value)
        if field.kind == "param":
            if literal.kind == "number" and not math.isfinite(float(literal.value)):
                raise self._fail(where, f"number out of range: {literal.token}")
            return literal.value
        if field.kind == "tag" or field.key not in TIME_ATTRIBUTES | {"status"}:
            if literal.kind != "string":
                raise self._fail(where, f"{_field_text(field)} is text; quote the value: '{literal.token}'")
            return literal.value
        if field.key == "status":
            if op in ORDERING_OPS or op.endswith("like"):
                raise self._fail(op_token.start_pos, f"status can only be compared with =, !=, in and not in, not {op}")
            if literal.kind != "string" or str(literal.value).upper() not in RUN_STATUSES:
                raise self._fail(where, f"unknown status {literal.token} (statuses are {', '.join(RUN_STATUSES)})")
            return str(literal.value).upper()
        # start_time / end_time
        if literal.kind == "string":
            try:
                millis = parse_time(str(literal.value))
            except (InvalidInput, ValueError, OverflowError, OSError):
                raise self._fail(
                    where, f"{literal.token} is not a time (use epoch milliseconds or ISO-8601 like '2026-01-01T00:00')"
                ) from None
        else:
            number = literal.value
            assert isinstance(number, int | float)
            if not math.isfinite(number):
                raise self._fail(where, f"number out of range: {literal.token}")
            millis = int(number) if float(number).is_integer() else number  # type: ignore[assignment]
        if abs(millis) > _INT64:
            raise self._fail(where, f"time out of range: {literal.token}")
        return millis


def _unquote(quoted: str) -> str:
    quote, body = quoted[0], quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        elif ch == quote:  # the lexer only lets a quote through doubled
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _attribute_names() -> list[str]:
    return sorted(set(ATTRIBUTE_ALIASES.values()))


def _field_text(field: Field) -> str:
    if field.kind == "attribute":
        return field.key
    return f"{field.kind}s.{field.key}"


def _check_size(node: Node) -> None:
    comparisons = values = 0
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Comparison):
            comparisons += 1
            values += len(item.value) if isinstance(item.value, tuple) else 1
        elif isinstance(item, And | Or):
            stack.extend(item.items)
        else:
            stack.append(item.item)
    if comparisons > MAX_COMPARISONS:
        raise FilterSyntaxError(
            f"invalid filter: at most {MAX_COMPARISONS} comparisons are allowed, found {comparisons}", field="filter"
        )
    if values > MAX_VALUES:
        raise FilterSyntaxError(
            f"invalid filter: at most {MAX_VALUES} values are allowed, found {values}", field="filter"
        )


# ---------------------------------------------------------------------------------------------
# SQL constructs that differ between SQLite and PostgreSQL
# ---------------------------------------------------------------------------------------------


class _PerDialect(ColumnElement[Any]):
    """One expression for SQLite, another for PostgreSQL (and anything else), chosen at compile time."""

    inherit_cache = True
    _traverse_internals = [
        ("default", InternalTraversal.dp_clauseelement),
        ("sqlite", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, default: ColumnElement[Any], sqlite: ColumnElement[Any]):
        self.default = default
        self.sqlite = sqlite
        self.type = default.type


@compiles(_PerDialect)
def _compile_default(element: _PerDialect, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.default, **kw)})"


@compiles(_PerDialect, "sqlite")
def _compile_sqlite(element: _PerDialect, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.sqlite, **kw)})"


def _binary(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Compare/sort strings by code point: SQLite's default, COLLATE "C" on PostgreSQL."""
    return _PerDialect(column.collate("C"), column)


# A JSON number: the only param values that compare numerically. On PostgreSQL the value is cast
# to NUMERIC (exact, and never overflows for these: the exponent has at most 4 digits and the
# text at most 1000 characters). SQLite has no regular expressions: there json_valid() checks the
# same syntax once GLOBs have made sure the text holds only number characters and no 5-digit
# exponent, and CAST … AS REAL never fails.
_NUMBER_RE = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?$"
_MAX_NUMBER_TEXT = 1000


def _number_guards(column: ColumnElement[str]) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(PostgreSQL, SQLite) conditions that ``column`` holds a number in JSON syntax."""
    if column is params.c.value:  # built once: filters use it over and over
        return _PARAM_GUARDS
    return _build_number_guards(column)


def _build_number_guards(column: ColumnElement[str]) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    postgresql = sa.and_(sa.func.length(column) <= _MAX_NUMBER_TEXT, column.regexp_match(_NUMBER_RE))
    sqlite = sa.and_(
        sa.func.length(column) <= _MAX_NUMBER_TEXT,
        column.op("NOT GLOB")("*[^0-9.eE+-]*"),
        column.op("NOT GLOB")("*[eE]*[0-9][0-9][0-9][0-9][0-9]*"),
        sa.func.json_valid(column) == 1,
    )
    return postgresql, sqlite


_PARAM_GUARDS = _build_number_guards(params.c.value)


def _param_number_compare(
    column: ColumnElement[str], op: str, number: int | float | list[int | float]
) -> ColumnElement[bool]:
    """``column op number`` (``op`` may be "in" with a list) when column holds a number, else false:
    never NULL, never an error."""
    numbers = number if isinstance(number, list) else [number]
    decimals = [Decimal(repr(n)) if isinstance(n, float) else Decimal(n) for n in numbers]
    floats = [float(n) for n in numbers]
    pg_guard, sqlite_guard = _number_guards(column)
    pg_value, sqlite_value = sa.cast(column, sa.Numeric()), sa.cast(column, sa.Float())
    if op == "in":
        pg_test, sqlite_test = pg_value.in_(decimals), sqlite_value.in_(floats)
    else:
        pg_test = _apply(pg_value, op, sa.literal(decimals[0], sa.Numeric()))
        sqlite_test = _apply(sqlite_value, op, sa.literal(floats[0], sa.Float()))
    return _PerDialect(
        sa.case((pg_guard, pg_test), else_=sa.false()),
        sa.case((sqlite_guard, sqlite_test), else_=sa.false()),
    )


def _param_number(column: ColumnElement[str]) -> ColumnElement[Any]:
    """The param's numeric value, or NULL when it is not a number (for sorting)."""
    pg_guard, sqlite_guard = _number_guards(column)
    return _PerDialect(
        sa.case((pg_guard, sa.cast(column, sa.Numeric()))),
        sa.case((sqlite_guard, sa.cast(column, sa.Float()))),
    )


def _like(column: ColumnElement[str], pattern: str, case_insensitive: bool) -> ColumnElement[bool]:
    """LIKE with the same meaning everywhere: ``%``, ``_`` and backslash escapes; case-sensitive
    unless ``case_insensitive`` (SQLite's own LIKE ignores ASCII case, so it uses GLOB there)."""
    sql_pattern: list[str] = []
    glob_pattern: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            literal = pattern[i]
            sql_pattern.append("\\" + literal if literal in "%_\\" else literal)
            glob_pattern.append(f"[{literal}]" if literal in "*?[" else literal)
        elif ch == "%":
            sql_pattern.append("%")
            glob_pattern.append("*")
        elif ch == "_":
            sql_pattern.append("_")
            glob_pattern.append("?")
        else:
            sql_pattern.append("\\" + ch if ch == "\\" else ch)
            glob_pattern.append(f"[{ch}]" if ch in "*?[" else ch)
        i += 1
    like_text = "".join(sql_pattern)
    if case_insensitive:
        expr = column.ilike(like_text, escape="\\")
        return _PerDialect(expr, expr)
    return _PerDialect(
        column.like(like_text, escape="\\"), column.op("GLOB", is_comparison=True)("".join(glob_pattern))
    )


def _apply(left: ColumnElement[Any], op: str, right: Any) -> ColumnElement[bool]:
    if op == "=":
        return left == right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    raise FilterSyntaxError(f"invalid filter: unsupported operator {op!r}")


# ---------------------------------------------------------------------------------------------
# Compiling filters
# ---------------------------------------------------------------------------------------------

_ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "user": runs.c.user,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "description": runs.c.description,
}

_NEGATIONS = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}


def compile_filter(node: Node | None) -> ColumnElement[bool]:
    """The filter as a boolean SQL expression over the ``runs`` table."""
    if node is None:
        return sa.true()
    if isinstance(node, And):
        return sa.and_(*(compile_filter(item) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(compile_filter(item) for item in node.items))
    if isinstance(node, Not):
        return sa.not_(compile_filter(node.item))
    if isinstance(node, Comparison):
        return _compile_comparison(node)
    raise FilterSyntaxError(f"invalid filter: not a filter node: {node!r}")


def _compile_comparison(node: Comparison) -> ColumnElement[bool]:
    if node.op not in OPERATORS:
        raise FilterSyntaxError(f"invalid filter: unknown operator {node.op!r}")
    field = node.field
    if field.kind == "attribute":
        return _compile_attribute(node)
    if field.kind == "metric":
        run_column, value_column = latest_metrics.c.run_id, latest_metrics.c.value
        scope: list[ColumnElement[bool]] = [latest_metrics.c.key == field.key]
    elif field.kind == "param":
        run_column, value_column = params.c.run_id, params.c.value
        scope = [params.c.key == field.key]
    elif field.kind == "tag":
        run_column, value_column = tags.c.entity_id, tags.c.value
        scope = [tags.c.entity_type == "run", tags.c.key == field.key]
    else:
        raise FilterSyntaxError(f"invalid filter: unknown field kind {field.kind!r}")

    # "Has a row for this key that satisfies …": EXISTS correlated on the run, a primary-key probe
    # per candidate run. Its cost follows the runs searched (one experiment, say), not the whole
    # store, and it stops early when the page is full in index order; PostgreSQL turns it into a
    # semi- or anti-join either way. (An uncorrelated ``runs.id IN (SELECT run_id … WHERE key = …)``
    # is a little faster on SQLite while the store holds one experiment, and much slower once it
    # holds many: it reads every run's value of that key.)
    def having(condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
        where = scope if condition is None else [*scope, condition]
        return sa.exists().where(run_column == runs.c.id, *where)

    if node.op == "is null":
        return sa.not_(having(None))
    if node.op == "is not null":
        return having(None)
    positive = _NEGATIONS.get(node.op, node.op)
    if field.kind == "metric":
        condition = _metric_condition(positive, node.value)
    else:
        condition = _text_condition(value_column, positive, node.value, numeric_ok=field.kind == "param")
    # Each condition is two-valued (never NULL), so negating it row by row is exact: the run has
    # the key, and its value does not match.
    return having(sa.not_(condition) if positive != node.op else condition)


def _metric_condition(op: str, value: Any) -> ColumnElement[bool]:
    column, is_nan = latest_metrics.c.value, latest_metrics.c.is_nan
    values = value if op == "in" else (value,)
    if any(not isinstance(v, int | float) or isinstance(v, bool) for v in values):
        raise FilterSyntaxError(f"invalid filter: metrics compare to numbers, not {value!r}")
    numbers = [float(v) for v in values]
    if op in ("=", "in"):
        finite = [v for v in numbers if not math.isnan(v)]
        parts: list[ColumnElement[bool]] = []
        if finite:
            test = column == finite[0] if len(finite) == 1 else column.in_(finite)
            parts.append(sa.and_(column.is_not(None), test))
        if len(finite) < len(numbers):
            parts.append(is_nan.is_(sa.true()))
        return sa.or_(*parts)
    if op in ORDERING_OPS:
        if math.isnan(numbers[0]):
            return sa.false()
        return sa.and_(column.is_not(None), _apply(column, op, numbers[0]))
    raise FilterSyntaxError(f"invalid filter: '{op}' does not apply to metrics")


def _text_condition(column: ColumnElement[str], op: str, value: Any, *, numeric_ok: bool) -> ColumnElement[bool]:
    """The condition on a non-NULL text column (param or tag value, or a string attribute)."""
    values = value if op == "in" else (value,)
    for item in values:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise FilterSyntaxError(f"invalid filter: cannot compare text to {item!r}")
        if not isinstance(item, str) and not numeric_ok:
            raise FilterSyntaxError(f"invalid filter: text compares to strings, not {item!r}")
    if op == "in":
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if not isinstance(v, str)]
        parts = []
        if strings:
            parts.append(column == strings[0] if len(strings) == 1 else column.in_(strings))
        if numbers:
            parts.append(_param_number_compare(column, "in", numbers))
        return sa.or_(*parts)
    if op in ("like", "ilike"):
        if not isinstance(value, str):
            raise FilterSyntaxError(f"invalid filter: '{op}' needs a string pattern")
        return _like(column, value, case_insensitive=op == "ilike")
    if op == "=" or op in ORDERING_OPS:
        if not isinstance(value, str):
            return _param_number_compare(column, op, value)
        return column == value if op == "=" else _apply(_binary(column), op, value)
    raise FilterSyntaxError(f"invalid filter: unsupported operator {op!r}")


def _compile_attribute(node: Comparison) -> ColumnElement[bool]:
    name = node.field.key
    column = _ATTRIBUTE_COLUMNS.get(name)
    if column is None:
        raise FilterSyntaxError(f"invalid filter: unknown attribute {name!r}")
    if node.op == "is null":
        return column.is_(None)
    if node.op == "is not null":
        return column.is_not(None)
    positive = _NEGATIONS.get(node.op, node.op)
    if name in TIME_ATTRIBUTES:
        values = node.value if positive == "in" else (node.value,)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise FilterSyntaxError(f"invalid filter: {name} compares to times, not {node.value!r}")
        if positive == "in":
            condition = column.in_(list(values))
        elif positive == "=" or positive in ORDERING_OPS:
            condition = _apply(column, positive, node.value)
        else:
            raise FilterSyntaxError(f"invalid filter: '{node.op}' does not apply to {name}")
    else:
        condition = _text_condition(column, positive, node.value, numeric_ok=False)
    # A comparison with an unset attribute (NULL) is false, whichever the operator.
    if column.nullable:
        condition = sa.and_(column.is_not(None), condition)
    if positive != node.op:
        condition = sa.not_(condition)
        if column.nullable:
            condition = sa.and_(column.is_not(None), condition)
    return condition


# ---------------------------------------------------------------------------------------------
# Ordering and the search query
# ---------------------------------------------------------------------------------------------


def _missing_last(column: ColumnElement[Any]) -> ColumnElement[int]:
    return sa.case((column.is_(None), 1), else_=0)


def _implies_number(node: Node | None, metric: str) -> bool:
    """Whether every run matching ``node`` has a non-NaN latest value of ``metric``."""
    if isinstance(node, And):
        return any(_implies_number(item, metric) for item in node.items)
    if isinstance(node, Comparison) and node.field.kind == "metric" and node.field.key == metric:
        value = node.value
        numeric = isinstance(value, float) and not math.isnan(value)
        return numeric and node.op in ("=", "<", "<=", ">", ">=")
    return False


def build_search_query(
    experiment_ids: list[str] | None,
    filter_text: str | None,
    order_by: list[str] | None,
    include_deleted: bool = False,
) -> sa.Select[Any]:
    """``SELECT runs.id`` of the runs matching the filter, in order; the caller adds limit/offset.

    ``experiment_ids`` None means every experiment. Deleted runs are left out unless
    ``include_deleted``.
    """
    node = parse_filter(filter_text)
    keys = parse_order_by(order_by)
    conditions: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        conditions.append(runs.c.experiment_id.in_(list(experiment_ids)))
    if not include_deleted:
        conditions.append(runs.c.lifecycle == "active")
    if node is not None:
        conditions.append(compile_filter(node))

    source: sa.FromClause = runs
    ordering: list[ColumnElement[Any]] = []
    for index, key in enumerate(keys):
        field = key.field

        def direction(expr: ColumnElement[Any], descending: bool = key.descending) -> ColumnElement[Any]:
            return expr.desc() if descending else expr.asc()

        if field.kind == "attribute":
            column = _ATTRIBUTE_COLUMNS[field.key]
            if column.nullable:
                ordering.append(_missing_last(column))
            is_text = field.key not in TIME_ATTRIBUTES
            ordering.append(direction(_binary(column) if is_text else column))
        elif field.kind == "metric" and index == 0 and _implies_number(node, field.key):
            # The filter already requires a number for this metric, so no run lacks it or holds NaN:
            # an inner join ordered by the value lets the database walk the (key, value) index and
            # stop after the page instead of sorting every matching run.
            joined = latest_metrics.alias(f"order_{index}")
            source = source.join(joined, sa.and_(joined.c.run_id == runs.c.id, joined.c.key == field.key))
            ordering.append(direction(joined.c.value))
        elif field.kind == "metric":
            joined = latest_metrics.alias(f"order_{index}")
            source = source.outerjoin(joined, sa.and_(joined.c.run_id == runs.c.id, joined.c.key == field.key))
            ordering += [
                _missing_last(joined.c.run_id),
                sa.case((joined.c.is_nan.is_(sa.true()), 1), else_=0),
                direction(joined.c.value),
            ]
        elif field.kind == "param":
            joined = params.alias(f"order_{index}")
            source = source.outerjoin(joined, sa.and_(joined.c.run_id == runs.c.id, joined.c.key == field.key))
            number = _param_number(joined.c.value)
            ordering += [
                _missing_last(joined.c.run_id),
                _missing_last(number),
                direction(number),
                direction(_binary(joined.c.value)),
            ]
        else:
            joined = tags.alias(f"order_{index}")
            source = source.outerjoin(
                joined,
                sa.and_(joined.c.entity_type == "run", joined.c.entity_id == runs.c.id, joined.c.key == field.key),
            )
            ordering += [_missing_last(joined.c.entity_id), direction(_binary(joined.c.value))]
    ordering += [runs.c.start_time.desc(), _binary(runs.c.id).asc()]
    return sa.select(runs.c.id).select_from(source).where(*conditions).order_by(*ordering)
