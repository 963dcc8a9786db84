"""The one rule of what PostgreSQL text can hold (ADR 0014), as a table."""

from __future__ import annotations

import msgspec
import pytest

from taskflow.storable import escape_nul, escape_nul_json, json_nul_path, nul_path


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"s": "a\x00b"}, "kwargs.s"),
        ({"a": [1, {"b": "\x00"}]}, "kwargs.a[1].b"),
        ({"k\x00": 1}, "kwargs.k\\u0000"),
        ({"s": "clean", "n": None, "f": 1.5}, None),
        ({"s": "\\u0000 written out, not a NUL"}, None),
        ([["x", "\x00"]], "kwargs[0][1]"),
    ],
)
def test_nul_path_names_the_first_string_holding_a_nul(value: object, path: str | None) -> None:
    assert nul_path(value, "kwargs") == path
    assert json_nul_path(msgspec.json.encode(value), "kwargs") == path


def test_escaping_keeps_diagnostics_readable_and_storable() -> None:
    assert escape_nul("a\x00b") == "a\\u0000b"
    assert escape_nul_json({"k\x00": ["v\x00", 1]}) == {"k\\u0000": ["v\\u0000", 1]}
    assert nul_path(escape_nul_json({"k\x00": ["v\x00"]}), "m") is None
