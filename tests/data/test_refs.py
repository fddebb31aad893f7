"""Dataset references: ``NAME``, ``NAME@3``, ``NAME@latest`` parse exactly; anything else is InvalidInput."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInput
from shipyard.data.service import parse_ref

_names = st.text(st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="/@"), min_size=1, max_size=40)


@given(name=_names.filter(lambda s: s.strip() == s), version=st.integers(1, 10**9))
def test_valid_refs_round_trip(name: str, version: int) -> None:
    assert parse_ref(f"{name}@{version}") == (name, version)
    assert parse_ref(name) == parse_ref(f"{name}@latest") == (name, None)


@given(ref=st.text(max_size=30))
def test_any_text_parses_or_is_invalid_input(ref: str) -> None:
    try:
        name, version = parse_ref(ref)
    except InvalidInput as exc:
        assert exc.field in ("ref", "dataset name")
    else:
        assert name and "@" not in name and (version is None or version >= 1)


def test_specific_bad_refs() -> None:
    for bad in ("", "   ", "@1", "a@", "a@0", "a@-2", "a@1.5", "a@v1", "a@1@2", "a/b@1"):
        try:
            parse_ref(bad)
        except InvalidInput:
            continue
        raise AssertionError(f"{bad!r} was accepted")
