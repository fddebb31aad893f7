"""Parsing filters and order_by items: the syntax tree, normalised values, and error messages."""

from __future__ import annotations

import math

import pytest

from shipyard.core.errors import FilterSyntaxError
from shipyard.tracking.search import (
    And,
    Comparison,
    Field,
    Not,
    Or,
    OrderKey,
    build_search_query,
    compile_filter,
    parse_filter,
    parse_order_by,
)

M = Field("metric", "acc")
P = Field("param", "model")
T = Field("tag", "team")


def cmp(field: Field, op: str, value: object = None) -> Comparison:
    return Comparison(field, op, value)  # type: ignore[arg-type]


# --- structure -------------------------------------------------------------------------------


def test_the_example_from_the_docs() -> None:
    node = parse_filter("metrics.accuracy > 0.9 and params.model = 'rf' and tags.team = 'risk'")
    assert node == And(
        (
            cmp(Field("metric", "accuracy"), ">", 0.9),
            cmp(P, "=", "rf"),
            cmp(T, "=", "risk"),
        )
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", None])
def test_an_empty_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None  # type: ignore[arg-type]
    assert compile_filter(None) is not None


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (cmp(Field("metric", k), ">", 1.0) for k in "abc")
    assert parse_filter("metrics.a > 1 or metrics.b > 1 and metrics.c > 1") == Or((a, And((b, c))))
    assert parse_filter("metrics.a > 1 and metrics.b > 1 or metrics.c > 1") == Or((And((a, b)), c))
    assert parse_filter("(metrics.a > 1 or metrics.b > 1) and metrics.c > 1") == And((Or((a, b)), c))
    assert parse_filter("metrics.a > 1 and (metrics.b > 1 or metrics.c > 1)") == And((a, Or((b, c))))


def test_chains_are_flattened_and_parentheses_vanish() -> None:
    a, b, c = (cmp(Field("metric", k), ">", 1.0) for k in "abc")
    assert parse_filter("metrics.a > 1 and metrics.b > 1 and metrics.c > 1") == And((a, b, c))
    assert parse_filter("(metrics.a > 1 or metrics.b > 1) or metrics.c > 1") == Or((a, b, c))
    assert parse_filter("((((metrics.a > 1))))") == a


def test_not_binds_tightest() -> None:
    a, b = (cmp(Field("metric", k), ">", 1.0) for k in "ab")
    assert parse_filter("not metrics.a > 1 and metrics.b > 1") == And((Not(a), b))
    assert parse_filter("not (metrics.a > 1 and metrics.b > 1)") == Not(And((a, b)))
    assert parse_filter("not not metrics.a > 1") == Not(Not(a))


def test_keywords_are_case_insensitive() -> None:
    node = parse_filter("NOT metrics.a > 1 AND params.x IN ('a') Or tags.t ILIKE 'x' oR params.y Is NoT NuLl")
    assert node == Or(
        (
            And((Not(cmp(Field("metric", "a"), ">", 1.0)), cmp(Field("param", "x"), "in", ("a",)))),
            cmp(Field("tag", "t"), "ilike", "x"),
            cmp(Field("param", "y"), "is not null"),
        )
    )


@pytest.mark.parametrize(
    ("text", "op"),
    [("=", "="), ("==", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_comparison_operators(text: str, op: str) -> None:
    assert parse_filter(f"metrics.acc {text} 1") == cmp(M, op, 1.0)
    assert parse_filter(f"metrics.acc{text}1") == cmp(M, op, 1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.model in ('rf', 'xgb')", cmp(P, "in", ("rf", "xgb"))),
        ("params.model in ('rf')", cmp(P, "in", ("rf",))),
        ("params.model not in ('rf', 3)", cmp(P, "not in", ("rf", 3))),
        ("params.model like 'r%'", cmp(P, "like", "r%")),
        ("params.model ilike 'R_'", cmp(P, "ilike", "R_")),
        ("params.model not like 'r%'", cmp(P, "not like", "r%")),
        ("params.model NOT ILIKE 'r%'", cmp(P, "not ilike", "r%")),
        ("params.model is null", cmp(P, "is null")),
        ("params.model is not null", cmp(P, "is not null")),
        ("metrics.acc in (1, NaN, -inf)", cmp(M, "in", (1.0, math.nan, -math.inf))),
    ],
)
def test_list_pattern_and_null_operators(text: str, expected: Comparison) -> None:
    node = parse_filter(text)
    assert repr(node) == repr(expected)  # repr: NaN != NaN


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("metrics.train/loss", Field("metric", "train/loss")),
        ("params.max-depth", Field("param", "max-depth")),
        ("tags.shipyard.source", Field("tag", "shipyard.source")),
        ("metrics.`my metric`", Field("metric", "my metric")),
        ('params."batch size"', Field("param", "batch size")),
        ("tags.`it``s`", Field("tag", "it`s")),
        ('tags."say ""hi"""', Field("tag", 'say "hi"')),
        ("metrics.`a\\`b`", Field("metric", "a`b")),
        ("metric.acc", Field("metric", "acc")),
        ("param.x", Field("param", "x")),
        ("tag.x", Field("tag", "x")),
        ("METRICS.Acc", Field("metric", "Acc")),
        ("metrics.1st", Field("metric", "1st")),
        ("metrics.and", Field("metric", "and")),
        ("metrics.x-1", Field("metric", "x-1")),
        ("metrics.précision", Field("metric", "précision")),
        ("params.模型", Field("param", "模型")),
    ],
)
def test_keys(text: str, field: Field) -> None:
    node = parse_filter(f"{text} is null")
    assert node == cmp(field, "is null")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("run_id", "run_id"),
        ("id", "run_id"),
        ("name", "name"),
        ("run_name", "name"),
        ("attributes.run_name", "name"),
        ("attr.user", "user"),
        ("attribute.user", "user"),
        ("run.id", "run_id"),
        ("Status", "status"),
        ("START_TIME", "start_time"),
        ("end_time", "end_time"),
        ("experiment_id", "experiment_id"),
        ("parent_run_id", "parent_run_id"),
        ("description", "description"),
    ],
)
def test_attributes_and_aliases(text: str, name: str) -> None:
    assert parse_filter(f"{text} is null") == cmp(Field("attribute", name), "is null")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("3", 3),
        ("-3", -3),
        ("+3", 3),
        ("0.5", 0.5),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 0.001),
        ("-2.5E+2", -250.0),
        ("123456789012345678901234", 1.2345678901234568e23),
    ],
)
def test_numbers(literal: str, value: float) -> None:
    node = parse_filter(f"params.x = {literal}")
    assert isinstance(node, Comparison)
    assert node.value == value and type(node.value) is type(value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'rf'", "rf"),
        ('"rf"', "rf"),
        ("''", ""),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'it\\'s'", "it's"),
        ("'a\\\\b'", "a\\b"),
        ("'tab\\there'", "tab\there"),
        ("'line\\nbreak'", "line\nbreak"),
        ("'50\\%'", "50\\%"),  # unknown escapes stay, for like patterns
        ("'a \"quoted\" word'", 'a "quoted" word'),
        ("'ünïcødé ✓'", "ünïcødé ✓"),
    ],
)
def test_strings(literal: str, value: str) -> None:
    assert parse_filter(f"params.x = {literal}") == cmp(Field("param", "x"), "=", value)


