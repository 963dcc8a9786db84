"""An outage is logged once when it starts and once when it ends, however many retries."""

from __future__ import annotations

from structlog.testing import capture_logs

from taskflow.outage import Outage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_many_failures_then_many_successes_log_one_outage_and_one_recovery() -> None:
    clock = FakeClock()
    outage = Outage("postgres", clock=clock)
    with capture_logs() as logs:
        outage.succeeded()
        for _ in range(5):
            outage.failed(ConnectionRefusedError("refused"), partition=0)
            clock.now += 1.5
        outage.succeeded()
        outage.succeeded()
    assert logs == [
        {
            "event": "dependency_unavailable",
            "log_level": "warning",
            "dependency": "postgres",
            "error": "ConnectionRefusedError('refused')",
            "partition": 0,
        },
        {"event": "dependency_recovered", "log_level": "info", "dependency": "postgres", "outage_s": 7.5},
    ]
    assert not outage.ongoing


def test_a_second_outage_is_logged_again() -> None:
    outage = Outage("redis")
    with capture_logs() as logs:
        for _ in range(2):
            outage.failed(TimeoutError())
            outage.succeeded()
    assert [entry["event"] for entry in logs] == ["dependency_unavailable", "dependency_recovered"] * 2
