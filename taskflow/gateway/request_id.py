"""One id per request, to find a client's complaint in the logs: ``X-Request-ID``.

A sane incoming id (1-128 visible ASCII characters, as proxies and clients send) is kept,
so one id follows a request across services; anything else is replaced by a fresh uuid4.
The middleware binds it to structlog's context for everything logged while the request
runs; a ``before_send`` hook returns it on every response, including the errors answered
before or outside any route (401 from authentication, 404 for an unknown path).
"""

from __future__ import annotations

import re

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from taskflow.ids import new_uuid

REQUEST_ID_HEADER = "X-Request-ID"
_INCOMING = REQUEST_ID_HEADER.lower().encode()
_SANE = re.compile(r"[\x21-\x7e]{1,128}")
_STATE_KEY = "request_id"


def request_id_of(scope: Scope) -> str:
    """The request's id, chosen on first use and kept in the scope's state."""
    state = scope.setdefault("state", {})
    request_id: str | None = state.get(_STATE_KEY)
    if request_id is None:
        request_id = state[_STATE_KEY] = _incoming_or_new(scope)
    return request_id


def _incoming_or_new(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _INCOMING:
            incoming = value.decode("latin-1")
            return incoming if _SANE.fullmatch(incoming) else new_uuid().hex
    return new_uuid().hex


class RequestIdMiddleware(ASGIMiddleware):
    """Binds ``request_id`` to the log context for the whole request."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        with structlog.contextvars.bound_contextvars(request_id=request_id_of(scope)):
            await next_app(scope, receive, send)


async def send_request_id(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the id on every HTTP response."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id_of(scope)
