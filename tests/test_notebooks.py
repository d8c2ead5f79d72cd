"""The notebooks run top to bottom on this venv's Python, offline and without keys, and show what they promise.

Each notebook is executed by nbclient on ipykernel's own `python3` kernelspec (argv[0] is `sys.executable`), so
neither a user's `~/.local/share/jupyter` nor a system kernel can swap the interpreter. The kernel gets a private
TMPDIR and working directory, both of which must be empty afterwards: the notebooks keep everything in a temporary
directory they delete.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` runs the quick rest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "python3"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
CREDENTIALS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_ENDPOINT",
    "LANGCHAIN_ENDPOINT",
)


@dataclass
class Executed:
    """A notebook after execution: its cells with outputs, how long it took, and where the kernel could write."""

    nb: NotebookNode
    seconds: float
    cwd: Path
    tmpdir: Path

    def outputs(self) -> list[NotebookNode]:
        return [output for cell in self.nb.cells if cell.cell_type == "code" for output in cell.outputs]

    @property
    def text(self) -> str:
        """Everything printed to stdout and every plain-text result, in order."""
        parts = []
        for output in self.outputs():
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.data.get("text/plain", "") + "\n")
        return "".join(parts)

    def count(self, mime: str) -> int:
        return sum(1 for output in self.outputs() if mime in output.get("data", {}))


@pytest.fixture(autouse=True)
def _private_jupyter_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel connection files go to the test's directory, not the user's Jupyter runtime directory."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def kernel_manager() -> AsyncKernelManager:
    """A kernel manager that sees only ipykernel's built-in `python3` spec, which runs `sys.executable`."""
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def execute(nb: NotebookNode, tmp_path: Path, timeout: float) -> Executed:
    """Run `nb` in a fresh kernel with no credentials, the inline plot backend and private TMPDIR and cwd."""
    cwd, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmpdir.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in CREDENTIALS}
    env.update(TMPDIR=str(tmpdir), MPLBACKEND=INLINE_BACKEND, PYTHONWARNINGS="default")
    client = NotebookClient(
        nb, km=kernel_manager(), timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}}
    )
    started = time.monotonic()
    client.execute(env=env)  # raises CellExecutionError, naming the cell, if any cell fails
    return Executed(nb, time.monotonic() - started, cwd, tmpdir)


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"no match for {pattern!r} in:\n{text}"
    return float(match.group(1).replace(",", ""))


def quickstart_shows(run: Executed) -> None:
    """Metrics table with consistent request counts, judge scores, a feedback-forced evaluation and the outbox."""
    text = run.text
    success = number(r'^LLM requests\s+llm_requests_total\{model="gpt-4o-mini",status="success"\}\s+(\d+)', text)
    errors = number(r'^LLM requests\s+llm_requests_total\{model="gpt-4o-mini",status="error"\}\s+(\d+)', text)
    assert success > 0 and errors > 0
    assert success + errors == 40  # one LLM call per request, every request counted once
    assert number(r"^(\d+) requests: ", text) == 40
    assert number(r"^40 requests: (\d+) answered", text) == success
    assert number(r"^error rate ([\d.]+)% of 40 LLM calls", text) == pytest.approx(100 * errors / 40, abs=0.05)
    assert number(r"^latency p99\s+llm_request_duration_seconds\s+([\d.]+) s", text) > 0
    assert number(r"^cost\s+llm_cost_usd_total\s+\$([\d.]+)", text) > 0
    assert number(r"^prompt tokens\s+llm_tokens_total\S+\s+([\d,]+)", text) > 0
    assert number(r"^(\d+) answers judged by offline", text) >= 1
    assert re.search(r"^req-\d{3}\s.+\s[1-5]/[1-5]/[1-5]\s+(yes|no)\s+random\s+\S", text, re.MULTILINE), text
    forced_row = r"^req-\d{3}\s.+\s[1-5]/[1-5]/[1-5]\s+(yes|no)\s+forced \(feedback\)\s+\S"
    assert re.search(forced_row, text, re.MULTILINE), text
    assert re.search(r'^llm_quality_samples_total\{reason="feedback"\}\s+1\s*$', text, re.MULTILINE), text
    assert re.search(r"^user_rating\s+score=-1\s+source=api\s+run_id=[0-9a-f-]{36}$", text, re.MULTILINE), text
    for key in ("faithfulness", "relevance", "completeness", "hallucination"):
        assert re.search(rf"^{key}\s+score=[\d.]+\s+source=model\s+run_id=", text, re.MULTILINE), key
    assert "'judge': 'offline'" in text
    assert "removed " in text


