"""The SMTP pool against a server that will not greet: the send fails with the server's
reply and the connection it opened is closed (a real socket server on loopback)."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from taskflow.campaigns.smtp import SmtpPool, SmtpServer


async def test_a_server_that_refuses_ehlo_and_helo_fails_the_send_and_its_connection_is_closed() -> None:
    closed = asyncio.Event()

    async def refuse_greetings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 grumpy ESMTP\r\n")
        while line := await reader.readline():
            writer.write(b"502 5.5.1 not today\r\n" if line[:4].upper() in (b"EHLO", b"HELO") else b"503 no\r\n")
            await writer.drain()
        closed.set()  # the client hung up
        writer.close()

    server = await asyncio.start_server(refuse_greetings, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = SmtpPool(SmtpServer("127.0.0.1", port, "", "", starttls=False, timeout_s=5))
    try:
        with pytest.raises(aiosmtplib.SMTPHeloError, match="not today"):
            await pool.send(b"Subject: x\r\n\r\nbody\r\n", "news@example.com", "ann@example.com")
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
