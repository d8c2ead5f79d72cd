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
from html.parser import HTMLParser
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

    def html(self, marker: str) -> list[str]:
        """The HTML results and displays that contain `marker`, in order."""
        return [
            output.data["text/html"]
            for output in self.outputs()
            if output.output_type in ("execute_result", "display_data") and marker in output.data.get("text/html", "")
        ]


class Cells(HTMLParser):
    """An HTML fragment's table rows, as the text of their cells, and its image sources."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._in_cell = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
            self._in_cell = True
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


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


def counts(text: str) -> dict[str, int]:
    """`40 (success 36 · error 4)` as {"success": 36, "error": 4}, checking that the parts add up to the total."""
    match = re.fullmatch(r"([\d,]+) \((.*)\)", text)
    assert match, text
    parts = {key: int(n.replace(",", "")) for key, n in (part.rsplit(" ", 1) for part in match.group(2).split(" · "))}
    assert sum(parts.values()) == int(match.group(1).replace(",", "")), text
    return parts


def snapshot_rows(page: str) -> dict[str, str]:
    """A monitor snapshot's summary table: its (what, value) rows."""
    return {row[0]: row[1] for row in Cells(page).rows if len(row) == 2}


def quickstart_shows(run: Executed) -> None:
    """Two snapshot tables with consistent counts, judge scores, a feedback-forced evaluation and the outbox, as
    DataFrames."""
    text = run.text
    snapshots = [snapshot_rows(page) for page in run.html('class="llmmonitor-snapshot"')]
    assert len(snapshots) == 2, "monitor.snapshot() was not displayed as HTML twice"
    first, last = snapshots
    calls = counts(first["LLM calls"])
    success, errors = calls["success"], calls["error"]
    assert success > 0 and errors > 0
    assert success + errors == 40  # one LLM call per request, every request counted once
    assert counts(first["Invocations"]) == calls
    assert number(r"^(\d+) requests: ", text) == 40
    assert number(r"^40 requests: (\d+) answered", text) == success
    assert first["LLM error rate"] == f"{errors / 40:.1%}"
    assert number(r"^error rate ([\d.]+)% of 40 LLM calls", text) == pytest.approx(100 * errors / 40, abs=0.05)
    assert number(r"/ ([\d.]+) s \(n=40\)$", first["LLM latency p50 / p95 / p99"]) > 0
    assert number(r"^\$([\d.]+)", first["Cost"]) > 0
    assert number(r"prompt ([\d,]+)", first["Tokens"]) > 0
    assert counts(last["User feedback"]) == {"positive": 1, "negative": 1}
    assert counts(last["Traces sampled for judging"])["feedback"] == 1

    frames = run.html('class="dataframe"')
    assert len(frames) >= 6, "the store's and the snapshot's DataFrames were not displayed"
    assert number(r"^(\d+) answers judged by offline", text) >= 1
    assert any("<th>random</th>" in frame and "<th>faithfulness</th>" in frame for frame in frames), "no groupby"
    forced = [f for f in frames if "<td>forced</td>" in f and "<td>feedback</td>" in f and "<td>random</td>" not in f]
    assert len(forced) == 1, "the evaluation forced by the thumbs-down is not shown apart"
    ratings = [f for f in frames if "<td>negative</td>" in f and "<td>positive</td>" in f]
    assert ratings and "That is not what your docs say." in ratings[0]
    outbox = next(f for f in frames if "<td>user_rating</td>" in f)
    assert all(f"<td>{key}</td>" in outbox for key in ("faithfulness", "relevance", "completeness", "hallucination"))
    assert "'judge': 'offline'" in text
    assert "removed " in text


def weekly_review_shows(run: Executed) -> None:
    """The review as HTML (status, verdict table, plots), its DataFrames, forced and worst samples, the verdicts per
    segment of a release, and the report."""
    text = run.text
    [review] = run.html('class="llmmonitor-review"')
    page = Cells(review)
    labels = ["Faithfulness", "Relevance", "Completeness", "Hallucination rate"]
    verdicts = [row[1] for row in page.rows if row and row[0] in labels and len(row) > 2]
    assert len(verdicts) == 4 and set(verdicts) <= {"DEGRADED", "improved", "stable", "not enough samples"}
    assert len(page.images) >= 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert re.search(r"^Review of .+: status (DEGRADED|OK|NOT_ENOUGH_SAMPLES)$", text, re.MULTILINE), text
    assert run.count("image/png") >= 1, "the trend plotted from review.trend_frame() was not displayed inline"

    frames = run.html('class="dataframe"')
    assert any(
        all(f"<th>{c}</th>" in f for c in ("faithfulness", "hallucination", "verdict", "p_value")) for f in frames
    )
    forced = re.search(r"^(\d+) forced evaluations this week \(the review counted (\d+)\)$", text, re.MULTILINE)
    assert forced and int(forced.group(1)) == int(forced.group(2)) > 0, text
    assert any("<th>reason</th>" in f and "<th>answer</th>" in f for f in frames), "no worst answers with reasons"
    assert any("<th>latency_p95</th>" in f and "<th>weeks_ago</th>" in f for f in frames), "no usage per week"
    assert re.search(r"^Faithfulness DEGRADED in app_version v2 .*v1 stable", text, re.MULTILINE), text
    assert any("<th>v2</th>" in f and "<td>degraded</td>" in f for f in frames), "no verdicts per segment"
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
