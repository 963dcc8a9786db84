"""Errors shared by every TaskFlow process.

Each package adds its own subclasses in its own ``errors.py``; all of them derive from
``TaskFlowError`` so a process's top level can tell our failures from bugs.
"""


class TaskFlowError(Exception):
    """Root of every error TaskFlow raises on purpose."""


class ConfigurationError(TaskFlowError):
    """Raised at start-up when a setting is missing, malformed or points nowhere.

    The message is one line that names the setting, so the CLI can print it and exit 1.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem
