"""The package's shape: dependencies point inward to a stdlib-only core, optional extras are imported only at the
edges (so the base install's CLI works), and every function fits on a screen."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "langchain_llmmonitor"
ROOT = PACKAGE.parent

# Lower layers never import higher ones; a layer imports its own modules freely.
LAYERS = {
    "core": 0,
    "frames": 0,  # records to pandas DataFrames: imports nothing of the package, pandas only when called
    "telemetry": 1,
    "pricing": 1,
    "workers": 1,
    "config": 2,
    "handler": 3,
    "quality": 3,
    "storage": 3,
    "ops": 3,
    "langsmith": 4,
    "review": 4,
    "feedback": 5,
    "monitor": 6,
    "judge_worker": 6,
    "demo": 7,
    "testing": 7,
    "cli": 8,
    "__init__": 8,
}
MAX_FUNCTION_LINES = 80
OPTIONAL = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "psycopg",
    "numpy",
    "scipy",
    "matplotlib",
    "tqdm",
    "pandas",
)


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def internal_imports(path: Path) -> set[str]:
    """The layers (top-level parts of `langchain_llmmonitor`) this module imports, anywhere in it."""
    package = ("langchain_llmmonitor", *path.relative_to(PACKAGE).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package[: len(package) - node.level + 1] if node.level else ()
        target = (*base, *(node.module.split(".") if node.module else ()))
        if target[:1] != ("langchain_llmmonitor",):
            continue
        if len(target) > 1:
            found.add(target[1])
        else:  # `from . import review` at the root: the names are the layers
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(PACKAGE))) for p in modules()])
def test_no_module_imports_upward(path: Path):
    """Each import reaches a lower layer or the module's own; so the core knows nothing of the handler, and so on."""
    layer = layer_of(path)
    upward = {name for name in internal_imports(path) if name != layer and LAYERS.get(name, 99) >= LAYERS[layer]}
    assert not upward, f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(upward)}"


def test_every_layer_is_ranked():
    """A new subpackage must be given its place in the layering."""
    assert {layer_of(path) for path in modules()} <= set(LAYERS)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in sorted((PACKAGE / "core").glob("*.py"))])
def test_core_needs_nothing_but_the_standard_library(path: Path):
    """The core is what every layer imports: it depends on no third-party package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    third_party = (
        {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0)
            for alias in node.names
        }
        - set(sys.stdlib_module_names)
        - {"__future__"}
    )
    assert not third_party


def test_no_function_is_longer_than_a_screen():
    """Functions of at most 80 lines: longer ones hide several jobs."""
    long = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long


WITHOUT_EXTRAS = f"""
import contextlib, importlib.abc, io, sys

class NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, NoExtras())
import langchain_llmmonitor
from langchain_llmmonitor import Monitor
from langchain_llmmonitor.cli import main
import langchain_llmmonitor.testing, langchain_llmmonitor.feedback, langchain_llmmonitor.review

for argv in (["rules"], ["dashboard"]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(argv) == 0, argv
    assert out.getvalue().strip(), argv
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["--help"])

from langchain_core.language_models.fake_chat_models import FakeListChatModel
monitor = Monitor(sample_rate=1.0)
FakeListChatModel(responses=["ok"]).invoke("hi", config={{"callbacks": [monitor]}})
assert monitor.flush(10)
assert monitor.registry.get_sample_value("llm_invocations_total", {{"name": "FakeListChatModel", "status": "success"}}) == 1
monitor.close()
print("ok")
"""


def test_the_base_install_works_without_any_extra():
    """With every optional dependency unimportable: the package, the CLI's rules and dashboard, and a Monitor work."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
