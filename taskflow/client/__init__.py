"""TaskFlow over REST and SSE for programs that do not live beside the workers:
``Client`` (blocking) and ``AsyncClient``; refusals raise ``ApiError`` subclasses."""

from taskflow.client.async_client import ActionAnswer, AsyncClient
from taskflow.client.errors import ApiError, Conflict, Invalid, NotFound, RateLimited, Unauthorized
from taskflow.client.sync_client import Client

__all__ = [
    "ActionAnswer",
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "Invalid",
    "NotFound",
    "RateLimited",
    "Unauthorized",
]
