"""What a JSON request body must be before it is decoded: its media type, size and depth.

One ``before_request`` hook runs for every route and acts only where the handler takes a
JSON ``data`` body, so routes without one (cancel, retry, pause) need no Content-Type.
Litestar itself parses any body as JSON whatever its Content-Type, and msgspec raises
``RecursionError`` (a 500) on JSON nested ~1,000 levels deep, so both are refused here,
before decoding.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import BodyKwarg
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from taskflow.gateway.errors import invalid
from taskflow.gateway.request_text import refuse_nul_in_body, refuse_nul_in_query

# The largest request body read at all (Litestar's request_max_body_size): 413 beyond.
MAX_BODY_BYTES = 1024 * 1024
# The deepest nesting of arrays and objects a body may have; the body's own object is
# level 1. Task arguments are data, not trees: 32 is far beyond real use.
MAX_JSON_DEPTH = 32

JSON_MEDIA_TYPE = "application/json"
_UTF8 = {"utf-8", "utf8"}


async def check_json_body(request: Request[Any, Any, Any]) -> None:
    """415 unless a JSON body is labelled JSON; 413 over the size limit; 422 too deep."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    kwarg = data.kwarg_definition
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type != RequestEncodingType.JSON:
        return
    if not is_json_media_type(request.headers.get("content-type", "")):
        raise ClientException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=f"Content-Type must be {JSON_MEDIA_TYPE}"
        )
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(detail=f"body: larger than the limit of {MAX_BODY_BYTES} bytes") from None
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise invalid("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    refuse_nul_in_body(body)


async def check_request(request: Request[Any, Any, Any]) -> None:
    """Every route's ``before_request``: query parameters, then a JSON body."""
    refuse_nul_in_query(request)
    await check_json_body(request)


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, in any case, with no
    charset but UTF-8 (the only one JSON has, RFC 8259 section 8.1)."""
    media_type, *parameters = content_type.split(";")
    media_type = media_type.strip().lower()
    if media_type != JSON_MEDIA_TYPE and not (media_type.startswith("application/") and media_type.endswith("+json")):
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return False
    return True


_ALL_BRACKETS_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth_exceeds(document: bytes, limit: int) -> bool:
    """Whether ``document`` nests arrays and objects deeper than ``limit``, found without
    decoding it and without a Python step per byte (every submit pays this).

    Strings are cut out and everything but brackets dropped with a few C-level bytes
    operations; then each ``replace`` of ``[]`` peels one level off every innermost pair,
    so nesting of depth ``d`` is gone after exactly ``d`` passes. Malformed JSON (brackets
    that never pair up) is left for the decoder to report.
    """
    if document.count(b"[") + document.count(b"{") <= limit:
        return False  # too few brackets to nest that deep, wherever they are
    brackets = _outside_strings(document).translate(_ALL_BRACKETS_AS_SQUARE, _NOT_BRACKETS)
    for peeled_levels in range(limit):
        # A run of opening brackets is nesting already: deep attacks end here at once (the
        # first pass strips the empty siblings that could break up such a run). Later passes
        # skip the search, which costs a third more on a megabyte of legitimate brackets.
        if peeled_levels < 2 and b"[" * (limit - peeled_levels + 1) in brackets:
            return True
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return False  # empty, or unbalanced: no pair left to peel
        brackets = peeled
    return b"[]" in brackets


def _outside_strings(document: bytes) -> bytes:
    # Escaped backslashes go first, so that in \\" the quote still ends its string; with no
    # escaped quote left, every second piece between quotes is the inside of a string.
    unescaped = document.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2])
