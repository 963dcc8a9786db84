"""The layering of HOUSE_STYLE section 1, checked by import-linter's contracts in pyproject."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is part of the dev extra"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


KEYSPACE = ROOT / "taskflow" / "streams" / "keyspace.py"


def test_only_the_keyspace_spells_redis_key_shapes() -> None:
    """Every Redis key is built in taskflow/streams/keyspace.py (HOUSE_STYLE section 5)."""
    offenders = []
    for path in (ROOT / "taskflow").rglob("*.py"):
        if path == KEYSPACE:
            continue
        text = path.read_text()
        if ":{{{" in text or ":{{{p}}}" in text or '":q:' in text or ":task:" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_only_the_keyspace_reads_the_namespace_and_partition_count() -> None:
    """A process makes its Keyspace once (``Keyspace.of(settings)``) and passes it down;
    nothing else reads ``settings.namespace`` or ``settings.partitions`` to build a key."""
    allowed = {KEYSPACE, ROOT / "taskflow" / "settings.py"}
    offenders = []
    for path in (ROOT / "taskflow").rglob("*.py"):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("namespace", "partitions"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []


def test_each_process_registers_only_the_scripts_beside_it() -> None:
    """A ``LuaScripts`` subclass in taskflow/<package>/ loads from taskflow/<package>/lua/,
    and every script there is registered by it (none loaded elsewhere, none left over)."""
    registered: dict[Path, set[str]] = {}
    for path in (ROOT / "taskflow").rglob("*.py"):
        text = path.read_text()
        for package in re.findall(r'super\(\).__init__\(redis, keyspace, "([\w.]+)"\)', text):
            folder = ROOT / Path(*package.split("."))
            assert folder == path.parent, f"{path.relative_to(ROOT)} loads scripts of {package}"
            names = set(re.findall(r'self\.register\("(\w+)"\)', text))
            registered.setdefault(folder, set()).update(names)
    on_disk: dict[Path, set[str]] = {}
    for script in (ROOT / "taskflow").rglob("lua/*.lua"):
        on_disk.setdefault(script.parent.parent, set()).add(script.stem)
    assert registered == on_disk
    assert (
        len(on_disk) == 7
    )  # streams (shared submit, cancel), worker, coordinator, gateway, projections, ops, campaigns


def test_every_error_taskflow_raises_derives_from_taskflow_error() -> None:
    """A process's top level tells our failures from bugs by ``TaskFlowError``."""
    import importlib
    import pkgutil

    import taskflow
    from taskflow.errors import TaskFlowError

    errors = []
    for module_info in pkgutil.walk_packages(taskflow.__path__, "taskflow."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                errors.append(value)
    assert len(errors) >= 10
    # An order to stop (TaskInterrupted), like CancelledError, is a BaseException on
    # purpose: task code's own ``except Exception`` must not swallow it. Errors are not.
    assert [e.__qualname__ for e in errors if issubclass(e, Exception) and not issubclass(e, TaskFlowError)] == []


def test_the_worker_projector_and_coordinator_never_import_alembic_or_sqlalchemy() -> None:
    """They only open pools; Alembic and SQLAlchemy would double their start-up (0.25 ->
    0.5 s measured) and grow the heap every process carries (ADR 0012)."""
    modules = (
        "taskflow.cli.services, taskflow.worker.service, taskflow.projections.projector, taskflow.coordinator.service"
    )
    assert _loaded_by(modules, {"alembic", "sqlalchemy"}) == []


def test_a_worker_loads_the_campaign_sending_machinery_only_on_its_first_send() -> None:
    """SMTP, templates and DKIM (with its DNS library) cost a starting worker ~90 ms, and
    its first sync task must complete within 0.5 s of the start (issue 11)."""
    modules = "taskflow.cli.services, taskflow.worker.service, taskflow.tasks.builtin"
    assert _loaded_by(modules, {"aiosmtplib", "dkim", "dns", "jinja2"}) == []


def _loaded_by(modules: str, packages: set[str]) -> list[str]:
    """Which of ``packages`` a fresh interpreter has loaded after importing ``modules``."""
    probe = f"import sys, {modules}; print(repr(sorted({{m.split('.')[0] for m in sys.modules}} & {packages!r})))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = ast.literal_eval(result.stdout.strip())
    return loaded
