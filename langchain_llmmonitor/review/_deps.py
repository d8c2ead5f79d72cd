"""The review's optional dependencies: checked up front so a missing one names the extra to install, not a module."""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'langchain-llmmonitor[review]'"
_MODULES = ("numpy", "scipy", "matplotlib", "tqdm")


def require_review_extra() -> None:
    """Raise ImportError naming the extra when numpy, scipy, matplotlib or tqdm is missing."""
    missing = [name for name in _MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"the weekly review needs {', '.join(missing)}: {INSTALL_HINT}")
