"""The coordinator process: schedules, dependencies and worker health.

It arrives with the task-lifecycle issue; the package exists now so the import contracts
(gateway, worker and coordinator never import each other) hold from the first commit.
"""