def test_nan_and_infinity_for_metrics() -> None:
    assert repr(parse_filter("metrics.x = NaN")) == repr(cmp(Field("metric", "x"), "=", math.nan))
    assert repr(parse_filter("metrics.x = nan")) == repr(cmp(Field("metric", "x"), "=", math.nan))
    assert parse_filter("metrics.x < inf") == cmp(Field("metric", "x"), "<", math.inf)
    assert parse_filter("metrics.x > -INF") == cmp(Field("metric", "x"), ">", -math.inf)
    assert parse_filter("metrics.x > -Infinity") == cmp(Field("metric", "x"), ">", -math.inf)
    assert parse_filter("metrics.x >= 2") == cmp(Field("metric", "x"), ">=", 2.0)


def test_times_accept_epoch_millis_and_iso_8601() -> None:
    start = Field("attribute", "start_time")
    assert parse_filter("start_time > 1767225600000") == cmp(start, ">", 1767225600000)
    assert parse_filter("start_time > '2026-01-01T00:00'") == cmp(start, ">", 1767225600000)
    assert parse_filter("start_time > '2026-01-01T01:00+01:00'") == cmp(start, ">", 1767225600000)
    assert parse_filter("start_time > '2026-01-01T00:00:00.5Z'") == cmp(start, ">", 1767225600500)
    assert parse_filter("end_time in ('2026-01-01', 5)") == cmp(
        Field("attribute", "end_time"), "in", (1767225600000, 5)
    )


