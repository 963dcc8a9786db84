"""Row ids: the fast UUIDs are the standard ones, so stored ids never change with them."""

from __future__ import annotations

import uuid

import pytest

from taskflow.projections.ids import as_uuid, derived_id

ID_SPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://taskflow.dev/projections")


@pytest.mark.parametrize(
    "parts",
    [
        ("execution", str(uuid.uuid4()), 1, uuid.uuid4().hex),
        ("dlq", str(uuid.uuid4()), "1700000000000-3"),
        ("log", "x", "0-1"),
    ],
)
def test_derived_ids_are_uuid5_of_the_joined_parts(parts: tuple[str | int, ...]) -> None:
    expected = uuid.uuid5(ID_SPACE, ":".join(str(p) for p in parts))
    derived = derived_id(*parts)
    assert derived == expected and str(derived) == str(expected) and hash(derived) == hash(expected)
    assert derived.version == 5


@pytest.mark.parametrize(
    "spelling",
    [
        "12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678-1234-5678-1234-567812345678".upper(),
    ],
)
def test_as_uuid_accepts_what_uuid_accepts(spelling: str) -> None:
    parsed = as_uuid(spelling)
    assert parsed == uuid.UUID(spelling) and isinstance(parsed, uuid.UUID)
    assert {parsed: 1}[uuid.UUID(spelling)] == 1


def test_as_uuid_refuses_what_uuid_refuses() -> None:
    with pytest.raises(ValueError):
        as_uuid("not-a-uuid")
