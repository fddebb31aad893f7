"""The pure parts of monitoring, by property: window specs and durations, alert conditions, the
hysteresis of alert rules (against a reference model written here), notification channels and Slack
payloads; and webhook delivery with its retries against real local HTTP servers."""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInput
from shipyard.monitoring import notify, rules
from shipyard.monitoring.windows import align_down, parse_duration_ms, parse_window, time_windows

UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------------
# durations and windows


@FAST
@given(st.integers(1, 10**7), st.sampled_from(sorted(UNITS)), st.text(" \t", max_size=2), st.text(" ", max_size=2))
def test_durations_round_trip(n: int, unit: str, before: str, between: str) -> None:
    text = f"{before}{n}{between}{unit}{before}"
    ms = n * UNITS[unit]
    assert parse_duration_ms(text) == ms
    spec = parse_window(text)
    assert spec == {"kind": "time", "ms": ms, "text": text.strip()}
    assert parse_window(spec["text"]) == spec  # the stored text parses back to the same spec


@FAST
@given(st.integers(0, 10**6), st.integers(1, 99), st.sampled_from(sorted(UNITS)))
def test_fractional_durations(whole: int, tenths: int, unit: str) -> None:
    text = f"{whole}.{tenths:02d}{unit}"
    expected = int(float(f"{whole}.{tenths:02d}") * UNITS[unit])
    if expected < 1_000:
        with pytest.raises(InvalidInput, match="at least 1s"):
            parse_duration_ms(text)
    else:
        assert parse_duration_ms(text) == expected


@FAST
@given(st.integers(1, 10**9), st.sampled_from(["", "p", " p", "prediction", "predictions", "row", " rows"]))
def test_count_windows_round_trip(n: int, suffix: str) -> None:
    spec = parse_window(f"{n}{suffix}")
    assert spec == {"kind": "count", "rows": n, "text": f"{n}p"}
    assert parse_window(spec["text"]) == spec
    assert parse_window(n) == spec  # a bare integer is a number of predictions


@FAST
@given(
    st.one_of(st.text(max_size=40), st.from_regex(r"\A-?[0-9.]{0,6}[a-z ]{0,4}\Z")), st.sampled_from(["window", "x"])
)
@example(text="0s", field="window")
@example(text="999ms", field="window")
@example(text="1y", field="window")
@example(text="1h30m", field="window")
@example(text="-1h", field="window")
@example(text=".5h", field="window")
@example(text="", field="window")
def test_garbage_durations_raise_invalid_input_naming_the_field(text: str, field: str) -> None:
    try:
        ms = parse_duration_ms(text, field)
    except InvalidInput as exc:
        assert exc.field == field and field in exc.message
        return
    assert isinstance(ms, int) and ms >= 1_000


@FAST
@given(
    st.one_of(
        st.text(max_size=40),
        st.integers(-(10**6), 10**6),
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True),
        st.lists(st.integers(), max_size=2),
    )
)
@example(value="0p")
@example(value=0)
@example(value=-5)
@example(value="   ")
@example(value=True)
@example(value=1.5)
def test_garbage_windows_raise_invalid_input_naming_the_field(value: Any) -> None:
    try:
        spec = parse_window(value)
    except InvalidInput as exc:
        assert exc.field == "window"
        return
    assert spec["kind"] in ("time", "count")
    assert (spec.get("ms") or 0) >= 1_000 or (spec.get("rows") or 0) >= 1
    assert parse_window(spec["text"]) == spec


@pytest.mark.parametrize("text", ["9" * 400 + "s", "1" + "0" * 320 + "h"])
def test_absurdly_long_durations_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration_ms(text)
    with pytest.raises(InvalidInput):
        parse_window(text)


@FAST
@given(st.integers(0, 2 * 10**12), st.integers(0, 10**7), st.sampled_from([1_000, 60_000, 900_000, 3_600_000]))
def test_time_windows_are_aligned_complete_and_contiguous(first: int, span: int, length: int) -> None:
    now = first + span
    windows = time_windows(first, now, length)
    for start, end in windows:
        assert start % length == 0 and end - start == length and end <= now
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    if windows:
        assert windows[0][0] == align_down(first, length) <= first < windows[0][1]
        assert windows[-1][1] + length > now  # the next window is not complete yet
    else:
        assert align_down(first, length) + length > now


