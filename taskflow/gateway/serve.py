"""Serving the gateway app with uvicorn, stopping with exit 0 on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from litestar import Litestar


def serve(app: Litestar, host: str, port: int) -> None:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    asyncio.run(_GracefulServer(config).serve())


class _GracefulServer(uvicorn.Server):
    """uvicorn stops gracefully on SIGTERM (stops accepting, finishes requests, runs the
    lifespan exit) but then re-raises the signal, so the process would die by it with
    exit -15; the contract is a clean stop with exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
