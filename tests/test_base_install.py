"""`pip install langchain-llmmonitor` with no extras, in a fresh virtual environment: the CLI's help, rules and
dashboard work, and the optional packages really are absent."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` runs the quick rest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding the package and its required dependencies only."""
    home = tmp_path_factory.mktemp("base-install")
    venv.EnvBuilder(with_pip=True).create(home)
    python = home / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
        timeout=900,
    )
    return home / "bin"


def run(bin_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=120)


def test_the_optional_packages_are_absent(base_install: Path):
    """The environment is what a user gets without extras: no SQLAlchemy, FastAPI, numpy or pandas."""
    probe = (
        "import importlib.util as u; print([m for m in ('sqlalchemy', 'fastapi', 'numpy', 'pandas') if u.find_spec(m)])"
    )
    result = run(base_install, "python", "-c", probe)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        pytest.param(("--help",), lambda out: "rules" in out and "dashboard" in out and "review" in out, id="help"),
        pytest.param(("rules",), lambda out: "LLMErrorRateHigh" in str(yaml.safe_load(out)), id="rules"),
        pytest.param(("dashboard",), lambda out: json.loads(out)["uid"] == "llmmonitor", id="dashboard"),
    ],
)
def test_the_cli_works_without_extras(base_install: Path, argv: tuple[str, ...], check):
    """`llmmonitor --help`, `rules` and `dashboard` exit 0 and print what they promise."""
    result = run(base_install, "llmmonitor", *argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert check(result.stdout)


def test_commands_that_need_an_extra_name_it(base_install: Path, tmp_path: Path):
    """`review` and `serve` exit 2 naming the extra to install, instead of a traceback."""
    for argv, extra in ((("review", "--store", str(tmp_path / "x.db")), "review"), (("serve",), "api")):
        result = run(base_install, "llmmonitor", *argv)
        assert result.returncode == 2, (argv, result.stderr[-2000:])
        assert f"langchain-llmmonitor[{extra}]" in result.stderr


def test_a_monitor_works_without_a_store(base_install: Path):
    """The handler itself needs no extra: a chat model call is counted."""
    code = (
        "from langchain_core.language_models.fake_chat_models import FakeListChatModel\n"
        "from langchain_llmmonitor import Monitor\n"
        "with Monitor() as monitor:\n"
        "    FakeListChatModel(responses=['ok']).invoke('hi', config={'callbacks': [monitor]})\n"
        "    print(monitor.registry.get_sample_value('llm_requests_total', {'model': 'unknown', 'status': 'success'}))\n"
    )
    result = run(base_install, "python", "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1.0"  # after structlog's default console lines