def test_status_is_case_insensitive_and_validated() -> None:
    status = Field("attribute", "status")
    assert parse_filter("status = 'running'") == cmp(status, "=", "RUNNING")
    assert parse_filter("status in ('Failed', \"KILLED\")") == cmp(status, "in", ("FAILED", "KILLED"))
    assert parse_filter("status != 'finished'") == cmp(status, "!=", "FINISHED")


def test_order_by() -> None:
    assert parse_order_by(["metrics.accuracy DESC", "params.lr", "start_time asc", "attributes.name"]) == [
        OrderKey(Field("metric", "accuracy"), descending=True),
        OrderKey(Field("param", "lr"), descending=False),
        OrderKey(Field("attribute", "start_time"), descending=False),
        OrderKey(Field("attribute", "name"), descending=False),
    ]
    assert parse_order_by(["metrics.`val loss` desc", "run_name"]) == [
        OrderKey(Field("metric", "val loss"), descending=True),
        OrderKey(Field("attribute", "name")),
    ]
    assert parse_order_by([]) == [] and parse_order_by(None) == []


# --- errors ----------------------------------------------------------------------------------


def error_of(text: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    return info.value


def test_the_error_message_has_a_summary_line_and_a_caret() -> None:
    err = error_of("metrics.acc > and x")
    assert err.message == (
        "invalid filter at column 15: expected a value after '>'\n  metrics.acc > and x\n                ^"
    )
    assert err.field == "filter"
    assert err.code == "invalid_filter" and err.status == 400
    assert err.details == {"line": 1, "column": 15, "position": 14}


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("metrics.acc > and x", 15, "expected a value after '>'"),
        ("metrics.acc >", 14, "expected a value after '>' but the filter ended"),
        ("metrics.acc 5", 13, "expected an operator"),
        ("metrics.acc", 12, "expected an operator"),
        ("metrics.acc > 1 and", 20, "after 'and' but the filter ended"),
        ("metrics.acc > 1 and and x", 21, "expected a field"),
        ("metrics.acc > 1 or", 19, "expected a field"),
        ("metrics.acc > 1 metrics.b > 2", 17, "expected 'and', 'or' or the end of the filter after '1'"),
        ("(metrics.acc > 1", 17, "expected 'and', 'or' or ')' after '1' but the filter ended"),
        ("metrics.acc > 1)", 16, "expected 'and', 'or' or the end"),
        ("()", 2, "expected a field"),
        (
            "and metrics.x > 1",
            1,
            "expected a field such as metrics.accuracy, params.model or status, 'not' or '(' at the start",
        ),
        ("name = running", 8, "quote text values: 'running'"),
        ("params.x in 'a'", 13, "expected '('"),
        ("params.x in ()", 14, "expected a value"),
        ("params.x in ('a',)", 18, "expected a value after ','"),
        ("params.x in ('a' 'b')", 18, "expected ',' or ')'"),
        ("params.x not = 'a'", 14, "expected 'in' or 'like' or 'ilike' after 'not'"),
        ("params.x is 'a'", 13, "expected 'not' or 'null' after 'is'"),
        ("params.x is not 'a'", 17, "expected 'null'"),
        ("params.x = 'abc", 12, "unterminated string"),
        ('params.x = "abc', 12, "unterminated string"),
        ("metrics.`abc = 1", 9, "unterminated quoted name"),
        ("metrics.x # 1", 11, "unexpected character '#'"),
        ("metrics.x = 1 ; drop table runs", 15, "unexpected character ';'"),
        ("metrics.x === 1", 13, "expected a value after '=='"),
        ("metrics.x = 1 and not", 22, "but the filter ended"),
        # meaning, not syntax
        ("accuracy > 0.9", 1, "unknown attribute 'accuracy'"),
        ("metrics.x > 1 and foo.bar = 1", 19, "unknown field 'foo.bar'"),
        ("attributes.nope = 'x'", 1, "unknown attribute 'nope'"),
        ("metrics. = 1", 1, "has no key"),
        ("metrics.`` = 1", 1, "has no key"),
        ("metrics. `a` = 1", 10, "quoted key must directly follow"),
        ('name "x" = 1', 6, "quoted key must directly follow"),
        ("metrics.acc < 'high'", 15, "metrics are numbers"),
        ("metrics.acc like 'a%'", 13, "'like' compares text; metrics.acc is a number"),
        ("metrics.acc in (1, 'a')", 20, "metrics are numbers"),
        ("params.x like 5", 15, "needs a quoted pattern"),
        ("params.x = NaN", 12, "only a value for metrics"),
        ("params.x > 1e999", 12, "number out of range"),
        ("tags.t = 5", 10, "quote the value: '5'"),
        ("name = 5", 8, "name is text"),
        ("status = 'DONE'", 10, "unknown status 'DONE'"),
        ("status in ('RUNNING', 'nope')", 23, "unknown status 'nope'"),
        ("status < 'RUNNING'", 8, "status can only be compared with =, !=, in and not in"),
        ("status like 'RUN%'", 8, "status can only be compared with =, !=, in and not in, not like"),
        ("start_time > 'yesterday'", 14, "is not a time"),
        ("start_time like '2026%'", 12, "'like' compares text"),
        ("end_time > 1e30", 12, "time out of range"),
        ("start_time = inf", 14, "only a value for metrics"),
    ],
)
def test_errors_point_at_the_right_column(text: str, column: int, says: str) -> None:
    err = error_of(text)
    first, shown, caret = err.message.split("\n")
    assert first.startswith(f"invalid filter at column {column}: "), err.message
    assert says in first, err.message
    assert shown == "  " + text
    assert caret == "  " + " " * (column - 1) + "^"
    assert err.details["column"] == column


