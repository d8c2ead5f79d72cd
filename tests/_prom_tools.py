"""Find promtool and amtool for the tests: skipped locally when missing, a failure in CI, where a skip would hide a gap.

Install them with `apt-get install -y prometheus prometheus-alertmanager`, or point `PROMTOOL` / `AMTOOL` at a binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require_binary(name: str) -> str:
    """The path of `name` (or of `$NAME`); fails the test under CI=true, skips it otherwise."""
    path = os.environ.get(name.upper()) or shutil.which(name)
    if path and Path(path).is_file():
        return path
    message = f"{name} not found: `apt-get install -y prometheus prometheus-alertmanager`, or set ${name.upper()}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run_tool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output; the caller asserts on the return code and shows the output on failure."""
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)
