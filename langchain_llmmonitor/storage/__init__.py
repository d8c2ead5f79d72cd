"""Durable storage (SQLAlchemy, the `store` extra): the `Store` (with its judge job queue and outbox) and the batched
store writer.

`Store` is imported on first use, so that importing this package needs no SQLAlchemy.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store

INSTALL_HINT = "pip install 'langchain-llmmonitor[store]'"

__all__ = ["INSTALL_HINT", "Store", "open_store"]


def open_store(url_or_path: Any, **options: Any) -> "Store":
    """A `Store` on a SQLite path or SQLAlchemy URL; ImportError naming the extra when SQLAlchemy is missing."""
    try:
        from .store import Store
    except ImportError as missing:
        raise ImportError(f"a store needs SQLAlchemy: {INSTALL_HINT} ({missing})") from missing
    return Store(url_or_path, **options)


def __getattr__(name: str) -> Any:
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
