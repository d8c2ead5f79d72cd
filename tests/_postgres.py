"""The `postgres_url` fixture: a throwaway database on a real PostgreSQL server for one test session.

The server comes from `LLMMONITOR_TEST_POSTGRES_URL`, else the local default below. Without a reachable server the
tests that need it are skipped locally and fail on CI (`CI=true`), where a silently skipped backend is a lie.
Import the fixture into a test module: `from tests._postgres import postgres_url  # noqa: F401`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    server_url = make_url(os.environ.get("LLMMONITOR_TEST_POSTGRES_URL") or DEFAULT_URL)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    database = f"llmmonitor_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    except SQLAlchemyError as error:
        admin.dispose()
        message = f"no PostgreSQL at {server_url.render_as_string(hide_password=True)}: {type(error).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield server_url.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
