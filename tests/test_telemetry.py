"""Every line a process writes is one JSON object, library loggers included."""

from __future__ import annotations

import json
import logging

import pytest

from taskflow.telemetry import configure_logging


def test_library_log_lines_are_json_and_keep_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "Exception in ASGI application" and line["logger"] == "uvicorn.error"
    assert line["level"] == "error" and "ZeroDivisionError: boom" in line["exception"]
    logging.getLogger().handlers.clear()  # leave pytest's own logging as it was
