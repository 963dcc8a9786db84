"""The one error of the benchmarks."""

from __future__ import annotations


class PhaseError(RuntimeError):
    """A phase failed: a process died, a timeout passed, or a check did not hold."""
