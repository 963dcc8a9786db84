"""Every line a process writes is one JSON object, library loggers included."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from taskflow.telemetry import configure_logging
configure_logging("INFO")
try:
    raise ZeroDivisionError("boom")
except ZeroDivisionError:
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
"""


def test_library_log_lines_are_json_and_keep_their_traceback() -> None:
    # In a child process: logging is configured once per process, and this test must not
    # reconfigure the suite's own.
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["event"] == "Exception in ASGI application" and line["logger"] == "uvicorn.error"
    assert line["level"] == "error" and "ZeroDivisionError: boom" in line["exception"]
