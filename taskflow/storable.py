"""What PostgreSQL can store as text: the one rule shared by intake and workers (ADR 0014).

PostgreSQL's ``text`` and ``jsonb`` refuse the NUL character (``\\u0000``) however it is
written, so an event carrying one in a string that becomes a column would stop the
projector. Intake refuses such values with a 422 naming the field; a worker fails a task
whose result holds one and escapes it in diagnostics (log lines, error messages).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

NUL = "\x00"
# What a NUL becomes in diagnostics: visible, and still telling what was there.
NUL_ESCAPED = "\\u0000"
# Why a value with a NUL is refused, in every 422 that says so.
NUL_REFUSED = "contains a NUL character (\\u0000), which cannot be stored"


def nul_path(value: object, path: str) -> str | None:
    """The path (``kwargs.a[2]``) of the first string in ``value`` holding a NUL, a dict key
    included; None when there is none. ``value`` is a decoded JSON value."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return f"{path}.{escape_nul(key)}"
            if (found := nul_path(item, f"{path}.{key}")) is not None:
                return found
        return None
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for i, item in enumerate(value):
            if (found := nul_path(item, f"{path}[{i}]")) is not None:
                return found
    return None


def escape_nul(text: str) -> str:
    """``text`` with each NUL written as ``\\u0000``: for diagnostics, which must be kept
    whatever they hold."""
    return text.replace(NUL, NUL_ESCAPED) if NUL in text else text


def json_nul_path(encoded: bytes, path: str) -> str | None:
    """``nul_path`` of a JSON document, decoding it only when it may hold a NUL at all."""
    # JSON writes a NUL only as the escape \u0000 (a raw one is invalid JSON).
    if b"\\u0000" not in encoded:
        return None
    return nul_path(msgspec.json.decode(encoded), path)


def escape_nul_json(value: object) -> object:
    """A decoded JSON value with ``escape_nul`` applied to every string, keys included."""
    if isinstance(value, str):
        return escape_nul(value)
    if isinstance(value, Mapping):
        return {escape_nul(k) if isinstance(k, str) else k: escape_nul_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_nul_json(v) for v in value]
    return value