def test_errors_on_later_lines_give_line_and_column() -> None:
    err = error_of("metrics.a > 1\n  and metrics.b >")
    first, shown, caret = err.message.split("\n")
    assert first.startswith("invalid filter at line 2, column 18: expected a value after '>'")
    assert shown == "    and metrics.b >" and caret == "  " + " " * 17 + "^"


def test_long_filters_show_a_window_around_the_error() -> None:
    text = " or ".join(f"metrics.m{i} > {i}" for i in range(40)) + " or metrics.x >> 1"
    first, shown, caret = error_of(text).message.split("\n")
    assert first.startswith(f"invalid filter at column {text.index('>> 1') + 2}:")
    assert len(shown) < 110
    assert shown[caret.index("^")] == ">"


def test_limits() -> None:
    assert "nested too deeply" in error_of("(" * 60 + "metrics.a > 1" + ")" * 60).message
    assert "nested too deeply" in error_of("not " * 60 + "metrics.a > 1").message
    assert "at most 200 comparisons are allowed, found 201" in error_of(" or ".join(["metrics.a > 1"] * 201)).message
    assert "longer than" in error_of("metrics.a > 1 or " * 2000 + "metrics.a > 1").message
    assert "NUL" in error_of("params.x = 'a\0b'").message
    assert parse_filter("(" * 50 + "metrics.a > 1" + ")" * 50) is not None
    assert "nested too deeply" in error_of("not (" * 26 + "metrics.a > 1" + ")" * 26).message
    assert parse_filter("not (" * 25 + "metrics.a > 1" + ")" * 25) is not None
    # negations side by side, and "not in", do not nest
    assert parse_filter(" and ".join(["not params.x not in ('a')"] * 100)) is not None
    assert parse_filter(" or ".join(["not (tags.t is not null)"] * 100)) is not None
    values = ", ".join(["1"] * 1001)
    assert "at most 1000 values are allowed, found 1001" in error_of(f"params.x in ({values})").message


def test_a_filter_must_be_text() -> None:
    with pytest.raises(FilterSyntaxError, match="expected text, got int"):
        parse_filter(5)  # type: ignore[arg-type]
    with pytest.raises(FilterSyntaxError, match="item 1: expected text"):
        parse_order_by([5])  # type: ignore[list-item]


def test_order_by_errors() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_order_by(["metrics.acc desc", "metrics.acc sideways"])
    assert info.value.field == "order_by"
    assert info.value.message.startswith("invalid order_by at column 13: expected 'asc', 'desc' or the end")
    for bad, says in [
        ("", "empty"),
        ("  ", "empty"),
        ("accuracy", "unknown attribute 'accuracy'"),
        ("metrics.a desc desc", "expected the end of the order_by"),
        ("metrics.a > 1", "expected 'asc', 'desc' or the end of the order_by after 'metrics.a'"),
        ("foo.bar", "unknown field"),
    ]:
        with pytest.raises(FilterSyntaxError, match=says):
            parse_order_by([bad])
    with pytest.raises(FilterSyntaxError) as info:
        build_search_query(None, None, ["nope"])
    assert info.value.field == "order_by"
