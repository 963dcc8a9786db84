"""No request text the gateway passes on may hold a NUL (ADR 0014): PostgreSQL refuses
it in any query parameter or stored value. Refused here with a 422 naming the parameter
or the path in the body, for every route, before a handler sees it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request

from taskflow.gateway.errors import invalid
from taskflow.storable import NUL, NUL_REFUSED, nul_path


def refuse_nul_in_query(request: Request[Any, Any, Any]) -> None:
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            raise invalid(name.replace(NUL, "\\u0000"), NUL_REFUSED, source="query")


def refuse_nul_in_body(body: bytes) -> None:
    """A JSON body with a NUL in any string, keys included; paths as ``kwargs.s``."""
    # JSON writes a NUL only as the escape \u0000 (a raw one is invalid JSON).
    if b"\\u0000" not in body:
        return
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # malformed: the decoder reports it, naming the body
    items = document.items() if isinstance(document, dict) else [("body", document)]
    for key, value in items:
        if (path := nul_path(value, key)) is not None or NUL in key:
            raise invalid(path or key.replace(NUL, "\\u0000"), NUL_REFUSED)
