"""Parsing a Server-Sent Events stream (the WHATWG rules TaskFlow's feeds need): ``id``,
``event``, ``data`` (joined across lines), comments ignored, a blank line ends a message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec


class SseMessage(msgspec.Struct, frozen=True):
    id: str | None
    event: str
    data: str


async def messages(lines: AsyncIterator[str]) -> AsyncIterator[SseMessage]:
    event_id: str | None = None
    event, data = "message", list[str]()
    async for line in lines:
        if not line:
            if data or event != "message":
                yield SseMessage(event_id, event, "\n".join(data))
            event, data = "message", list[str]()
            continue
        if line.startswith(":"):
            continue  # a comment: keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            event_id = value
