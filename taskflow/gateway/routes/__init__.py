"""The gateway's HTTP routes, one module per resource (``/api/v1/tasks``, ``/dlq``,
``/workers``, ``/schedules``, ``/stats``, ``/quarantine``, and the health probes)."""
