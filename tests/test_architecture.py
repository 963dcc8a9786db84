"""The layering of HOUSE_STYLE section 1, checked by import-linter's contracts in pyproject."""

from __future__ import annotations

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


def test_only_keys_py_spells_redis_key_shapes() -> None:
    """Every Redis key is built in taskflow/keys.py (HOUSE_STYLE section 5)."""
    offenders = []
    for path in (ROOT / "taskflow").rglob("*.py"):
        if path.name == "keys.py":
            continue
        text = path.read_text()
        if ":{{{" in text or ":{{{p}}}" in text or '":q:' in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