# ------------------------------------------------------------------------------------------------
# conditions

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@FAST
@given(st.sampled_from(sorted(rules.OPERATORS)), finite)
def test_static_conditions_from_strings_and_dicts(op: str, value: float) -> None:
    parsed = rules.parse_condition(f"{op} {value!r}")
    assert parsed == {"op": op, "value": value}
    assert rules.parse_condition(parsed) == parsed  # the stored form parses to itself
    assert rules.parse_condition({"op": op, "value": str(value)}) == parsed


@FAST
@given(st.floats(0.01, 100), st.integers(rules.MIN_HISTORY, 10_000))
def test_dynamic_conditions_from_strings_and_dicts(k: float, history: int) -> None:
    assert rules.parse_condition(f"dynamic {k!r}") == {"dynamic": k, "history": 24}
    parsed = rules.parse_condition(f"dynamic {k!r} over {history}")
    assert parsed == {"dynamic": k, "history": history}
    assert rules.parse_condition(parsed) == parsed


@FAST
@given(st.text(max_size=30))
@example(text="bigger than 3")
@example(text="> ")
@example(text="> nan")
@example(text="> inf")
@example(text="=> 1")
@example(text="dynamic")
@example(text="dynamic 0")
@example(text="dynamic -1")
@example(text="dynamic 3 over 4")
@example(text="dynamic 3 over")
@example(text="dynamic 3 over 1e400")
@example(text="dynamic 3 during 24")
@example(text="> 1 2")
def test_garbage_condition_strings_raise_invalid_input(text: str) -> None:
    try:
        parsed = rules.parse_condition(text)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("condition")
        return
    assert rules.parse_condition(parsed) == parsed
    if "op" in parsed:
        assert parsed["op"] in rules.OPERATORS and math.isfinite(parsed["value"])
    else:
        assert parsed["dynamic"] > 0 and parsed["history"] >= rules.MIN_HISTORY


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
json_values = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars, max_size=2)
)


@FAST
@given(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "op": st.one_of(scalars, st.sampled_from(sorted(rules.OPERATORS))),
                "value": json_values,
                "dynamic": json_values,
                "history": json_values,
            },
        ),
        scalars.filter(lambda v: not isinstance(v, str)),
        st.lists(scalars, max_size=3),
    )
)
def test_garbage_condition_objects_raise_invalid_input(condition: Any) -> None:
    try:
        parsed = rules.parse_condition(condition)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("condition")
        return
    assert rules.parse_condition(parsed) == parsed


@pytest.mark.parametrize("op", [[">"], {"gt": 1}])
def test_an_unhashable_operator_is_invalid_input(op: Any) -> None:
    with pytest.raises(InvalidInput):
        rules.parse_condition({"op": op, "value": 1})


@FAST
@given(st.sampled_from(sorted(rules.OPERATORS)), finite, finite)
def test_static_breach_is_the_comparison(op: str, threshold: float, value: float) -> None:
    condition = rules.parse_condition({"op": op, "value": threshold})
    breach, info = rules.breached(condition, value, [])
    assert breach is rules.OPERATORS[op](value, threshold)
    assert info == {"op": op, "value": threshold}


@FAST
@given(
    st.lists(st.one_of(st.none(), st.floats(-1000, 1000)), max_size=40),
    st.floats(0.5, 5),
    st.integers(rules.MIN_HISTORY, 30),
    st.floats(-1000, 1000),
)
def test_dynamic_breach_against_the_recent_history(history: list[float | None], k: float, n: int, value: float) -> None:
    condition = rules.parse_condition({"dynamic": k, "history": n})
    breach, info = rules.breached(condition, value, history)
    past = [v for v in history[-n:] if v is not None]  # only the last n windows, and only those with data
    if len(past) < rules.MIN_HISTORY:
        assert breach is None and info["reason"] == "too little history"
        return
    mean, sigma = statistics.fmean(past), statistics.stdev(past)
    assert info["mean"] == pytest.approx(mean, abs=1e-6) and info["sigma"] == pytest.approx(sigma, abs=1e-6)
    if info["sigma"] == 0:
        assert breach is (not math.isclose(value, info["mean"], rel_tol=1e-9))
    elif sigma > 1e-6:
        low, high = mean - k * sigma, mean + k * sigma
        margin = 1e-6 * max(1.0, abs(low), abs(high))
        if low + margin < value < high - margin:
            assert breach is False
        elif value < low - margin or value > high + margin:
            assert breach is True
        assert rules.breached(condition, mean, history)[0] is False  # the mean itself never breaches


