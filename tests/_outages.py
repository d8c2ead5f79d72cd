"""Real database outages for tests: a SQLite file locked by another writer, a PostgreSQL database that refuses and drops
every connection. Each runs in a thread for `seconds` and returns it; `join()` it to know the outage is over."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def lock_sqlite(path: Path | str, seconds: float) -> threading.Thread:
    """Hold an exclusive lock on the SQLite file for `seconds`: every other write fails with "database is locked"."""
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold, name="sqlite-lock", daemon=True)
    thread.start()
    locked.wait(5)
    return thread


def stop_postgres_database(url: str, seconds: float) -> threading.Thread:
    """Make the database refuse new connections and drop the open ones for `seconds`, as a server restart does."""
    database = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    stopped = threading.Event()

    def allow(connection, allowed: bool) -> None:  # type: ignore[no-untyped-def]
        connection.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'))

    def outage() -> None:
        with admin.connect() as connection:
            allow(connection, False)
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"), {"db": database}
            )
            stopped.set()
            time.sleep(seconds)
            allow(connection, True)
        admin.dispose()

    thread = threading.Thread(target=outage, name="postgres-outage", daemon=True)
    thread.start()
    stopped.wait(10)
    return thread