def weekly_review_shows(run: Executed) -> None:
    """A status, one verdict line per criterion, inline plots, forced and worst samples, and the written report."""
    text = run.text
    assert run.count("image/png") >= 2, "the trend and distribution plots were not displayed inline"
    assert re.search(r"^Review of .+: status (DEGRADED|OK|NOT_ENOUGH_SAMPLES)$", text, re.MULTILINE), text
    verdicts = re.findall(
        r"^(Faithfulness|Relevance|Completeness|Hallucination rate)\s+(DEGRADED|IMPROVED|STABLE|NOT_ENOUGH_SAMPLES)\s",
        text,
        re.MULTILINE,
    )
    assert [name for name, _ in verdicts] == ["Faithfulness", "Relevance", "Completeness", "Hallucination rate"]
    assert number(r"^(\d+) forced evaluations this week", text) > 0
    assert re.search(r"^\s+judge: \S", text, re.MULTILINE), "no worst sample with the judge's reason"
    assert re.search(r"review-\d{4}-\d{2}-\d{2}\.html\s+\(\d+ KiB\)", text), text
    assert re.search(r"review-\d{4}-\d{2}-\d{2}\.md\s+\(\d+ KiB\)", text), text
    assert "# LLM quality review" in text
    assert "removed " in text


@pytest.mark.parametrize(
    ("name", "budget", "shows"),
    [
        pytest.param("quickstart.ipynb", 60.0, quickstart_shows, id="quickstart"),
        pytest.param("weekly_review.ipynb", 120.0, weekly_review_shows, id="weekly_review"),
    ],
)
def test_notebook_runs_offline_and_leaves_nothing_behind(
    tmp_path: Path, name: str, budget: float, shows: Callable[[Executed], None]
) -> None:
    """The notebook runs without errors or warnings, shows its results, and leaves no files behind."""
    run = execute(nbformat.read(NOTEBOOKS / name, as_version=4), tmp_path, timeout=budget)
    errors = [output for output in run.outputs() if output.output_type == "error"]
    stderr = [output.text for output in run.outputs() if output.output_type == "stream" and output.name == "stderr"]
    assert not errors and not stderr, (errors, stderr)
    shows(run)
    assert run.seconds < budget, f"{name} took {run.seconds:.1f} s"
    assert list(run.cwd.iterdir()) == [], "the notebook wrote into its working directory"
    assert list(run.tmpdir.iterdir()) == [], "the notebook left files in TMPDIR"


@pytest.mark.parametrize(
    "name", [pytest.param("quickstart.ipynb", id="quickstart"), pytest.param("weekly_review.ipynb", id="weekly_review")]
)
def test_notebook_is_saved_without_outputs(name: str) -> None:
    """Saved as valid nbformat 4 with the python3 kernelspec and no outputs or execution counts (clean diffs)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == KERNEL
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def test_kernel_runs_this_python(tmp_path: Path) -> None:
    """The kernel the notebooks run on is this interpreter, with the inline plot backend."""
    code = "import sys, matplotlib\nprint(sys.executable)\nprint(sys.prefix)\nprint(matplotlib.get_backend())"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    run = execute(nb, tmp_path, timeout=60)
    executable, prefix, backend = run.text.split()
    assert (executable, prefix) == (sys.executable, sys.prefix)
    assert "inline" in backend
