"""Reading a live SSE response as a browser does, for the feed tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comment: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Feed:
    response: httpx.Response
    _lines: AsyncIterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()

    async def next(self, timeout_s: float = 10.0) -> Message | None:
        """The next message or comment; None when the server ended the stream."""
        message = Message()
        seen = False
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), timeout_s)
            except StopAsyncIteration:
                return message if seen else None
            if line == "":
                if seen:
                    return message
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                return Message(comment=value)
            if name == "data":
                message.data = value if not message.data else f"{message.data}\n{value}"
            elif name == "id":
                message.id = value
            elif name == "event":
                message.event = value

    async def events(self, count: int, timeout_s: float = 10.0) -> list[Message]:
        """The next ``count`` event messages (comments skipped)."""
        found: list[Message] = []
        while len(found) < count:
            message = await self.next(timeout_s)
            if message is None:
                break
            if message.comment is None:
                found.append(message)
        return found
