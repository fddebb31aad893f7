"""Property tests: SQL agrees with a pure-Python reference evaluator, and no text breaks the parser.

The reference below is written from the language's description, independently of the compiler: it
evaluates the *generated* syntax tree over Python objects, while the database evaluates what the
rendered text parses and compiles to — so the parser, the compiler and both dialects are checked
together.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.core.errors import FilterSyntaxError
from shipyard.store import Database
from shipyard.tracking.search import (
    And,
    Comparison,
    Field,
    Node,
    Not,
    Or,
    build_search_query,
    compile_filter,
    parse_filter,
    parse_order_by,
)

from .helpers import RunRow, insert_runs, new_experiment, search

NAN, INF = math.nan, math.inf
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the reference ---------------------------------------------------------------------------

ABSENT = object()
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?")
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NEGATED = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}


def as_number(text: str) -> float | None:
    return float(text) if len(text) <= 1000 and NUMBER.fullmatch(text) else None


def like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += {"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i]))
        i += 1
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def lookup(run: RunRow, field: Field) -> Any:
    if field.kind == "metric":
        return run.metrics.get(field.key, ABSENT)
    if field.kind == "param":
        return run.params.get(field.key, ABSENT)
    if field.kind == "tag":
        return run.tags.get(field.key, ABSENT)
    value = getattr(run, "id" if field.key == "run_id" else field.key)
    return ABSENT if value is None else value


def satisfies(field: Field, value: Any, op: str, literal: Any) -> bool:
    if op == "in":
        return any(satisfies(field, value, "=", item) for item in literal)
    if op in ("like", "ilike"):
        return like(value, literal, op == "ilike")
    if field.kind == "metric":
        if op == "=" and math.isnan(literal):
            return math.isnan(value)
        return COMPARE[op](value, literal)  # NaN compares false with anything
    if field.kind == "param" and not isinstance(literal, str):
        number = as_number(value)
        return number is not None and COMPARE[op](number, literal)
    if field.key == "status" and field.kind == "attribute":
        literal = literal.upper()
    return COMPARE[op](value, literal)


def holds(run: RunRow, node: Node) -> bool:
    if isinstance(node, And):
        return all(holds(run, item) for item in node.items)
    if isinstance(node, Or):
        return any(holds(run, item) for item in node.items)
    if isinstance(node, Not):
        return not holds(run, node.item)
    value = lookup(run, node.field)
    if node.op == "is null":
        return value is ABSENT
    if node.op == "is not null":
        return value is not ABSENT
    if value is ABSENT:
        return False
    if node.op in NEGATED:
        return not satisfies(node.field, value, NEGATED[node.op], node.value)
    return satisfies(node.field, value, node.op, node.value)


def reference_order(rows: list[RunRow], order_by: list[tuple[Field, bool]]) -> list[str]:
    """Sort by stable passes, least significant key first."""
    items = sorted(rows, key=lambda r: r.id)
    items.sort(key=lambda r: r.start_time, reverse=True)
    for field, descending in reversed(order_by):
        for key, reverse in reversed(sort_keys(field, descending)):
            items.sort(key=key, reverse=reverse)
    return [r.id for r in items]


def sort_keys(field: Field, descending: bool) -> list[tuple[Callable[[RunRow], Any], bool]]:
    def get(r: RunRow) -> Any:
        return lookup(r, field)

    def missing(r: RunRow) -> int:
        return 1 if get(r) is ABSENT else 0

    if field.kind == "metric":
        return [
            (missing, False),
            (lambda r: 1 if get(r) is not ABSENT and math.isnan(get(r)) else 0, False),
            (lambda r: 0.0 if get(r) is ABSENT or math.isnan(get(r)) else get(r), descending),
        ]
    if field.kind == "param":

        def number(r: RunRow) -> float | None:
            return None if get(r) is ABSENT else as_number(get(r))

        return [
            (missing, False),
            (lambda r: 1 if number(r) is None else 0, False),
            (lambda r: number(r) or 0.0, descending),
            (lambda r: "" if get(r) is ABSENT else get(r), descending),
        ]
    if field.key in ("start_time", "end_time"):
        return [(missing, False), (lambda r: 0 if get(r) is ABSENT else get(r), descending)]
    return [(missing, False), (lambda r: "" if get(r) is ABSENT else get(r), descending)]


# --- rendering a syntax tree as filter text ---------------------------------------------------


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def render_field(field: Field) -> str:
    if field.kind == "attribute":
        return field.key
    prefix = {"metric": "metrics", "param": "params", "tag": "tags"}[field.kind]
    return f"{prefix}.`{field.key}`" if " " in field.key else f"{prefix}.{field.key}"


def render(node: Node) -> str:
    if isinstance(node, And | Or):
        joiner = " and " if isinstance(node, And) else " OR "
        return "(" + joiner.join(render(item) for item in node.items) + ")"
    if isinstance(node, Not):
        return f"not {render(node.item)}"
    text = f"{render_field(node.field)} {node.op}"
    if node.op in ("in", "not in"):
        return text + " (" + ", ".join(render_value(v) for v in node.value) + ")"  # type: ignore[union-attr]
    if node.op in ("is null", "is not null"):
        return text
    return f"{text} {render_value(node.value)}"


# --- strategies -------------------------------------------------------------------------------

METRIC_VALUES = [0.0, 1.0, -1.5, 2.5, 1e-3, NAN, INF, -INF]
PARAM_VALUES = [
    "1",
    "2.5",
    "10",
    "-0",
    "abc",
    "",
    "1e2",
    "007",
    "A b",
    "0.10",
    "rf",
    "RF",
    "r%",
    "a_b",
    "1e99999",
    ".5",
]
TAG_VALUES = ["x", "X", "ab", "a_b", "a%b", "", "Ab", "b", "a\\b", "it's"]
NAMES = ["n1", "N1", "alpha", "a_b", "Alpha"]
USERS = ["u1", "u2", "U1"]
DESCRIPTIONS = [None, "x", "ab", ""]
STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED"]
TIMES = [1000, 2000, 3000, 5000, 6000]
PATTERNS = ["%", "r%", "R%", "_", "%b", "a\\_b", "a\\%b", "%\\%%", "1%", "%.%", "", "a_b", "%0", "a\\\\b", "%'%"]
EQUALITY = ["=", "!=", "in", "not in"]
ORDERING = ["<", "<=", ">", ">="]
NULLS = ["is null", "is not null"]
LIKES = ["like", "not like", "ilike", "not ilike"]

metric_keys = ["a", "b", "x y"]
param_keys = ["p", "q"]
tag_keys = ["t", "u"]


@st.composite
def dataset(draw: st.DrawFn) -> list[dict[str, Any]]:
    specs = []
    for i in range(draw(st.integers(2, 7))):
        specs.append(
            {
                "name": draw(st.sampled_from(NAMES)),
                "status": draw(st.sampled_from(STATUSES)),
                "user": draw(st.sampled_from(USERS)),
                "start_time": draw(st.sampled_from(TIMES[:3])),
                "end_time": draw(st.sampled_from([None, *TIMES[3:]])),
                "description": draw(st.sampled_from(DESCRIPTIONS)),
                "child": i > 0 and draw(st.booleans()),
                "lifecycle": draw(st.sampled_from(["active", "active", "active", "deleted"])),
                "metrics": draw(st.dictionaries(st.sampled_from(metric_keys), st.sampled_from(METRIC_VALUES))),
                "params": draw(st.dictionaries(st.sampled_from(param_keys), st.sampled_from(PARAM_VALUES))),
                "tags": draw(st.dictionaries(st.sampled_from(tag_keys), st.sampled_from(TAG_VALUES))),
            }
        )
    return specs


def materialise(db: Database, specs: list[dict[str, Any]]) -> tuple[str, list[RunRow]]:
    experiment = new_experiment(db)
    rows = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        child = spec.pop("child")
        run_id = f"{experiment[:20]}-r{i}"
        rows.append(RunRow(run_id, parent_run_id=f"{experiment[:20]}-r0" if child else None, **spec))
    insert_runs(db, experiment, rows)
    return experiment, rows


def values_for(op: str, single: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    if op in ("in", "not in"):
        return st.lists(single, min_size=1, max_size=3).map(tuple)
    if op in NULLS:
        return st.none()
    return single


@st.composite
def comparison(draw: st.DrawFn, ids: list[str]) -> Comparison:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if kind == "metric":
        field = Field("metric", draw(st.sampled_from([*metric_keys, "c"])))
        op = draw(st.sampled_from(EQUALITY + ORDERING + NULLS))
        single: st.SearchStrategy[Any] = st.sampled_from([*METRIC_VALUES, 2, -3])
    elif kind in ("param", "tag"):
        field = Field(kind, draw(st.sampled_from([*(param_keys if kind == "param" else tag_keys), "z"])))
        op = draw(st.sampled_from(EQUALITY + ORDERING + NULLS + LIKES))
        strings = st.sampled_from([*PARAM_VALUES, *TAG_VALUES, "zzz"])
        if op in LIKES:
            single = st.sampled_from(PATTERNS)
        elif kind == "param":
            single = st.one_of(strings, st.sampled_from([0, 1, 2.5, 10, -1, 100, 0.1, 1e-3, 1000000]))
        else:
            single = strings
    else:
        name = draw(
            st.sampled_from(
                ["name", "user", "description", "status", "start_time", "end_time", "run_id", "parent_run_id"]
            )
        )
        field = Field("attribute", name)
        if name == "status":
            op = draw(st.sampled_from(EQUALITY + NULLS))
            single = st.sampled_from([*STATUSES, "running", "Failed"])
        elif name in ("start_time", "end_time"):
            op = draw(st.sampled_from(EQUALITY + ORDERING + NULLS))
            single = st.sampled_from([*TIMES, 2500])
        elif name in ("run_id", "parent_run_id"):
            op = draw(st.sampled_from(EQUALITY + ORDERING + NULLS + LIKES))
            single = st.sampled_from(["%-r1", "%r_", "%"]) if op in LIKES else st.sampled_from([*ids, "nope"])
        else:
            op = draw(st.sampled_from(EQUALITY + ORDERING + NULLS + LIKES))
            pool = {"name": NAMES, "user": USERS, "description": ["x", "ab", "", "zz"]}[name]
            single = st.sampled_from(PATTERNS) if op in LIKES else st.sampled_from([*pool, "b"])
    return Comparison(field, op, draw(values_for(op, single)))


def filters(ids: list[str]) -> st.SearchStrategy[Node]:
    return st.recursive(
        comparison(ids),
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(children, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
            children.map(Not),
        ),
        max_leaves=6,
    )


ORDER_FIELDS = [
    *(Field("metric", k) for k in [*metric_keys, "c"]),
    *(Field("param", k) for k in param_keys),
    *(Field("tag", k) for k in tag_keys),
    *(
        Field("attribute", k)
        for k in ["name", "user", "status", "start_time", "end_time", "description", "run_id", "parent_run_id"]
    ),
]


# --- the properties ---------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_sql_agrees_with_the_reference(db: Database, data: st.DataObject) -> None:
    experiment, rows = materialise(db, data.draw(dataset(), label="dataset"))
    ids = [r.id for r in rows]
    include_deleted = data.draw(st.booleans(), label="include_deleted")
    visible = [r for r in rows if include_deleted or r.lifecycle == "active"]
    for node in data.draw(st.lists(filters(ids), min_size=1, max_size=8), label="filters"):
        text = render(node)
        expected = {r.id for r in visible if holds(r, node)}
        found = search(db, experiment, text, include_deleted=include_deleted)
        assert len(found) == len(set(found))
        assert set(found) == expected, f"{text}\n{rows}"


@SETTINGS
@given(data=st.data())
def test_order_agrees_with_the_reference(db: Database, data: st.DataObject) -> None:
    experiment, rows = materialise(db, data.draw(dataset(), label="dataset"))
    active = [r for r in rows if r.lifecycle == "active"]
    for _ in range(4):
        keys = data.draw(
            st.lists(st.tuples(st.sampled_from(ORDER_FIELDS), st.booleans()), max_size=2), label="order_by"
        )
        order_by = [f"{render_field(f)} {'DESC' if d else 'asc'}" for f, d in keys]
        assert search(db, experiment, None, order_by) == reference_order(active, keys), order_by


TOKENS = [
    "metrics.a",
    "params.p",
    "tags.t",
    "name",
    "status",
    "start_time",
    "foo",
    "foo.bar",
    "metrics.`x y`",
    'params."q"',
    "metrics.",
    "and",
    "or",
    "not",
    "in",
    "like",
    "ilike",
    "is",
    "null",
    "(",
    ")",
    ",",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "1",
    "-2.5",
    "1e3",
    "1e999",
    "NaN",
    "inf",
    "-inf",
    "'a'",
    "'running'",
    '"b"',
    "'2026-01-01'",
    "'%a_'",
    "`",
    "'",
    '"',
    "asc",
    "desc",
    "@",
    "\\",
]


def check_text(text: str) -> None:
    try:
        node = parse_filter(text)
    except FilterSyntaxError as exc:
        assert exc.message.startswith("invalid filter")
        return
    # Whatever parses compiles, for both dialects.
    expression = compile_filter(node)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        str(expression.compile(dialect=dialect))


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_any_text_raises_only_filter_syntax_errors(text: str) -> None:
    check_text(text)
    with contextlib.suppress(FilterSyntaxError):
        parse_order_by([text])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), max_size=10).map(" ".join))
def test_token_soup_raises_only_filter_syntax_errors(sqlite_db: Database, text: str) -> None:
    check_text(text)
    try:
        query = build_search_query(None, text, None)
    except FilterSyntaxError:
        return
    with sqlite_db.read() as conn:
        conn.execute(query.limit(1)).all()


@SETTINGS
@given(data=st.data())
def test_rendered_filters_parse_back_to_the_same_meaning(data: st.DataObject) -> None:
    node = data.draw(filters(["x-r0", "x-r1"]))
    parsed = parse_filter(render(node))
    assert parsed is not None
    assert render(parsed).lower() == render(normalise(node)).lower()


def normalise(node: Node) -> Node:
    """What the parser makes of a tree: nested and/or flattened, values in canonical form."""
    if isinstance(node, And | Or):
        items: list[Node] = []
        for item in map(normalise, node.items):
            items.extend(item.items if type(item) is type(node) else (item,))  # type: ignore[union-attr]
        return type(node)(tuple(items))
    if isinstance(node, Not):
        return Not(normalise(node.item))

    def canonical(value: Any) -> Any:
        if node.field.kind == "metric":
            return float(value)
        if node.field.key == "status" and node.field.kind == "attribute":
            return value.upper()
        return value

    if isinstance(node.value, tuple):
        return Comparison(node.field, node.op, tuple(canonical(v) for v in node.value))
    return Comparison(node.field, node.op, None if node.value is None else canonical(node.value))
