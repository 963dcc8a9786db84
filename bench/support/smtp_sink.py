"""A lean SMTP sink for the campaign benchmark: real SMTP on a socket (EHLO, MAIL, RCPT,
DATA with dot-termination, RSET, NOOP, QUIT), every message accepted and counted, nothing
stored or parsed.

aiosmtpd (what the tests use) costs about 1 ms of CPU per mail on the benchmark machine:
at 1,000 mails/s that is half of its two cores, spent on the measuring device rather than
on TaskFlow. A mail server in C, or one on another machine, costs the sender nothing; this
sink stands in for one at about a tenth of aiosmtpd's cost.

    python -m support.smtp_sink --port 2525 [--report FILE]

On SIGTERM it writes ``{"messages": n, "bytes": b}`` to ``--report`` (and stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import cast

_TERMINATOR = b"\r\n.\r\n"
_EHLO = b"250-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 0\r\n"


class Counter:
    messages = 0
    bytes = 0


class Session(asyncio.Protocol):
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                end = self.buffer.find(_TERMINATOR)
                if end < 0:
                    break
                self.counter.messages += 1
                self.counter.bytes += end
                # Keep the CRLF that ends the terminator's line as the start of the next command.
                self.buffer = self.buffer[end + len(_TERMINATOR) :]
                self.in_data = False
                replies.append(b"250 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(_EHLO)
            elif verb == b"DATA":
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.in_data = True
                # The terminator is CRLF.CRLF: the DATA line's CRLF counts as the first.
                self.buffer = b"\r\n" + self.buffer
            elif verb == b"QUIT":
                replies.append(b"221 Bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                replies.append(b"250 OK\r\n")
            elif line:
                replies.append(b"502 Command not implemented\r\n")
        if replies:
            self.transport.write(b"".join(replies))


async def serve(host: str, port: int) -> str:
    """Accept mail until SIGTERM or SIGINT; the counts, as JSON."""
    counter = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Session(counter), host, port)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    server.close()
    return json.dumps({"messages": counter.messages, "bytes": counter.bytes})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    try:
        import uvloop

        summary = uvloop.run(serve(args.host, args.port))
    except ImportError:
        summary = asyncio.run(serve(args.host, args.port))
    print(summary, flush=True)
    if args.report is not None:
        args.report.write_text(summary)


if __name__ == "__main__":
    main()
