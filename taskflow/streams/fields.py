"""Reading the fields of stream entries and script replies exactly as they were written."""

from __future__ import annotations

# Every client decodes replies with this error handler (streams.connection.open_redis): an
# entry holding bytes that are not UTF-8 (appended by hand, or by a buggy writer) then reads
# as text instead of failing every read of its stream, and ``field_bytes`` gets it back
# exactly (ADR 0014).
DECODE_ERRORS = "surrogateescape"


def field_bytes(value: str) -> bytes:
    """A stream field's bytes exactly as they were written."""
    return value.encode("utf-8", DECODE_ERRORS)


def field_text(value: str) -> str:
    """A stream field as printable text, bytes that are not UTF-8 written as ``\\xNN``:
    what may be put into an event or a log line."""
    return field_bytes(value).decode("utf-8", "backslashreplace")


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat ``[field, value, field, value, ...]`` reply as a mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