def test_dynamic_history_ignores_what_is_older_than_its_window() -> None:
    condition = rules.parse_condition("dynamic 3 over 5")
    calm = [10.0, 11.0, 10.5, 9.5, 10.0]
    assert rules.breached(condition, 20.0, [1000.0, -1000.0, *calm])[0] is True  # the outliers are out of view
    assert rules.breached(condition, 20.0, [*calm[:4]])[0] is None
    assert rules.breached(condition, 20.0, [*calm[:4], None])[0] is None  # no data is not history


# ------------------------------------------------------------------------------------------------
# hysteresis


def reference_actions(judged: list[bool], fire_after: int, resolve_after: int) -> list[str | None]:
    """What a rule does after each judged window, by definition: it fires when the last ``fire_after``
    windows all breached and no alert is open; it resolves when the last ``resolve_after`` windows were
    all clear and an alert is open."""
    actions: list[str | None] = []
    open_ = False
    for i in range(len(judged)):
        last_fire = judged[max(0, i - fire_after + 1) : i + 1]
        last_clear = judged[max(0, i - resolve_after + 1) : i + 1]
        if not open_ and len(last_fire) == fire_after and all(last_fire):
            actions.append("fire")
            open_ = True
        elif open_ and len(last_clear) == resolve_after and not any(last_clear):
            actions.append("resolve")
            open_ = False
        else:
            actions.append(None)
    return actions


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(st.booleans(), st.none()), max_size=60),
    st.integers(1, 5),
    st.integers(1, 5),
)
def test_hysteresis_matches_the_reference_model(
    windows: list[bool | None], fire_after: int, resolve_after: int
) -> None:
    """``None`` is a window without enough data: the service does not judge it, the state is unchanged."""
    state: dict[str, Any] = {}
    actions = []
    for breach in windows:
        if breach is None:
            continue
        state, action = rules.advance(state, breach, fire_after, resolve_after)
        actions.append(action)
    judged = [b for b in windows if b is not None]
    assert actions == reference_actions(judged, fire_after, resolve_after)

    # and the plain invariants: fire and resolve alternate, starting with fire; a fire follows
    # fire_after consecutive breaches, a resolve resolve_after consecutive clears
    happened = [(i, a) for i, a in enumerate(actions) if a]
    assert [a for _, a in happened] == ["fire", "resolve"] * (len(happened) // 2) + ["fire"] * (len(happened) % 2)
    for i, action in happened:
        run = judged[i - (fire_after if action == "fire" else resolve_after) + 1 : i + 1]
        assert i + 1 >= (fire_after if action == "fire" else resolve_after)
        assert all(run) if action == "fire" else not any(run)
    assert bool(state.get("active")) == (len(happened) % 2 == 1)


def test_advance_does_not_change_the_state_it_is_given() -> None:
    state = {"breaches": 1, "clears": 0, "active": False, "judged_until": 5}
    frozen = dict(state)
    new, action = rules.advance(state, True, 2, 2)
    assert state == frozen
    assert action == "fire" and new["active"] is True and new["judged_until"] == 5


# ------------------------------------------------------------------------------------------------
# channels and payloads


def test_channel_shorthands() -> None:
    assert notify.check_channels(None) == [{"type": "log"}]
    assert notify.check_channels([]) == []
    assert notify.check_channels(["log", "https://hooks.example/a", "slack:https://hooks.slack.com/x"]) == [
        {"type": "log"},
        {"type": "webhook", "url": "https://hooks.example/a"},
        {"type": "slack", "url": "https://hooks.slack.com/x"},
    ]
    given_ = {"type": "webhook", "url": "http://127.0.0.1:9/h", "extra": 1}
    assert notify.check_channels([given_]) == [given_]


@pytest.mark.parametrize(
    ("channels", "field"),
    [
        (["ftp://x"], "channels[0].url"),
        (["log", "slack:not-a-url"], "channels[1].url"),
        ([{"type": "email", "to": "a@b"}], "channels[0]"),
        ([{"type": "webhook"}], "channels[0].url"),
        ([{"type": "slack", "url": 5}], "channels[0].url"),
        ([5], "channels[0]"),
        ([None], "channels[0]"),
        ([["log"]], "channels[0]"),
    ],
)
def test_bad_channels_name_the_one_at_fault(channels: list[Any], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        notify.check_channels(channels)
    assert exc.value.field == field


@FAST
@given(st.lists(json_values, max_size=4))
def test_channels_are_checked_or_refused_never_crash(channels: list[Any]) -> None:
    try:
        checked = notify.check_channels(channels)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("channels[")
        return
    assert all(c["type"] in notify.CHANNEL_TYPES for c in checked)


event_text = st.text(st.characters(exclude_characters=":"), max_size=400)


@FAST
@given(
    st.sampled_from(["firing", "resolved", "acknowledged", None]),
    st.sampled_from(["info", "warning", "critical", ""]),
    event_text,
    event_text,
    st.one_of(st.none(), st.text(max_size=50)),
    st.one_of(st.none(), st.text(max_size=50)),
)
def test_slack_payload_shape(
    status: str | None, severity: str, rule: str, message: str, runbook: str | None, owner: str | None
) -> None:
    event = {"status": status, "severity": severity, "rule": rule, "message": message}
    if runbook is not None:
        event["runbook"] = runbook
    if owner is not None:
        event["owner"] = owner
    payload = notify.slack_payload(event)
    assert set(payload) == {"text", "blocks"}
    header, section = payload["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert len(header["text"]["text"]) <= 150 and len(section["text"]["text"]) <= 3000
    assert f"[{severity.upper()}]" in payload["text"] and message in payload["text"]
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(str(status), ":bell:")
    assert payload["text"].startswith(icon)
    assert (f"Runbook: {runbook}" in payload["text"]) == bool(runbook)
    assert (f"Owner: {owner}" in payload["text"]) == bool(owner)
    json.dumps(payload)  # it is JSON


# ------------------------------------------------------------------------------------------------
# delivery to real HTTP servers


EVENT = {"id": "a1", "rule": "x-drift", "status": "firing", "severity": "warning", "message": "x1 drifted"}


def test_a_webhook_failing_twice_is_retried_until_it_succeeds(hooks: Any) -> None:
    hook = hooks([500, 503])
    started = time.monotonic()
    [outcome] = notify.deliver([{"type": "webhook", "url": hook.url}], EVENT)
    assert outcome == {"type": "webhook", "url": hook.url, "ok": True, "attempts": 3, "status": 204}
    assert hook.bodies == [EVENT] * 3  # the same event, each time
    assert time.monotonic() - started >= notify.BACKOFF_S * 3 * 0.9  # it backed off: 0.5 s, then 1 s


def test_a_refusing_webhook_is_not_retried(hooks: Any) -> None:
    hook = hooks([], then=400)
    [outcome] = notify.deliver([{"type": "webhook", "url": hook.url}], EVENT)
    assert outcome["ok"] is False and outcome["attempts"] == 1 and outcome["error"] == "HTTP 400"
    assert len(hook.bodies) == 1


def test_each_channel_gets_its_own_outcome(hooks: Any) -> None:
    webhook, slack = hooks([429]), hooks([])
    closed = hooks([])
    dead_url = closed.url
    closed.close()  # nobody listens there any more
    outcomes = notify.deliver(
        notify.check_channels(["log", webhook.url, f"slack:{slack.url}", dead_url]),
        {**EVENT, "runbook": "https://wiki/drift"},
    )
    assert [o["type"] for o in outcomes] == ["log", "webhook", "slack", "webhook"]
    assert outcomes[0] == {"type": "log", "ok": True, "attempts": 1}
    assert outcomes[1]["ok"] is True and outcomes[1]["attempts"] == 2  # 429 means "later": retried
    assert outcomes[2] == {"type": "slack", "url": slack.url, "ok": True, "attempts": 1, "status": 204}
    assert slack.bodies == [notify.slack_payload({**EVENT, "runbook": "https://wiki/drift"})]
    assert "Runbook: https://wiki/drift" in slack.bodies[0]["text"]
    assert outcomes[3]["ok"] is False and outcomes[3]["attempts"] == notify.RETRIES
    assert "Connect" in outcomes[3]["error"]
